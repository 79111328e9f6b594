// models/fast_bernoulli.cc: block-wise MT19937 Bernoulli draws (see fast_bernoulli.h).
// Compiled with -O3 so that the twist and temper loops vectorise; only integer arithmetic is vectorised
// (-ffp-contract=off is set anyway: the one floating-point product, p * 2^53, is exact).
#include "models/fast_bernoulli.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/MT19937RNGEngine.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace emosweep::models {
namespace {

// ATen/core/MT19937RNGEngine.h's constants.
constexpr int kN = 624;
constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0df;
constexpr uint32_t kUpper = 0x80000000;
constexpr uint32_t kLower = 0x7fffffff;

// mt19937_engine::twist without the branch: (v & 1 ? A : 0) == -(v & 1) & A.
inline uint32_t Twist(uint32_t u, uint32_t v) {
  return (((u & kUpper) | (v & kLower)) >> 1) ^ ((0u - (v & 1u)) & kMatrixA);
}

inline uint32_t Temper(uint32_t y) {
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680;
  y ^= (y << 15) & 0xefc60000;
  y ^= (y >> 18);
  return y;
}

// mt19937_engine::next_state: the same three loops, the middle one split where it starts reading words it
// wrote itself (j - 227 >= 227), so that no piece has a loop-carried dependence and each vectorises.
__attribute__((target_clones("avx512f", "avx2", "default"))) void NextState(uint32_t* s) {
  for (int j = 0; j < kN - kM; ++j) s[j] = s[j + kM] ^ Twist(s[j], s[j + 1]);                   // [0, 227)
  for (int j = kN - kM; j < 2 * (kN - kM); ++j) s[j] = s[j + kM - kN] ^ Twist(s[j], s[j + 1]);  // [227, 454)
  for (int j = 2 * (kN - kM); j < kN - 1; ++j) s[j] = s[j + kM - kN] ^ Twist(s[j], s[j + 1]);   // [454, 623)
  s[kN - 1] = s[kM - 1] ^ Twist(s[kN - 1], s[0]);
}

// at::bernoulli_distribution<double>: u = (random64 & (2^53 - 1)) * 2^-53 (uniform_real_distribution on
// [0, 1): · (1 - 0) + 0 changes nothing), then u < p. With m = random64 & (2^53 - 1), an integer below 2^53,
// u = m · 2^-53 exactly and p · 2^53 is exact (a power-of-two scaling), so u < p <=> m < p · 2^53 <=>
// m < ceil(p · 2^53) =: threshold (m is an integer). The comparison is then integer-only and vectorises.
inline float Draw(uint32_t hi, uint32_t lo, int64_t threshold, float one) {
  const int64_t m = static_cast<int64_t>((static_cast<uint64_t>(hi & 0x1fffffu) << 32) | lo);
  return m < threshold ? one : 0.f;
}

// out[i] from the state words w[2i] (high half) and w[2i + 1], tempered here.
__attribute__((target_clones("avx512f", "avx2", "default"))) void DrawPairs(const uint32_t* __restrict w, int64_t pairs,
                                                                            int64_t threshold, float one,
                                                                            float* __restrict out) {
  for (int64_t i = 0; i < pairs; ++i) out[i] = Draw(Temper(w[2 * i]), Temper(w[2 * i + 1]), threshold, one);
}

}  // namespace

void FillBernoulli(float* out, int64_t n, double p, at::mt19937_data_pod* engine, float one) {
  TORCH_CHECK(0 <= p && p <= 1, "bernoulli_ expects p to be in [0, 1], but got p=", p);
  const auto threshold = static_cast<int64_t>(std::ceil(p * 0x1p53));
  at::mt19937_data_pod& e = *engine;
  uint32_t* s = e.state_.data();
  // The engine's bookkeeping: the next word is state_[next_] and left_ - 1 words remain before the next
  // call twists (a twisting call sets left_ = 624, next_ = 0, then takes word 0: after it left_ + next_ =
  // 625). A pair split by a twist keeps its high word in `carry`.
  bool has_carry = false;
  uint32_t carry = 0;
  int64_t i = 0;
  while (i < n) {
    if (e.left_ == 1) {
      NextState(s);
      e.left_ = kN + 1;  // as a twisting call leaves it once it has taken its word (at least one is taken below)
      e.next_ = 0;
    }
    const int64_t avail = e.left_ - 1;
    const uint32_t* w = s + e.next_;
    int64_t used = 0;
    if (has_carry) {
      out[i++] = Draw(carry, Temper(w[0]), threshold, one);
      used = 1;
      has_carry = false;
    }
    const int64_t pairs = std::min((avail - used) / 2, n - i);
    DrawPairs(w + used, pairs, threshold, one, out + i);
    i += pairs;
    used += 2 * pairs;
    if (i < n && used < avail) {  // one word left in this block: the high half of the next pair
      carry = Temper(w[used]);
      ++used;
      has_carry = true;
    }
    e.left_ -= static_cast<int>(used);
    e.next_ += static_cast<uint32_t>(used);
  }
}

void FillBernoulli(float* out, int64_t n, double p, at::CPUGeneratorImpl* gen, float one) {
  std::lock_guard<std::mutex> lock(gen->mutex_);
  at::mt19937 engine = gen->engine();
  at::mt19937_data_pod data = engine.data();
  FillBernoulli(out, n, p, &data, one);
  engine.set_data(data);
  gen->set_engine(engine);
}

}  // namespace emosweep::models
