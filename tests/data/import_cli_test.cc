// `emosweep data import` end to end through the real binary: the table form
// (.npy, .npz, openSMILE CSV), the pickle form, and one test per bad-input
// case. Every failure must exit 2, name the file and the problem, and leave
// the directory exactly as the test wrote it (no store, no temporary).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/files.h"
#include "data/feature_store.h"
#include "data/label_map.h"
#include "tests/data/import_test_util.h"

namespace emosweep::data {
namespace {

using testing::ListDir;
using testing::NpyBytes;
using testing::NpyF32;
using testing::SeedPickleBytes;
using testing::SeedRecord;
using testing::TestDir;
using testing::WriteBytes;
using testing::ZipBytes;

struct CliRun {
  int code = -1;
  std::string out;
};

CliRun Emosweep(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(EMOSWEEP_BINARY) + " data import " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A small valid table input: 4 utterances, 2 speakers, canonical labels.
struct Table {
  std::string dir, meta, npy;
  std::vector<float> audio;  // 4 x 3
};

Table WriteTable(const std::string& labels3 = "sadness") {
  Table t;
  t.dir = TestDir();
  t.meta = t.dir + "/meta.csv";
  t.npy = t.dir + "/audio.npy";
  WriteBytes(t.meta, "file,speaker,label,transcript,duration\n"
                     "wav/u1.wav,s1,anger,\"hi, there\",1.5\n"
                     "wav/u2.wav,s1,neutral,,2\n"
                     "wav/u3.wav,s2," + labels3 + ",x,0.5\n"
                     "wav/u4.wav,s2,neutral,y,1\n");
  t.audio = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  WriteBytes(t.npy, NpyF32({4, 3}, t.audio));
  return t;
}

// `t`'s metadata replaced by `meta_csv`, imported with its audio features into <dir>/toy.h5.
CliRun ImportWithMetadata(const Table& t, const std::string& meta_csv) {
  WriteBytes(t.meta, meta_csv);
  return Emosweep("--metadata " + t.meta + " --features audio=audio:" + t.npy + " --corpus toy --out " + t.dir +
                  "/toy.h5");
}

void ExpectBadInput(const CliRun& r, const std::string& dir, const std::vector<std::string>& inputs,
                    const std::vector<std::string>& needles) {
  EXPECT_EQ(r.code, 2) << r.out;
  for (const auto& n : needles) EXPECT_NE(r.out.find(n), std::string::npos) << "missing '" << n << "' in: " << r.out;
  auto sorted = inputs;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(ListDir(dir), sorted) << "no store and no temporary may be left behind";
}

std::vector<float> Vec(int d, float base) {
  std::vector<float> v(d);
  for (int k = 0; k < d; ++k) v[k] = base + 0.25f * k;
  return v;
}

TEST(ImportCli, TableFormWithNpyNpzAndOpenSmileCsv) {
  Table t = WriteTable();
  // text: per-utterance npz members; smile: openSMILE functionals CSV (';', quoted names, frameTime).
  WriteBytes(t.dir + "/text.npz", ZipBytes({{"u1.npy", NpyF32({2}, {1, 1})}, {"u2.npy", NpyF32({2}, {2, 2})},
                                            {"u3.npy", NpyF32({1, 2}, {3, 3})}, {"u4.npy", NpyF32({2}, {4, 4})}},
                                           /*deflate=*/true, /*zip64=*/true));
  WriteBytes(t.dir + "/smile.csv", "name;frameTime;F0;loudness\n'u4';0.0;4.5;-1e-3\n'u2';0.0;2.5;2\n"
                                   "'u1';0.0;1.5;1\n'u3';0.0;3.5;3\n'extra';0.0;9;9\n");
  CliRun r = Emosweep("--metadata " + t.meta + " --features audio=audio:" + t.npy + " --features text=text:" + t.dir +
                   "/text.npz --features smile=audio:" + t.dir + "/smile.csv --corpus toy --language en --out " +
                   t.dir + "/toy.h5 --json --log-level warn");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["utterances"], 4);
  EXPECT_EQ(j["speakers"], 2);
  EXPECT_EQ(j["labels"]["neutral"], 2);
  auto c = ReadFeatureStore(t.dir + "/toy.h5");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->utterances[0].id, "u1");
  EXPECT_EQ(c->utterances[0].transcript, "hi, there");
  EXPECT_DOUBLE_EQ(c->utterances[2].duration_s, 0.5);
  EXPECT_EQ(c->FindFeature("audio")->values, t.audio);
  EXPECT_EQ(c->FindFeature("text")->values, (std::vector<float>{1, 1, 2, 2, 3, 3, 4, 4}));
  EXPECT_EQ(c->FindFeature("smile")->values, (std::vector<float>{1.5f, 1, 2.5f, 2, 3.5f, 3, 4.5f, -1e-3f}));
  std::vector<std::string> expect;  // canonical taxonomy order, present labels only
  for (const auto& l : CanonicalLabels())
    if (l == "anger" || l == "neutral" || l == "sadness") expect.push_back(l);
  EXPECT_EQ(c->label_set, expect);
  EXPECT_EQ(ListDir(t.dir), (std::vector<std::string>{"audio.npy", "meta.csv", "smile.csv", "text.npz", "toy.h5"}));
}

// Headers in another case or with blanks are read (as generic_csv reads them); columns still unused are named.
TEST(ImportCli, TableFormHeadersMatchCaseInsensitivelyAndUnusedColumnsAreNamed) {
  Table t = WriteTable();
  CliRun r = ImportWithMetadata(t, "File,Speaker, Gender ,LABEL,Mood\n"
                                  "wav/u1.wav,s1,f,anger,x\nwav/u2.wav,s1,f,neutral,x\nwav/u3.wav,s2,m,sadness,x\n"
                                  "wav/u4.wav,s2,m,neutral,x\n");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("columns not used: 'Mood'"), std::string::npos) << r.out;
  auto c = ReadFeatureStore(t.dir + "/toy.h5");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->utterances[0].speaker, "s1");
  EXPECT_EQ(c->utterances[0].gender, "f");
  EXPECT_EQ(c->utterances[2].gender, "m");
}

