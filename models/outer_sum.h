// models/outer_sum.h: C = A^T·B for a short reduction (the batch), as a sum of k outer products
// accumulated in order with one fused multiply-add per term from +0: the arithmetic of OpenBLAS's sgemm
// kernel for dW = dY^T·X when k fits one of its K blocks, without its packing copies, the memset of C
// for beta = 0 and the read-modify-write of C (models/slot_linear.cc uses it only where a probe against
// at::mm gave the same bits).
// Torch-free (compiled -O3 -ffp-contract=off). With AVX-512 it makes 4 rows of C per pass over a
// 64-column block of b (16 accumulators in registers: each row of b is loaded once for 4 rows of C);
// Haswell (FMA) and the baseline take one row at a time. The chain per output is the same in both.
#pragma once

#include <cstdint>

namespace emosweep::models {

// c[o·ldc + i] = Σ_{kk < k} a[kk·lda + o] · b[kk·ldb + i] for o < m, i < n.
void OuterSum(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t k, int64_t m,
              int64_t n);

}  // namespace emosweep::models
