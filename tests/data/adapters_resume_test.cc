// ImportCorpus with caller extractors and interruption (no torch): per-group
// reuse keyed on provenance, the <out>.partial checkpoint written on a stop
// request and periodically, and resuming from it to the same content.
#include <atomic>
#include <filesystem>
#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "data/adapters/import_corpus.h"
#include "data/feature_store.h"
#include "tests/data/adapters_fixture.h"

namespace emosweep::data {
namespace {

using testing::AdapterTree;
namespace fs = std::filesystem;

const char* const kLabels[] = {"anger", "happiness", "sadness", "neutral"};

// A deterministic extractor over its input strings (paths or transcripts):
// row = [length, sum of bytes mod 97, version]. Counts what it was asked for
// and can request a stop after `stop_after` calls.
class StringExtractor : public ImportExtractor {
 public:
  StringExtractor(bool audio, int version, int64_t dim = 3) : audio_(audio), version_(version), dim_(dim) {}
  FeatureSet EmptySet() const override {
    FeatureSet fs;
    fs.name = audio_ ? "strings_audio" : "strings_text";
    fs.modality = audio_ ? "audio" : "text";
    fs.provenance = {{"extractor", "test.strings"}, {"version", version_}};
    return fs;
  }
  bool audio_input() const override { return audio_; }
  Result<FeatureSet> Extract(const std::vector<std::string>& inputs, Progress*) override {
    FeatureSet fs = EmptySet();
    fs.dim = dim_;
    for (const auto& s : inputs) {
      int64_t sum = 0;
      for (unsigned char c : s) sum += c;
      const float row[3] = {float(s.size()), float(sum % 97), float(version_)};
      fs.values.insert(fs.values.end(), row, row + dim_);
    }
    inputs_ += int64_t(inputs.size());
    call_sizes_.push_back(int64_t(inputs.size()));
    if (++calls_ == stop_after && stop) stop->store(true);
    return fs;
  }
  int64_t inputs_ = 0;
  std::vector<int64_t> call_sizes_;
  int calls_ = 0;
  int stop_after = -1;
  std::atomic<bool>* stop = nullptr;

 private:
  bool audio_;
  int version_;
  int64_t dim_;
};

class ResumeTest : public ::testing::Test {
 protected:
  void Tree(int n) {
    std::string csv = "file,speaker,label,transcript\n";
    for (int i = 0; i < n; ++i) {
      const std::string f = "wav/u" + std::to_string(100 + i) + ".wav";
      t_.Wav(f, i, 16000, 0.2);
      csv += f + ",s" + std::to_string(i % 3) + "," + kLabels[i % 4] + ",words of utterance " + std::to_string(i) + "\n";
    }
    t_.Text("metadata.csv", csv);
    fs::create_directories(t_.Path("out"));
  }
  ImportCorpusOptions Options(const std::string& out = "out/store.h5") const {
    ImportCorpusOptions o;
    o.adapter = "generic_csv";
    o.root = t_.root();
    o.out = t_.Path(out);
    o.threads = 2;
    o.progress = false;
    return o;
  }
  std::string Partial() const { return ImportCheckpointPath(t_.Path("out/store.h5")); }

