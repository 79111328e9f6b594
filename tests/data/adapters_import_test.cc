// ImportCorpus on fixture trees: the whole pipeline into a real HDF5 store,
// resuming, and every bad-input case (nothing half-written).
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "data/adapters/import_corpus.h"
#include "data/feature_store.h"
#include "data/label_map.h"
#include "tests/data/adapters_fixture.h"

namespace emosweep::data {
namespace {

using testing::AdapterTree;
namespace fs = std::filesystem;

void EmodbTree(const AdapterTree& t) {
  int seed = 0;
  for (const char* n : {"03a01Fa", "03a01Wa", "08b10Tb", "16a05Nc", "16a05Lb"}) t.Wav(std::string("wav/") + n + ".wav", seed++);
}

ImportCorpusOptions Options(const AdapterTree& t, const std::string& adapter) {
  ImportCorpusOptions o;
  o.adapter = adapter;
  o.root = t.root();
  o.out = t.Path("out/store.h5");
  o.threads = 2;
  o.progress = false;
  fs::create_directories(t.Path("out"));
  return o;
}

// Nothing but the store (or nothing at all) in the output folder: no temporaries left behind.
std::vector<std::string> OutFiles(const AdapterTree& t) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(t.Path("out"))) out.push_back(e.path().filename().string());
  return out;
}

TEST(AdapterImport, EmodbFixtureToStore) {
  AdapterTree t;
  EmodbTree(t);
  auto o = Options(t, "emodb");
  o.features = {"logmel64_stats", "tfidf"};
  o.tfidf_dim = 64;
  auto r = ImportCorpus(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->utterances, 5);
  EXPECT_EQ(r->extracted, 5);
  EXPECT_EQ(r->reused, 0);
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "emodb");
  EXPECT_EQ(c->language, "de");
  EXPECT_EQ(c->label_set, (std::vector<std::string>{"anger", "boredom", "happiness", "neutral", "sadness"}));
  ASSERT_EQ(c->size(), 5u);
  const Utterance& u = c->utterances[2];
  EXPECT_EQ(u.id, "08b10Tb");
  EXPECT_EQ(u.speaker, "08");
  EXPECT_EQ(u.gender, "f");
  EXPECT_EQ(u.label, "sadness");
  EXPECT_EQ(u.original_label, "T");
  EXPECT_EQ(u.group, "b10");
  EXPECT_EQ(u.source, t.Path("wav/08b10Tb.wav"));
  EXPECT_NEAR(u.duration_s, 0.4, 0.01);  // seed 2: 0.3 s + 2 * 0.05 s
  const FeatureSet* mel = c->FindFeature("logmel64_stats");
  ASSERT_NE(mel, nullptr);
  EXPECT_EQ(mel->rows(), 5);
  for (float v : mel->values) ASSERT_TRUE(std::isfinite(v));
  // Different tones give different rows.
  EXPECT_NE(std::vector<float>(mel->row(0), mel->row(0) + mel->dim), std::vector<float>(mel->row(1), mel->row(1) + mel->dim));
  const FeatureSet* tf = c->FindFeature("tfidf");
  ASSERT_NE(tf, nullptr);
  EXPECT_EQ(tf->modality, "text");
  EXPECT_EQ(tf->dim, 64);
  EXPECT_EQ(c->metadata.value("adapter", ""), "emodb");
  EXPECT_EQ(c->metadata.value("label_map", ""), "emodb");
  EXPECT_EQ(OutFiles(t), std::vector<std::string>{"store.h5"});
}

TEST(AdapterImport, ResumeReusesStoredUtterances) {
  AdapterTree t;
  EmodbTree(t);
  auto o = Options(t, "emodb");
  o.limit = 3;
  auto first = ImportCorpus(o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->utterances, 3);
  o.limit = 0;
  auto second = ImportCorpus(o);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->utterances, 5);
  EXPECT_EQ(second->reused, 3);
  EXPECT_EQ(second->extracted, 2);
  // The resumed store equals a fresh import bit for bit.
  auto fresh_opts = o;
  fresh_opts.out = t.Path("out/fresh.h5");
  auto fresh = ImportCorpus(fresh_opts);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->reused, 0);
  EXPECT_EQ(second->content_hash, fresh->content_hash);
  // A clip rewritten in place after the store (same path, other audio) is extracted again, not reused stale.
  t.Wav("wav/08b10Tb.wav", /*seed=*/7);
  const auto later = std::filesystem::last_write_time(o.out) + std::chrono::seconds(2);
  std::filesystem::last_write_time(t.Path("wav/08b10Tb.wav"), later);
  auto rewritten = ImportCorpus(o);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
  EXPECT_EQ(rewritten->reused, 4);
  EXPECT_EQ(rewritten->extracted, 1);
  EXPECT_NE(rewritten->content_hash, fresh->content_hash);
  auto fresh2_opts = o;
  fresh2_opts.out = t.Path("out/fresh2.h5");
  auto fresh2 = ImportCorpus(fresh2_opts);
  ASSERT_TRUE(fresh2.ok());
  EXPECT_EQ(rewritten->content_hash, fresh2->content_hash);  // what a fresh import of the new audio gives
  // A clip replaced by one with an older mtime (cp -p, rsync -a, tar x; helper-60): its ctime is new, and it is
  // extracted again. 50 ms past the store's write, so that the ctime is later on a coarse file-system clock.
  const auto store_time = std::filesystem::last_write_time(o.out);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  t.Wav("wav/08b10Tb.wav", /*seed=*/11);
  std::filesystem::last_write_time(t.Path("wav/08b10Tb.wav"), store_time - std::chrono::hours(1));
  auto copied = ImportCorpus(o);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(copied->reused, 4);
  EXPECT_EQ(copied->extracted, 1) << "a clip copied over with an old mtime was reused stale";
  EXPECT_NE(copied->content_hash, rewritten->content_hash);
  // Other extraction parameters: nothing is reused.
  o.normalisation = "peak";
  auto third = ImportCorpus(o);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->reused, 0);
  EXPECT_EQ(third->extracted, 5);
}

