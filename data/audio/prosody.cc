#include "data/audio/prosody.h"

#include <algorithm>
#include <cmath>

namespace emosweep::data::audio {
namespace {

// numpy.percentile's default (linear interpolation between order statistics).
double Percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos)), hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (pos - double(lo)) * (double(v[hi]) - v[lo]);
}

void MeanStd(const std::vector<float>& v, double* mean, double* std) {
  *mean = 0.0;
  *std = 0.0;
  if (v.empty()) return;
  for (float x : v) *mean += x;
  *mean /= double(v.size());
  for (float x : v) *std += (x - *mean) * (x - *mean);
  *std = std::sqrt(*std / double(v.size()));
}

void AppendMeanStd(const std::vector<float>& v, std::vector<float>* out) {
  double m, s;
  MeanStd(v, &m, &s);
  out->push_back(float(m));
  out->push_back(float(s));
}

void AppendDistribution(const std::vector<float>& v, std::vector<float>* out) {
  AppendMeanStd(v, out);
  const double p20 = Percentile(v, 20), p50 = Percentile(v, 50), p80 = Percentile(v, 80);
  out->push_back(float(p20));
  out->push_back(float(p50));
  out->push_back(float(p80));
  out->push_back(float(p80 - p20));
}

}  // namespace

const std::vector<std::string>& ProsodyNames() {
  static const std::vector<std::string> kNames = {
      "f0_semitone_mean", "f0_semitone_std", "f0_semitone_p20", "f0_semitone_p50", "f0_semitone_p80",
      "f0_semitone_range20_80", "loudness_mean", "loudness_std", "loudness_p20", "loudness_p50", "loudness_p80",
      "loudness_range20_80", "slope0_500_mean", "slope0_500_std", "slope500_1500_mean", "slope500_1500_std",
      "flux_mean", "flux_std", "hnr_db_mean", "hnr_db_std", "jitter_local", "shimmer_local", "voiced_fraction",
      "voiced_segments_per_s", "voiced_segment_len_mean_s", "voiced_segment_len_std_s", "unvoiced_segment_len_mean_s",
      "unvoiced_segment_len_std_s", "loudness_peaks_per_s"};
  return kNames;
}

ProsodySpectral::ProsodySpectral(int num_bins, double sample_rate) {
  const double ranges[2][2] = {{0.0, 500.0}, {500.0, 1500.0}};
  const double bin_hz = (sample_rate / 2) / (num_bins - 1);
  for (int b = 0; b < 2; ++b) {
    Band& band = bands_[b];
    band.first = int(std::ceil(ranges[b][0] / bin_hz));
    const int end = std::min(num_bins, int(std::ceil(ranges[b][1] / bin_hz)));
    band.count = std::max(0, end - band.first);
    double mean = 0.0, ss = 0.0;
    for (int k = 0; k < band.count; ++k) mean += (band.first + k) * bin_hz / 1000.0;
    mean /= std::max(1, band.count);
    for (int k = 0; k < band.count; ++k) {
      const double c = (band.first + k) * bin_hz / 1000.0 - mean;
      ss += c * c;
    }
    for (int k = 0; k < band.count; ++k) {
      band.weight.push_back(ss > 0 ? float(((band.first + k) * bin_hz / 1000.0 - mean) / ss) : 0.f);
    }
  }
}

float ProsodySpectral::Slope(int which, const float* power) const {
  const Band& band = bands_[which];
  float acc = 0.f;
  for (int k = 0; k < band.count; ++k) acc += band.weight[k] * 10.f * std::log10(power[band.first + k] + 1e-10f);
  return acc;
}

ProsodyAnalyzer::ProsodyAnalyzer(const ProsodySpectral* spectral, int num_bins, int64_t num_frames)
    : spectral_(spectral), num_bins_(num_bins), prev_mag_(size_t(num_bins)), mag_(size_t(num_bins)) {
  loudness_.reserve(size_t(num_frames));
  slope_lo_.reserve(size_t(num_frames));
  slope_hi_.reserve(size_t(num_frames));
  flux_.reserve(size_t(num_frames));
}