  AdapterTree t_;
};

TEST_F(ResumeTest, StopRequestCheckpointsAndTheRerunResumesToTheSameContent) {
  const int n = 40;
  Tree(n);
  std::atomic<bool> stop{false};
  StringExtractor a(true, 1), t(false, 1);
  a.stop = &stop;
  a.stop_after = 2;  // the stop arrives while the second chunk runs
  auto o = Options();
  o.extractors = {&a, &t};
  o.stop = &stop;
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_NE(r.status().message().find("interrupted after " + std::to_string(a.inputs_) + " of 40"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(fs::exists(o.out));
  auto partial = ReadFeatureStore(Partial());
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  // Exactly the finished chunks, every set present, the text rows too.
  EXPECT_EQ(int64_t(partial->size()), a.inputs_);
  EXPECT_EQ(t.inputs_, a.inputs_);
  EXPECT_LT(a.inputs_, n);
  for (const char* s : {"logmel64_stats", "strings_audio", "strings_text"}) {
    ASSERT_NE(partial->FindFeature(s), nullptr) << s;
    EXPECT_EQ(partial->FindFeature(s)->rows(), a.inputs_) << s;
  }

  StringExtractor a2(true, 1), t2(false, 1);
  auto o2 = Options();
  o2.extractors = {&a2, &t2};
  auto resumed = ImportCorpus(o2);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->reused, a.inputs_);
  EXPECT_EQ(resumed->extracted, n - a.inputs_);
  EXPECT_EQ(a2.inputs_, n - a.inputs_);
  EXPECT_EQ(t2.inputs_, n - a.inputs_);
  EXPECT_FALSE(fs::exists(Partial()));

  StringExtractor a3(true, 1), t3(false, 1);
  auto o3 = Options("out/full.h5");
  o3.extractors = {&a3, &t3};
  auto full = ImportCorpus(o3);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->extracted, n);
  EXPECT_EQ(resumed->content_hash, full->content_hash);
}

// A chunk counts the rows it extracts (helper-48): sized by rows, the reused rows of a resumed import (each
// next to free) doubled the chunk until its first extracting chunk held thousands of rows, 10 s and more
// between checkpoints and before a stop was honoured. Now the resumed run's first extraction is one chunk's
// worth, as a fresh run's.
TEST_F(ResumeTest, ReusedRowsDoNotGrowAResumedImportsChunks) {
  Tree(60);
  std::atomic<bool> stop{false};
  StringExtractor a(true, 1);
  a.stop = &stop;
  a.stop_after = 1;  // stop after the first chunk
  auto o = Options();
  o.features = {"window_stats"};
  o.extractors = {&a};
  o.stop = &stop;
  ASSERT_FALSE(ImportCorpus(o).ok());
  ASSERT_EQ(a.call_sizes_.size(), 1u);
  const int64_t first_chunk = a.call_sizes_[0];
  ASSERT_LT(first_chunk, 30);

  std::atomic<bool> never{false};
  StringExtractor b(true, 1);
  auto o2 = Options();
  o2.features = {"window_stats"};
  o2.extractors = {&b};
  o2.stop = &never;  // chunked, as a run that can be stopped is
  auto resumed = ImportCorpus(o2);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->reused, first_chunk);
  ASSERT_FALSE(b.call_sizes_.empty());
  EXPECT_EQ(b.call_sizes_[0], first_chunk) << "the resumed run's first chunk grew while it walked the reused rows";
}

TEST_F(ResumeTest, StopBeforeAnyRowKeepsNothing) {
  Tree(4);
  std::atomic<bool> stop{true};
  auto o = Options();
  o.stop = &stop;
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_NE(r.status().message().find("nothing new to keep"), std::string::npos) << r.status().ToString();
  EXPECT_TRUE(fs::is_empty(t_.Path("out")));
}

TEST_F(ResumeTest, NewExtractorProvenanceReextractsOnlyThatSet) {
  Tree(5);
  StringExtractor a(true, 1);
  auto o = Options();
  o.extractors = {&a};
  ASSERT_TRUE(ImportCorpus(o).ok());
  StringExtractor b(true, 2);
  o.extractors = {&b};
  auto r = ImportCorpus(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(b.inputs_, 5);
  EXPECT_EQ(r->extracted, 5);
  EXPECT_EQ(r->audio_seconds, 0.0);  // the front end's rows were all copied
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->FindFeature("strings_audio")->values[2], 2.0f);
  EXPECT_EQ(c->FindFeature("strings_audio")->provenance["version"], 2);
  EXPECT_EQ(c->FindFeature("strings_audio")->provenance["dim"], 3);
}

TEST_F(ResumeTest, TextRowsAreReusedOnlyForTheSameTranscript) {
  Tree(5);
  StringExtractor t(false, 1);
  auto o = Options();
  o.extractors = {&t};
  ASSERT_TRUE(ImportCorpus(o).ok());
  std::string csv = "file,speaker,label,transcript\n";
  for (int i = 0; i < 5; ++i)
    csv += "wav/u" + std::to_string(100 + i) + ".wav,s" + std::to_string(i % 3) + "," + kLabels[i % 4] +
           (i == 3 ? ",edited transcript" : ",words of utterance " + std::to_string(i)) + "\n";
  t_.Text("metadata.csv", csv);
  StringExtractor t2(false, 1);
  o.extractors = {&t2};
  auto r = ImportCorpus(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(t2.inputs_, 1);
  EXPECT_EQ(r->reused, 4);
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->FindFeature("strings_text")->row(3)[0], float(std::string("edited transcript").size()));
}

TEST_F(ResumeTest, DimensionChangeUnderTheSameProvenanceIsAnError) {
  Tree(5);
  StringExtractor a(true, 1, 2);
  auto o = Options();
  o.limit = 3;
  o.extractors = {&a};
  auto first = ImportCorpus(o);
  ASSERT_TRUE(first.ok());
  StringExtractor b(true, 1, 3);
  o.limit = 0;
  o.extractors = {&b};
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'strings_audio': a row of dimension 3 after rows of dimension 2"),
            std::string::npos)
      << r.status().ToString();
  auto info = ReadStoreInfo(o.out);  // the earlier store is untouched
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->content_hash, first->content_hash);
}

TEST_F(ResumeTest, PeriodicCheckpointKeepsRowsAcrossAFailure) {
  Tree(30);
  t_.Text("wav/u129.wav", "RIFF junk, not audio");  // the last file fails
  auto o = Options();
  o.checkpoint_seconds = 1e-9;  // after every chunk
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("u129.wav"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(fs::exists(o.out));
  auto partial = ReadStoreInfo(Partial());
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  EXPECT_GT(partial->num_utterances, 0);
  EXPECT_LT(partial->num_utterances, 30);
  t_.Wav("wav/u129.wav", 29, 16000, 0.2);
  o.checkpoint_seconds = 0;
  auto fixed = ImportCorpus(o);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(fixed->reused, partial->num_utterances);
  EXPECT_FALSE(fs::exists(Partial()));
}

}  // namespace
}  // namespace emosweep::data
