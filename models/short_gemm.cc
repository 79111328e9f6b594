// models/short_gemm.cc: see short_gemm.h.
#include "models/short_gemm.h"

#include <immintrin.h>

#include <atomic>
#include <cstring>
#include <vector>

namespace emosweep::models {
namespace {

// GEMM_Q: param.h's SGEMM_DEFAULT_Q of the core OpenBLAS runs (SetBlasGemmQ; 448 on SkylakeX).
std::atomic<int64_t> g_gemm_q{kBlasGemmQCandidates[0]};
constexpr int64_t kUnrollM = 16;   // SGEMM_DEFAULT_UNROLL_M
constexpr int64_t kLanes = kShortGemmMaxBatch;
constexpr int kForwardTile = 8;    // outputs per pass over the transposed x: 8 sums + 8 block sums in registers
// How far ahead (floats) the forward prefetches each row of W: cold 16 x 384 -> 1536 5.4 -> 3.1 ms over 12 layers
// (s12: 64 and 256 were slower, T = 12 or 16 rows per pass no faster; hot W unchanged).
constexpr int64_t kPrefetchAhead = 128;
// dX: strips of 3 vectors (48 columns of W) for 8 rows at a time: 24 sums in registers, 3 loads of W and 8
// broadcasts per row of W (16 rows as one group, or 48 x 4, measured slower: the strip then is read once per
// row of W at 16 broadcasts, or its 64-byte pieces are too far apart).
constexpr int kGradVectors = 3, kGradRows = 8;
// How many rows of W ahead dX prefetches its strip (s12: cold 16 x 1536 -> 384 and 16 x 384 -> 1536 5.7-8.1 ->
// 4.4-5.4 ms over 12 layers against OpenBLAS's packing path, 4 rows ahead about the same; without it the strips
// were no faster than OpenBLAS in the epoch, s11).
constexpr int64_t kGradPrefetchRows = 8;
// ... and into L2 this many rows ahead: the strided walk defeats the L2 streamer, and 8 rows in L1 fill buffers
// are too few misses in flight (harness, huge pages: 16 x 1536 -> 384 4.4 -> 3.5 ms, 16 x 384 -> 384 3.1 -> 2.5;
// 64 rows about the same, an L2 prefetch in the forward no faster).
constexpr int64_t kGradPrefetchFarRows = 32;
static_assert(kLanes % kGradRows == 0, "row groups must tile the 16 lanes");

// A prefetch of base[offset] into L1 (or L2). Near the end of W the address lies past it: computed as an integer (a
// pointer beyond its array would be undefined behaviour), and a prefetch never faults.
// kToL2: into L2 only (_MM_HINT_T1), for the far prefetch of a strided walk.
template <bool kToL2 = false>
inline void Prefetch(const float* base, int64_t offset) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(offset) * sizeof(float);
  _mm_prefetch(reinterpret_cast<const char*>(address), kToL2 ? _MM_HINT_T1 : _MM_HINT_T0);
}

// The transposed short operand (16 lanes per row of the reduction), reused between calls.
float* Scratch(int64_t n) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// t[k·16 + r] = a[r·lda + k] for r < rows, +0 for the lanes above.
void TransposeToLanes(const float* a, int64_t lda, int64_t rows, int64_t k, float* t) {
  std::memset(t, 0, sizeof(float) * static_cast<size_t>(k * kLanes));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t kk = 0; kk < k; ++kk) t[kk * kLanes + r] = a[r * lda + kk];
}

// T outputs o0..o0+T-1 of y = x·W^T + b, all rows at once (lanes = rows of x).
template <int T>
__attribute__((target("avx512f"))) void ForwardTile(const float* xt, const float* w, int64_t in, const float* bias,
                                                    int64_t o0, float* y, int64_t batch, int64_t out) {
  __m512 c[T];
  const float* wr[T];
  for (int j = 0; j < T; ++j) {
    c[j] = bias ? _mm512_set1_ps(bias[o0 + j]) : _mm512_setzero_ps();  // addmm: C = bias (beta 1); mm: C = +0
    wr[j] = w + (o0 + j) * in;
  }
  for (int64_t l0 = 0; l0 < in;) {
    const int64_t l1 = BlasKBlockEnd(l0, in);
    __m512 acc[T];
    for (int j = 0; j < T; ++j) acc[j] = _mm512_setzero_ps();
    int64_t k = l0;
    for (; k + 16 <= l1; k += 16) {
      // W arrives cold (the optimizer pass wrote it last): each row's cache line kPrefetchAhead floats on, which
      // past the row's end is the same column of the next tile's row (the tiles' rows are contiguous).
      const int64_t ahead = k + kPrefetchAhead < in ? k + kPrefetchAhead : T * in + k + kPrefetchAhead - in;
      for (int j = 0; j < T; ++j) Prefetch(wr[j], ahead);
#pragma GCC unroll 16
      for (int kk = 0; kk < 16; ++kk) {
        const __m512 xv = _mm512_loadu_ps(xt + (k + kk) * kLanes);
        for (int j = 0; j < T; ++j) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wr[j][k + kk]), xv, acc[j]);
      }
    }
    for (; k < l1; ++k) {
      const __m512 xv = _mm512_loadu_ps(xt + k * kLanes);
      for (int j = 0; j < T; ++j) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wr[j][k]), xv, acc[j]);
    }
    for (int j = 0; j < T; ++j) c[j] = _mm512_add_ps(c[j], acc[j]);  // fma(acc, alpha = 1, C)
    l0 = l1;
  }
  alignas(64) float tmp[T][kLanes];
  for (int j = 0; j < T; ++j) _mm512_store_ps(tmp[j], c[j]);
  for (int64_t r = 0; r < batch; ++r)
    for (int j = 0; j < T; ++j) y[r * out + o0 + j] = tmp[j][r];
}

