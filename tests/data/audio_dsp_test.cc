// DSP building blocks of the audio front end against direct computations.
#include <algorithm>
#include <cmath>
#include <complex>
#include <random>

#include <gtest/gtest.h>

#include "data/audio/decode.h"
#include "data/audio/fft.h"
#include "data/audio/mel.h"
#include "data/audio/window_stats.h"
#include "audio_test_util.h"

namespace emosweep::data::audio {
namespace {

using testing::Sine;

class RealFftSizes : public ::testing::TestWithParam<int> {};

TEST_P(RealFftSizes, MatchesDirectDft) {
  const int n = GetParam();
  auto fft = RealFft::Create(n);
  ASSERT_TRUE(fft.ok()) << fft.status().ToString();
  std::mt19937 rng(n);
  std::normal_distribution<float> g;
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = g(rng);
  std::vector<Cpx> out(size_t(fft->num_bins())), work(fft->workspace_size());
  std::vector<float> power(size_t(fft->num_bins()));
  fft->Forward(x.data(), out.data(), work.data());
  fft->Power(x.data(), power.data(), work.data());
  double max_err = 0, scale = 0;
  for (int k = 0; k <= n / 2; ++k) {
    std::complex<double> ref = 0;
    for (int j = 0; j < n; ++j) ref += double(x[j]) * std::polar(1.0, -2 * M_PI * double(j) * k / n);
    max_err = std::max(max_err, std::abs(ref - std::complex<double>(out[k].re, out[k].im)));
    max_err = std::max(max_err, std::abs(std::norm(ref) - power[k]) / std::max(1.0, std::norm(ref)));
    scale = std::max(scale, std::abs(ref));
  }
  EXPECT_LT(max_err, 1e-4 * std::max(1.0, scale)) << "n=" << n;
}

INSTANTIATE_TEST_SUITE_P(Sizes, RealFftSizes, ::testing::Values(2, 6, 10, 16, 30, 64, 400, 512, 1000));

TEST(Fft, RejectsSizesWithLargePrimes) {
  EXPECT_FALSE(RealFft::Create(14).ok());  // 7
  EXPECT_FALSE(RealFft::Create(401).ok());  // odd
}

TEST(MelFilterbank, MatchesDirectHtkTriangles) {
  const int bins = 201, mels = 64;
  MelFilterbank fb(bins, mels, 16000, 0, 8000);
  auto mel = [](double f) { return 2595 * std::log10(1 + f / 700); };
  auto hz = [](double m) { return 700 * (std::pow(10, m / 2595) - 1); };
  double max_err = 0;
  for (int b = 0; b < mels; ++b) {
    const double lo = hz(mel(8000) * b / (mels + 1)), c = hz(mel(8000) * (b + 1) / (mels + 1)),
                 hi = hz(mel(8000) * (b + 2) / (mels + 1));
    for (int k = 0; k < bins; ++k) {
      const double f = 8000.0 * k / (bins - 1);
      double w = 0;
      if (f > lo && f <= c) w = (f - lo) / (c - lo);
      else if (f > c && f < hi) w = (hi - f) / (hi - c);
      max_err = std::max(max_err, std::abs(w - fb.Weight(b, k)));
    }
  }
  EXPECT_LT(max_err, 1e-6);
  // Apply() is the matrix product with those weights.
  std::vector<float> power(bins), out(mels);
  for (int k = 0; k < bins; ++k) power[k] = float(k % 7 + 1);
  fb.Apply(power.data(), out.data());
  for (int b = 0; b < mels; ++b) {
    double ref = 0;
    for (int k = 0; k < bins; ++k) ref += double(fb.Weight(b, k)) * power[k];
    EXPECT_NEAR(out[b], ref, 1e-4 * std::max(1.0, ref)) << "band " << b;
  }
  // Upper bands overlap so that interior bins are covered by weights summing to 1.
  for (int k = 100; k < 190; ++k) {
    double s = 0;
    for (int b = 0; b < mels; ++b) s += fb.Weight(b, k);
    EXPECT_NEAR(s, 1.0, 1e-5) << "bin " << k;
  }
}

TEST(MelFilterbank, LogMelOfSinePeaksInItsBand) {
  const double f0 = 1000.0;
  const int bins = 201, mels = 64;
  MelFilterbank fb(bins, mels, 16000, 0, 8000);
  auto fft = RealFft::Create(400);
  ASSERT_TRUE(fft.ok());
  std::vector<float> x = Sine(f0, 0.025, 16000), power(bins), mel(mels);
  for (int i = 0; i < 400; ++i) x[i] *= float(0.5 - 0.5 * std::cos(2 * M_PI * i / 400));
  std::vector<Cpx> work(fft->workspace_size());
  fft->Power(x.data(), power.data(), work.data());
  fb.Apply(power.data(), mel.data());
  const int peak = int(std::max_element(mel.begin(), mel.end()) - mel.begin());
  // Expected: the band whose centre is nearest 1 kHz on the mel axis.
  const double m = HzToMelHtk(f0), step = HzToMelHtk(8000) / (mels + 1);
  const int expected = int(std::lround(m / step)) - 1;
  EXPECT_LE(std::abs(peak - expected), 1) << "peak band " << peak << " expected " << expected;
  EXPECT_GT(std::log(mel[peak] + 1e-6), std::log(mel[0] + 1e-6) + 10);
}

TEST(Deltas, LinearRampHasUnitSlopeInside) {
  const int T = 10;
  std::vector<float> x(T), d(T);
  for (int t = 0; t < T; ++t) x[t] = float(t);
  ComputeDeltas(x.data(), T, 1, d.data());
  for (int t = 2; t < T - 2; ++t) EXPECT_NEAR(d[t], 1.0, 1e-6);
  // Replicate padding at the edges: t=0 sees [0,0,0,1,2] -> (1 + 4) / 10.
  EXPECT_NEAR(d[0], 0.5, 1e-6);
  EXPECT_NEAR(d[T - 1], 0.5, 1e-6);
}

TEST(Dct, OrthonormalRows) {
  DctMatrix dct(64, 64);
  std::vector<float> e(64), out(64);
  // Orthonormal: the transform preserves the L2 norm.
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (float& v : e) v = g(rng);
  dct.Apply(e.data(), out.data());
  double a = 0, b = 0;
  for (int i = 0; i < 64; ++i) a += e[i] * e[i], b += out[i] * out[i];
  EXPECT_NEAR(a, b, 1e-3 * a);
  // A constant input has only c0 = sqrt(N) * value.
  std::fill(e.begin(), e.end(), 2.f);
  dct.Apply(e.data(), out.data());
  EXPECT_NEAR(out[0], 16.0, 1e-4);
  for (int k = 1; k < 64; ++k) EXPECT_NEAR(out[k], 0.0, 1e-4);
}

TEST(WindowStats, SeedWindowingWithTilingByHand) {
  // T = 5, window 4, step 2: windows [0,4) and [2,5) tiled to x2 x3 x4 x2; start 4 stops (len 1 < 2).
  std::vector<float> x = {1, 2, 3, 4, 10};
  std::vector<float> out;
  EXPECT_EQ(AppendWindowStats(x.data(), 5, 1, 4, 2, &out), 2);
  const double w0 = (1 + 2 + 3 + 4) / 4.0, w1 = (3 + 4 + 10 + 3) / 4.0;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NEAR(out[0], (w0 + w1) / 2, 1e-6);
  EXPECT_NEAR(out[1], std::abs(w1 - w0) / 2, 1e-6);
  // Shorter than one window: one tiled window, std 0.
  out.clear();
  EXPECT_EQ(AppendWindowStats(x.data(), 3, 1, 4, 2, &out), 1);
  EXPECT_NEAR(out[0], (1 + 2 + 3 + 1) / 4.0, 1e-6);
  EXPECT_EQ(out[1], 0.f);
}

TEST(Resample, SineKeepsFrequencyAndAmplitude) {
  const double f0 = 440.0, amp = 0.5;
  auto y = Resample(Sine(f0, 1.0, 44100, amp), 44100, 16000);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  ASSERT_NEAR(double(y->size()), 16000.0, 2.0);
  // Amplitude: RMS of the middle half (edges carry the filter's transient).
  const size_t a = y->size() / 4, b = 3 * y->size() / 4;
  double sq = 0;
  for (size_t i = a; i < b; ++i) sq += double((*y)[i]) * (*y)[i];
  EXPECT_NEAR(std::sqrt(2 * sq / double(b - a)), amp, 0.01 * amp);
  // Frequency: positive-going zero crossings with linear interpolation.
  std::vector<double> crossings;
  for (size_t i = a; i + 1 < b; ++i) {
    if ((*y)[i] <= 0 && (*y)[i + 1] > 0) crossings.push_back(double(i) + (*y)[i] / ((*y)[i] - (*y)[i + 1]));
  }
  ASSERT_GE(crossings.size(), 10u);
  const double period = (crossings.back() - crossings.front()) / double(crossings.size() - 1);
  EXPECT_NEAR(16000.0 / period, f0, 0.001 * f0);
}

TEST(Normalise, PeakAndRms) {
  std::vector<float> x = Sine(100, 0.1, 16000, 0.1);
  DecodeOptions o;
  o.normalisation = Normalisation::kPeak;
  Normalise(o, &x);
  float peak = 0;
  for (float v : x) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, 0.95, 1e-3);
  o.normalisation = Normalisation::kRms;
  Normalise(o, &x);
  double sq = 0;
  for (float v : x) sq += double(v) * v;
  EXPECT_NEAR(20 * std::log10(std::sqrt(sq / double(x.size()))), -20.0, 0.01);
  std::vector<float> silence(100, 0.f);
  Normalise(o, &silence);
  for (float v : silence) EXPECT_EQ(v, 0.f);
  EXPECT_FALSE(ParseNormalisation("loud").ok());
}

}  // namespace
}  // namespace emosweep::data::audio
