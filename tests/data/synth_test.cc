// Synthetic corpora: shape, determinism, and the known DA answer (a classifier
// trained on corpus A loses accuracy on shifted corpus B; aligning recovers it).
#include "data/synth.h"

#include <cmath>
#include <map>
#include <set>

#include "data/feature_store.h"
#include "store_test_util.h"

namespace emosweep::data {
namespace {

// Per-corpus standardisation (subtract corpus mean, divide by corpus std per dim).
std::vector<float> Standardize(const FeatureSet& f) {
  const int64_t n = f.rows(), d = f.dim;
  std::vector<double> mean(static_cast<size_t>(d), 0), var(static_cast<size_t>(d), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[j] += f.row(i)[j] / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) var[j] += std::pow(f.row(i)[j] - mean[j], 2) / static_cast<double>(n);
  std::vector<float> out(f.values.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) out[i * d + j] = static_cast<float>((f.row(i)[j] - mean[j]) / std::sqrt(var[j]));
  return out;
}

// Nearest-class-mean classifier: fit on rows of (values, labels) selected by
// `train`, accuracy on rows selected by `test`.
struct NearestMean {
  std::map<std::string, std::vector<double>> means;
  void Fit(const std::vector<float>& x, int64_t d, const Corpus& c, const std::set<std::string>& speakers) {
    std::map<std::string, int> n;
    for (size_t i = 0; i < c.size(); ++i) {
      if (!speakers.count(c.utterances[i].speaker)) continue;
      auto& m = means[c.utterances[i].label];
      m.resize(static_cast<size_t>(d), 0.0);
      for (int64_t j = 0; j < d; ++j) m[j] += x[i * d + j];
      ++n[c.utterances[i].label];
    }
    for (auto& [l, m] : means)
      for (auto& v : m) v /= n[l];
  }
  double Accuracy(const std::vector<float>& x, int64_t d, const Corpus& c, const std::set<std::string>& speakers) {
    int right = 0, total = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      if (!speakers.count(c.utterances[i].speaker)) continue;
      std::string best;
      double best_d = 1e300;
      for (auto& [l, m] : means) {
        double dist = 0;
        for (int64_t j = 0; j < d; ++j) dist += std::pow(x[i * d + j] - m[j], 2);
        if (dist < best_d) best_d = dist, best = l;
      }
      right += best == c.utterances[i].label;
      ++total;
    }
    return static_cast<double>(right) / total;
  }
};

std::set<std::string> Speakers(const Corpus& c, int from, int to) {
  std::set<std::string> all;
  for (const auto& u : c.utterances) all.insert(u.speaker);
  std::set<std::string> out;
  int i = 0;
  for (const auto& s : all) {
    if (i >= from && i < to) out.insert(s);
    ++i;
  }
  return out;
}

TEST(Synth, ShapesLabelsSpeakersAndFrames) {
  SynthSpec s;
  s.num_corpora = 2;
  s.speakers_per_corpus = 4;
  s.utterances_per_speaker = 10;
  s.frames = true;
  s.modalities.push_back({"synth_video", "video", 8, 1.0});
  auto r = MakeSynthCorpora(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  const Corpus& a = (*r)[0];
  EXPECT_EQ(a.name, "synth_a");
  EXPECT_EQ((*r)[1].name, "synth_b");
  EXPECT_EQ(a.size(), 40u);
  ASSERT_EQ(a.features.size(), 3u);
  EXPECT_EQ(a.features[0].dim, 64);
  EXPECT_TRUE(a.features[0].has_frames());
  EXPECT_FALSE(a.features[1].has_frames());  // frames only for audio
  EXPECT_EQ(a.features[2].modality, "video");
  std::map<std::string, int> per_label;
  std::set<std::string> speakers;
  for (const auto& u : a.utterances) ++per_label[u.label], speakers.insert(u.speaker);
  EXPECT_EQ(speakers.size(), 4u);
  for (const auto& l : s.classes) EXPECT_EQ(per_label[l], 10) << l;  // balanced: 10 / 4 -> 3,3,2,2 per speaker
  EXPECT_TRUE(a.Validate("synth").ok());
  EXPECT_EQ(a.metadata["synthetic"]["spec"]["seed"], 0);
}

TEST(Synth, DeterministicFromSeed) {
  SynthSpec s;
  s.num_corpora = 2;
  auto a = MakeSynthCorpora(s), b = MakeSynthCorpora(s);
  s.seed = 1;
  auto c = MakeSynthCorpora(s);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a)[1].ContentHash(), (*b)[1].ContentHash());
  EXPECT_NE((*a)[1].ContentHash(), (*c)[1].ContentHash());
}

