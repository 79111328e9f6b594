// models/row_norm_kernels.cc: see row_norm_kernels.h. Built with -O3 -ffp-contract=off: the compiler
// vectorises the loops, and without contraction every element gets the same roundings as torch's kernels
// (IEEE division, product and sum, each rounded once).
#include "models/row_norm_kernels.h"

namespace emosweep::models {

void RowNormalizeGradPass(const float* g, const float* y, const float* d, int64_t n, int64_t dim, float* a,
                          float* r) {
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

void RowNormGrad(const float* gn, const float* x, const float* nrm, int64_t n, int64_t dim, float* out) {
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

void RowCosineGradPass(const float* g, const float* o, const float* xn, const float* nrm, int64_t n, int64_t dim,
                       float* a, float* r) {
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

void RowCosineGradFinish(float* a, const float* s, const float* x, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; ++i) {
    const float si = s[i];
    const float* xi = x + i * dim;
    float* ai = a + i * dim;
    for (int64_t j = 0; j < dim; ++j) ai[j] = ai[j] + si * (2.0f * xi[j]);
  }
}

}  // namespace emosweep::models