// helper-63: blanks around a field made "s1 " another speaker than "s1" (and " f" an unknown gender); `Label` lost
// to an `emotion` column; an infinite duration was stored.
TEST(ImportCli, TableFieldsAreTrimmedAndTheLabelColumnWinsOverItsAlias) {
  Table t = WriteTable();
  CliRun r = ImportWithMetadata(t, "file,speaker,gender,Label,emotion\n"
                                  "wav/u1.wav,s1 , f,anger,neutral\nwav/u2.wav, s1,f,neutral,anger\n"
                                  "wav/u3.wav,s2,m,sadness,x\nwav/u4.wav,s2,m ,neutral,x\n");
  ASSERT_EQ(r.code, 0) << r.out;
  auto c = ReadFeatureStore(t.dir + "/toy.h5");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->utterances[0].speaker, "s1");
  EXPECT_EQ(c->utterances[1].speaker, "s1");
  EXPECT_EQ(c->utterances[0].gender, "f");
  EXPECT_EQ(c->utterances[3].gender, "m");
  EXPECT_EQ(c->utterances[0].label, "anger") << "the 'Label' column, not its alias 'emotion'";
  CliRun inf = ImportWithMetadata(t, "file,speaker,label,duration\nwav/u1.wav,s1,anger,inf\nwav/u2.wav,s1,neutral,1\n"
                                     "wav/u3.wav,s2,sadness,1\nwav/u4.wav,s2,neutral,1\n");
  EXPECT_EQ(inf.code, 2) << inf.out;
  EXPECT_NE(inf.out.find("duration 'inf' is not a non-negative number"), std::string::npos) << inf.out;
}

