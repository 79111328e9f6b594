// Restricted unpickler and seed-pickle import: the three real seed files
// (counts, shapes, labels, values bit for bit against the raw storage bytes
// located without the unpickler) and synthetic pickles for the error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "core/files.h"
#include "data/feature_store.h"
#include "data/import/pickle.h"
#include "data/import/pickle_import.h"
#include "tests/data/import_test_util.h"

namespace emosweep::data {
namespace {

using testing::SeedPickleBytes;
using testing::SeedRecord;

const std::string kSeedDir = std::string(EMOSWEEP_SHARED_DIR) + "/features/iemocap-seed-pkl/";

struct RealFile {
  const char* name;
  const char* label_map;
  size_t records;
  std::vector<int> label_counts;  // by class index 0..3 (spec §1.1 / §2.1)
  bool has_sample_id;
};

const RealFile kRealFiles[] = {
    {"glomer_IEMOCAP_4class_BERT_WAV2VEC_val.pkl", "glomer_iemocap4", 498, {106, 140, 120, 132}, true},
    {"cemobam_IEMOCAP_BERT_WAV2VEC_val.pkl", "cemobam_iemocap4", 551, {102, 163, 173, 113}, false},
    {"cemobam_IEMOCAP_BERT_WAV2VEC_test.pkl", "cemobam_iemocap4", 551, {106, 167, 171, 107}, false},
};

bool HaveSeeds() { return FileExists(kSeedDir + kRealFiles[0].name); }
#define REQUIRE_SEEDS() \
  if (!HaveSeeds()) GTEST_SKIP() << "real seed pickles not found under " << kSeedDir << " (../shared absent)"

// Independent of the unpickler: each float storage in the file is the tail
// of a legacy torch.save stream "...q\x01a." (storage key list) followed by
// the int64 element count and the raw float32 data. Returns the payloads of
// all 768-element storages in file order.
std::vector<std::string> RawFloatPayloads(const std::string& bytes, int64_t numel) {
  std::string needle = std::string("q\x01" "a.", 4);
  needle.append(reinterpret_cast<const char*>(&numel), 8);
  std::vector<std::string> out;
  for (size_t p = bytes.find(needle); p != std::string::npos; p = bytes.find(needle, p + 1))
    out.push_back(bytes.substr(p + needle.size(), static_cast<size_t>(numel) * 4));
  return out;
}

TEST(ImportPickleReal, OpcodesOfRealFilesAreAllSupported) {
  REQUIRE_SEEDS();
  const auto& supported = SupportedPickleOpcodes();
  for (const auto& f : kRealFiles) {
    auto bytes = ReadFile(kSeedDir + f.name);
    ASSERT_TRUE(bytes.ok());
    auto hist = PickleOpcodeHistogram(*bytes, f.name);
    ASSERT_TRUE(hist.ok()) << hist.status().ToString();
    EXPECT_EQ(hist->at("PROTO"), 1);
    EXPECT_EQ(hist->at("STOP"), 1);
    EXPECT_EQ(hist->at("STACK_GLOBAL"), 3) << "rebuild_tensor_v2, _load_from_bytes, OrderedDict, then memo hits";
    for (const auto& [name, count] : *hist)
      EXPECT_TRUE(std::find(supported.begin(), supported.end(), name) != supported.end())
          << f.name << " uses " << name << " x" << count;
  }
}

TEST(ImportPickleReal, CountsShapesLabelsAndValuesBitForBit) {
  REQUIRE_SEEDS();
  for (const auto& f : kRealFiles) {
    SCOPED_TRACE(f.name);
    const std::string path = kSeedDir + f.name;
    auto map = LabelMap::Load(f.label_map);
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    PickleImportOptions opt;
    opt.corpus_name = "iemocap_seed";
    opt.label_map = &*map;
    ImportReport report;
    auto corpus = ImportSeedPickles({path}, opt, &report);
    ASSERT_TRUE(corpus.ok()) << corpus.status().ToString();
    ASSERT_EQ(corpus->size(), f.records);
    const FeatureSet* text = corpus->FindFeature("text");
    const FeatureSet* audio = corpus->FindFeature("audio");
    ASSERT_TRUE(text && audio);
    EXPECT_EQ(text->dim, 768);
    EXPECT_EQ(audio->dim, 768);
    EXPECT_EQ(text->modality, "text");
    EXPECT_EQ(audio->modality, "audio");
    std::vector<int> counts(4, 0);
    for (const auto& u : corpus->utterances) counts.at(std::stoi(u.original_label))++;
    EXPECT_EQ(counts, f.label_counts);
    // Canonical labels follow the map's class order.
    std::map<std::string, int> canon;
    for (const auto& u : corpus->utterances) canon[u.label]++;
    for (int c = 0; c < 4; ++c) EXPECT_EQ(canon[map->targets()[c]], f.label_counts[c]) << map->targets()[c];
    EXPECT_EQ(corpus->label_set, map->targets());

    auto bytes = ReadFile(path);
    ASSERT_TRUE(bytes.ok());
    auto raw = RawFloatPayloads(*bytes, 768);
    ASSERT_EQ(raw.size(), 2 * f.records);
    for (size_t i = 0; i < f.records; ++i) {
      ASSERT_EQ(std::memcmp(raw[2 * i].data(), text->row(i), 768 * 4), 0) << "text row " << i;
      ASSERT_EQ(std::memcmp(raw[2 * i + 1].data(), audio->row(i), 768 * 4), 0) << "audio row " << i;
    }
    if (f.has_sample_id) {
      EXPECT_EQ(corpus->utterances[0].id, "Ses03F_script01_3_F011");
      EXPECT_EQ(corpus->utterances[0].speaker, "Ses03_F");
      EXPECT_EQ(corpus->utterances[0].session, "3");
      std::set<std::string> speakers;
      for (const auto& u : corpus->utterances) speakers.insert(u.speaker);
      EXPECT_EQ(speakers.size(), 10u) << "five sessions x two actors";
      EXPECT_TRUE(report.notes.empty());
      EXPECT_NE(std::find(report.ignored_keys.begin(), report.ignored_keys.end(), "valence_label"),
                report.ignored_keys.end());
    } else {
      EXPECT_EQ(corpus->utterances[5].speaker, "unknown");
      EXPECT_EQ(corpus->utterances[5].id, std::string(f.name).substr(0, std::strlen(f.name) - 4) + "_5");
      ASSERT_EQ(report.notes.size(), 1u);
    }
  }
}

TEST(ImportPickleReal, ValuesSurviveTheFeatureStoreBitForBit) {
  REQUIRE_SEEDS();
  const std::string path = kSeedDir + kRealFiles[1].name;
  auto map = LabelMap::Load("cemobam_iemocap4");
  ASSERT_TRUE(map.ok());
  PickleImportOptions opt;
  opt.corpus_name = "cemobam_val";
  opt.label_map = &*map;
  ImportReport report;
  auto corpus = ImportSeedPickles({path}, opt, &report);
  ASSERT_TRUE(corpus.ok()) << corpus.status().ToString();
  const std::string out = testing::TestDir() + "/store.h5";
  ASSERT_TRUE(WriteFeatureStore(out, *corpus).ok());
  auto back = ReadFeatureStore(out);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto raw = RawFloatPayloads(*ReadFile(path), 768);
  const FeatureSet* audio = back->FindFeature("audio");
  ASSERT_TRUE(audio);
  ASSERT_EQ(audio->rows(), 551);
  for (int64_t i = 0; i < 551; ++i) ASSERT_EQ(std::memcmp(raw[2 * i + 1].data(), audio->row(i), 768 * 4), 0) << i;
  EXPECT_EQ(back->ContentHash(), corpus->ContentHash());
}

TEST(ImportPickle, SyntheticRoundTripWithIemocapIds) {
  std::vector<SeedRecord> recs = {{{1.5f, -2.f, 3.25f}, {0.f, 1e-30f}, 2, "Ses05M_impro08_M012.wav_original"},
                                  {{4.f, 5.f, 6.f}, {7.f, 8.f}, 0, "Ses01F_script02_2_F001.wav_original"}};
  auto parsed = ParseSeedPickle(SeedPickleBytes(recs), "mem.pkl");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 2u);
  const PickledValue* t = (*parsed)[0].Find("text_embed");
  ASSERT_TRUE(t && t->kind == PickledValue::Kind::kTensor);
  EXPECT_EQ(t->tensor.shape, std::vector<int64_t>{3});
  auto v = t->tensor.ToFloat32("x");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, recs[0].text);
  auto label = (*parsed)[0].Find("label")->tensor.ScalarInt("x");
  ASSERT_TRUE(label.ok());
  EXPECT_EQ(*label, 2);
  EXPECT_EQ((*parsed)[1].Find("sample_id")->s, "Ses01F_script02_2_F001.wav_original");
}

