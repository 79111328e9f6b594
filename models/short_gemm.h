// models/short_gemm.h: a Linear layer's forward (Y = X·W^T + b) and input gradient (dX = dY·W) over a
// short batch (<= 16 rows), reading W in place: OpenBLAS's sgemm arithmetic for these products without
// its packing copies of W (issue 16, single step: on msr_a the copies were 27 % of the epoch). In the epoch W
// arrives cold (the optimizer pass wrote it last), so both kernels prefetch it ahead of use: without that the
// in-place dX was no faster than OpenBLAS's packing path (s11); with it, and W on huge pages
// (worker/huge_pages.h), forward and dX run 1.2-1.8x faster on cold W (bench/README.md, s12).
//
// The arithmetic reproduced (OpenBLAS 0.3.21, SkylakeX core, one thread, its blocked driver
// driver/level3/level3.c with kernel/x86_64/sgemm_kernel_16x4_skylakex_3.c; its Cooperlake core runs the
// same kernel with another K block): the reduction over K runs in K blocks (BlasKBlockEnd: GEMM_Q = 448 on
// SkylakeX, 320 on Cooperlake; a remainder between Q and 2Q is split in two, the first half rounded up to
// GEMM_UNROLL_M = 16); within a block each output is one chain of fused multiply-adds
// from +0 in K order, and the block's sum enters C as fma(acc, alpha = 1, C), C starting from the bias
// that torch's addmm copied into it (beta = 1), or +0 (at::mm: beta = 0 zeroes C first).
// OpenBLAS's small-matrix kernels (BlasBlockedPath false) sum differently and are not reproduced.
// models/slot_linear.cc uses these only where a probe against torch gave the same bits once per process.
// Torch-free (compiled -O3 -ffp-contract=off); the kernels need AVX-512F at run time (ShortGemmAvailable).
#pragma once

#include <cstdint>

namespace emosweep::models {

constexpr int64_t kShortGemmMaxBatch = 16;  // one AVX-512 register of floats

// The end of OpenBLAS's K block that starts at `from` (< k) in a reduction of length k (blocks of BlasGemmQ()).
int64_t BlasKBlockEnd(int64_t from, int64_t k);

// OpenBLAS's K block for sgemm (GEMM_Q), which depends on the core it picked at load time: 448 on SkylakeX, 320
// on Cooperlake (OpenBLAS 0.3.21 picks Cooperlake on AMD Zen 4; the sgemm kernel is SkylakeX's). The kernels
// here read it; models/slot_linear.cc (ProbedBlasGemmQ) sets it once per process from its probe against torch,
// trying the candidates in order, before any kernel runs. Default: the first.
constexpr int64_t kBlasGemmQCandidates[] = {448, 320};
int64_t BlasGemmQ();
void SetBlasGemmQ(int64_t q);

// Whether OpenBLAS's sgemm (column-major m x n = op(A) m x k · op(B) k x n) takes its blocked driver
// rather than a small-matrix kernel (kernel/x86_64/sgemm_small_kernel_permit_skylakex.c).
bool BlasBlockedPath(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);

// The CPU can run the kernels below (AVX-512F).
bool ShortGemmAvailable();

// y[r·out + o] = bias[o] (or +0 without bias) + Σ_k x[r·ldx + k]·w[o·in + k], for r < batch <= 16, in
// OpenBLAS's order (as at::linear / at::addmm give it for a row-major x and a contiguous w).
void ShortLinearForward(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t batch,
                        int64_t in, int64_t out);

// dx[r·in + i] = Σ_o dy[r·lddy + o]·w[o·in + i], for r < batch <= 16, in OpenBLAS's order (as at::mm(dY, W)).
void ShortLinearInputGrad(const float* dy, int64_t lddy, const float* w, float* dx, int64_t batch, int64_t out,
                          int64_t in);

}  // namespace emosweep::models
