// data/portable_rng.h: a random generator whose streams are identical on every
// platform and standard library.
//
// std::mt19937_64's output sequence is fixed by the standard, but
// std::uniform_int_distribution, std::normal_distribution and std::shuffle are
// not: libstdc++ and libc++ give different splits for the same seed. Split
// files and synthetic corpora must be byte-identical everywhere, so all draws
// go through the functions below (documented in docs/formats/split-file.md).
// Thread-safety: a PortableRng is not shared between threads.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace emosweep::data {

// SplitMix64 finalizer: derives independent sub-seeds (per fold, per corpus).
inline uint64_t MixSeed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class PortableRng {
 public:
  explicit PortableRng(uint64_t seed) : engine_(seed) {}

  uint64_t Next() { return engine_(); }

  // Uniform in [0, n) by rejection (no modulo bias); n > 0.
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = engine_();
    while (x >= limit);
    return x % n;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  // Standard normal by Box-Muller (both values used).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1;
    do u1 = Uniform();
    while (u1 <= 0.0);
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * M_PI * u2);
  }

  // Fisher-Yates from the back: swap v[i] with v[Below(i + 1)] for i = n-1 .. 1.
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Below(i)]);
  }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace emosweep::data
