// models/outer_sum.cc: see outer_sum.h.
#include "models/outer_sum.h"

#include <cmath>

namespace emosweep::models {

__attribute__((target_clones("avx512f", "arch=haswell", "default"))) void OuterSum(const float* a, int64_t lda,
                                                                                  const float* b, int64_t ldb,
                                                                                  float* c, int64_t ldc, int64_t k,
                                                                                  int64_t m, int64_t n) {
  for (int64_t o = 0; o < m; ++o) {
    float* row = c + o * ldc;
    for (int64_t i = 0; i < n; ++i) row[i] = 0.0f;
    for (int64_t kk = 0; kk < k; ++kk) {
      const float s = a[kk * lda + o];
      const float* br = b + kk * ldb;
      for (int64_t i = 0; i < n; ++i) row[i] = std::fma(s, br[i], row[i]);
    }
  }
}

}  // namespace emosweep::models
