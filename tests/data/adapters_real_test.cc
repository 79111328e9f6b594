// The built-in adapters on the real corpora in ../shared/corpora: counts per
// emotion × speaker as listed in each MANIFEST.md, finite features, canonical
// labels; and a plain classifier on EmoDB's statistics with a
// leave-one-speaker-out split (UA must be well above chance).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

#include "data/adapters/import_corpus.h"
#include "data/feature_store.h"
#include "data/label_map.h"
#include "data/splits.h"

namespace emosweep::data {
namespace {

namespace fs = std::filesystem;
using Table = std::map<std::string, std::map<std::string, int>>;  // speaker → label → count

std::string CorpusDir(const std::string& name) { return std::string(EMOSWEEP_SHARED_DIR) + "/corpora/" + name; }

class RealCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("emosweep-real-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Imports the corpus with the given feature sets on all cores; returns the store read back.
  Corpus Import(const std::string& adapter, const std::string& corpus, const std::vector<std::string>& features) {
    ImportCorpusOptions o;
    o.adapter = adapter;
    o.root = CorpusDir(corpus);
    o.out = (dir_ / (corpus + ".h5")).string();
    o.features = features;
    o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    o.progress = false;
    auto r = ImportCorpus(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    std::printf("[ real ] %s: %lld utterances, %.1f s of audio in %.1f s (%.0fx real time, %d threads)\n",
                corpus.c_str(), static_cast<long long>(r->utterances), r->audio_seconds, r->wall_seconds,
                r->audio_seconds / r->wall_seconds, o.threads);
    auto c = ReadFeatureStore(o.out);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : Corpus{};
  }

  static void CheckCorpus(const Corpus& c, const Table& expected) {
    Table got;
    for (const auto& u : c.utterances) {
      EXPECT_TRUE(IsCanonicalLabel(u.label)) << u.id << ": " << u.label;
      ++got[u.speaker][u.label];
    }
    for (auto& [spk, row] : got)  // the MANIFEST tables list zeros; drop them for comparison
      for (auto it = row.begin(); it != row.end();) it = it->second == 0 ? row.erase(it) : std::next(it);
    Table want = expected;
    for (auto& [spk, row] : want)
      for (auto it = row.begin(); it != row.end();) it = it->second == 0 ? row.erase(it) : std::next(it);
    EXPECT_EQ(got, want);
    ASSERT_FALSE(c.features.empty());
    for (const auto& f : c.features) {
      EXPECT_EQ(f.rows(), static_cast<int64_t>(c.size())) << f.name;
      size_t bad = 0;
      for (float v : f.values) bad += !std::isfinite(v);
      EXPECT_EQ(bad, 0u) << f.name << " has non-finite values";
    }
  }

  static bool HaveCorpus(const std::string& name) { return fs::exists(CorpusDir(name) + "/MANIFEST.md"); }

  fs::path dir_;
};

#define REQUIRE_CORPUS(name) \
  if (!HaveCorpus(name)) GTEST_SKIP() << "real corpus not found at " << CorpusDir(name) << " (needs ../shared/corpora)"

// Every speaker has the same count per label.
Table Uniform(const std::vector<std::string>& speakers, const std::map<std::string, int>& per_label) {
  Table t;
  for (const auto& s : speakers) t[s] = per_label;
  return t;
}

TEST_F(RealCorpus, EmodbCountsMatchManifest) {
  REQUIRE_CORPUS("emodb");
  // MANIFEST.md "Counts (emotion × speaker)".
  const std::vector<std::string> labels = {"anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"};
  const std::vector<std::pair<std::string, std::vector<int>>> rows = {
      {"03", {14, 5, 1, 4, 7, 11, 7}},  {"08", {12, 10, 0, 6, 11, 10, 9}}, {"09", {13, 4, 8, 1, 4, 9, 4}},
      {"10", {10, 8, 1, 8, 4, 4, 3}},   {"11", {11, 8, 2, 10, 8, 9, 7}},  {"12", {12, 5, 2, 6, 2, 4, 4}},
      {"13", {12, 10, 8, 7, 10, 9, 5}}, {"14", {16, 8, 8, 12, 8, 7, 10}}, {"15", {13, 9, 5, 8, 6, 11, 4}},
      {"16", {14, 14, 11, 7, 11, 5, 9}}};
  Table want;
  for (const auto& [spk, counts] : rows)
    for (size_t i = 0; i < labels.size(); ++i) want[spk][labels[i]] = counts[i];
  Corpus c = Import("emodb", "emodb", {"logmel64_stats"});
  ASSERT_EQ(c.size(), 535u);
  CheckCorpus(c, want);
  int male = 0;
  for (const auto& u : c.utterances) male += u.gender == "m";
  EXPECT_EQ(male, 49 + 38 + 55 + 35 + 56);  // speakers 03 10 11 12 15
}

TEST_F(RealCorpus, RavdessCountsMatchManifest) {
  REQUIRE_CORPUS("ravdess");
  std::vector<std::string> actors;
  for (int a = 1; a <= 24; ++a) actors.push_back((a < 10 ? "0" : "") + std::to_string(a));
  // MANIFEST.md: every actor has neutral 4 and 2 of each other emotion (432 files).
  Table want = Uniform(actors, {{"neutral", 4}, {"calm", 2}, {"happiness", 2}, {"sadness", 2}, {"anger", 2},
                                {"fear", 2}, {"disgust", 2}, {"surprise", 2}});
  Corpus c = Import("ravdess", "ravdess", {"logmel64_stats"});
  ASSERT_EQ(c.size(), 432u);
  CheckCorpus(c, want);
}

TEST_F(RealCorpus, EmovoCountsMatchManifest) {
  REQUIRE_CORPUS("emovo");
  Table want = Uniform({"f1", "f2", "f3", "m1", "m2", "m3"},
                       {{"anger", 7}, {"disgust", 7}, {"fear", 7}, {"happiness", 7}, {"neutral", 7}, {"sadness", 7},
                        {"surprise", 7}});
  Corpus c = Import("emovo", "emovo", {"logmel64_stats"});
  ASSERT_EQ(c.size(), 294u);
  CheckCorpus(c, want);
}

TEST_F(RealCorpus, TessCountsMatchManifest) {
  REQUIRE_CORPUS("tess");
  Table want = Uniform({"OAF", "YAF"}, {{"anger", 30}, {"disgust", 30}, {"fear", 30}, {"happiness", 30},
                                        {"neutral", 30}, {"sadness", 30}, {"surprise", 30}});
  Corpus c = Import("tess", "tess", {"logmel64_stats"});
  ASSERT_EQ(c.size(), 420u);
  CheckCorpus(c, want);
}

// MELD has no audio here: a text-only import (TF-IDF over the transcripts)
// must give the MANIFEST's rows per split and emotion.
TEST_F(RealCorpus, MeldTextOnlyCountsMatchManifest) {
  REQUIRE_CORPUS("meld");
  ImportCorpusOptions o;
  o.adapter = "meld";
  o.root = CorpusDir("meld");
  o.out = (dir_ / "meld.h5").string();
  o.features = {"tfidf"};
  o.tfidf_dim = 256;
  o.progress = false;
  auto r = ImportCorpus(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->size(), 9989u + 1109u + 2610u);
  // MANIFEST.md "Emotion counts" (split x original label).
  const std::vector<std::string> emotions = {"neutral", "joy", "surprise", "anger", "sadness", "fear", "disgust"};
  const std::map<std::string, std::vector<int>> want_rows = {{"train", {4710, 1743, 1205, 1109, 683, 268, 271}},
                                                             {"dev", {470, 163, 150, 153, 111, 40, 22}},
                                                             {"test", {1256, 402, 281, 345, 208, 50, 68}}};
  Table want, got;
  for (const auto& [split, counts] : want_rows)
    for (size_t i = 0; i < emotions.size(); ++i) want[split][emotions[i]] = counts[i];
  size_t with_text = 0;
  for (const auto& u : c->utterances) {
    ++got[u.session][u.original_label];
    EXPECT_TRUE(IsCanonicalLabel(u.label)) << u.id;
    with_text += !u.transcript.empty();
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(with_text, c->size());
  const FeatureSet* tf = c->FindFeature("tfidf");
  ASSERT_NE(tf, nullptr);
  for (float v : tf->values) ASSERT_TRUE(std::isfinite(v));
}

// ---- EmoDB classifier ------------------------------------------------------

// Multinomial logistic regression, full-batch gradient descent on
// standardised features, class-balanced loss, L2 penalty.
class Softmax {
 public:
  Softmax(int dim, int classes) : d_(dim), k_(classes), w_(size_t(dim + 1) * classes, 0.0) {}

  void Fit(const std::vector<std::vector<double>>& x, const std::vector<int>& y, int steps, double lr, double l2) {
    std::vector<double> cw(k_, 0.0);
    for (int c : y) cw[c] += 1;
    for (auto& v : cw) v = v > 0 ? double(y.size()) / (k_ * v) : 0.0;
    std::vector<double> grad(w_.size()), p(k_);
    for (int step = 0; step < steps; ++step) {
      std::fill(grad.begin(), grad.end(), 0.0);
      for (size_t i = 0; i < x.size(); ++i) {
        Probs(x[i], &p);
        for (int c = 0; c < k_; ++c) {
          const double g = cw[y[i]] * (p[c] - (c == y[i]));
          double* gw = &grad[size_t(c) * (d_ + 1)];
          for (int j = 0; j < d_; ++j) gw[j] += g * x[i][j];
          gw[d_] += g;
        }
      }
      for (size_t j = 0; j < w_.size(); ++j) {
        const bool bias = (j % (d_ + 1)) == size_t(d_);
        w_[j] -= lr * (grad[j] / x.size() + (bias ? 0.0 : l2 * w_[j]));
      }
    }
  }

  int Predict(const std::vector<double>& x) const {
    std::vector<double> p(k_);
    Probs(x, &p);
    return int(std::max_element(p.begin(), p.end()) - p.begin());
  }

 private:
  void Probs(const std::vector<double>& x, std::vector<double>* p) const {
    double mx = -1e300;
    for (int c = 0; c < k_; ++c) {
      const double* w = &w_[size_t(c) * (d_ + 1)];
      double z = w[d_];
      for (int j = 0; j < d_; ++j) z += w[j] * x[j];
      (*p)[c] = z;
      mx = std::max(mx, z);
    }
    double s = 0;
    for (auto& v : *p) s += (v = std::exp(v - mx));
    for (auto& v : *p) v /= s;
  }

  int d_, k_;
  std::vector<double> w_;
};

TEST_F(RealCorpus, EmodbCore4LosoClassifierBeatsChance) {
  REQUIRE_CORPUS("emodb");
  const std::vector<std::string> sets = {"logmel64_stats", "mfcc_stats", "prosody"};
  Corpus c = Import("emodb", "emodb", sets);
  ASSERT_EQ(c.size(), 535u);
  const std::vector<std::string> classes = {"anger", "happiness", "neutral", "sadness"};
  std::map<std::string, size_t> row_of;
  for (size_t i = 0; i < c.size(); ++i) row_of[c.utterances[i].id] = i;
  auto label_of = [&](size_t i) {
    return int(std::find(classes.begin(), classes.end(), c.utterances[i].label) - classes.begin());
  };
  auto features_of = [&](size_t i) {
    std::vector<double> x;
    for (const auto& s : sets) {
      const FeatureSet* f = c.FindFeature(s);
      x.insert(x.end(), f->row(i), f->row(i) + f->dim);
    }
    return x;
  };

  SplitSpec spec;
  spec.method = "loso";
  spec.group_by = "speaker";
  spec.val_fraction = 0.0;
  auto splits = MakeSplits(c, spec);
  ASSERT_TRUE(splits.ok()) << splits.status().ToString();
  ASSERT_EQ(splits->folds.size(), 10u);

  std::vector<std::vector<int>> confusion(4, std::vector<int>(4, 0));
  double fold_ua_sum = 0;
  for (const auto& fold : splits->folds) {
    std::vector<std::vector<double>> xtr, xte;
    std::vector<int> ytr, yte;
    auto take = [&](const std::vector<std::string>& ids, auto* xs, auto* ys) {
      for (const auto& id : ids) {
        const size_t i = row_of.at(id);
        const int y = label_of(i);
        if (y >= 4) continue;  // not a core-4 class
        xs->push_back(features_of(i));
        ys->push_back(y);
      }
    };
    take(fold.train, &xtr, &ytr);
    take(fold.val, &xtr, &ytr);
    take(fold.test, &xte, &yte);
    ASSERT_FALSE(xte.empty()) << fold.name;
    // Standardise with the training speakers' statistics only.
    const size_t d = xtr[0].size();
    std::vector<double> mean(d, 0), sd(d, 0);
    for (const auto& x : xtr) for (size_t j = 0; j < d; ++j) mean[j] += x[j] / xtr.size();
    for (const auto& x : xtr) for (size_t j = 0; j < d; ++j) sd[j] += (x[j] - mean[j]) * (x[j] - mean[j]) / xtr.size();
    for (auto& s : sd) s = s > 1e-12 ? std::sqrt(s) : 1.0;
    for (auto* xs : {&xtr, &xte})
      for (auto& x : *xs) for (size_t j = 0; j < d; ++j) x[j] = (x[j] - mean[j]) / sd[j];
    Softmax model(int(d), 4);
    model.Fit(xtr, ytr, /*steps=*/300, /*lr=*/0.1, /*l2=*/1e-2);
    std::vector<int> hit(4, 0), n(4, 0);
    for (size_t i = 0; i < xte.size(); ++i) {
      const int p = model.Predict(xte[i]);
      ++confusion[yte[i]][p];
      ++n[yte[i]];
      hit[yte[i]] += p == yte[i];
    }
    double ua = 0;
    int present = 0;
    for (int k = 0; k < 4; ++k)
      if (n[k]) ua += double(hit[k]) / n[k], ++present;
    fold_ua_sum += ua / present;
  }
  double ua = 0, wa_hit = 0, total = 0;
  for (int k = 0; k < 4; ++k) {
    int row = 0;
    for (int p = 0; p < 4; ++p) row += confusion[k][p];
    ua += double(confusion[k][k]) / row / 4;
    wa_hit += confusion[k][k];
    total += row;
  }
  std::printf("[ emodb ] core-4 LOSO (10 speakers), softmax regression on %s + %s + %s: "
              "UA %.3f (pooled), mean per-fold UA %.3f, WA %.3f (chance UA 0.25)\n",
              sets[0].c_str(), sets[1].c_str(), sets[2].c_str(), ua, fold_ua_sum / 10, wa_hit / total);
  for (int k = 0; k < 4; ++k)
    std::printf("[ emodb ]   %-9s recall %.3f  confusion %3d %3d %3d %3d\n", classes[k].c_str(),
                double(confusion[k][k]) / (confusion[k][0] + confusion[k][1] + confusion[k][2] + confusion[k][3]),
                confusion[k][0], confusion[k][1], confusion[k][2], confusion[k][3]);
  EXPECT_GE(ua, 0.50);
}

}  // namespace
}  // namespace emosweep::data