void ProsodyAnalyzer::AddFrame(const float* power, const float* mel_power, int num_mels) {
  float loud = 0.f;
  for (int b = 0; b < num_mels; ++b) loud += std::pow(mel_power[b], 0.3f);
  loudness_.push_back(loud);
  slope_lo_.push_back(spectral_->Slope(0, power));
  slope_hi_.push_back(spectral_->Slope(1, power));
  double norm = 0.0;
  for (int k = 0; k < num_bins_; ++k) {
    mag_[k] = std::sqrt(power[k]);
    norm += power[k];
  }
  const float inv = norm > 0 ? float(1.0 / std::sqrt(norm)) : 0.f;
  for (int k = 0; k < num_bins_; ++k) mag_[k] *= inv;
  if (have_prev_) {
    float f = 0.f;
    for (int k = 0; k < num_bins_; ++k) f += (mag_[k] - prev_mag_[k]) * (mag_[k] - prev_mag_[k]);
    flux_.push_back(f);
  }
  std::swap(mag_, prev_mag_);
  have_prev_ = true;
}

void ProsodyAnalyzer::Finish(const float* x, int64_t n, double duration_s, const PitchOptions& pitch,
                             std::vector<float>* out) {
  const int64_t frames = int64_t(loudness_.size());
  // The time-domain measures (F0, HNR, jitter, shimmer) on the signal without its DC offset: an offset adds to
  // every sample's autocorrelation and to every peak's height, so HNR rose by ~10 dB and shimmer halved for a
  // recording offset by 0.2 (helper-60). The spectral LLDs above keep the signal as it is.
  std::vector<float> centred;
  if (n > 0) {
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[i];
    mean /= double(n);
    if (mean != 0) {
      centred.resize(size_t(n));
      for (int64_t i = 0; i < n; ++i) centred[size_t(i)] = float(double(x[i]) - mean);
      x = centred.data();
    }
  }
  const PitchTrack track = TrackPitch(x, n, frames, pitch);
  std::vector<float> semitones, hnr;
  for (int64_t t = 0; t < frames; ++t) {
    if (!track.voiced[t]) continue;
    semitones.push_back(float(12.0 * std::log2(track.f0_hz[t] / 27.5)));
    hnr.push_back(track.hnr_db[t]);
  }
  AppendDistribution(semitones, out);
  AppendDistribution(loudness_, out);
  AppendMeanStd(slope_lo_, out);
  AppendMeanStd(slope_hi_, out);
  AppendMeanStd(flux_, out);
  AppendMeanStd(hnr, out);
  const PerturbationMeasures pm = MeasurePerturbation(x, n, track, pitch);
  out->push_back(float(pm.jitter_local));
  out->push_back(float(pm.shimmer_local));

  // Voiced / unvoiced runs in seconds.
  const double hop_s = double(pitch.hop) / pitch.sample_rate;
  std::vector<float> voiced_len, unvoiced_len;
  for (int64_t t = 0; t < frames;) {
    int64_t e = t;
    while (e < frames && track.voiced[e] == track.voiced[t]) ++e;
    (track.voiced[t] ? voiced_len : unvoiced_len).push_back(float((e - t) * hop_s));
    t = e;
  }
  const double dur = duration_s > 0 ? duration_s : 1.0;
  out->push_back(frames ? float(double(semitones.size()) / frames) : 0.f);
  out->push_back(float(voiced_len.size() / dur));
  AppendMeanStd(voiced_len, out);
  AppendMeanStd(unvoiced_len, out);
  double loud_mean, loud_std;
  MeanStd(loudness_, &loud_mean, &loud_std);
  int64_t peaks = 0;
  for (int64_t t = 1; t + 1 < frames; ++t) {
    if (loudness_[t] > loudness_[t - 1] && loudness_[t] >= loudness_[t + 1] && loudness_[t] > loud_mean) ++peaks;
  }
  out->push_back(float(peaks / dur));
}

}  // namespace emosweep::data::audio
