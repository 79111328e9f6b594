#include "data/audio/pitch.h"

#include <algorithm>
#include <cmath>

namespace emosweep::data::audio {
namespace {

// Dot product with 8 independent accumulators so the compiler can vectorise
// without -ffast-math.
inline float Dot(const float* a, const float* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

PitchTrack TrackPitch(const float* x, int64_t n, int64_t num_frames, const PitchOptions& o) {
  PitchTrack track;
  track.f0_hz.assign(size_t(num_frames), 0.f);
  track.hnr_db.assign(size_t(num_frames), 0.f);
  track.voiced.assign(size_t(num_frames), 0);
  const int tau_min = std::max(2, int(std::floor(o.sample_rate / o.f0_max)));
  const int tau_max = int(std::ceil(o.sample_rate / o.f0_min));
  const int w = o.window, span = w + tau_max + 1;
  // Zero-padded copy so every frame reads a full span without bounds checks.
  const int64_t pad = span;
  std::vector<float> buf(size_t(n + 2 * pad), 0.f);
  std::copy(x, x + n, buf.begin() + pad);
  std::vector<double> prefix(buf.size() + 1, 0.0);  // prefix sums of x^2 for the energy terms
  for (size_t i = 0; i < buf.size(); ++i) prefix[i + 1] = prefix[i] + double(buf[i]) * buf[i];
  auto energy = [&](int64_t start, int len) { return prefix[size_t(start + len)] - prefix[size_t(start)]; };

  std::vector<float> rms(static_cast<size_t>(num_frames));
  float max_rms = 0.f;
  for (int64_t t = 0; t < num_frames; ++t) {
    const int64_t start = pad + t * o.hop - w / 2;
    rms[t] = float(std::sqrt(std::max(0.0, energy(start, w)) / w));
    max_rms = std::max(max_rms, rms[t]);
  }
  const float gate = std::max(float(o.min_rms), max_rms * float(std::pow(10.0, -o.rel_gate_db / 20.0)));

  std::vector<float> d(size_t(tau_max) + 2), r(size_t(tau_max) + 2);
  for (int64_t t = 0; t < num_frames; ++t) {
    if (rms[t] < gate) continue;
    const int64_t start = pad + t * o.hop - w / 2 - tau_max / 2;
    const float* f = buf.data() + start;
    const double e0 = energy(start, w);
    // d(tau) = e0 + e_tau - 2 r(tau); d'(tau) = d(tau) * tau / sum_{1..tau} d.
    double running = 0.0;
    int best = -1;
    for (int tau = 1; tau <= tau_max + 1; ++tau) {
      r[tau] = Dot(f, f + tau, w);
      d[tau] = float(std::max(0.0, e0 + energy(start + tau, w) - 2.0 * r[tau]));
      running += d[tau];
      const float dn = running > 0.0 ? float(d[tau] * tau / running) : 1.f;
      d[tau] = dn;
      // Candidate lags tau - 1 in [tau_min, tau_max]: the loop runs to tau_max + 1 so that the last candidate,
      // the period of f0_min itself, has its right neighbour for the minimum test and the interpolation.
      if (best < 0 && tau - 1 >= tau_min && d[tau - 1] < o.threshold) {
        // Walk down to the local minimum that started below the threshold.
        if (d[tau] >= d[tau - 1]) {
          best = tau - 1;
          break;  // d[best + 1] is known; later lags are not needed
        }
      }
    }
    if (best < 0) continue;
    // Parabolic interpolation around the minimum.
    double period = best;
    const double a = d[best - 1], b = d[best], c = d[best + 1];
    const double denom = a - 2 * b + c;
    if (denom > 0) period = best + 0.5 * (a - c) / denom;
    track.voiced[t] = 1;
    track.f0_hz[t] = float(o.sample_rate / period);
    const double et = energy(start + best, w);
    double rn = (e0 > 0 && et > 0) ? r[best] / std::sqrt(e0 * et) : 0.0;
    rn = std::clamp(rn, 1e-6, 1.0 - 1e-6);
    track.hnr_db[t] = float(10.0 * std::log10(rn / (1.0 - rn)));
  }
  return track;
}

PerturbationMeasures MeasurePerturbation(const float* x, int64_t n, const PitchTrack& track, const PitchOptions& o) {
  PerturbationMeasures out;
  const int64_t frames = int64_t(track.voiced.size());
  double sum_dp = 0, sum_p = 0, sum_da = 0, sum_a = 0;
  int64_t num_dp = 0, num_p = 0;
  const double p_min = o.sample_rate / o.f0_max, p_max = o.sample_rate / o.f0_min;
  for (int64_t t0 = 0; t0 < frames;) {
    if (!track.voiced[t0]) {
      ++t0;
      continue;
    }
    int64_t t1 = t0;
    while (t1 < frames && track.voiced[t1]) ++t1;
    const int64_t seg_begin = std::max<int64_t>(0, t0 * o.hop - o.hop / 2);
    const int64_t seg_end = std::min<int64_t>(n, (t1 - 1) * o.hop + o.hop / 2);
    auto period_at = [&](int64_t s) {
      const int64_t t = std::clamp<int64_t>((s + o.hop / 2) / o.hop, t0, t1 - 1);
      return o.sample_rate / double(track.f0_hz[t]);
    };
    // Polarity: pulses are picked on whichever sign has the larger peak.
    float maxv = 0, minv = 0;
    for (int64_t s = seg_begin; s < seg_end; ++s) maxv = std::max(maxv, x[s]), minv = std::min(minv, x[s]);
    const float sign = maxv >= -minv ? 1.f : -1.f;
    // First mark: largest peak within the first period.
    int64_t mark = -1;
    const int64_t first_end = std::min<int64_t>(seg_end, seg_begin + int64_t(std::ceil(period_at(seg_begin))));
    for (int64_t s = seg_begin; s < first_end; ++s) {
      if (mark < 0 || sign * x[s] > sign * x[mark]) mark = s;
    }
    double prev_pos = -1, prev_period = -1, prev_amp = -1;
    while (mark >= 0) {
      // Sub-sample position and height from a parabola through the peak.
      double pos = double(mark), amp = sign * x[mark];
      if (mark > 0 && mark + 1 < n) {
        const double a = sign * x[mark - 1], b = sign * x[mark], c = sign * x[mark + 1];
        const double den = a - 2 * b + c;
        if (den < 0) {
          const double delta = 0.5 * (a - c) / den;
          pos += delta;
          amp = b - 0.25 * (a - c) * delta;
        }
      }
      if (prev_pos >= 0) {
        const double period = pos - prev_pos;
        if (period >= p_min && period <= p_max) {
          sum_p += period;
          sum_a += amp;
          ++num_p;
          if (prev_period > 0 && std::max(period, prev_period) / std::min(period, prev_period) <= 1.3) {
            sum_dp += std::fabs(period - prev_period);
            sum_da += std::fabs(amp - prev_amp);
            ++num_dp;
          }
          prev_period = period;
        } else {
          prev_period = -1;
        }
      }
      prev_pos = pos;
      prev_amp = amp;
      const double period = period_at(mark);
      // The search may run past the segment's last frame centre by a fraction
      // of a period, so the final pulse is found whole rather than clipped.
      const int64_t lo = mark + int64_t(std::floor(0.7 * period));
      const int64_t hi = std::min<int64_t>(n, mark + int64_t(std::ceil(1.3 * period)) + 1);
      int64_t next = -1;
      if (lo >= seg_end) break;
      for (int64_t s = lo; s < hi; ++s) {
        if (next < 0 || sign * x[s] > sign * x[next]) next = s;
      }
      mark = next;
    }
    t0 = t1;
  }
  out.num_periods = num_p;
  if (num_dp > 0 && sum_p > 0 && sum_a > 0) {
    out.jitter_local = (sum_dp / num_dp) / (sum_p / num_p);
    out.shimmer_local = (sum_da / num_dp) / (sum_a / num_p);
  }
  return out;
}

}  // namespace emosweep::data::audio
