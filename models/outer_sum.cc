// models/outer_sum.cc: see outer_sum.h.
#include "models/outer_sum.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>

namespace emosweep::models {
namespace {

constexpr int64_t kBlock = 64;  // 4 AVX-512 registers of accumulators per column block
constexpr int kRows = 4;        // output rows per pass over a column block (AVX-512 path): 16 accumulators

// The portable form (Haswell FMA and the baseline; GCC keeps the 64 accumulators in registers).
__attribute__((target_clones("arch=haswell", "default"))) void OuterSumPortable(const float* a, int64_t lda,
                                                                               const float* b, int64_t ldb, float* c,
                                                                               int64_t ldc, int64_t k, int64_t m,
                                                                               int64_t n) {
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

// R output rows o..o+R-1 over all columns, 64 at a time (the last block masked): each row of b is loaded once
// for R rows of c. Per output the same chain as above: fma(a, b, acc) from +0 in k order, then + 0.
template <int R>
__attribute__((target("avx512f"))) void OuterSumRows(const float* a, int64_t lda, const float* b, int64_t ldb,
                                                     float* c, int64_t ldc, int64_t k, int64_t o, int64_t n) {
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    __mmask16 mask[4];
    for (int v = 0; v < 4; ++v) {
      const int64_t w = n - i0 - 16 * v;
      mask[v] = w >= 16 ? static_cast<__mmask16>(0xffff) : w <= 0 ? 0 : static_cast<__mmask16>((1u << w) - 1u);
    }
    // The slice of the flat gradient this writes is cold: fetch the next row group's lines of this block
    // while this one computes (an integer address: past the last row it points beyond C,
    // and a prefetch never faults). Harness, 12-40 cold 16-row products on huge pages: 1536 x 384 3.8 -> 3.1 ms,
    // 384 x 384 3.3 -> 2.5; 384 x 1536 (6 KB rows, streamed well already) unchanged; two groups ahead slower,
    // PREFETCHW (intent to write) the same as this.
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < 4; ++v) {
        const uintptr_t next = reinterpret_cast<uintptr_t>(c) +
                               static_cast<uintptr_t>((o + R + r) * ldc + i0 + 16 * v) * sizeof(float);
        _mm_prefetch(reinterpret_cast<const char*>(next), _MM_HINT_T0);
      }
    __m512 acc[R][4];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk) {
      __m512 bv[4];
      for (int v = 0; v < 4; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + kk * ldb + i0 + 16 * v);
      for (int r = 0; r < R; ++r) {
        const __m512 s = _mm512_set1_ps(a[kk * lda + o + r]);
        for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(s, bv[v], acc[r][v]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < 4; ++v)
        _mm512_mask_storeu_ps(c + (o + r) * ldc + i0 + 16 * v, mask[v], _mm512_add_ps(acc[r][v], _mm512_setzero_ps()));
  }
}

}  // namespace

void OuterSum(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t k, int64_t m,
              int64_t n) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512) return OuterSumPortable(a, lda, b, ldb, c, ldc, k, m, n);
  int64_t o = 0;
  for (; o + kRows <= m; o += kRows) OuterSumRows<kRows>(a, lda, b, ldb, c, ldc, k, o, n);
  for (; o < m; ++o) OuterSumRows<1>(a, lda, b, ldb, c, ldc, k, o, n);
}

}  // namespace emosweep::models