TEST(ImportCli, LabelMapDropsRowsAndAlignedRowsFollow) {
  Table t = WriteTable("sadness");
  WriteBytes(t.dir + "/map.toml", "name = \"toy\"\ntargets = [\"anger\", \"neutral\"]\ndrop = [\"sadness\"]\n"
                                  "[map]\nanger = \"anger\"\nneutral = \"neutral\"\n");
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --label-map " + t.dir +
                   "/map.toml --corpus toy --out " + t.dir + "/o.h5 --json --log-level warn");
  ASSERT_EQ(r.code, 0) << r.out;
  auto c = ReadFeatureStore(t.dir + "/o.h5");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ(c->utterances[2].id, "u4");
  EXPECT_EQ(c->FindFeature("a")->values, (std::vector<float>{1, 2, 3, 4, 5, 6, 10, 11, 12}));
  // A duplicate id is an error also when the map drops one of its rows (helper-63: it went through).
  WriteBytes(t.meta, "file,speaker,label\nwav/u1.wav,s1,anger\nwav/u2.wav,s1,neutral\nwav/u1.wav,s2,sadness\n"
                     "wav/u4.wav,s2,neutral\n");
  CliRun dup = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --label-map " + t.dir +
                        "/map.toml --corpus toy --out " + t.dir + "/d.h5");
  EXPECT_EQ(dup.code, 2) << dup.out;
  EXPECT_NE(dup.out.find("duplicate utterance id 'u1' (also on line 2)"), std::string::npos) << dup.out;
}

TEST(ImportCli, PickleFormOnARealSeedFile) {
  const std::string pkl = std::string(EMOSWEEP_SHARED_DIR) + "/features/iemocap-seed-pkl/glomer_IEMOCAP_4class_BERT_WAV2VEC_val.pkl";
  if (!FileExists(pkl)) GTEST_SKIP() << "real seed pickle not found: " << pkl << " (../shared absent)";
  const std::string dir = TestDir();
  CliRun r = Emosweep("--pickle " + pkl + " --label-map glomer_iemocap4 --corpus iemocap_glomer_val --out " + dir +
                   "/g.h5 --json --log-level warn");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["utterances"], 498);
  EXPECT_EQ(j["speakers"], 10);
  EXPECT_EQ(j["labels"], nlohmann::json({{"anger", 106}, {"happiness", 140}, {"sadness", 120}, {"neutral", 132}}));
  EXPECT_EQ(j["features"][0]["dim"], 768);
  EXPECT_EQ(j["features"][1]["dim"], 768);
}

// ---- bad input: one test per case ----

TEST(ImportCliBad, CorruptPickle) {
  const std::string dir = TestDir();
  std::string b = SeedPickleBytes({{Vec(4, 0), Vec(4, 1), 0, ""}});
  b[b.size() / 2] = '\xff';  // an unknown opcode or a broken length somewhere in the stream
  b[2] = '\xff';             // the byte after PROTO 4: certainly not an opcode
  WriteBytes(dir + "/bad.pkl", b);
  CliRun r = Emosweep("--pickle " + dir + "/bad.pkl --label-map glomer_iemocap4 --corpus c --out " + dir + "/o.h5");
  ExpectBadInput(r, dir, {"bad.pkl"}, {dir + "/bad.pkl: byte 2: not a pickle opcode: 0xff"});
}

TEST(ImportCliBad, TruncatedPickle) {
  const std::string dir = TestDir();
  std::string b = SeedPickleBytes({{Vec(4, 0), Vec(4, 1), 0, ""}, {Vec(4, 2), Vec(4, 3), 1, ""}});
  WriteBytes(dir + "/cut.pkl", b.substr(0, b.size() * 2 / 3));
  CliRun r = Emosweep("--pickle " + dir + "/cut.pkl --label-map glomer_iemocap4 --corpus c --out " + dir + "/o.h5");
  ExpectBadInput(r, dir, {"cut.pkl"}, {dir + "/cut.pkl: byte ", "truncated"});
}