TEST(AdapterImport, LabelMapDropsAndCustomMapFile) {
  AdapterTree t;
  EmodbTree(t);
  t.Text("core.toml", "name = \"emodb_core\"\ntargets = [\"anger\", \"happiness\", \"neutral\", \"sadness\"]\n"
                      "drop = [\"L\", \"E\", \"A\"]\n[map]\nW = \"anger\"\nF = \"happiness\"\nN = \"neutral\"\nT = \"sadness\"\n");
  auto o = Options(t, "emodb");
  o.label_map = t.Path("core.toml");
  auto r = ImportCorpus(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->utterances, 4);
  EXPECT_EQ(r->dropped, 1);  // 16a05Lb (boredom)
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->label_set, (std::vector<std::string>{"anger", "happiness", "neutral", "sadness"}));
  EXPECT_EQ(c->metadata.value("label_map", ""), "emodb_core");  // the map's name, as the table import records it
}

// --corpus and --language name the stored corpus; the provenance keeps the adapter's own name.
TEST(AdapterImport, CorpusNameAndLanguageOverrideButTheAdapterIsRecorded) {
  AdapterTree t;
  EmodbTree(t);
  auto o = Options(t, "emodb");
  o.corpus_name = "emodb_subset";
  o.language = "de-AT";
  ASSERT_TRUE(ImportCorpus(o).ok());
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->name, "emodb_subset");
  EXPECT_EQ(c->language, "de-AT");
  EXPECT_EQ(c->metadata.value("adapter", ""), "emodb");
}

TEST(AdapterImport, LabelOutsideMapNamesFileAndLabel) {
  AdapterTree t;
  EmodbTree(t);
  t.Text("partial.toml", "name = \"partial\"\n[map]\nW = \"anger\"\nF = \"happiness\"\nN = \"neutral\"\nT = \"sadness\"\n");
  auto o = Options(t, "emodb");
  o.label_map = t.Path("partial.toml");
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsBadInput()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("16a05Lb.wav"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("'L'"), std::string::npos) << r.status().message();
  EXPECT_TRUE(OutFiles(t).empty());
}

TEST(AdapterImport, GenericCsvNeedsCanonicalLabelsWithoutMap) {
  AdapterTree t;
  t.Wav("a.wav");
  t.Text("metadata.csv", "file,speaker,label\na.wav,s1,angry\n");
  auto o = Options(t, "generic_csv");
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'angry' is not a canonical label"), std::string::npos) << r.status().message();
  EXPECT_TRUE(OutFiles(t).empty());
}

TEST(AdapterImport, GenericCsvNamesColumnsItDoesNotRead) {
  AdapterTree t;
  t.Wav("a.wav");
  t.Text("metadata.csv", "file,speaker,label,gendre,Session\na.wav,s1,anger,f,1\n");
  ::testing::internal::CaptureStderr();
  auto r = ImportCorpus(Options(t, "generic_csv"));
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(err.find(t.Path("metadata.csv") + ": columns not used: 'gendre' (read:"), std::string::npos) << err;
}

