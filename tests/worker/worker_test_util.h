// tests/worker/worker_test_util.h: the synthetic corpora, row selections and the per-test feature
// store that the trainer tests (trainer_test, torchscript_train_test, pack_test) share.
// Thread-safety: test-only helpers, used from one thread.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "data/corpus.h"
#include "data/feature_store.h"
#include "worker/job.h"

namespace emosweep::worker::testing {

// The shape of MakeCorpus's features.
struct SynthCorpusOptions {
  int64_t audio_dim = 8, text_dim = 6;
  // Added to class k's dims (d % 3 == k) before the noise.
  float audio_signal = 1.5f, text_signal = 1.0f;
  // Added to every audio dim (a corpus offset).
  double shift = 0.0;
};

// The default corpus with its audio offset by `shift`.
inline SynthCorpusOptions AudioShift(double shift) {
  SynthCorpusOptions o;
  o.shift = shift;
  return o;
}

// Three classes (anger, happiness, sadness) of `per_class` rows, ids name_k_i, whose audio ("a") and text
// ("t") means differ by class; unit normal noise makes it non-trivial.
inline data::Corpus MakeCorpus(const std::string& name, int per_class, uint64_t seed,
                               const SynthCorpusOptions& o = {}) {
  data::Corpus c;
  c.name = name;
  c.label_set = {"anger", "happiness", "sadness"};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.f, 1.f);
  data::FeatureSet audio{"a", "audio", o.audio_dim}, text{"t", "text", o.text_dim};
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < per_class; ++i) {
      data::Utterance u;
      u.id = name + "_" + std::to_string(k) + "_" + std::to_string(i);
      u.speaker = "s" + std::to_string(i % 4);
      u.label = c.label_set[k];
      u.original_label = u.label;
      c.utterances.push_back(u);
      for (int64_t d = 0; d < o.audio_dim; ++d)
        audio.values.push_back((d % 3 == k ? o.audio_signal : 0.f) + o.shift + noise(rng));
      for (int64_t d = 0; d < o.text_dim; ++d) text.values.push_back((d % 3 == k ? o.text_signal : 0.f) + noise(rng));
    }
  c.features = {audio, text};
  return c;
}

// The ids of rows [from, to) of every class of a MakeCorpus corpus; of class skip_class only the even rows.
inline std::vector<std::string> Ids(const data::Corpus& c, int from, int to, int skip_class = -1) {
  std::vector<std::string> ids;
  const int per_class = static_cast<int>(c.size() / 3);
  for (int k = 0; k < 3; ++k)
    for (int i = from; i < to; ++i)
      if (k != skip_class || i % 2 == 0) ids.push_back(c.utterances[k * per_class + i].id);
  return ids;
}

// A fixture with a fresh temp directory (named after the test) holding the feature store synth.h5 of
// MakeCorpus("synth", 60, seed, options), and a job builder over it.
class SynthStoreTest : public ::testing::Test {
 protected:
  SynthStoreTest(std::string dir_prefix, uint64_t seed, SynthCorpusOptions options = {})
      : prefix_(std::move(dir_prefix)), seed_(seed), options_(options) {}

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           (prefix_ + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    corpus_ = MakeCorpus("synth", 60, seed_, options_);
    store_ = (dir_ / "synth.h5").string();
    ASSERT_TRUE(data::WriteFeatureStore(store_, corpus_).ok());
    auto info = data::ReadStoreInfo(store_);
    ASSERT_TRUE(info.ok());
    hash_ = info->content_hash;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A supervised job on the store's audio + text: rows 0-40 of every class train, 40-50 validate, 50-60
  // are the eval set "test"; seed 42.
  JobSpec SplitSpec(const nlohmann::json& model, const nlohmann::json& train_config) const {
    JobSpec s;
    s.kind = "supervised";
    s.features = {{"audio", "a"}, {"text", "t"}};
    s.labels = {"anger", "happiness", "sadness"};
    s.train = {{store_, hash_, Ids(corpus_, 0, 40)}};
    s.val = {{store_, hash_, Ids(corpus_, 40, 50)}};
    s.eval["test"] = {{store_, hash_, Ids(corpus_, 50, 60)}};
    s.model = model;
    s.train_config = train_config;
    s.seed = 42;
    s.id = s.ComputeId();
    return s;
  }

  std::filesystem::path dir_;
  data::Corpus corpus_;
  std::string store_, hash_;

 private:
  std::string prefix_;
  uint64_t seed_;
  SynthCorpusOptions options_;
};

}  // namespace emosweep::worker::testing
