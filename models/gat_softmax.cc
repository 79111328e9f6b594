#include "models/gat_softmax.h"

#include <limits>

namespace emosweep::models {

void GatScores(const float* a_dst, const float* a_src, const bool* absent, int64_t heads, int64_t n, float slope,
               float* masked) {
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < n; ++i) {
      const float d = a_dst[h * n + i];
      const float* src = a_src + h * n;
      const bool* ab = absent + i * n;
      float* out = masked + (h * n + i) * n;
      for (int64_t j = 0; j < n; ++j) {
        const float v = d + src[j];
        const float e = v > 0.0f ? v : v * slope;
        out[j] = ab[j] ? ninf : e;
      }
    }
}

void GatSoftmaxDenomGrad(const float* g, const float* w, const float* s, int64_t heads, int64_t n, float* t) {
  for (int64_t r = 0; r < heads * n; ++r) {
    const float sr = s[r];
    const float* gr = g + r * n;
    const float* wr = w + r * n;
    float* tr = t + r * n;
    for (int64_t j = 0; j < n; ++j) tr[j] = -gr[j] * ((wr[j] / sr) / sr);
  }
}

void GatScoresGrad(const float* g, const float* w, const float* s, const float* gs, const float* a_dst,
                   const float* a_src, const bool* absent, int64_t heads, int64_t n, float slope, float* v,
                   const int64_t vs[3]) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = h * n + i;
      const float sr = s[r], gsr = gs[r], d = a_dst[r];
      const float* gr = g + r * n;
      const float* wr = w + r * n;
      const float* src = a_src + h * n;
      const bool* ab = absent + i * n;
      float* vr = v + h * vs[0] + i * vs[1];
      const int64_t vj = vs[2];
      for (int64_t j = 0; j < n; ++j) {
        const float gx = (gr[j] / sr + gsr) * wr[j];
        const float ge = ab[j] ? 0.0f : gx;
        vr[j * vj] = d + src[j] > 0.0f ? ge : ge * slope;
      }
    }
}

}  // namespace emosweep::models
