// tests/protocols/protocol_test_util.h: per-test temp directories, small
// synthetic feature stores written with the real HDF5 writer, and protocol
// files written from text.
// Thread-safety: test-only helpers, used from one thread.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/feature_store.h"
#include "protocols/expand.h"

namespace emosweep::protocols::testing {

class TestDir {
 public:
  TestDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            (std::string("emosweep_protocols_") + info->test_suite_name() + "_" + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TestDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(File(name)) << text;
    return File(name);
  }

 private:
  std::filesystem::path path_;
};

// `speakers` speakers × every label × `per_class` utterances; one audio
// feature set "feat" (dim 4) and one text set "txt" (dim 3). Labels default
// to core4 plus "fear" (so label-set filtering is visible).
inline data::Corpus MakeCorpus(const std::string& name, int speakers = 6, int per_class = 3,
                               std::vector<std::string> labels = {"anger", "happiness", "neutral", "sadness",
                                                                  "fear"}) {
  data::Corpus c;
  c.name = name;
  c.language = "en";
  c.label_set = labels;
  data::FeatureSet a{"feat", "audio", 4}, t{"txt", "text", 3};
  a.provenance = {{"extractor", "test"}};
  t.provenance = {{"extractor", "test"}};
  int n = 0;
  for (int s = 0; s < speakers; ++s)
    for (const auto& l : labels)
      for (int k = 0; k < per_class; ++k, ++n) {
        data::Utterance u;
        u.id = name + "_s" + std::to_string(s) + "_" + l + "_" + std::to_string(k);
        u.speaker = name + "_spk" + std::to_string(s);
        u.gender = s % 2 ? "f" : "m";
        u.label = l;
        u.original_label = l;
        c.utterances.push_back(u);
        for (int d = 0; d < 4; ++d) a.values.push_back(static_cast<float>(n * 4 + d) * 0.01f);
        for (int d = 0; d < 3; ++d) t.values.push_back(static_cast<float>(n + d) * 0.1f);
      }
  c.features = {a, t};
  return c;
}

inline std::string WriteStore(const TestDir& dir, const data::Corpus& c) {
  std::string path = dir.File(c.name + ".h5");
  Status st = data::WriteFeatureStore(path, c);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return path;
}

inline Protocol MustLoad(const std::string& path, const LoadOptions& options = {}) {
  auto p = LoadProtocol(path, options);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : Protocol{};
}

inline int CountKind(const Protocol& p, const std::string& kind) {
  int n = 0;
  for (const auto& j : p.jobs) n += j.spec.kind == kind;
  return n;
}

}  // namespace emosweep::protocols::testing
