// Splits: speaker independence, coverage, determinism, lint, split files, few-shot subsets.
#include "data/splits.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/portable_rng.h"
#include "store_test_util.h"

namespace emosweep::data {
namespace {

// 12 speakers with unequal utterance counts (3 + s % 4 per class), 3 classes,
// speakers in 4 sessions, two genders.
Corpus SpeakerCorpus() {
  Corpus c;
  c.name = "spk";
  c.label_set = {"anger", "neutral", "sadness"};
  int n = 0;
  for (int s = 0; s < 12; ++s)
    for (int l = 0; l < 3; ++l)
      for (int r = 0; r < 3 + s % 4; ++r) {
        Utterance u;
        u.id = "u" + std::to_string(n++);
        u.speaker = "spk" + std::to_string(s);
        u.session = "ses" + std::to_string(s / 3);
        u.gender = s % 2 ? "m" : "f";
        u.label = c.label_set[static_cast<size_t>(l)];
        c.utterances.push_back(u);
      }
  return c;
}

std::map<std::string, std::string> SpeakerOf(const Corpus& c) {
  std::map<std::string, std::string> m;
  for (const auto& u : c.utterances) m[u.id] = u.speaker;
  return m;
}

void ExpectSpeakerIndependentCover(const Corpus& c, const SplitSet& s) {
  auto spk = SpeakerOf(c);
  std::map<std::string, int> test_count;
  for (const auto& f : s.folds) {
    std::set<std::string> tr, te;
    for (const auto* part : {&f.train, &f.val}) for (const auto& id : *part) tr.insert(spk[id]);
    for (const auto& id : f.test) te.insert(spk[id]), ++test_count[id];
    for (const auto& t : te) EXPECT_EQ(tr.count(t), 0u) << f.name << " leaks speaker " << t;
    EXPECT_EQ(f.train.size() + f.val.size() + f.test.size(), c.size()) << f.name;
    EXPECT_FALSE(f.val.empty()) << f.name;
  }
  EXPECT_EQ(test_count.size(), c.size());  // every utterance is tested ...
  for (const auto& [id, n] : test_count) EXPECT_EQ(n, 1) << id;  // ... exactly once
}

TEST(Splits, SpeakerKFoldIsSpeakerIndependentAndCoversEverything) {
  Corpus c = SpeakerCorpus();
  SplitSpec spec;
  spec.k = 5;
  spec.seed = 3;
  auto s = MakeSplits(c, spec);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->folds.size(), 5u);
  ExpectSpeakerIndependentCover(c, *s);
  // Balanced by utterance count: greedy placement keeps folds within one speaker's size.
  size_t lo = SIZE_MAX, hi = 0;
  for (const auto& f : s->folds) lo = std::min(lo, f.test.size()), hi = std::max(hi, f.test.size());
  EXPECT_LE(hi - lo, 18u);  // the largest speaker has 3 * 6 = 18 utterances
  EXPECT_EQ(s->corpus_hash, c.ContentHash());
}

TEST(Splits, DeterministicForASeedDifferentForAnother) {
  Corpus c = SpeakerCorpus();
  SplitSpec spec;
  spec.seed = 11;
  auto a = MakeSplits(c, spec), b = MakeSplits(c, spec);
  spec.seed = 12;
  auto d = MakeSplits(c, spec);
  ASSERT_TRUE(a.ok() && b.ok() && d.ok());
  EXPECT_EQ(a->ToJson(), b->ToJson());
  EXPECT_EQ(a->Hash(), b->Hash());
  bool differs = false;
  for (size_t k = 0; k < a->folds.size(); ++k) differs |= a->folds[k].test != d->folds[k].test;
  EXPECT_TRUE(differs);
  EXPECT_NE(a->Hash(), d->Hash());
}

TEST(Splits, PortableRngStreamIsPinned) {
  // These values pin the documented generator (mt19937_64 + rejection + Fisher-Yates):
  // a change here changes every split file ever written.
  PortableRng r(42);
  std::vector<int> v = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  r.Shuffle(v);
  PortableRng again(42);
  std::vector<int> w = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  again.Shuffle(w);
  EXPECT_EQ(v, w);
  std::mt19937_64 ref(42);
  uint64_t first = ref();
  PortableRng p(42);
  EXPECT_EQ(p.Next(), first);
  EXPECT_EQ(MixSeed(0, 0), MixSeed(0, 0));
  EXPECT_NE(MixSeed(0, 0), MixSeed(0, 1));
  PortableRng q(7);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(q.Below(3), 3u);
}

TEST(Splits, LosoBySpeakerAndBySession) {
  Corpus c = SpeakerCorpus();
  SplitSpec spec;
  spec.method = "loso";
  auto s = MakeSplits(c, spec);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->folds.size(), 12u);
  EXPECT_EQ(s->folds[0].name, "speaker_spk0");
  ExpectSpeakerIndependentCover(c, *s);
  spec.group_by = "session";
  auto ses = MakeSplits(c, spec);
  ASSERT_TRUE(ses.ok()) << ses.status().ToString();
  EXPECT_EQ(ses->folds.size(), 4u);
  ExpectSpeakerIndependentCover(c, *ses);
  c.utterances[5].session = "";
  auto missing = MakeSplits(c, spec);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'u5' has no session"), std::string::npos);
}

