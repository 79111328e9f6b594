// models/fast_bernoulli.h: Bernoulli(p) draws from a CPU generator, bitwise equal to torch's CPU kernel.
//
// libtorch without MKL (Debian's 1.13) draws `t.bernoulli_(p, gen)` one element at a time: one
// at::bernoulli_distribution<double> per element = one CPUGeneratorImpl::random64 (two mt19937 words,
// the first the high half) turned into the 53-bit double uniform u and compared, u < p. FillBernoulli
// makes the same draws in blocks: it twists the 624-word MT19937 state and tempers the words in vector
// loops (AVX-512 / AVX2 / baseline clones, picked at load time), so `out` is bitwise what bernoulli_
// writes into a contiguous float tensor and the generator's engine ends in the same state (left_/next_
// included, also when the draws start or end in the middle of a block).
// Torch-free header (the at:: types are only declared). Thread-safety: the generator overload takes the
// generator's mutex as torch's kernel does; the engine overload touches only the engine it is given.
#pragma once

#include <cstdint>

namespace at {
struct CPUGeneratorImpl;
struct mt19937_data_pod;
}  // namespace at

namespace emosweep::models {

// out[0, n) = 1.f with probability p, else 0.f, in the order bernoulli_ draws them; advances the engine by
// 2n words. p must lie in [0, 1] (c10::Error otherwise, as bernoulli_). `one`: the value written for a
// success instead of 1.f (dropout's 1 / (1 - p), which bernoulli_ followed by div_ gives: 1.f / q and 0.f / q).
void FillBernoulli(float* out, int64_t n, double p, at::mt19937_data_pod* engine, float one = 1.f);

// The same draws from `gen` (its mutex held while drawing).
void FillBernoulli(float* out, int64_t n, double p, at::CPUGeneratorImpl* gen, float one = 1.f);

}  // namespace emosweep::models
