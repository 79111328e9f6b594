// models/row_norm_kernels.cc: see row_norm_kernels.h. Built with -O3 -ffp-contract=off: the compiler
// vectorises the loops, and without contraction every element gets the same roundings as torch's kernels
// (IEEE division, product and sum, each rounded once).
#include "models/row_norm_kernels.h"

// Compiled for AVX-512, AVX2 and the baseline, picked at load time: division is correctly rounded at every
// vector width, so each clone gives the same bits (the loops are division-bound: 16 lanes a vdivps).
#define ES_ROWNORM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace emosweep::models {

ES_ROWNORM_CLONES void RowNormalizeGradPass(const float* __restrict g, const float* __restrict y,
                                            const float* __restrict d, int64_t n, int64_t dim,
                                            float* __restrict a, float* __restrict r) {
  for (int64_t i = 0; i < n; ++i) {
    const float di = d[i];
    const float* gi = g + i * dim;
    const float* yi = y + i * dim;
    float* ai = a + i * dim;
    float* ri = r + i * dim;
    for (int64_t j = 0; j < dim; ++j) {
      ai[j] = gi[j] / di;
      ri[j] = -gi[j] * (yi[j] / di);
    }
  }
}

ES_ROWNORM_CLONES void RowNormGrad(const float* __restrict gn, const float* __restrict x, const float* __restrict nrm,
                                   int64_t n, int64_t dim, float* __restrict out) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = gn[i], ni = nrm[i];
    const float* xi = x + i * dim;
    float* oi = out + i * dim;
    if (ni == 0.0f) {
      for (int64_t j = 0; j < dim; ++j) oi[j] = gi * 0.0f;
    } else {
      for (int64_t j = 0; j < dim; ++j) oi[j] = gi * (xi[j] / ni);
    }
  }
}

ES_ROWNORM_CLONES void RowCosineGradPass(const float* __restrict g, const float* __restrict o,
                                         const float* __restrict xn, const float* __restrict nrm, int64_t n,
                                         int64_t dim, float* __restrict a, float* __restrict r) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i], ni = nrm[i];
    const float* oi = o + i * dim;
    const float* xi = xn + i * dim;
    float* ai = a + i * dim;
    float* ri = r + i * dim;
    for (int64_t j = 0; j < dim; ++j) {
      const float m = gi * oi[j];
      ai[j] = m / ni;
      ri[j] = -m * (xi[j] / ni);
    }
  }
}

ES_ROWNORM_CLONES void RowCosineGradFinish(float* __restrict a, const float* __restrict s, const float* __restrict x,
                                           int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; ++i) {
    const float si = s[i];
    const float* xi = x + i * dim;
    float* ai = a + i * dim;
    for (int64_t j = 0; j < dim; ++j) ai[j] = ai[j] + si * (2.0f * xi[j]);
  }
}

}  // namespace emosweep::models