TEST(Synth, ImbalanceSkewsClassCounts) {
  SynthSpec s;
  s.num_corpora = 1;
  s.imbalance = 1.0;
  auto r = MakeSynthCorpora(s);
  ASSERT_TRUE(r.ok());
  std::map<std::string, int> n;
  for (const auto& u : (*r)[0].utterances) ++n[u.label];
  int lo = 1 << 30, hi = 0;
  for (auto& [l, k] : n) lo = std::min(lo, k), hi = std::max(hi, k);
  EXPECT_GE(hi, 3 * lo);  // exp(-1 * 3) relative weight for the rarest class
  EXPECT_GT(lo, 0);
}

TEST(Synth, DomainShiftHurtsAndAlignmentRecovers) {
  SynthSpec s;
  s.num_corpora = 2;
  s.shift = 1.0;
  s.seed = 5;
  auto r = MakeSynthCorpora(s);
  ASSERT_TRUE(r.ok());
  const Corpus &a = (*r)[0], &b = (*r)[1];
  const auto &fa = a.features[0], &fb = b.features[0];
  const auto train = Speakers(a, 0, 6), held = Speakers(a, 6, 8), all_b = Speakers(b, 0, 8);

  NearestMean raw;
  raw.Fit(fa.values, fa.dim, a, train);
  const double in_domain = raw.Accuracy(fa.values, fa.dim, a, held);
  const double cross = raw.Accuracy(fb.values, fb.dim, b, all_b);

  auto za = Standardize(fa), zb = Standardize(fb);
  NearestMean aligned;
  aligned.Fit(za, fa.dim, a, train);
  const double recovered = aligned.Accuracy(zb, fb.dim, b, all_b);

  EXPECT_GT(in_domain, 0.8);
  EXPECT_LT(cross, in_domain - 0.2) << "in-domain " << in_domain << " cross " << cross;
  EXPECT_GT(recovered, in_domain - 0.1) << "in-domain " << in_domain << " aligned " << recovered;

  // Without a shift, corpus B is just more data from the same distribution.
  s.shift = 0.0;
  auto same = MakeSynthCorpora(s);
  ASSERT_TRUE(same.ok());
  NearestMean plain;
  plain.Fit((*same)[0].features[0].values, 64, (*same)[0], train);
  EXPECT_GT(plain.Accuracy((*same)[1].features[0].values, 64, (*same)[1], all_b), in_domain - 0.1);
}

TEST(Synth, SpeakerEffectsExist) {
  SynthSpec s;
  s.num_corpora = 1;
  s.speaker_std = 2.0;
  s.shift = 0;
  auto r = MakeSynthCorpora(s);
  ASSERT_TRUE(r.ok());
  const Corpus& c = (*r)[0];
  const auto& f = c.features[0];
  // Mean of speaker 0 vs speaker 1 (same class mix) differ by far more than sampling noise.
  std::vector<double> m0(64, 0), m1(64, 0);
  for (size_t i = 0; i < c.size(); ++i) {
    auto& m = c.utterances[i].speaker == "synth_a_s00" ? m0 : c.utterances[i].speaker == "synth_a_s01" ? m1 : m0;
    if (c.utterances[i].speaker != "synth_a_s00" && c.utterances[i].speaker != "synth_a_s01") continue;
    for (int j = 0; j < 64; ++j) m[j] += f.row(static_cast<int64_t>(i))[j] / 40.0;
  }
  double d2 = 0;
  for (int j = 0; j < 64; ++j) d2 += std::pow(m0[j] - m1[j], 2);
  EXPECT_GT(std::sqrt(d2), 10.0);  // expected sqrt(2 * 64) * 2 = 22.6; sampling noise ~ sqrt(128 / 40) = 1.8
}

TEST(Synth, BadSpecs) {
  SynthSpec s;
  s.classes = {"anger", "joy"};
  EXPECT_EQ(MakeSynthCorpora(s).status().code(), StatusCode::kInvalidArgument);
  s = SynthSpec{};
  s.num_corpora = 0;
  EXPECT_FALSE(MakeSynthCorpora(s).ok());
  s = SynthSpec{};
  s.noise = 0;
  EXPECT_FALSE(MakeSynthCorpora(s).ok());
}

TEST(Synth, WritesAndReadsBackThroughTheStore) {
  testing::TestDir dir;
  SynthSpec s;
  s.num_corpora = 1;
  s.frames = true;
  auto r = MakeSynthCorpora(s);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(WriteFeatureStore(dir.File("a.h5"), (*r)[0]).ok());
  StoreReadOptions o;
  o.verify = true;
  o.load_frames = true;
  auto back = ReadFeatureStore(dir.File("a.h5"), o);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ContentHash(), (*r)[0].ContentHash());
  EXPECT_EQ(back->metadata["synthetic"]["spec"]["frames"], true);
}

}  // namespace
}  // namespace emosweep::data
