// tests/data/store_test_util.h: per-test temp directories and a small
// hand-built corpus for the feature-store tests.
// Thread-safety: test-only helpers, used from one thread.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "data/corpus.h"

namespace emosweep::data::testing {

// A fresh directory under the gtest temp dir, named after the running test,
// removed on destruction.
class TestDir {
 public:
  TestDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            (std::string("emosweep_") + info->test_suite_name() + "_" + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TestDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }
  // Number of entries in the directory (to prove nothing was left behind).
  size_t Count() const {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(path_)) (void)e, ++n;
    return n;
  }

 private:
  std::filesystem::path path_;
};

// n utterances over 3 speakers and 2 labels, one feature set "a" of dim 3.
inline Corpus SmallCorpus(int n = 6) {
  Corpus c;
  c.name = "small";
  c.language = "en";
  c.label_set = {"anger", "neutral"};
  FeatureSet f;
  f.name = "a";
  f.modality = "audio";
  f.dim = 3;
  f.provenance = {{"extractor", "test"}};
  for (int i = 0; i < n; ++i) {
    Utterance u;
    u.id = "u" + std::to_string(i);
    u.speaker = "s" + std::to_string(i % 3);
    u.label = i % 2 ? "neutral" : "anger";
    u.original_label = i % 2 ? "N" : "W";
    c.utterances.push_back(u);
    for (int d = 0; d < 3; ++d) f.values.push_back(static_cast<float>(i * 10 + d) * 0.5f);
  }
  c.features.push_back(f);
  return c;
}

}  // namespace emosweep::data::testing
