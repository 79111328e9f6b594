// models/outer_sum.cc: see outer_sum.h.
#include "models/outer_sum.h"

#include <cmath>

namespace emosweep::models {
namespace {

constexpr int64_t kBlock = 64;  // 4 AVX-512 registers of accumulators per column block

}  // namespace

__attribute__((target_clones("avx512f", "arch=haswell", "default"))) void OuterSum(const float* a, int64_t lda,
                                                                                  const float* b, int64_t ldb,
                                                                                  float* c, int64_t ldc, int64_t k,
                                                                                  int64_t m, int64_t n) {
  for (int64_t o = 0; o < m; ++o) {
    float* __restrict row = c + o * ldc;
    int64_t i0 = 0;
    for (; i0 + kBlock <= n; i0 += kBlock) {  // the accumulators stay in registers over the k terms
      float acc[kBlock] = {};
      for (int64_t kk = 0; kk < k; ++kk) {
        const float s = a[kk * lda + o];
        const float* __restrict br = b + kk * ldb + i0;
        for (int64_t j = 0; j < kBlock; ++j) acc[j] = std::fma(s, br[j], acc[j]);
      }
      // OpenBLAS zeroes C (beta 0) and adds the sum to it: + 0.0f turns a sum of -0 (products that underflowed
      // from below) into +0, as it does; otherwise the same value.
      for (int64_t j = 0; j < kBlock; ++j) row[i0 + j] = acc[j] + 0.0f;
    }
    for (int64_t i = i0; i < n; ++i) {
      float acc = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) acc = std::fma(a[kk * lda + o], b[kk * ldb + i], acc);
      row[i] = acc + 0.0f;
    }
  }
}

}  // namespace emosweep::models