TEST(ImportPickle, UnsupportedOpcodeNamesOffsetAndOpcode) {
  // [] then BUILD: object state setting is never executed.
  auto r = ParseSeedPickle(std::string("\x80\x04]}b.", 6), "b.pkl");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("b.pkl: byte 4: opcode BUILD is not supported"), std::string::npos)
      << r.status().message();
}

TEST(ImportPickle, TextGlobalOutsideTheAllowListIsRefusedBeforeAnyCall) {
  auto r = ParseSeedPickle(std::string("\x80\x02" "cposix\nsystem\n(X\x02\x00\x00\x00lstR.", 27), "g.pkl");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("g.pkl: byte 2: GLOBAL 'posix.system' is not on the allow-list"),
            std::string::npos)
      << r.status().message();
}

TEST(ImportPickle, StorageCountMustMatchItsPersistentId) {
  std::string b = SeedPickleBytes({{{1.f, 2.f}, {}, 0, ""}});
  // The float storage's int64 element count (2) follows its key list's "a." (APPEND, STOP); make it 3.
  const size_t p = b.find(std::string("a.\x02\0\0\0\0\0\0\0", 10));
  ASSERT_NE(p, std::string::npos);
  b[p + 2] = 3;
  auto r = ParseSeedPickle(b, "n.pkl");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("storage holds 3 elements, its id says 2"), std::string::npos)
      << r.status().message();
}

