// data/audio/prosody.h: the eGeMAPS-like "prosody" feature set.
//
// Low-level descriptors per 10 ms frame (from the shared power spectrum and
// mel pass plus YIN on the waveform): F0 in semitones re 27.5 Hz, loudness
// (sum of mel-band power^0.3), spectral slopes 0–500 and 500–1500 Hz (least
// squares, dB per kHz), spectral flux (of the L2-normalised magnitude
// spectrum), HNR. Utterance functionals (kProsodyNames) are computed over all
// frames, or over voiced frames for F0 and HNR; rates use the utterance
// duration. Undefined values (no voiced frame, too few periods) are 0 so
// every value stays finite; voiced_fraction tells them apart.
// Thread-safety: a ProsodyAnalyzer belongs to one utterance on one thread;
// ProsodySpectral is immutable and shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/audio/pitch.h"

namespace emosweep::data::audio {

const std::vector<std::string>& ProsodyNames();

// Per-bin regression weights, built once per front end.
class ProsodySpectral {
 public:
  ProsodySpectral(int num_bins, double sample_rate);
  // Slope (dB/kHz) of 10 log10(power) over [lo, hi) Hz.
  float Slope(int which, const float* power) const;

 private:
  struct Band {
    int first = 0, count = 0;
    std::vector<float> weight;  // (f - mean f) / sum (f - mean f)^2, f in kHz
  };
  Band bands_[2];
  friend class ProsodyAnalyzer;
};

class ProsodyAnalyzer {
 public:
  ProsodyAnalyzer(const ProsodySpectral* spectral, int num_bins, int64_t num_frames);
  // Frame t's power spectrum [num_bins] and mel power [num_mels].
  void AddFrame(const float* power, const float* mel_power, int num_mels);
  // Appends ProsodyNames().size() values.
  void Finish(const float* x, int64_t n, double duration_s, const PitchOptions& pitch, std::vector<float>* out);

 private:
  const ProsodySpectral* spectral_;
  int num_bins_;
  std::vector<float> loudness_, slope_lo_, slope_hi_, flux_;
  std::vector<float> prev_mag_, mag_;
  bool have_prev_ = false;
};

}  // namespace emosweep::data::audio