TEST(ImportCliBad, PickleWithDisallowedGlobal) {
  const std::string dir = TestDir();
  testing::PickleWriterOptions opt;
  opt.backward_hooks_global = {"os", "system"};
  WriteBytes(dir + "/evil.pkl", SeedPickleBytes({{Vec(4, 0), Vec(4, 1), 0, ""}}, opt));
  CliRun r = Emosweep("--pickle " + dir + "/evil.pkl --label-map glomer_iemocap4 --corpus c --out " + dir + "/o.h5");
  ExpectBadInput(r, dir, {"evil.pkl"}, {dir + "/evil.pkl: byte ", "STACK_GLOBAL 'os.system' is not on the allow-list"});
}

TEST(ImportCliBad, NanInPickleFeaturesNamesTheUtterance) {
  const std::string dir = TestDir();
  auto text = Vec(4, 0);
  text[2] = std::numeric_limits<float>::infinity();
  WriteBytes(dir + "/nan.pkl", SeedPickleBytes({{Vec(4, 0), Vec(4, 1), 0, "Ses01F_impro01_F000.wav_original"},
                                                {text, Vec(4, 1), 1, "Ses01F_impro01_M001.wav_original"}}));
  CliRun r = Emosweep("--pickle " + dir + "/nan.pkl --label-map glomer_iemocap4 --corpus c --out " + dir + "/o.h5");
  ExpectBadInput(r, dir, {"nan.pkl"}, {dir + "/nan.pkl", "non-finite", "Ses01F_impro01_M001", "'text'"});
}

TEST(ImportCliBad, UnknownLabelNotInTheMap) {
  const std::string dir = TestDir();
  WriteBytes(dir + "/l.pkl", SeedPickleBytes({{Vec(4, 0), Vec(4, 1), 0, ""}, {Vec(4, 0), Vec(4, 1), 7, ""}}));
  CliRun r = Emosweep("--pickle " + dir + "/l.pkl --label-map glomer_iemocap4 --corpus c --out " + dir + "/o.h5");
  ExpectBadInput(r, dir, {"l.pkl"}, {dir + "/l.pkl: record 1", "'7'"});
}

// The adapter form's options were silently ignored by the table and pickle forms (--limit imported every row).
TEST(ImportCliBad, AdapterOnlyOptionsAreRefusedByTheOtherForms) {
  Table t = WriteTable();
  for (const std::string& opt : {"--limit 2", "--threads 1", "--skip-bad", "--root /tmp", "--normalise peak",
                                 "--tfidf-dim 8", "--checkpoint-every 5", "--audio-encoder e.pt"}) {
    CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir +
                        "/o.h5 " + opt);
    ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"},
                   {opt.substr(0, opt.find(' ')) + " applies to the --adapter form only"});
  }
  CliRun ok = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  EXPECT_EQ(ok.code, 0) << ok.out;
}

TEST(ImportCliBad, UnknownLabelWithoutMapInTable) {
  Table t = WriteTable("boredom-ish");
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.meta + ": line 4", "'boredom-ish' is not a canonical label"});
}

TEST(ImportCliBad, InvalidUtf8InMetadataNamesTheLine) {
  // Before: imported, and `data inspect --json` then failed with an unexpected exception.
  Table t = WriteTable("sadness");
  WriteBytes(t.meta, "file,speaker,label,transcript,duration\n"
                     "wav/u1.wav,s1,anger,hi,1.5\n"
                     "wav/u2.wav,s1,neutral,caf\xC3\xA9,2\n"
                     "wav/u3.wav,s2,sadness,caf\xE9,0.5\n"
                     "wav/u4.wav,s2,neutral,y,1\n");
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.meta + " line 4: invalid UTF-8 (byte 0xE9 at column 26)"});
}

