// The front end end to end: dimensions, determinism across thread counts,
// per-utterance vs batch API, error reporting, and real EmoDB files.
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <sndfile.h>

#include "data/audio/frontend.h"
#include "audio_test_util.h"

namespace emosweep::data::audio {
namespace {

using testing::Sine;
using testing::WriteWav;

class FrontEndTest : public testing::TempDirTest {
 protected:
  std::vector<std::string> MakeFiles(int count) {
    std::vector<std::string> paths;
    for (int i = 0; i < count; ++i) {
      // Different pitch, length and rate per file (some need resampling).
      auto x = Sine(110 + 37 * i, 0.6 + 0.35 * i, i % 3 == 0 ? 22050 : 16000, 0.2 + 0.05 * i);
      for (size_t k = 0; k < x.size(); k += 997) x[k] += 0.01f;
      const std::string p = Path("u" + std::to_string(i) + ".wav");
      WriteWav(p, x, i % 3 == 0 ? 22050 : 16000);
      paths.push_back(p);
    }
    return paths;
  }
};

AudioFeatureOptions AllSets(int threads) {
  AudioFeatureOptions o;
  o.feature_sets = KnownAudioFeatureSets();
  o.num_threads = threads;
  o.store_frames = true;
  return o;
}

TEST_F(FrontEndTest, SpecsHaveDocumentedDimensions) {
  auto fe = AudioFrontEnd::Create(AllSets(1));
  ASSERT_TRUE(fe.ok()) << fe.status().ToString();
  std::map<std::string, int64_t> dims;
  for (const auto& s : (*fe)->specs()) {
    dims[s.name] = s.dim;
    EXPECT_EQ(int64_t(s.columns.size()), s.dim) << s.name;
    EXPECT_EQ(std::set<std::string>(s.columns.begin(), s.columns.end()).size(), s.columns.size()) << s.name;
  }
  EXPECT_EQ(dims["logmel64_stats"], 256);
  EXPECT_EQ(dims["logmel64_frames"], 64);
  EXPECT_EQ(dims["mfcc_stats"], 80);
  EXPECT_EQ(dims["prosody"], 29);
  EXPECT_EQ(dims["window_stats"], 128);
}

TEST_F(FrontEndTest, UnknownOrDuplicateSetIsInvalidArgument) {
  auto r = ParseFeatureSetList("logmel64_stats,egemaps");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("egemaps"), std::string::npos);
  EXPECT_FALSE(ParseFeatureSetList("prosody, prosody").ok());
  auto ok = ParseFeatureSetList(" prosody , mfcc_stats ");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::vector<std::string>{"prosody", "mfcc_stats"}));
}

TEST_F(FrontEndTest, OneAndManyThreadsGiveIdenticalOutput) {
  const auto paths = MakeFiles(9);
  auto one = ExtractAudioFeatures(paths, AllSets(1), nullptr);
  auto many = ExtractAudioFeatures(paths, AllSets(4), nullptr);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(one->sets.size(), many->sets.size());
  for (size_t s = 0; s < one->sets.size(); ++s) {
    const FeatureSet &a = one->sets[s], &b = many->sets[s];
    EXPECT_EQ(a.rows(), 9) << a.name;
    EXPECT_EQ(a.values, b.values) << a.name;  // bitwise
    EXPECT_EQ(a.frames, b.frames) << a.name;
    EXPECT_EQ(a.offsets, b.offsets) << a.name;
  }
  EXPECT_EQ(one->durations_s, many->durations_s);
  // Rows are in path order: durations grow with the index.
  for (size_t i = 1; i < paths.size(); ++i) EXPECT_GT(one->durations_s[i], one->durations_s[i - 1]);
}

TEST_F(FrontEndTest, PerUtteranceApiMatchesBatchAndFramesHaveOffsets) {
  const auto paths = MakeFiles(3);
  auto batch = ExtractAudioFeatures(paths, AllSets(2), nullptr);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  auto fe = AudioFrontEnd::Create(AllSets(1));
  ASSERT_TRUE(fe.ok());
  std::vector<FeatureSet> sets = (*fe)->MakeEmptySets();
  for (const auto& p : paths) {
    auto u = (*fe)->ExtractFile(p);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    ASSERT_TRUE((*fe)->AppendUtterance(*u, &sets).ok());
  }
  for (size_t s = 0; s < sets.size(); ++s) {
    EXPECT_EQ(sets[s].values, batch->sets[s].values) << sets[s].name;
    EXPECT_EQ(sets[s].provenance, batch->sets[s].provenance);
  }
  const FeatureSet& frames = sets[1];
  ASSERT_EQ(frames.name, "logmel64_frames");
  ASSERT_EQ(frames.offsets.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    // center=True framing: 1 + samples / 160 frames.
    const int64_t samples = int64_t(std::llround(batch->durations_s[i] * 16000));
    EXPECT_EQ(frames.offsets[i + 1] - frames.offsets[i], 1 + samples / 160) << i;
  }
  EXPECT_EQ(int64_t(frames.frames.size()), frames.offsets.back() * 64);
  // logmel64_frames' values are the mean of its frames.
  double m = 0;
  for (int64_t t = frames.offsets[0]; t < frames.offsets[1]; ++t) m += frames.frames[size_t(t * 64 + 5)];
  EXPECT_NEAR(frames.values[5], m / double(frames.offsets[1]), 1e-4);
}

