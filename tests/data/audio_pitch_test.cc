// YIN F0 / voicing and cycle-level jitter/shimmer on synthetic signals.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "data/audio/pitch.h"
#include "data/audio/prosody.h"
#include "audio_test_util.h"

namespace emosweep::data::audio {
namespace {

using testing::PulseTrain;
using testing::Sine;

int64_t FramesFor(size_t n) { return 1 + int64_t(n) / 160; }

class YinSine : public ::testing::TestWithParam<double> {};

TEST_P(YinSine, F0WithinOnePercentAndVoiced) {
  const double f0 = GetParam();
  const auto x = Sine(f0, 1.0, 16000);
  PitchOptions o;
  const PitchTrack tr = TrackPitch(x.data(), int64_t(x.size()), FramesFor(x.size()), o);
  int voiced = 0;
  // Interior frames (the first and last frames straddle the signal's edges).
  for (size_t t = 3; t + 3 < tr.voiced.size(); ++t) {
    ASSERT_TRUE(tr.voiced[t]) << "frame " << t << " unvoiced for a " << f0 << " Hz sine";
    EXPECT_NEAR(tr.f0_hz[t], f0, 0.01 * f0) << "frame " << t;
    EXPECT_GT(tr.hnr_db[t], 20.f) << "a pure tone is almost noise-free";
    ++voiced;
  }
  EXPECT_GT(voiced, 90);
}

INSTANTIATE_TEST_SUITE_P(Pitches, YinSine, ::testing::Values(80.0, 120.0, 220.0, 333.0, 450.0));

TEST(Yin, TheLowestAllowedF0IsFound) {
  // f0_min 64 Hz: tau_max = 250 samples, exactly the period of a 64 Hz tone. That lag is a candidate (it
  // used to be excluded, leaving tones at f0_min unvoiced).
  PitchOptions o;
  o.f0_min = 64.0;
  const auto x = Sine(64.0, 1.0, 16000);
  const PitchTrack tr = TrackPitch(x.data(), int64_t(x.size()), FramesFor(x.size()), o);
  int voiced = 0;
  for (size_t t = 3; t + 3 < tr.voiced.size(); ++t) {
    if (!tr.voiced[t]) continue;
    ++voiced;
    EXPECT_NEAR(tr.f0_hz[t], 64.0, 0.64) << "frame " << t;
  }
  EXPECT_GT(voiced, 90);
}

TEST(Yin, SilenceAndNoiseFloorAreUnvoiced) {
  std::vector<float> silence(16000, 0.f);
  const PitchTrack tr = TrackPitch(silence.data(), 16000, FramesFor(16000), PitchOptions{});
  for (uint8_t v : tr.voiced) EXPECT_EQ(v, 0);
  for (float f : tr.f0_hz) EXPECT_EQ(f, 0.f);
  // A tone followed by near-silence: the quiet half is gated out.
  auto x = Sine(200, 1.0, 16000);
  for (size_t i = 8000; i < x.size(); ++i) x[i] *= 1e-4f;
  const PitchTrack tr2 = TrackPitch(x.data(), int64_t(x.size()), FramesFor(x.size()), PitchOptions{});
  EXPECT_TRUE(tr2.voiced[20]);
  EXPECT_FALSE(tr2.voiced[80]);
}

struct Train {
  std::vector<float> x;
  double ref_jitter = 0, ref_shimmer = 0;
};

// Pulses with the given period/amplitude sequences; the reference jitter and
// shimmer are Praat's local definitions computed from the sequences themselves.
Train MakeTrain(const std::vector<int64_t>& periods, const std::vector<float>& amps) {
  std::vector<int64_t> pos = {400};
  for (int64_t p : periods) pos.push_back(pos.back() + p);
  Train tr;
  tr.x = PulseTrain(pos, amps, pos.back() + 400);
  double dp = 0, sp = 0, da = 0, sa = 0;
  for (size_t i = 0; i < periods.size(); ++i) {
    sp += double(periods[i]);
    if (i > 0) dp += std::abs(double(periods[i] - periods[i - 1]));
  }
  for (size_t i = 1; i < amps.size(); ++i) {
    sa += amps[i];
    if (i > 1) da += std::abs(amps[i] - amps[i - 1]);
  }
  tr.ref_jitter = (dp / double(periods.size() - 1)) / (sp / double(periods.size()));
  tr.ref_shimmer = (da / double(amps.size() - 2)) / (sa / double(amps.size() - 1));
  return tr;
}

PerturbationMeasures Measure(const std::vector<float>& x) {
  PitchOptions o;
  const PitchTrack tr = TrackPitch(x.data(), int64_t(x.size()), FramesFor(x.size()), o);
  return MeasurePerturbation(x.data(), int64_t(x.size()), tr, o);
}

TEST(Jitter, PerfectPulseTrainIsZero) {
  const Train t = MakeTrain(std::vector<int64_t>(150, 160), std::vector<float>(151, 0.8f));
  const PerturbationMeasures m = Measure(t.x);
  EXPECT_GT(m.num_periods, 100);
  EXPECT_LT(m.jitter_local, 1e-4);
  EXPECT_LT(m.shimmer_local, 1e-4);
}

TEST(Jitter, GrowsWithPeriodPerturbation) {
  std::mt19937 rng(7);
  double last = 0;
  for (int spread : {1, 2, 4}) {
    std::uniform_int_distribution<int> u(-spread, spread);
    std::vector<int64_t> periods;
    for (int i = 0; i < 150; ++i) periods.push_back(160 + u(rng));
    const Train t = MakeTrain(periods, std::vector<float>(151, 0.8f));
    const PerturbationMeasures m = Measure(t.x);
    EXPECT_GT(m.num_periods, 100) << "spread " << spread;
    EXPECT_NEAR(m.jitter_local, t.ref_jitter, 0.1 * t.ref_jitter) << "spread " << spread;
    EXPECT_GT(m.jitter_local, last) << "jitter must grow with the perturbation";
    EXPECT_LT(m.shimmer_local, 1e-3);
    last = m.jitter_local;
  }
}

TEST(Shimmer, GrowsWithAmplitudePerturbation) {
  std::vector<float> amps;
  for (int i = 0; i < 151; ++i) amps.push_back(i % 2 ? 0.8f : 0.6f);
  const Train t = MakeTrain(std::vector<int64_t>(150, 160), amps);
  const PerturbationMeasures m = Measure(t.x);
  EXPECT_NEAR(m.shimmer_local, t.ref_shimmer, 0.05 * t.ref_shimmer);
  EXPECT_LT(m.jitter_local, 1e-3);
}

// The prosody set of a 16 kHz signal by name, its spectral frames flat (power 1 in every bin and band).
std::map<std::string, float> ProsodyOf(const std::vector<float>& x) {
  const int64_t frames = FramesFor(x.size());
  ProsodySpectral spectral(201, 16000);
  ProsodyAnalyzer an(&spectral, 201, frames);
  std::vector<float> power(201, 1.f), mel(64, 1.f);
  for (int64_t f = 0; f < frames; ++f) an.AddFrame(power.data(), mel.data(), 64);
  std::vector<float> out;
  an.Finish(x.data(), int64_t(x.size()), double(x.size()) / 16000, PitchOptions{}, &out);
  EXPECT_EQ(out.size(), ProsodyNames().size());
  std::map<std::string, float> by_name;
  for (size_t i = 0; i < out.size() && i < ProsodyNames().size(); ++i) by_name[ProsodyNames()[i]] = out[i];
  return by_name;
}

// helper-60: a DC offset raised HNR by ~10 dB and halved shimmer; the prosody set measures both on the signal
// without its mean.
TEST(Prosody, DcOffsetDoesNotChangeHnrJitterOrShimmer) {
  std::vector<float> amps;
  for (int i = 0; i < 151; ++i) amps.push_back(i % 2 ? 0.5f : 0.4f);
  const Train t = MakeTrain(std::vector<int64_t>(150, 160), amps);
  auto prosody = [&](float dc) {
    std::vector<float> x = t.x;
    for (float& v : x) v += dc;
    return ProsodyOf(x);
  };
  auto plain = prosody(0.f);
  // The train's own mean (its pulses are positive) is removed too, so the heights are measured from it.
  EXPECT_GT(plain["shimmer_local"], 0.2f);
  for (float dc : {0.2f, -0.2f, 0.4f}) {
    auto off = prosody(dc);
    EXPECT_NEAR(off["shimmer_local"], plain["shimmer_local"], 0.02 * plain["shimmer_local"]) << "dc " << dc;
    EXPECT_NEAR(off["jitter_local"], plain["jitter_local"], 1e-4) << "dc " << dc;
    EXPECT_NEAR(off["hnr_db_mean"], plain["hnr_db_mean"], 0.1) << "dc " << dc;
    EXPECT_NEAR(off["f0_semitone_mean"], plain["f0_semitone_mean"], 0.01) << "dc " << dc;
  }
}

TEST(Prosody, FunctionalsOfASineAreFiniteAndConsistent) {
  auto p = ProsodyOf(Sine(220, 2.0, 16000, 0.3));  // 2 s
  ASSERT_EQ(p.size(), ProsodyNames().size());
  for (const auto& [name, v] : p) EXPECT_TRUE(std::isfinite(v)) << name;
  auto at = [&](const std::string& name) { return p.at(name); };
  EXPECT_NEAR(at("f0_semitone_p50"), 12 * std::log2(220 / 27.5), 0.2);
  EXPECT_LT(at("f0_semitone_std"), 0.1);
  EXPECT_GT(at("voiced_fraction"), 0.95);
  EXPECT_NEAR(at("voiced_segments_per_s"), 0.5, 1e-6);  // one segment in 2 s
  EXPECT_NEAR(at("loudness_mean"), 64.0, 1e-3);         // 64 bands of power 1
  EXPECT_NEAR(at("slope0_500_mean"), 0.0, 1e-4);        // flat spectrum
  EXPECT_NEAR(at("flux_mean"), 0.0, 1e-6);              // unchanging spectrum
}

}  // namespace
}  // namespace emosweep::data::audio