TEST(ImportCliBad, InvalidUtf8InAPickleIdNamesTheFile) {
  const std::string dir = TestDir();
  WriteBytes(dir + "/u.pkl", SeedPickleBytes({{Vec(4, 0), Vec(4, 1), 0, "ok_1"}, {Vec(4, 0), Vec(4, 1), 1, "bad_\xFF"}}));
  CliRun r = Emosweep("--pickle " + dir + "/u.pkl --label-map glomer_iemocap4 --corpus c --out " + dir + "/o.h5");
  ExpectBadInput(r, dir, {"u.pkl"}, {dir + "/u.pkl", "is not valid UTF-8"});
}

TEST(ImportCliBad, WrongDimensionAcrossPickleFiles) {
  const std::string dir = TestDir();
  WriteBytes(dir + "/a.pkl", SeedPickleBytes({{Vec(4, 0), Vec(4, 1), 0, ""}}));
  WriteBytes(dir + "/b.pkl", SeedPickleBytes({{Vec(5, 0), Vec(4, 1), 1, ""}}));
  CliRun r = Emosweep("--pickle " + dir + "/a.pkl --pickle " + dir + "/b.pkl --label-map glomer_iemocap4 --corpus c --out " +
                   dir + "/o.h5");
  ExpectBadInput(r, dir, {"a.pkl", "b.pkl"}, {dir + "/b.pkl: record 0", "dimension 5", dir + "/a.pkl: record 0 has 4"});
}

TEST(ImportCliBad, WrongDimensionAcrossNpzMembers) {
  Table t = WriteTable();
  WriteBytes(t.dir + "/t.npz", ZipBytes({{"u1.npy", NpyF32({2}, {1, 1})}, {"u2.npy", NpyF32({2}, {2, 2})},
                                         {"u3.npy", NpyF32({3}, {3, 3, 3})}, {"u4.npy", NpyF32({2}, {4, 4})}}, true));
  CliRun r = Emosweep("--metadata " + t.meta + " --features t=text:" + t.dir + "/t.npz --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv", "t.npz"}, {t.dir + "/t.npz, member 'u3'", "dimension 3"});
}

TEST(ImportCliBad, TruncatedNpy) {
  Table t = WriteTable();
  std::string b = NpyF32({4, 3}, t.audio);
  WriteBytes(t.npy, b.substr(0, b.size() - 7));
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.npy + ": truncated .npy data"});
}

TEST(ImportCliBad, WrongDtypeNpy) {
  Table t = WriteTable();
  WriteBytes(t.npy, NpyBytes("<i2", {4, 3}, std::string(24, '\1')));
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.npy + ": dtype '<i2' is not supported"});
}

TEST(ImportCliBad, MismatchedRowCounts) {
  Table t = WriteTable();
  WriteBytes(t.npy, NpyF32({3, 3}, std::vector<float>(9, 1.f)));
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.npy + ": 3 rows, but the metadata CSV has 4 rows"});
}

TEST(ImportCliBad, NanInNpyNamesTheUtterance) {
  Table t = WriteTable();
  t.audio[7] = std::nanf("");
  WriteBytes(t.npy, NpyF32({4, 3}, t.audio));
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.npy + ": non-finite value", "utterance 'u3', column 1"});
  // A finite float64 beyond float32's range becomes inf: the message says both (helper-63: "non-finite" only).
  std::string payload(4 * 3 * 8, '\0');
  for (int k = 0; k < 12; ++k) {
    const double v = k == 4 ? 1e39 : 0.5;
    std::memcpy(&payload[static_cast<size_t>(k) * 8], &v, 8);
  }
  WriteBytes(t.npy, testing::NpyBytes("<f8", {4, 3}, payload));
  CliRun big = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir +
                        "/o.h5");
  ExpectBadInput(big, t.dir, {"audio.npy", "meta.csv"}, {"infinite, or beyond float32's range"});
}

// Session 17's audit.
std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ImportCliBad, OutOverAnInputIsRefusedAndTheInputKept) {
  Table t = WriteTable();
  const std::string npy_before = ReadAll(t.npy), meta_before = ReadAll(t.meta);
  for (const std::string& out : {t.npy, t.meta}) {
    CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + out);
    ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {"--out " + out + " is the same file as", "refusing to overwrite"});
  }
  EXPECT_EQ(ReadAll(t.npy), npy_before);
  EXPECT_EQ(ReadAll(t.meta), meta_before);
}

