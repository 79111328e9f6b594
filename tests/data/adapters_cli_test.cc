// `emosweep data import --adapter ...` end to end through the real binary:
// exit codes (0 ok, 2 bad input) and nothing left behind on failure.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/feature_store.h"
#include "tests/data/adapters_fixture.h"

namespace emosweep::data {
namespace {

using testing::AdapterTree;
using testing::RunImport;
namespace fs = std::filesystem;

class AdapterCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(EMOSWEEP_BINARY)) GTEST_SKIP() << "build the emosweep target first: " << EMOSWEEP_BINARY << " missing";
    int seed = 0;
    for (const char* n : {"03a01Fa", "03a01Wa", "08b10Tb", "16a05Nc"}) t_.Wav(std::string("wav/") + n + ".wav", seed++);
    fs::create_directories(t_.Path("out"));
  }
  std::string Base() const { return "--adapter emodb --root " + t_.root() + " --out " + Out() + " --threads 2"; }
  std::string Out() const { return t_.Path("out/emodb.h5"); }
  bool OutEmpty() const { return fs::is_empty(t_.Path("out")); }

  AdapterTree t_;
};

TEST_F(AdapterCli, ImportsAndPrintsJson) {
  auto r = RunImport(Base() + " --features logmel64_stats --features tfidf --tfidf-dim 16 --json --log-level warn");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["utterances"], 4);
  EXPECT_EQ(j["extracted"], 4);
  EXPECT_EQ(j["per_label"]["anger"], 1);
  auto c = ReadFeatureStore(Out());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_NE(c->FindFeature("tfidf"), nullptr);
  EXPECT_EQ(c->FindFeature("tfidf")->dim, 16);
  // A second run reuses everything.
  auto again = RunImport(Base() + " --features logmel64_stats,tfidf --tfidf-dim 16 --json --log-level warn");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(nlohmann::json::parse(again.output)["reused"], 4);
}

// helper-60: a transcript the tokenizer reads no word in becomes a zero tfidf row; the import says so.
TEST_F(AdapterCli, TranscriptsWithoutAWordTheTokenizerReadsAreWarnedAbout) {
  AdapterTree g;
  g.Wav("a.wav", 1);
  g.Wav("b.wav", 2);
  g.Wav("c.wav", 3);
  g.Text("metadata.csv", "file,speaker,label,transcript\na.wav,s1,anger,Kids are talking\nb.wav,s1,happiness,\"?!\"\n"
                         "c.wav,s2,sadness,\xf0\x9f\x98\x80\xf0\x9f\x98\x80\n");
  auto r = RunImport("--adapter generic_csv --root " + g.root() + " --out " + g.Path("s.h5") +
                     " --corpus g --features tfidf --tfidf-dim 16 --log-level warn");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("g: 2 of 3 transcripts hold no word the tfidf tokenizer reads (e.g. 'b"), std::string::npos)
      << r.output;
}

TEST_F(AdapterCli, CorpusOptionNamesTheStoredCorpus) {
  // Before: --corpus was ignored and the corpus was named after the adapter ("emodb").
  auto r = RunImport(Base() + " --corpus berlin --json --log-level warn");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["corpus"], "berlin");
  auto c = ReadFeatureStore(Out());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "berlin");
}

TEST_F(AdapterCli, MissingRootExits2) {
  auto r = RunImport("--adapter emodb --root " + t_.Path("nope") + " --out " + Out());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(t_.Path("nope")), std::string::npos) << r.output;
  EXPECT_TRUE(OutEmpty());
}

TEST_F(AdapterCli, UnparsableNameExits2OrIsSkipped) {
  t_.Wav("wav/take2.wav");
  auto r = RunImport(Base());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("take2.wav"), std::string::npos) << r.output;
  EXPECT_TRUE(OutEmpty());
  auto k = RunImport(Base() + " --skip-bad --json");
  ASSERT_EQ(k.code, 0) << k.output;
  EXPECT_NE(k.output.find("skipped 1 file(s)"), std::string::npos) << k.output;
  EXPECT_TRUE(fs::exists(Out()));
}

TEST_F(AdapterCli, LabelOutsideMapExits2) {
  t_.Text("map.toml", "name = \"two\"\n[map]\nW = \"anger\"\nF = \"happiness\"\n");
  auto r = RunImport(Base() + " --label-map " + t_.Path("map.toml"));
  EXPECT_EQ(r.code, 2) << r.output;
  // The first unmapped label in id order: 08b10Tb (T, Trauer).
  EXPECT_NE(r.output.find("label 'T' is not in label map 'two'"), std::string::npos) << r.output;
  EXPECT_TRUE(OutEmpty());
}

TEST_F(AdapterCli, UnreadableWavExits2) {
  t_.Text("wav/09a02Wa.wav", "this is not a wav file");
  auto r = RunImport(Base());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("09a02Wa.wav"), std::string::npos) << r.output;
  EXPECT_TRUE(OutEmpty());
}

TEST_F(AdapterCli, UnknownAdapterAndFeatureExit2) {
  auto a = RunImport("--adapter nosuch --root " + t_.root() + " --out " + Out());
  EXPECT_EQ(a.code, 2) << a.output;
  EXPECT_NE(a.output.find("unknown adapter 'nosuch'"), std::string::npos) << a.output;
  auto f = RunImport(Base() + " --features logmel99");
  EXPECT_EQ(f.code, 2) << f.output;
  EXPECT_NE(f.output.find("logmel99"), std::string::npos) << f.output;
  EXPECT_TRUE(OutEmpty());
}

}  // namespace
}  // namespace emosweep::data