TEST(Splits, StratifiedNeedsOverlapAllowedAndIsStratified) {
  Corpus c = SpeakerCorpus();
  SplitSpec spec;
  spec.method = "stratified";
  spec.test_fraction = 0.2;
  auto refused = MakeSplits(c, spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("fold 'fold0'"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("spk"), std::string::npos);
  spec.allow_speaker_overlap = true;
  auto s = MakeSplits(c, spec);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::map<std::string, int> per_label;
  std::map<std::string, std::string> label;
  for (const auto& u : c.utterances) label[u.id] = u.label;
  for (const auto& id : s->folds[0].test) ++per_label[label[id]];
  // each class has 3*12 + (0+1+2+3)*3 = 54 utterances -> round(0.2 * 54) = 11 test
  for (const auto& l : c.label_set) EXPECT_EQ(per_label[l], 11) << l;
}

TEST(Splits, LintFiresOnHandMadeOverlapAndUnknownIds) {
  Corpus c = SpeakerCorpus();
  SplitSet s;
  s.corpus = c.name;
  Fold f;
  f.name = "mine";
  f.train = {"u0"};
  f.test = {"u1"};  // same speaker spk0
  s.folds = {f};
  Status st = LintSplits(c, s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("fold 'mine': spk0"), std::string::npos) << st.message();
  s.spec.allow_speaker_overlap = true;
  EXPECT_TRUE(LintSplits(c, s).ok());
  s.folds[0].test = {"nope"};
  EXPECT_FALSE(LintSplits(c, s).ok());
}

TEST(Splits, SplitFileRoundTripAndTamperDetection) {
  testing::TestDir dir;
  Corpus c = SpeakerCorpus();
  auto s = MakeSplits(c, SplitSpec{});
  ASSERT_TRUE(s.ok());
  std::string p = dir.File("splits.json");
  ASSERT_TRUE(WriteSplitFile(p, *s).ok());
  auto r = ReadSplitFile(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ToJson(), s->ToJson());
  EXPECT_EQ(r->folds[2].test, s->folds[2].test);

  nlohmann::json j = s->ToJson();
  j["folds"][0]["test"].push_back("u1");
  std::ofstream(p) << j.dump();
  auto tampered = ReadSplitFile(p);
  ASSERT_FALSE(tampered.ok());
  EXPECT_NE(tampered.status().message().find("hash mismatch"), std::string::npos);

  j = s->ToJson();
  j["version"] = kSplitFileVersion + 1;
  std::ofstream(p) << j.dump();
  EXPECT_EQ(ReadSplitFile(p).status().code(), StatusCode::kFailedPrecondition);

  std::ofstream(p) << s->ToJson().dump().substr(0, 40);
  auto trunc = ReadSplitFile(p);
  ASSERT_FALSE(trunc.ok());
  EXPECT_NE(trunc.status().message().find(p), std::string::npos);
  EXPECT_EQ(ReadSplitFile(dir.File("none.json")).status().code(), StatusCode::kNotFound);
}

// A file edited and re-hashed (the hash is over the file's own content, so anyone can recompute it) is read
// as written: the reader checks what every file this build writes satisfies, and CheckSplitForCorpus what
// needs the corpus.
TEST(Splits, RehashedEditsAreRefusedOnReading) {
  testing::TestDir dir;
  Corpus c = SpeakerCorpus();
  auto made = MakeSplits(c, SplitSpec{});
  ASSERT_TRUE(made.ok());
  const std::string p = dir.File("edited.json");
  auto expect_refused = [&](SplitSet s, const std::string& needle) {
    ASSERT_TRUE(WriteSplitFile(p, s).ok());  // ToJson recomputes the hash
    auto r = ReadSplitFile(p);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  SplitSet s = *made;
  s.folds[0].test.push_back(s.folds[0].train.front());  // a training utterance tested on
  expect_refused(s, "is listed in train and in test");
  s = *made;
  s.folds[1].val.push_back(s.folds[1].val.front());
  expect_refused(s, "is listed in val twice");
  s = *made;
  s.folds[2].name = s.folds[0].name;
  expect_refused(s, "two folds are named '" + s.folds[0].name + "'");

  // With the corpus: its name, its ids and the speaker lint.
  s = *made;
  EXPECT_TRUE(CheckSplitForCorpus(s, c, p).ok());
  s.corpus = "other";
  Status st = CheckSplitForCorpus(s, c, p);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("split file is for corpus 'other'"), std::string::npos) << st.message();
  s = *made;
  std::swap(s.folds[0].train.front(), s.folds[0].test.front());  // a test speaker now also trains
  st = CheckSplitForCorpus(s, c, p);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(p), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not speaker-independent"), std::string::npos) << st.message();
  s.spec.allow_speaker_overlap = true;
  EXPECT_TRUE(CheckSplitForCorpus(s, c, p).ok());
}

TEST(Splits, BadSpecs) {
  Corpus c = SpeakerCorpus();
  SplitSpec spec;
  spec.k = 13;
  EXPECT_EQ(MakeSplits(c, spec).status().code(), StatusCode::kInvalidArgument);
  spec = SplitSpec{};
  spec.method = "random";
  EXPECT_EQ(MakeSplits(c, spec).status().code(), StatusCode::kInvalidArgument);
  spec = SplitSpec{};
  spec.method = "loso";
  spec.group_by = "accent";
  EXPECT_EQ(MakeSplits(c, spec).status().code(), StatusCode::kInvalidArgument);
}

TEST(Splits, StratifiedAcceptsATestFractionOfZero) {
  // Before: "need test_fraction > 0" (a corpus used only for training could not be split).
  Corpus c = SpeakerCorpus();
  SplitSpec spec;
  spec.method = "stratified";
  spec.test_fraction = 0;
  spec.val_fraction = 0.2;
  spec.allow_speaker_overlap = true;
  auto s = MakeSplits(c, spec);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->folds.size(), 1u);
  EXPECT_TRUE(s->folds[0].test.empty());
  EXPECT_EQ(s->folds[0].train.size() + s->folds[0].val.size(), c.size());
  EXPECT_GT(s->folds[0].val.size(), 0u);
  spec.test_fraction = -0.1;
  EXPECT_EQ(MakeSplits(c, spec).status().code(), StatusCode::kInvalidArgument);
}