TEST(AdapterImport, GenericCsvUnknownLabelNamesTheMetadataLine) {
  // Before: the message blamed b.wav; the problem is on metadata.csv's line 3.
  AdapterTree t;
  t.Wav("a.wav");
  t.Wav("b.wav", 1);
  t.Text("metadata.csv", "file,speaker,label\na.wav,s1,anger\nb.wav,s1,angry\n");
  auto r = ImportCorpus(Options(t, "generic_csv"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(t.Path("metadata.csv") + " line 3: label 'angry' is not a canonical label"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find("b.wav"), std::string::npos) << r.status().message();
  EXPECT_TRUE(OutFiles(t).empty());
}

TEST(AdapterImport, GenericCsvInvalidUtf8NamesTheLine) {
  // Before: imported, and `data inspect --json` then threw on the speaker.
  AdapterTree t;
  t.Wav("a.wav");
  t.Wav("b.wav", 1);
  t.Text("metadata.csv", "file,speaker,label,transcript\na.wav,s1,anger,ok\nb.wav,s\xC3,anger,fine\n");
  auto r = ImportCorpus(Options(t, "generic_csv"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(t.Path("metadata.csv") + " line 3: invalid UTF-8 (byte 0xC3 at column 8)"),
            std::string::npos)
      << r.status().message();
  t.Text("metadata.csv", "file,speaker,label,transcript\na.wav,s1,anger,\"two\nlines \xFF\"\n");
  r = ImportCorpus(Options(t, "generic_csv"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(t.Path("metadata.csv") + " line 3: invalid UTF-8"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(OutFiles(t).empty());
}

TEST(AdapterImport, InvalidUtf8FromAFileNameIsRefused) {
  // TESS takes the spoken word from the file name; a name with invalid UTF-8 is refused, escaped.
  AdapterTree t;
  t.Wav("OAF_angry/OAF_back_angry.wav");
  t.Wav("OAF_sad/OAF_b\xE9" "ck_sad.wav", 1);
  auto r = ImportCorpus(Options(t, "tess"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("OAF_b\\xE9ck_sad.wav"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("is not valid UTF-8"), std::string::npos) << r.status().message();
  EXPECT_TRUE(OutFiles(t).empty());
}

TEST(AdapterImport, CorpusNameOptionIsStored) {
  // Before: --corpus NAME was ignored and the store was named after the adapter.
  AdapterTree t;
  EmodbTree(t);
  auto o = Options(t, "emodb");
  o.corpus_name = "berlin";
  auto r = ImportCorpus(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->corpus, "berlin");
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "berlin");
}

TEST(AdapterImport, UnreadableWavIsBadInputAndWritesNothing) {
  AdapterTree t;
  EmodbTree(t);
  t.Text("wav/09a02Wa.wav", "RIFF\x10\0\0\0WAVEjunk that is not audio");
  auto o = Options(t, "emodb");
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsBadInput()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("09a02Wa.wav"), std::string::npos) << r.status().message();
  EXPECT_TRUE(OutFiles(t).empty());
}

TEST(AdapterImport, FailedImportKeepsThePreviousStore) {
  AdapterTree t;
  EmodbTree(t);
  auto o = Options(t, "emodb");
  auto first = ImportCorpus(o);
  ASSERT_TRUE(first.ok());
  t.Text("wav/09a02Wa.wav", "not a wav at all");
  ASSERT_FALSE(ImportCorpus(o).ok());
  auto info = ReadStoreInfo(o.out);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->num_utterances, 5);
  EXPECT_EQ(OutFiles(t), std::vector<std::string>{"store.h5"});
}

TEST(AdapterImport, UnparsableNameFailsUnlessSkipBad) {
  AdapterTree t;
  EmodbTree(t);
  t.Wav("wav/recording-final.wav");
  auto o = Options(t, "emodb");
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("recording-final.wav"), std::string::npos);
  EXPECT_TRUE(OutFiles(t).empty());
  o.skip_bad = true;
  auto k = ImportCorpus(o);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->utterances, 5);
  EXPECT_EQ(k->skipped_files, 1);
}

TEST(AdapterImport, MissingRoot) {
  AdapterTree t;
  auto o = Options(t, "ravdess");
  o.root = t.Path("no-such-corpus");
  auto r = ImportCorpus(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("no-such-corpus"), std::string::npos);
  EXPECT_TRUE(OutFiles(t).empty());
}

TEST(AdapterImport, MeldTextOnlyImportsTfidfAndRefusesAudio) {
  AdapterTree t;
  t.Text("train_sent_emo.csv",
         "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
         "1,\"Oh, my God!\",Phoebe,surprise,negative,0,0\n2,I'm fine.,Ross,neutral,neutral,0,1\n"
         "3,Yay!,Monica,joy,positive,1,0\n");
  auto o = Options(t, "meld");
  auto audio = ImportCorpus(o);
  ASSERT_FALSE(audio.ok());
  EXPECT_NE(audio.status().message().find("--features tfidf"), std::string::npos) << audio.status().message();
  o.features = {"tfidf"};
  o.tfidf_dim = 32;
  auto r = ImportCorpus(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto c = ReadFeatureStore(o.out);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ(c->utterances[2].id, "train_dia1_utt0");
  EXPECT_EQ(c->utterances[2].label, "happiness");
  EXPECT_EQ(c->utterances[2].transcript, "Yay!");
  ASSERT_NE(c->FindFeature("tfidf"), nullptr);
  EXPECT_EQ(c->FindFeature("tfidf")->dim, 32);
}

TEST(AdapterImport, UnknownFeatureSet) {
  auto r = ParseImportFeatures("logmel64_stats,nosuch");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nosuch"), std::string::npos);
  auto ok = ParseImportFeatures("tfidf,logmel64_stats");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::vector<std::string>{"tfidf", "logmel64_stats"}));
  auto twice = ParseImportFeatures("tfidf,logmel64_stats,tfidf");  // was merged without a word
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("feature set 'tfidf' is listed twice"), std::string::npos)
      << twice.status().message();
}

}  // namespace
}  // namespace emosweep::data
