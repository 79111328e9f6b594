#include "data/audio/mel.h"

#include <algorithm>
#include <cmath>

namespace emosweep::data::audio {

double HzToMelHtk(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double MelToHzHtk(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

MelFilterbank::MelFilterbank(int num_bins, int num_mels, double sample_rate, double f_min, double f_max)
    : num_bins_(num_bins), num_mels_(num_mels) {
  // Same construction as torchaudio.functional.melscale_fbanks (float64 here).
  std::vector<double> bin_hz(static_cast<size_t>(num_bins)), f_pts(static_cast<size_t>(num_mels) + 2);
  for (int k = 0; k < num_bins; ++k) bin_hz[k] = num_bins > 1 ? (sample_rate / 2) * k / (num_bins - 1) : 0.0;
  const double m_min = HzToMelHtk(f_min), m_max = HzToMelHtk(f_max);
  for (int i = 0; i < num_mels + 2; ++i) f_pts[i] = MelToHzHtk(m_min + (m_max - m_min) * i / (num_mels + 1));
  for (int b = 0; b < num_mels; ++b) {
    const double lo = f_pts[b], mid = f_pts[b + 1], hi = f_pts[b + 2];
    int first = -1, last = -1;
    std::vector<float> w;
    for (int k = 0; k < num_bins; ++k) {
      const double down = (bin_hz[k] - lo) / (mid - lo), up = (hi - bin_hz[k]) / (hi - mid);
      const double v = std::max(0.0, std::min(down, up));
      if (v > 0.0) {
        if (first < 0) first = k;
        // Gaps cannot occur inside a triangle, so the range stays contiguous.
        for (int g = last + 1; last >= 0 && g < k; ++g) w.push_back(0.f);
        w.push_back(float(v));
        last = k;
      }
    }
    start_.push_back(first < 0 ? 0 : first);
    len_.push_back(int(w.size()));
    offset_.push_back(weights_.size());
    weights_.insert(weights_.end(), w.begin(), w.end());
  }
}

float MelFilterbank::Weight(int band, int bin) const {
  const int rel = bin - start_[band];
  if (rel < 0 || rel >= len_[band]) return 0.f;
  return weights_[offset_[band] + rel];
}

void MelFilterbank::Apply(const float* power, float* mel) const {
  for (int b = 0; b < num_mels_; ++b) {
    const float* w = weights_.data() + offset_[b];
    const float* p = power + start_[b];
    float acc = 0.f;
    for (int k = 0; k < len_[b]; ++k) acc += w[k] * p[k];
    mel[b] = acc;
  }
}

DctMatrix::DctMatrix(int num_in, int num_out) : num_in_(num_in), num_out_(num_out), m_(size_t(num_in) * num_out) {
  for (int k = 0; k < num_out; ++k) {
    const double scale = k == 0 ? std::sqrt(1.0 / num_in) : std::sqrt(2.0 / num_in);
    for (int n = 0; n < num_in; ++n) {
      m_[size_t(k) * num_in + n] = float(scale * std::cos(M_PI * k * (2 * n + 1) / (2.0 * num_in)));
    }
  }
}

void DctMatrix::Apply(const float* in, float* out) const {
  for (int k = 0; k < num_out_; ++k) {
    const float* row = m_.data() + size_t(k) * num_in_;
    float acc = 0.f;
    for (int n = 0; n < num_in_; ++n) acc += row[n] * in[n];
    out[k] = acc;
  }
}

void ComputeDeltas(const float* x, int64_t num_frames, int dim, float* out) {
  if (num_frames <= 0) return;
  auto row = [&](int64_t t) { return x + std::clamp<int64_t>(t, 0, num_frames - 1) * dim; };
  for (int64_t t = 0; t < num_frames; ++t) {
    const float *m2 = row(t - 2), *m1 = row(t - 1), *p1 = row(t + 1), *p2 = row(t + 2);
    float* o = out + t * dim;
    for (int d = 0; d < dim; ++d) o[d] = ((p1[d] - m1[d]) + 2.f * (p2[d] - m2[d])) * 0.1f;
  }
}

void AppendMeanStd(const float* x, int64_t num_frames, int dim, std::vector<float>* out) {
  std::vector<double> mean(size_t(dim), 0.0), var(size_t(dim), 0.0);
  if (num_frames > 0) {
    for (int64_t t = 0; t < num_frames; ++t) {
      const float* r = x + t * dim;
      for (int d = 0; d < dim; ++d) mean[d] += r[d];
    }
    for (double& m : mean) m /= double(num_frames);
    for (int64_t t = 0; t < num_frames; ++t) {
      const float* r = x + t * dim;
      for (int d = 0; d < dim; ++d) {
        const double c = r[d] - mean[d];
        var[d] += c * c;
      }
    }
  }
  for (int d = 0; d < dim; ++d) out->push_back(float(mean[d]));
  for (int d = 0; d < dim; ++d) out->push_back(num_frames > 0 ? float(std::sqrt(var[d] / double(num_frames))) : 0.f);
}

}  // namespace emosweep::data::audio