using ForwardTileFn = void (*)(const float*, const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t);
constexpr ForwardTileFn kForwardTiles[kForwardTile + 1] = {
    nullptr,        ForwardTile<1>, ForwardTile<2>, ForwardTile<3>, ForwardTile<4>,
    ForwardTile<5>, ForwardTile<6>, ForwardTile<7>, ForwardTile<8>};

// Columns i0..i0+16V-1 of dx = dY·W (the last vector masked) for rows r0..r0+R-1 (lanes = columns of W, a
// row of W per step); the caller walks the R-row groups inside a column strip, so the strip is read from cache.
template <int V, int R>
__attribute__((target("avx512f"))) void InputGradTile(const float* dyt, const float* w, int64_t in, int64_t i0,
                                                      __mmask16 last, float* dx, int64_t r0, int64_t batch,
                                                      int64_t out) {
  __mmask16 mask[V];
  for (int v = 0; v < V; ++v) mask[v] = v == V - 1 ? last : static_cast<__mmask16>(0xffff);
  for (int64_t l0 = 0; l0 < out;) {
    const int64_t l1 = BlasKBlockEnd(l0, out);
    __m512 acc[R][V];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
    for (int64_t k = l0; k < l1; ++k) {
      // W arrives cold and is read here by column strips, one row of W (3 cache lines) per step: the first row
      // group fetches the strip's lines kGradPrefetchRows rows ahead (the second finds the strip in cache).
      if (r0 == 0) {
        for (int v = 0; v < V; ++v) Prefetch(w, (k + kGradPrefetchRows) * in + i0 + 16 * v);
        for (int v = 0; v < V; ++v) Prefetch<true>(w, (k + kGradPrefetchFarRows) * in + i0 + 16 * v);
      }
      __m512 wv[V];
      for (int v = 0; v < V; ++v) wv[v] = _mm512_maskz_loadu_ps(mask[v], w + k * in + i0 + 16 * v);
      const float* d = dyt + k * kLanes + r0;
      for (int r = 0; r < R; ++r) {
        const __m512 s = _mm512_set1_ps(d[r]);
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(wv[v], s, acc[r][v]);
      }
    }
    for (int r = 0; r < R && r0 + r < batch; ++r) {
      float* o = dx + (r0 + r) * in + i0;
      for (int v = 0; v < V; ++v) {
        // C = +0 (beta 0) before the first block, then C = fma(acc, 1, C): +0 + acc turns an acc of -0 into +0.
        const __m512 before = l0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], o + 16 * v);
        _mm512_mask_storeu_ps(o + 16 * v, mask[v], _mm512_add_ps(before, acc[r][v]));
      }
    }
    l0 = l1;
  }
}

}  // namespace

int64_t BlasKBlockEnd(int64_t from, int64_t k) {
  // level3.c: min_l = k - ls; >= 2Q: Q; > Q: ((min_l / 2 + UNROLL_M - 1) / UNROLL_M) * UNROLL_M; else all of it.
  const int64_t q = g_gemm_q.load(std::memory_order_relaxed);
  int64_t len = k - from;
  if (len >= 2 * q) {
    len = q;
  } else if (len > q) {
    len = ((len / 2 + kUnrollM - 1) / kUnrollM) * kUnrollM;
  }
  return from + len;
}

int64_t BlasGemmQ() { return g_gemm_q.load(std::memory_order_relaxed); }
void SetBlasGemmQ(int64_t q) { g_gemm_q.store(q, std::memory_order_relaxed); }

bool BlasBlockedPath(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
  // interface/gemm.c asks the permit (SMALL_MATRIX_OPT); a product over 100^3 never takes the small kernels.
  const double mnk = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (mnk > 1e6) return true;
  if (trans_a && trans_b) return true;                   // no TT small kernel
  if (trans_a && !trans_b) return m * n > 1200 || k < 32;  // the TN kernel's own limits
  return false;
}

bool ShortGemmAvailable() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

void ShortLinearForward(const float* x, int64_t ldx, const float* w, const float* bias, float* y, int64_t batch,
                        int64_t in, int64_t out) {
  float* xt = Scratch(in * kLanes);
  TransposeToLanes(x, ldx, batch, in, xt);
  int64_t o0 = 0;
  for (; o0 + kForwardTile <= out; o0 += kForwardTile) ForwardTile<kForwardTile>(xt, w, in, bias, o0, y, batch, out);
  if (o0 < out) kForwardTiles[out - o0](xt, w, in, bias, o0, y, batch, out);
}

void ShortLinearInputGrad(const float* dy, int64_t lddy, const float* w, float* dx, int64_t batch, int64_t out,
                          int64_t in) {
  float* dyt = Scratch(out * kLanes);
  TransposeToLanes(dy, lddy, batch, out, dyt);
  constexpr int V = kGradVectors, R = kGradRows;
  for (int64_t i0 = 0; i0 < in; i0 += 16 * V) {
    const int64_t width = in - i0;
    if (width >= 16 * V) {
      for (int64_t r0 = 0; r0 < batch; r0 += R) InputGradTile<V, R>(dyt, w, in, i0, 0xffff, dx, r0, batch, out);
    } else {
      for (int64_t j = i0; j < in; j += 16) {
        const int64_t wj = in - j < 16 ? in - j : 16;
        const __mmask16 mask = static_cast<__mmask16>((1u << wj) - 1u);
        for (int64_t r0 = 0; r0 < batch; r0 += R) InputGradTile<1, R>(dyt, w, in, j, mask, dx, r0, batch, out);
      }
    }
  }
}

}  // namespace emosweep::models
