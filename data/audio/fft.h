// data/audio/fft.h: a small real FFT (no external FFT library on this platform).
//
// RealFft(n) transforms n real samples (n even, n/2 a product of 2, 3, 4, 5) by
// packing them into an n/2-point complex FFT (mixed-radix Stockham autosort,
// precomputed twiddles) and untangling the two half-spectra. Single precision
// with plain float arithmetic (std::complex multiply would call __mulsc3).
// Thread-safety: a RealFft is immutable after construction; Forward/Power take
// a caller-owned workspace, so one plan may serve many threads.
#pragma once

#include <vector>

#include "core/status.h"

namespace emosweep::data::audio {

struct Cpx {
  float re = 0.f, im = 0.f;
};

class ComplexFft {
 public:
  // n must factor into 2, 3, 4, 5 (Status names the bad size).
  static Result<ComplexFft> Create(int n);
  int size() const { return n_; }
  // Forward DFT X[k] = sum x[j] e^{-2 pi i jk/n}. `work` and `out` hold n
  // elements each; `in` is clobbered. Returns the buffer holding the result
  // (either `in` or `work`, the autosort ping-pongs).
  Cpx* Forward(Cpx* in, Cpx* work) const;

 private:
  struct Stage {
    int radix, n, stride;
    size_t twiddle_offset;
  };
  int n_ = 0;
  std::vector<Stage> stages_;
  std::vector<Cpx> twiddles_;
};

class RealFft {
 public:
  static Result<RealFft> Create(int n);
  int size() const { return n_; }
  int num_bins() const { return n_ / 2 + 1; }
  size_t workspace_size() const { return size_t(n_); }  // Cpx elements
  // out: num_bins() complex bins of the length-n real input.
  void Forward(const float* in, Cpx* out, Cpx* workspace) const;
  // out: num_bins() values |X_k|^2.
  void Power(const float* in, float* out, Cpx* workspace) const;

 private:
  int n_ = 0;
  ComplexFft half_;
  std::vector<Cpx> post_;  // e^{-2 pi i k / n}, k = 0..n/2
};

}  // namespace emosweep::data::audio