// Speakers of SpeakerCorpus: spk0 = u0..u8, spk1 = u9..u20, spk2 = u21..u35.
TEST(Splits, FromIdListsKeepsCorpusOrderAndLeavesTheRestOut) {
  testing::TestDir dir;
  Corpus c = SpeakerCorpus();
  std::ofstream(dir.File("train.txt")) << "# a published split\nu20\n  u9\r\n\nu10\nu0\n";
  std::ofstream(dir.File("val.txt")) << "u21\n";
  auto s = SplitFromIdLists(c, {{"train", dir.File("train.txt")}, {"val", dir.File("val.txt")}}, false);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->folds.size(), 1u);
  EXPECT_EQ(s->folds[0].train, (std::vector<std::string>{"u0", "u9", "u10", "u20"}));
  EXPECT_EQ(s->folds[0].val, (std::vector<std::string>{"u21"}));
  EXPECT_TRUE(s->folds[0].test.empty());
  EXPECT_EQ(s->spec.method, "id_lists");
  EXPECT_EQ(s->corpus_hash, c.ContentHash());
  // It round-trips as a split file.
  ASSERT_TRUE(WriteSplitFile(dir.File("s.json"), *s).ok());
  auto back = ReadSplitFile(dir.File("s.json"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->folds[0].train, s->folds[0].train);
}

