// data/audio/pitch.h: F0 (YIN), voicing, HNR, and cycle-level jitter/shimmer.
//
// YIN (de Cheveigné & Kawahara 2002) per analysis frame: difference function
// d(tau) = sum_j (x_j - x_{j+tau})^2 over an integration window, cumulative
// mean normalised d'(tau); the first dip below `threshold`, followed down to
// its local minimum and refined by parabolic interpolation, gives the period.
// A frame is voiced only if such a dip exists and its RMS passes an absolute
// and a relative (to the utterance's loudest frame) energy gate; YIN's
// "global minimum" fallback is deliberately not used (it would call noise voiced).
// Jitter/shimmer follow Praat's "local" definitions on pitch marks found by
// peak picking inside voiced segments, period by period.
// Thread-safety: reentrant free functions.
#pragma once

#include <cstdint>
#include <vector>

namespace emosweep::data::audio {

struct PitchOptions {
  int sample_rate = 16000;
  double f0_min = 60.0;
  double f0_max = 500.0;
  int window = 400;          // integration window (samples)
  int hop = 160;             // frame hop (samples); frame t is centred on t * hop
  double threshold = 0.15;   // YIN absolute threshold on d'
  double min_rms = 1e-4;     // absolute voicing gate (−80 dBFS)
  double rel_gate_db = 40.0; // unvoiced if RMS is this far below the loudest frame
};

struct PitchTrack {
  std::vector<float> f0_hz;    // 0 where unvoiced
  std::vector<float> hnr_db;   // harmonics-to-noise ratio (voiced frames; 0 otherwise)
  std::vector<uint8_t> voiced;
};

PitchTrack TrackPitch(const float* x, int64_t n, int64_t num_frames, const PitchOptions& options);

struct PerturbationMeasures {
  double jitter_local = 0.0;   // mean |P_i - P_{i-1}| / mean P
  double shimmer_local = 0.0;  // mean |A_i - A_{i-1}| / mean A
  int64_t num_periods = 0;
};

// Uses the voiced frames of `track` (hop `options.hop`) to place pitch marks.
PerturbationMeasures MeasurePerturbation(const float* x, int64_t n, const PitchTrack& track,
                                         const PitchOptions& options);

}  // namespace emosweep::data::audio