// helper-63: a storage declared by its persistent id but missing from the key list (no count, no data) was read
// from past the end of an empty buffer and imported as garbage, exit 0.
TEST(ImportPickle, AStorageWithoutDataIsCorruptionNotGarbage) {
  testing::PickleWriterOptions o;
  o.empty_storage_key_list = true;
  auto r = ParseSeedPickle(SeedPickleBytes({{{1.f, 2.f, 3.f}, {}, 0, ""}}, o), "e.pkl");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is declared but its data is not in the stream"), std::string::npos)
      << r.status().message();
  // Bytes after the pickle's STOP (a second pickle appended) are not dropped without a word.
  auto appended = ParseSeedPickle(SeedPickleBytes({{{1.f}, {}, 0, ""}}) + SeedPickleBytes({{{2.f}, {}, 1, ""}}), "a.pkl");
  ASSERT_FALSE(appended.ok());
  EXPECT_NE(appended.status().message().find("bytes after the pickle's STOP"), std::string::npos)
      << appended.status().message();
}

// helper-63: a modern torch.save file (a zip archive) was refused as "byte 0: opcode PERSID is not supported".
TEST(ImportPickle, AZipArchiveSaysWhatItIs) {
  auto r = ParseSeedPickle(std::string("PK\x03\x04", 4) + std::string(64, '\0'), "z.pkl");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("z.pkl: a zip archive (torch.save's format since PyTorch 1.6)"),
            std::string::npos)
      << r.status().message();
}

TEST(ImportPickle, DeriveFromSampleId) {
  auto d = DeriveFromSampleId("Ses03F_script01_3_F011.wav_original");
  EXPECT_TRUE(d.known);
  EXPECT_EQ(d.id, "Ses03F_script01_3_F011");
  EXPECT_EQ(d.speaker, "Ses03_F");
  EXPECT_EQ(d.gender, "f");
  EXPECT_EQ(d.session, "3");
  EXPECT_EQ(d.group, "scripted");
  d = DeriveFromSampleId("Ses04F_impro03_M036.wav");
  EXPECT_EQ(d.speaker, "Ses04_M");  // the male actor speaks in a dialog led by the female actor
  EXPECT_EQ(d.group, "improvised");
  d = DeriveFromSampleId("03a01Fa.wav");
  EXPECT_FALSE(d.known);
  EXPECT_EQ(d.id, "03a01Fa");
  EXPECT_EQ(d.speaker, "unknown");
}

// Found by fuzz_pickle (fuzz/regressions/pickle/): containers nested a
// million deep (one TUPLE1 byte each) overflowed the stack when destroyed;
// a list appended into itself (through the memo) made a reference cycle.
TEST(ImportPickle, DeepNestingAndSelfReferenceAreCorruptionNotACrash) {
  std::string deep = std::string("\x80\x04N", 3) + std::string(1000000, '\x85') + ".";
  auto r = ParseSeedPickle(deep, "deep.pkl");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("deep.pkl: byte 102: containers nested deeper than 100"), std::string::npos)
      << r.status().message();
  auto self = ParseSeedPickle(std::string("\x80\x04]\x94h\x00" "a.", 8), "self.pkl");
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.status().message().find("self.pkl: byte 6: a list cannot contain itself"), std::string::npos)
      << self.status().message();
}

}  // namespace
}  // namespace emosweep::data