TEST(Splits, FromIdListsErrorsNameFileAndLine) {
  testing::TestDir dir;
  Corpus c = SpeakerCorpus();
  auto err = [&](const std::vector<std::pair<std::string, std::string>>& parts) {
    auto s = SplitFromIdLists(c, parts, false);
    EXPECT_FALSE(s.ok());
    return s.ok() ? std::string() : s.status().message();
  };
  std::ofstream(dir.File("unknown.txt")) << "u0\nu999\n";
  EXPECT_NE(err({{"train", dir.File("unknown.txt")}}).find(dir.File("unknown.txt") + " line 2: utterance 'u999' is not in"),
            std::string::npos);
  std::ofstream(dir.File("dup.txt")) << "u0\nu1\n\nu0\n";
  EXPECT_NE(err({{"train", dir.File("dup.txt")}}).find(dir.File("dup.txt") + " line 4: utterance 'u0' (train) is "
                                                                             "already listed at " + dir.File("dup.txt") +
                                                                             " line 1"),
            std::string::npos);
  std::ofstream(dir.File("tr.txt")) << "u0\nu1\n";
  std::ofstream(dir.File("te.txt")) << "u30\nu1\n";
  const std::string overlap = err({{"train", dir.File("tr.txt")}, {"test", dir.File("te.txt")}});
  EXPECT_NE(overlap.find(dir.File("te.txt") + " line 2: utterance 'u1' (test) is already listed at " +
                         dir.File("tr.txt") + " line 2"),
            std::string::npos)
      << overlap;
  // Speaker overlap between train and test: refused unless allowed.
  std::ofstream(dir.File("te2.txt")) << "u2\n";
  EXPECT_NE(err({{"train", dir.File("tr.txt")}, {"test", dir.File("te2.txt")}}).find("spk0"), std::string::npos);
  EXPECT_TRUE(SplitFromIdLists(c, {{"train", dir.File("tr.txt")}, {"test", dir.File("te2.txt")}}, true).ok());
  EXPECT_NE(err({{"val", dir.File("tr.txt")}}).find("needs a train list"), std::string::npos);
  EXPECT_NE(err({{"dev", dir.File("tr.txt")}}).find("'dev' is not one of train, val, test"), std::string::npos);
  EXPECT_EQ(SplitFromIdLists(c, {{"train", dir.File("absent.txt")}}, false).status().code(), StatusCode::kNotFound);
}

TEST(StratifiedSubset, SizesMatchTheFormula) {
  Corpus c = SpeakerCorpus();
  std::vector<std::string> all;
  for (const auto& u : c.utterances) all.push_back(u.id);
  auto sub = StratifiedSubset(c, all, 0.1, 0, 5, "pool");
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  EXPECT_EQ(sub->size(), 3u * 5u);  // floor(54 * 0.1) = 5 per class
  auto tiny = StratifiedSubset(c, all, 0.001, 0, 5, "pool");
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->size(), 3u);  // max(1, floor(0.054)) = 1 per class
  auto shots = StratifiedSubset(c, all, 0, 4, 5, "pool");
  ASSERT_TRUE(shots.ok());
  EXPECT_EQ(shots->size(), 12u);
  auto again = StratifiedSubset(c, all, 0, 4, 5, "pool");
  auto other = StratifiedSubset(c, all, 0, 4, 6, "pool");
  EXPECT_EQ(*shots, *again);
  EXPECT_NE(*shots, *other);
  // helper-62: floor(50 * 0.58) is 29, but 50 * 0.58 is 28.999999999999996 in doubles.
  std::map<std::string, int> per_label;
  std::vector<std::string> fifty;
  for (const auto& u : c.utterances)
    if (per_label[u.label]++ < 50) fifty.push_back(u.id);
  auto exact = StratifiedSubset(c, fifty, 0.58, 0, 5, "pool");
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(exact->size(), 3u * 29u);
}

TEST(StratifiedSubset, EmptyClassIsAnErrorNamingClassAndFile) {
  Corpus c = SpeakerCorpus();
  std::vector<std::string> no_sadness;
  for (const auto& u : c.utterances)
    if (u.label != "sadness") no_sadness.push_back(u.id);
  auto r = StratifiedSubset(c, no_sadness, 0.5, 0, 1, "splits.json fold0 train");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'sadness'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("splits.json"), std::string::npos);
}

}  // namespace
}  // namespace emosweep::data
