// End-to-end: `emosweep data synth | inspect | split` run as a subprocess;
// exit codes 0/2, one JSON document with --json, messages on stderr.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Ran {
  int code = -1;
  std::string out, err;
};

class DataStoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / (std::string("emosweep_cli_") + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Ran Run(const std::string& args) {
    const std::string err = (dir_ / "stderr.txt").string();
    const std::string cmd = std::string(EMOSWEEP_BINARY) + " " + args + " 2>" + err;
    Ran r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream in(err);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    return r;
  }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }

  // A store pair written by `data synth` (small, for speed).
  void Synth(const std::string& extra = "") {
    Ran r = Run("data synth --out " + P("stores") + " --corpora 2 --speakers 6 --per-speaker 12 --seed 3 " + extra);
    ASSERT_EQ(r.code, 0) << r.err;
  }

  fs::path dir_;
};

TEST_F(DataStoreCli, SynthWritesStoresAndPrintsWhatItWrote) {
  Ran r = Run("data synth --out " + P("s") + " --corpora 3 --speakers 4 --per-speaker 8 --frames --video-dim 8");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* n : {"synth_a.h5", "synth_b.h5", "synth_c.h5"}) EXPECT_TRUE(fs::exists(P("s/") + n)) << n;
  EXPECT_NE(r.out.find("wrote " + P("s") + "/synth_a.h5: 32 utterances"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("synth_video[8]"), std::string::npos) << r.out;
}

TEST_F(DataStoreCli, SynthJsonIsOneDocumentAndDeterministic) {
  Ran a = Run("data synth --json --out " + P("a") + " --corpora 2 --speakers 3 --per-speaker 6 --seed 9");
  Ran b = Run("data synth --json --out " + P("b") + " --corpora 2 --speakers 3 --per-speaker 6 --seed 9");
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  auto ja = nlohmann::json::parse(a.out);  // throws (fails the test) if not exactly one document
  auto jb = nlohmann::json::parse(b.out);
  ASSERT_EQ(ja["stores"].size(), 2u);
  EXPECT_EQ(ja["stores"][0]["num_utterances"], 18);
  EXPECT_EQ(ja["stores"][1]["content_hash"], jb["stores"][1]["content_hash"]);
}

TEST_F(DataStoreCli, InspectTextAndJson) {
  Synth();
  Ran t = Run("data inspect " + P("stores/synth_a.h5"));
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("(verified)"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("synth_a_s05"), std::string::npos) << t.out;
  Ran j = Run("data inspect --json " + P("stores/synth_a.h5"));
  ASSERT_EQ(j.code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["num_utterances"], 72);
  EXPECT_EQ(doc["num_speakers"], 6);
  EXPECT_EQ(doc["utterances_per_label"]["anger"], 18);
  EXPECT_EQ(doc["ok"], true);
}

TEST_F(DataStoreCli, InspectMissingOrCorruptStoreExitsTwo) {
  Ran missing = Run("data inspect " + P("none.h5"));
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find(P("none.h5")), std::string::npos) << missing.err;
  std::ofstream(P("junk.h5")) << "this is not an HDF5 file";
  Ran junk = Run("data inspect --json " + P("junk.h5"));
  EXPECT_EQ(junk.code, 2);
  EXPECT_TRUE(junk.out.empty());
  EXPECT_NE(junk.err.find("not an HDF5 file"), std::string::npos) << junk.err;
}