TEST_F(FrontEndTest, BatchFailsOnFirstBadFileInPathOrder) {
  auto paths = MakeFiles(6);
  std::ofstream(Path("bad2.wav")) << "not audio";
  std::ofstream(Path("bad4.wav")) << "";
  paths[2] = Path("bad2.wav");
  paths[4] = Path("bad4.wav");
  for (int threads : {1, 3}) {
    auto r = ExtractAudioFeatures(paths, AllSets(threads), nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("bad2.wav"), std::string::npos) << r.status().ToString();
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  }
}

// helper-60: finite float samples far beyond full scale overflow the powers; that is the file's fault (bad input,
// exit 2), not an internal error.
TEST_F(FrontEndTest, FloatSamplesFarBeyondFullScaleAreCorruptionNamingTheFile) {
  WriteWav(Path("huge.wav"), Sine(200, 0.5, 16000, 1e18), 16000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  auto r = ExtractAudioFeatures({Path("huge.wav")}, AllSets(1), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  EXPECT_NE(r.status().message().find("huge.wav"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("samples reach magnitude 1e+18"), std::string::npos) << r.status().ToString();
}

TEST_F(FrontEndTest, ShortAndSilentInputsStayFinite) {
  WriteWav(Path("short.wav"), std::vector<float>(50, 0.1f), 16000);
  WriteWav(Path("silent.wav"), std::vector<float>(16000, 0.f), 16000);
  auto r = ExtractAudioFeatures({Path("short.wav"), Path("silent.wav")}, AllSets(1), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const auto& fs : r->sets) {
    for (float v : fs.values) ASSERT_TRUE(std::isfinite(v)) << fs.name;
  }
}

TEST_F(FrontEndTest, LogmelStatsOfASineHaveTheExpectedShape) {
  WriteWav(Path("sine.wav"), Sine(1000, 1.0, 16000, 0.5), 16000);
  AudioFeatureOptions o;
  auto r = ExtractAudioFeatures({Path("sine.wav")}, o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const float* v = r->sets[0].row(0);
  const int peak = int(std::max_element(v, v + 64) - v);
  EXPECT_GE(peak, 21);
  EXPECT_LE(peak, 23);  // HTK: 1000 mel / (2840 mel / 65) - 1 = 21.9
  for (int d = 0; d < 64; ++d) EXPECT_LT(std::fabs(v[128 + d]), 0.2f) << "delta mean of a steady tone ~ 0";
}

TEST_F(FrontEndTest, RealEmodbFilesAreFiniteAndDeterministic) {
  const std::string dir = testing::EmodbWavDir();
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "EmoDB not found at " << dir << " (needs ../shared)";
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir)) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  paths.resize(std::min<size_t>(paths.size(), 24));
  auto a = ExtractAudioFeatures(paths, AllSets(1), nullptr);
  auto b = ExtractAudioFeatures(paths, AllSets(2), nullptr);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  for (size_t s = 0; s < a->sets.size(); ++s) EXPECT_EQ(a->sets[s].values, b->sets[s].values);
  auto fe = AudioFrontEnd::Create(AllSets(1));  // keeps the specs alive
  ASSERT_TRUE(fe.ok());
  const auto& names = (*fe)->specs()[3].columns;
  const FeatureSet& pros = a->sets[3];
  const auto col = [&](const std::string& n) { return size_t(std::find(names.begin(), names.end(), n) - names.begin()); };
  for (int64_t i = 0; i < pros.rows(); ++i) {
    const float* r = pros.row(i);
    for (int64_t d = 0; d < pros.dim; ++d) ASSERT_TRUE(std::isfinite(r[d]));
    // Acted speech: voiced for a good part, F0 median between 70 and 450 Hz.
    EXPECT_GT(r[col("voiced_fraction")], 0.15f) << paths[size_t(i)];
    const double f0 = 27.5 * std::pow(2.0, r[col("f0_semitone_p50")] / 12.0);
    EXPECT_GT(f0, 70.0) << paths[size_t(i)];
    EXPECT_LT(f0, 450.0) << paths[size_t(i)];
    EXPECT_LT(r[col("jitter_local")], 0.1f) << paths[size_t(i)];
  }
}

}  // namespace
}  // namespace emosweep::data::audio