TEST(ImportCliBad, ArrayWithoutColumnsNamesTheArray) {
  Table t = WriteTable();
  WriteBytes(t.npy, NpyF32({4, 0}, {}));
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.npy + ": the array has no columns"});
}

TEST(ImportCliBad, NpzWithTwoMembersOfOneNameIsAmbiguous) {
  Table t = WriteTable();
  WriteBytes(t.dir + "/t.npz", ZipBytes({{"x.npy", NpyF32({4, 2}, std::vector<float>(8, 1.f))},
                                         {"x.npy", NpyF32({4, 2}, std::vector<float>(8, 2.f))}}, false));
  CliRun r = Emosweep("--metadata " + t.meta + " --features t=text:" + t.dir + "/t.npz:x --corpus c --out " + t.dir +
                      "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv", "t.npz"}, {t.dir + "/t.npz: two members are named 'x'"});
}

TEST(ImportCliBad, DirectoryAsPickleIsNamedAsADirectory) {
  Table t = WriteTable();
  CliRun r = Emosweep("--pickle " + t.dir + " --label-map glomer_iemocap4 --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.dir + ": is a directory"});
}

TEST(ImportCliBad, MissingFile) {
  Table t = WriteTable();
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.dir + "/gone.npy --corpus c --out " + t.dir +
                   "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.dir + "/gone.npy", "not found"});
  CliRun p = Emosweep("--pickle " + t.dir + "/gone.pkl --label-map glomer_iemocap4 --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(p, t.dir, {"audio.npy", "meta.csv"}, {t.dir + "/gone.pkl"});
}

TEST(ImportCliBad, CsvWithARaggedRow) {
  Table t = WriteTable();
  WriteBytes(t.meta, "id,speaker,label\nu1,s1,anger\nu2,s1\nu3,s2,neutral\nu4,s2,neutral\n");
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.npy + " --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "meta.csv"}, {t.meta + ": line 3: 2 fields, but the header has 3"});
}

TEST(ImportCliBad, FeatureCsvWithANonNumericValue) {
  Table t = WriteTable();
  WriteBytes(t.dir + "/f.csv", "name,a,b\nu1,1,2\nu2,3,x4\nu3,5,6\nu4,7,8\n");
  CliRun r = Emosweep("--metadata " + t.meta + " --features f=audio:" + t.dir + "/f.csv --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"audio.npy", "f.csv", "meta.csv"}, {t.dir + "/f.csv: line 3, column 'b': 'x4' is not a number"});
  WriteBytes(t.dir + "/f.csv", "name,a,b\nu1,1,2\nu2,3,1e50\nu3,5,6\nu4,7,8\n");  // a number, not a float32
  CliRun big = Emosweep("--metadata " + t.meta + " --features f=audio:" + t.dir + "/f.csv --corpus c --out " + t.dir +
                        "/o.h5");
  ExpectBadInput(big, t.dir, {"audio.npy", "f.csv", "meta.csv"},
                 {t.dir + "/f.csv: line 3, column 'b': '1e50' is out of the float32 range"});
}

TEST(ImportCliBad, CorruptNpz) {
  Table t = WriteTable();
  std::string z = ZipBytes({{"a.npy", NpyF32({4, 3}, t.audio)}}, /*deflate=*/true);
  WriteBytes(t.dir + "/a.npz", z.substr(0, z.size() - 30));
  CliRun r = Emosweep("--metadata " + t.meta + " --features a=audio:" + t.dir + "/a.npz --corpus c --out " + t.dir + "/o.h5");
  ExpectBadInput(r, t.dir, {"a.npz", "audio.npy", "meta.csv"}, {t.dir + "/a.npz", "truncated"});
}

}  // namespace
}  // namespace emosweep::data