TEST_F(DataStoreCli, InspectJsonOfAStoreWithInvalidUtf8) {
  // A store written before imports checked UTF-8 (simulated by patching the strings in place):
  // `inspect --json` prints one JSON document and exits 2 naming the problem. Before, it failed
  // with "unexpected exception: ... invalid UTF-8 byte" and no document.
  Synth();
  const std::string store = P("stores/synth_a.h5");
  std::string bytes;
  {
    std::ifstream in(store, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    bytes = ss.str();
  }
  const std::string from = "synth_a_s05", to = "synth_a_s\xFF" "5";
  size_t patched = 0;
  for (size_t at = bytes.find(from); at != std::string::npos; at = bytes.find(from, at + 1), ++patched)
    bytes.replace(at, from.size(), to);
  ASSERT_GT(patched, 0u) << "speaker strings not found in the store's bytes";
  std::ofstream(store, std::ios::binary | std::ios::trunc) << bytes;
  Ran j = Run("data inspect --json " + store);
  EXPECT_EQ(j.code, 2) << j.err;
  const auto doc = nlohmann::json::parse(j.out);  // exactly one document
  EXPECT_EQ(doc["ok"], false);
  EXPECT_NE(doc["validation"].get<std::string>().find("is not valid UTF-8"), std::string::npos) << j.out;
  EXPECT_NE(j.err.find("is not valid UTF-8"), std::string::npos) << j.err;
}

TEST_F(DataStoreCli, InspectTruncatedStoreExitsTwo) {
  Synth();
  fs::resize_file(P("stores/synth_a.h5"), fs::file_size(P("stores/synth_a.h5")) / 3);
  Ran r = Run("data inspect " + P("stores/synth_a.h5"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("synth_a.h5"), std::string::npos) << r.err;
}

TEST_F(DataStoreCli, SplitSpeakerKFoldWritesHashedFile) {
  Synth();
  Ran r = Run("data split " + P("stores/synth_a.h5") + " --method speaker_kfold --k 3 --seed 1 --out " +
              P("splits.json") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["folds"].size(), 3u);
  int tested = 0;
  for (const auto& f : doc["folds"]) {
    tested += f["test"].get<int>();
    EXPECT_EQ(f["test_speakers"].size(), 2u);
  }
  EXPECT_EQ(tested, 72);
  std::ifstream in(P("splits.json"));
  auto file = nlohmann::json::parse(in);
  EXPECT_EQ(file["version"], 1);
  EXPECT_EQ(file["hash"], doc["hash"]);
  Ran text = Run("data split " + P("stores/synth_a.h5") + " --method loso --out " + P("loso.json"));
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("6 folds (loso"), std::string::npos) << text.out;
}

TEST_F(DataStoreCli, StratifiedSplitRefusesOverlapUnlessAllowed) {
  Synth();
  Ran refused = Run("data split " + P("stores/synth_b.h5") + " --method stratified --out " + P("st.json"));
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(refused.err.find("fold 'fold0'"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("synth_b_s0"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(P("st.json")));
  Ran ok = Run("data split " + P("stores/synth_b.h5") + " --method stratified --allow-speaker-overlap --out " +
               P("st.json"));
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_TRUE(fs::exists(P("st.json")));
}

// Issue 13 §4: a given split (a published one) is written from id lists, checked against the store.
TEST_F(DataStoreCli, SplitFromIdListsReproducesAGivenSplit) {
  Synth();
  ASSERT_EQ(Run("data split " + P("stores/synth_a.h5") + " --k 3 --seed 5 --out " + P("made.json")).code, 0);
  std::ifstream in(P("made.json"));
  const json made = json::parse(in)["folds"][1];
  for (const char* part : {"train", "val", "test"}) {
    std::ofstream out(P(std::string(part) + ".txt"));
    out << "# " << part << " ids\n";
    for (const auto& id : made[part]) out << id.get<std::string>() << "\n";
  }
  Ran r = Run("data split " + P("stores/synth_a.h5") + " --from train=" + P("train.txt") + " --from val=" +
              P("val.txt") + " --from test=" + P("test.txt") + " --out " + P("given.json") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["method"], "id_lists");
  std::ifstream gin(P("given.json"));
  const json given = json::parse(gin);
  ASSERT_EQ(given["folds"].size(), 1u);
  for (const char* part : {"train", "val", "test"}) EXPECT_EQ(given["folds"][0][part], made[part]) << part;
  // The file is usable like any split file (hash checked on read).
  EXPECT_EQ(Run("data split " + P("stores/synth_a.h5") + " --from train=" + P("train.txt") + " --out " +
                P("train_only.json")).code,
            0);
}

TEST_F(DataStoreCli, SplitFromIdListsBadIdsExitTwoNamingFileAndLine) {
  Synth();
  std::ofstream(P("train.txt")) << "nope_1\n";
  Ran unknown = Run("data split " + P("stores/synth_a.h5") + " --from train=" + P("train.txt") + " --out " + P("g.json"));
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find(P("train.txt") + " line 1: utterance 'nope_1' is not in corpus"), std::string::npos)
      << unknown.err;
  EXPECT_FALSE(fs::exists(P("g.json")));
  Ran bad = Run("data split " + P("stores/synth_a.h5") + " --from " + P("train.txt") + " --out " + P("g.json"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("PART=FILE"), std::string::npos) << bad.err;
  Ran mixed = Run("data split " + P("stores/synth_a.h5") + " --from train=" + P("train.txt") + " --k 3 --out " +
                  P("g.json"));
  EXPECT_EQ(mixed.code, 2);
  EXPECT_NE(mixed.err.find("--k does not apply"), std::string::npos) << mixed.err;
  EXPECT_FALSE(fs::exists(P("g.json")));
}

TEST_F(DataStoreCli, StratifiedSplitWithTestFractionZero) {
  Synth();
  Ran r = Run("data split " + P("stores/synth_a.h5") + " --method stratified --test-fraction 0 --val-fraction 0.2 "
              "--allow-speaker-overlap --out " + P("st0.json") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["folds"][0]["test"], 0);
  EXPECT_GT(j["folds"][0]["val"].get<int>(), 0);
}

TEST_F(DataStoreCli, BadUsageExitsTwo) {
  EXPECT_EQ(Run("data synth").code, 2);                                   // --out missing
  EXPECT_EQ(Run("data synth --out " + P("x") + " --classes anger,joy").code, 2);
  EXPECT_EQ(Run("data synth --out " + P("x") + " --corpora 0").code, 2);
  EXPECT_FALSE(fs::exists(P("x/synth_a.h5")));
  Synth();
  EXPECT_EQ(Run("data split " + P("stores/synth_a.h5") + " --k 1 --out " + P("k.json")).code, 2);
  EXPECT_EQ(Run("data split " + P("stores/synth_a.h5") + " --method bogus --out " + P("k.json")).code, 2);
  EXPECT_EQ(Run("data split " + P("stores/synth_a.h5")).code, 2);           // --out missing
  for (const char* v : {"nan", "inf", "-inf"}) {  // every float option must be finite
    Ran r = Run("data split " + P("stores/synth_a.h5") + " --val-fraction " + v + " --out " + P("k.json"));
    EXPECT_EQ(r.code, 2) << v;
    EXPECT_NE(r.err.find("--val-fraction must be a finite number"), std::string::npos) << r.err;
  }
  EXPECT_EQ(Run("data synth --out " + P("y") + " --noise nan").code, 2);
  EXPECT_FALSE(fs::exists(P("y")));
  // An option of another method was ignored without a word (session 17's audit).
  Ran other = Run("data split " + P("stores/synth_a.h5") + " --method loso --test-fraction 0.2 --out " + P("k.json"));
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("--test-fraction applies to --method stratified only"), std::string::npos) << other.err;
  EXPECT_EQ(Run("data split " + P("stores/synth_a.h5") + " --method stratified --k 4 --out " + P("k.json")).code, 2);
  EXPECT_FALSE(fs::exists(P("k.json")));
}

}  // namespace
