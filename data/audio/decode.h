// data/audio/decode.h: audio file → mono float waveform at the analysis rate.
//
// libsndfile decodes WAV/FLAC/OGG (any of its formats), channels are averaged
// to mono, libsoxr (SOXR_HQ) resamples to DecodeOptions::sample_rate (16 kHz by
// default), and an optional gain normalisation is applied. Every error names
// the file: missing (NotFound), empty/corrupt/truncated/unsupported
// (Corruption), zero-length audio (Corruption).
// Thread-safety: free functions with no shared state; call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::data::audio {

inline constexpr int kSampleRate = 16000;
// Source sample rates DecodeAudio accepts (others are a corrupt header).
inline constexpr int kMinSampleRate = 1000;
inline constexpr int kMaxSampleRate = 768000;

enum class Normalisation {
  kNone,  // keep the recorded level (level is itself an emotion cue)
  kPeak,  // scale so max |x| = target_peak
  kRms,   // scale so RMS = target_rms_dbfs
};

// Parses "none" | "peak" | "rms".
Result<Normalisation> ParseNormalisation(const std::string& text);
const char* NormalisationName(Normalisation n);

struct DecodeOptions {
  int sample_rate = kSampleRate;
  Normalisation normalisation = Normalisation::kNone;
  double target_peak = 0.95;
  double target_rms_dbfs = -20.0;
};

struct Waveform {
  std::vector<float> samples;  // mono, sample_rate Hz, nominally in [-1, 1]
  int sample_rate = kSampleRate;
  int source_rate = 0;         // rate of the file before resampling
  int source_channels = 0;
  double duration_s() const { return sample_rate ? double(samples.size()) / sample_rate : 0.0; }
};

Result<Waveform> DecodeAudio(const std::string& path, const DecodeOptions& options = {});

// Resamples mono float audio with libsoxr (high quality); in_rate == out_rate
// copies. Exposed for tests and for callers that already hold samples.
Result<std::vector<float>> Resample(const std::vector<float>& in, int in_rate, int out_rate);

// Applies `options.normalisation` in place (silence is left untouched).
void Normalise(const DecodeOptions& options, std::vector<float>* samples);

}  // namespace emosweep::data::audio
