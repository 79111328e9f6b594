// data/audio/mel.h: mel filterbank, log-mel frames, deltas, DCT and frame statistics.
//
// Conventions match torchaudio's defaults (docs/features.md): HTK mel scale
// mel = 2595 log10(1 + f/700), triangular filters with no area normalisation
// between f_min and f_max, deltas as torchaudio.functional.compute_deltas
// (window 5, replicate padding), DCT-II with orthonormal scaling.
// Thread-safety: MelFilterbank and DctMatrix are immutable after construction;
// free functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace emosweep::data::audio {

double HzToMelHtk(double hz);
double MelToHzHtk(double mel);

class MelFilterbank {
 public:
  MelFilterbank(int num_bins, int num_mels, double sample_rate, double f_min, double f_max);
  int num_bins() const { return num_bins_; }
  int num_mels() const { return num_mels_; }
  // Dense weight of FFT bin `bin` in band `band` (tests, docs).
  float Weight(int band, int bin) const;
  // mel[b] = sum_k W[b][k] power[k] for one frame.
  void Apply(const float* power, float* mel) const;

 private:
  int num_bins_, num_mels_;
  std::vector<int> start_, len_;  // non-zero bin range per band
  std::vector<size_t> offset_;
  std::vector<float> weights_;    // concatenated non-zero weights
};

// Orthonormal DCT-II rows 0..num_out-1 over num_in inputs (torchaudio create_dct(norm="ortho")).
class DctMatrix {
 public:
  DctMatrix(int num_in, int num_out);
  void Apply(const float* in, float* out) const;
  int num_in() const { return num_in_; }
  int num_out() const { return num_out_; }

 private:
  int num_in_, num_out_;
  std::vector<float> m_;
};

// Deltas of a [T, D] row-major sequence (compute_deltas, win_length 5).
void ComputeDeltas(const float* x, int64_t num_frames, int dim, float* out);

// Appends [mean(D), std(D)] over the T frames of a [T, D] sequence; std is the
// population std (ddof 0); T = 0 gives zeros.
void AppendMeanStd(const float* x, int64_t num_frames, int dim, std::vector<float>* out);

}  // namespace emosweep::data::audio
