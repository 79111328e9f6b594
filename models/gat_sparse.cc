// models/gat_sparse.cc: see gat_sparse.h.
#include "models/gat_sparse.h"

#include <immintrin.h>

#include <vector>

#include "models/short_gemm.h"

namespace emosweep::models {
namespace {

constexpr int kLanes = 16;
constexpr int kMaxVectors = 8;  // 128 columns a pass: 8 block sums + 8 running sums in registers

__mmask16 TailMask(int64_t left) {
  return left >= kLanes ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

// One row's strip of NV vectors (the last one masked): c columns [c0, c0 + 16·NV) of out row r; whether all of
// them are finite.
template <int NV>
__attribute__((target("avx512f"))) bool AggregateStrip(const float* vals, const int32_t* idx, int64_t cnt,
                                                       const float* x, int64_t x_n, int64_t n, __mmask16 last,
                                                       float* o) {
  __m512 c[NV];
  for (int v = 0; v < NV; ++v) c[v] = _mm512_setzero_ps();
  int64_t p = 0;
  for (int64_t b0 = 0; b0 < n;) {
    const int64_t b1 = BlasKBlockEnd(b0, n);
    __m512 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = _mm512_setzero_ps();
    for (; p < cnt && idx[p] < b1; ++p) {
      const int64_t q = idx[p];
      const __m512 av = _mm512_set1_ps(vals[p]);
      const float* xr = x + q * x_n;
      for (int v = 0; v + 1 < NV; ++v) acc[v] = _mm512_fmadd_ps(av, _mm512_loadu_ps(xr + v * kLanes), acc[v]);
      acc[NV - 1] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(last, xr + (NV - 1) * kLanes), acc[NV - 1]);
    }
    // The block's sum enters C as fma(acc, alpha = 1, C): acc + C.
    for (int v = 0; v < NV; ++v) c[v] = _mm512_add_ps(acc[v], c[v]);
    b0 = b1;
  }
  __mmask16 finite = 0xFFFF;  // x - x is 0 for a finite x, NaN for an infinite or NaN one
  for (int v = 0; v + 1 < NV; ++v) {
    _mm512_storeu_ps(o + v * kLanes, c[v]);
    finite &= _mm512_cmp_ps_mask(_mm512_sub_ps(c[v], c[v]), _mm512_setzero_ps(), _CMP_EQ_OQ);
  }
  _mm512_mask_storeu_ps(o + (NV - 1) * kLanes, last, c[NV - 1]);
  finite &= _mm512_mask_cmp_ps_mask(last, _mm512_sub_ps(c[NV - 1], c[NV - 1]), _mm512_setzero_ps(), _CMP_EQ_OQ) |
            static_cast<__mmask16>(~last);
  return finite == 0xFFFF;
}

using StripFn = bool (*)(const float*, const int32_t*, int64_t, const float*, int64_t, int64_t, __mmask16, float*);
constexpr StripFn kStrips[kMaxVectors + 1] = {nullptr,
                                              &AggregateStrip<1>,
                                              &AggregateStrip<2>,
                                              &AggregateStrip<3>,
                                              &AggregateStrip<4>,
                                              &AggregateStrip<5>,
                                              &AggregateStrip<6>,
                                              &AggregateStrip<7>,
                                              &AggregateStrip<8>};

// The 16 x 16 transpose of r (rows a, columns k) into t (t[k] lane a = r[a] lane k).
__attribute__((target("avx512f"))) inline void Transpose16(const __m512 r[16], __m512 t[16]) {
  __m512 a[16], b[16];
  for (int p = 0; p < 8; ++p) {  // lanes L: r[2p][4L], r[2p+1][4L], r[2p][4L+1], r[2p+1][4L+1] (and 4L+2, 4L+3)
    a[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
    a[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // b[4g + m] lane L: rows 4g..4g+3 of column 4L + m
    b[4 * g + 0] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0x44);
    b[4 * g + 1] = _mm512_shuffle_ps(a[4 * g], a[4 * g + 2], 0xEE);
    b[4 * g + 2] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0x44);
    b[4 * g + 3] = _mm512_shuffle_ps(a[4 * g + 1], a[4 * g + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 v0 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0x88);       // groups 0, 1: columns m, 8 + m
    const __m512 v1 = _mm512_shuffle_f32x4(b[m], b[4 + m], 0xDD);       // columns 4 + m, 12 + m
    const __m512 w0 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0x88);  // groups 2, 3
    const __m512 w1 = _mm512_shuffle_f32x4(b[8 + m], b[12 + m], 0xDD);
    t[m] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    t[8 + m] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    t[4 + m] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    t[12 + m] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}

// Up to 16 edges (i, cols[l]) of one row i, a lane each: the 16 x-rows are read 16 columns at a time and
// transposed, so that each column k is one fused multiply-add with g[i, k] broadcast. Whether the dots are finite.
__attribute__((target("avx512f"))) bool EdgeDotsRow(const float* gi, const float* x, int64_t x_n, const int32_t* cols,
                                                    int lanes, int64_t c_dim, float* d_row) {
  const float* xr[kLanes];
  for (int l = 0; l < kLanes; ++l) xr[l] = x + static_cast<int64_t>(cols[l < lanes ? l : 0]) * x_n;
  __m512 c = _mm512_setzero_ps();
  for (int64_t b0 = 0; b0 < c_dim;) {
    const int64_t b1 = BlasKBlockEnd(b0, c_dim);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k0 = b0; k0 < b1; k0 += kLanes) {
      const int64_t kn = b1 - k0 < kLanes ? b1 - k0 : kLanes;
      const __mmask16 m = TailMask(c_dim - k0);
      __m512 r[kLanes], t[kLanes];
      for (int l = 0; l < kLanes; ++l) r[l] = _mm512_maskz_loadu_ps(m, xr[l] + k0);
      Transpose16(r, t);
      for (int64_t k = 0; k < kn; ++k) acc = _mm512_fmadd_ps(_mm512_set1_ps(gi[k0 + k]), t[k], acc);
    }
    c = _mm512_add_ps(acc, c);
    b0 = b1;
  }
  alignas(64) float out[kLanes];
  _mm512_store_ps(out, c);
  for (int l = 0; l < lanes; ++l) d_row[cols[l]] = out[l];
  const __mmask16 used = TailMask(lanes);
  return (_mm512_mask_cmp_ps_mask(used, _mm512_sub_ps(c, c), _mm512_setzero_ps(), _CMP_EQ_OQ) & used) == used;
}

}  // namespace

bool GatSparseAggregate(const float* a, int64_t a_r, int64_t a_q, const int32_t* ptr, const int32_t* idx,
                        const float* x, int64_t x_h, int64_t x_n, int64_t heads, int64_t n, int64_t c_dim, float* out) {
  bool finite = true;
  std::vector<float> vals;
  for (int64_t h = 0; h < heads; ++h) {
    const float* ah = a + h * n * n;
    const float* xh = x + h * x_h;
    for (int64_t r = 0; r < n; ++r) {
      const int32_t* list = idx + ptr[r];
      const int64_t cnt = ptr[r + 1] - ptr[r];
      vals.resize(static_cast<size_t>(cnt));  // the row's weights, gathered once for all its strips
      for (int64_t p = 0; p < cnt; ++p) vals[p] = ah[r * a_r + list[p] * a_q];
      float* o = out + (h * n + r) * c_dim;
      for (int64_t c0 = 0; c0 < c_dim; c0 += kMaxVectors * kLanes) {
        const int64_t left = c_dim - c0;
        const int64_t nv = left >= kMaxVectors * kLanes ? kMaxVectors : (left + kLanes - 1) / kLanes;
        finite &= kStrips[nv](vals.data(), list, cnt, xh + c0, x_n, n, TailMask(left - (nv - 1) * kLanes), o + c0);
      }
    }
  }
  return finite;
}

bool GatSparseEdgeDots(const float* g, int64_t g_h, int64_t g_n, const float* x, int64_t x_h, int64_t x_n,
                       const int32_t* ptr, const int32_t* cols, int64_t heads, int64_t n, int64_t c_dim, float* d) {
  bool finite = true;
  for (int64_t h = 0; h < heads; ++h) {
    const float* xh = x + h * x_h;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t e = ptr[i]; e < ptr[i + 1]; e += kLanes) {
        const int lanes = static_cast<int>(ptr[i + 1] - e < kLanes ? ptr[i + 1] - e : kLanes);
        finite &= EdgeDotsRow(g + h * g_h + i * g_n, xh, x_n, cols + e, lanes, c_dim, d + (h * n + i) * n);
      }
  }
  return finite;
}

}  // namespace emosweep::models
