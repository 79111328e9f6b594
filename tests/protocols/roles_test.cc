// tests/protocols/roles_test.cc: corpus roles (loco `heldout`, `targets`,
// list sources with `pool`), one evaluation set per target across kinds
// (`[corpora.x] evaluate_on`), and the transductive steps recorded per job and
// (issue 14 items 1, 2, 3, 6; the caption sentence: tests/orchestrator/
// transductive_caption_test.cc). Real HDF5 stores.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "data/splits.h"
#include "protocols/expand.h"
#include "protocols/transductive.h"
#include "tests/protocols/protocol_test_util.h"

namespace emosweep::protocols {
namespace {

using testing::CountKind;
using testing::MakeCorpus;
using testing::MustLoad;
using testing::TestDir;
using testing::WriteStore;

// Corpora a, b, c (6 speakers each) and "solo" (one speaker: no speaker split
// exists, so it can only be evaluated whole). `solo_keys` go into [corpora.solo].
std::string Header(const std::string& solo_keys = "", const std::string& c_keys = "") {
  return R"(version = 1
name = "roles"
[corpora.a]
store = "a.h5"
[corpora.b]
store = "b.h5"
[corpora.c]
store = "c.h5"
)" + c_keys + R"([corpora.solo]
store = "solo.h5"
)" + solo_keys + R"([defaults]
labels = "core4"
features = {audio = "feat"}
seeds = [1, 2]
selection = "source_val"
split = {method = "speaker_kfold", k = 3}
)";
}

class Roles : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : {"a", "b", "c"}) WriteStore(dir_, MakeCorpus(n));
    WriteStore(dir_, MakeCorpus("solo", 1));
  }
  Protocol Load(const std::string& experiments, const std::string& header = Header()) {
    return MustLoad(dir_.Write("p.toml", header + experiments));
  }
  Status LoadError(const std::string& experiments, const std::string& header = Header()) {
    auto p = LoadProtocol(dir_.Write("p.toml", header + experiments));
    EXPECT_FALSE(p.ok());
    return p.ok() ? Status::Ok() : p.status();
  }
  // The protocol header with one more corpus, `name`, on `store`.
  static std::string WithCorpus(const std::string& name, const std::string& store) {
    std::string h = Header();
    h.replace(h.find("[defaults]"), 10, "[corpora." + name + "]\nstore = \"" + store + "\"\n[defaults]");
    return h;
  }
  // A loco experiment 'lo' over a, `second` and b.
  static std::string Loco(const std::string& second) {
    return "[[experiment]]\nname = \"lo\"\nkind = \"loco\"\ncorpora = [\"a\", \"" + second +
           "\", \"b\"]\nmodels = [\"concat_mlp\"]\n";
  }
  static std::set<std::string> Stores(const std::vector<jobs::DataRef>& refs) {
    std::set<std::string> out;
    for (const auto& r : refs) out.insert(r.store.substr(r.store.rfind('/') + 1));
    return out;
  }
  static std::set<std::string> Ids(const std::vector<jobs::DataRef>& refs) {
    std::set<std::string> out;
    for (const auto& r : refs) out.insert(r.ids.begin(), r.ids.end());
    return out;
  }
  static const std::string& Attr(const PlannedJob& j, const std::string& k) {
    static const std::string kNone;
    auto it = j.attrs.find(k);
    return it == j.attrs.end() ? kNone : it->second;
  }
  TestDir dir_;
};

TEST_F(Roles, LocoHeldoutOnlyCorpusIsNeverTrainedOnAndNeedsNoSplit) {
  Protocol p = Load(R"([[experiment]]
name = "loco"
kind = "loco"
corpora = ["a", "b", "c"]
heldout = ["solo", "a"]
models = ["concat_mlp"]
)");
  ASSERT_EQ(p.jobs.size(), 4u);  // 2 held-out corpora x 2 seeds
  std::map<std::string, int> per_held;
  for (const auto& j : p.jobs) {
    const std::string& held = Attr(j, "heldout");
    ++per_held[held];
    EXPECT_EQ(Attr(j, "target"), held);
    EXPECT_EQ(Attr(j, "corpus"), held);
    for (const auto& r : j.spec.train) EXPECT_EQ(r.store.find("solo.h5"), std::string::npos) << "solo trained on";
    if (held == "solo") {
      EXPECT_EQ(Stores(j.spec.train), (std::set<std::string>{"a.h5", "b.h5", "c.h5"}));
      EXPECT_EQ(Attr(j, "source"), "a+b+c");
      EXPECT_EQ(Ids(j.spec.eval.at("test")).size(), 4u * 3) << "the whole one-speaker corpus (core4)";
    } else {
      EXPECT_EQ(Stores(j.spec.train), (std::set<std::string>{"b.h5", "c.h5"}));
      EXPECT_EQ(Attr(j, "source"), "b+c");
    }
  }
  EXPECT_EQ(per_held, (std::map<std::string, int>{{"a", 2}, {"solo", 2}}));
}

TEST_F(Roles, LocoDefaultHeldoutKeepsIdentities) {
  const std::string exp = R"([[experiment]]
name = "loco"
kind = "loco"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
)";
  Protocol before = Load(exp);
  Protocol explicit_all = Load(exp + "heldout = [\"a\", \"b\", \"c\"]\n");
  // evaluate_on = "whole" is LOCO's default: writing it changes no identity either.
  Protocol whole = Load(exp, Header("", "evaluate_on = \"whole\"\n"));
  ASSERT_EQ(before.jobs.size(), 6u);
  ASSERT_EQ(explicit_all.jobs.size(), 6u);
  ASSERT_EQ(whole.jobs.size(), 6u);
  for (size_t i = 0; i < before.jobs.size(); ++i) {
    EXPECT_EQ(before.jobs[i].spec.id, explicit_all.jobs[i].spec.id);
    EXPECT_EQ(before.jobs[i].spec.id, whole.jobs[i].spec.id);
  }
}

TEST_F(Roles, TestShareDefaultKeepsIdentitiesOfTransferKinds) {
  const std::string exp = R"([[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]

[[experiment]]
name = "da"
kind = "adapt"
source = "a"
target = "c"
variants = ["none", "coral_deep"]
models = ["concat_mlp"]

[[experiment]]
name = "fs"
kind = "fewshot"
source = "a"
target = "c"
shots = [1]
models = ["concat_mlp"]
)";
  Protocol before = Load(exp);
  Protocol test = Load(exp, Header("", "evaluate_on = \"test\"\n"));
  ASSERT_FALSE(before.jobs.empty());
  ASSERT_EQ(before.jobs.size(), test.jobs.size());
  for (size_t i = 0; i < before.jobs.size(); ++i) EXPECT_EQ(before.jobs[i].spec.id, test.jobs[i].spec.id);
}

TEST_F(Roles, CrossCorpusTargetsRestrictTheMatrix) {
  Protocol p = Load(R"([[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b"]
targets = ["solo"]
models = ["concat_mlp"]
seeds = [1]
)",
                    Header("evaluate_on = \"whole\"\n"));
  EXPECT_EQ(CountKind(p, "supervised"), 2);
  EXPECT_EQ(CountKind(p, "eval"), 2) << "a->solo and b->solo only (no a->b, no b->a)";
  for (const auto& j : p.jobs)
    if (j.spec.kind == "eval") {
      EXPECT_EQ(Attr(j, "target"), "solo");
      EXPECT_EQ(Ids(j.spec.eval.at("test")).size(), 12u);
    }
}

TEST_F(Roles, CrossCorpusSourceFormPerSourceAndPooled) {
  Protocol p = Load(R"([[experiment]]
name = "zs"
kind = "cross_corpus"
source = ["a", "b", "c"]
pool = ["each", "all"]
target = "solo"
models = ["concat_mlp"]
seeds = [1]
)",
                    Header("evaluate_on = \"whole\"\n"));
  // 4 training sets (a, b, c, a+b+c), each with one eval job on solo.
  EXPECT_EQ(CountKind(p, "supervised"), 4);
  EXPECT_EQ(CountKind(p, "eval"), 4);
  std::set<std::string> sources;
  for (const auto& j : p.jobs) {
    if (j.spec.kind == "supervised") {
      EXPECT_FALSE(j.reportable) << "a training job's own test is not a zero-shot cell";
      EXPECT_EQ(Attr(j, "role"), "source");
      EXPECT_TRUE(j.spec.keep_checkpoint);
      if (Attr(j, "source") == "a+b+c") {
        EXPECT_EQ(Stores(j.spec.train), (std::set<std::string>{"a.h5", "b.h5", "c.h5"}));
        EXPECT_EQ(j.spec.val.size(), 3u);
      } else {
        EXPECT_EQ(j.spec.train.size(), 1u);
      }
    } else {
      EXPECT_TRUE(j.reportable);
      EXPECT_EQ(Attr(j, "target"), "solo");
      sources.insert(Attr(j, "source"));
    }
  }
  EXPECT_EQ(sources, (std::set<std::string>{"a", "b", "c", "a+b+c"}));
}

TEST_F(Roles, AdaptFromPooledSourcesPerTarget) {
  Protocol p = Load(R"([[experiment]]
name = "da"
kind = "adapt"
source = ["a", "b"]
targets = ["c"]
variants = ["dann_ganin", "mmd_rbf", "coral_deep", "none"]
models = ["concat_mlp"]
seeds = [1]
)");
  ASSERT_EQ(p.jobs.size(), 4u);
  for (const auto& j : p.jobs) {
    EXPECT_EQ(Attr(j, "source"), "a+b");
    EXPECT_EQ(Attr(j, "target"), "c");
    EXPECT_EQ(Stores(j.spec.train), (std::set<std::string>{"a.h5", "b.h5"})) << "pooled source batches";
    EXPECT_EQ(Stores(j.spec.val), (std::set<std::string>{"a.h5", "b.h5"}));
    EXPECT_EQ(Stores(j.spec.target_unlabeled), (std::set<std::string>{"c.h5"}));
  }
}

TEST_F(Roles, AdaptPoolEachAndAllMakesOneJobSetPerTrainingSet) {
  Protocol p = Load(R"([[experiment]]
name = "da"
kind = "adapt"
source = ["a", "b"]
pool = ["each", "all"]
target = "c"
variants = ["dann_ganin"]
models = ["concat_mlp"]
seeds = [1]
)");
  std::multiset<std::string> sources;
  for (const auto& j : p.jobs) sources.insert(Attr(j, "source"));
  EXPECT_EQ(sources, (std::multiset<std::string>{"a", "b", "a+b"}));
}

// The acceptance check of item 3: with evaluate_on = "test", zero-shot (loco and cross_corpus), fine-tuning,
// few-shot and adaptation are all tested on the same ids, and neither few-shot budgets nor the unlabeled
// adaptation data touch them.
TEST_F(Roles, EvaluateOnTestIsOneTestSetAcrossKindsWithoutLeakage) {
  Protocol p = Load(R"([[experiment]]
name = "loco"
kind = "loco"
corpora = ["a", "b"]
heldout = ["c"]
models = ["concat_mlp"]

[[experiment]]
name = "zs"
kind = "cross_corpus"
source = ["a", "b"]
pool = ["each", "all"]
target = "c"
models = ["concat_mlp"]

[[experiment]]
name = "ft"
kind = "finetune"
source = ["a", "b"]
target = "c"
models = ["concat_mlp"]

[[experiment]]
name = "fs"
kind = "fewshot"
source = ["a", "b"]
target = "c"
budgets = ["50%", "100%"]
shots = [1]
selection = "target_val"
models = ["concat_mlp"]

[[experiment]]
name = "da"
kind = "adapt"
source = ["a", "b"]
target = "c"
variants = ["dann_ganin", "none"]
models = ["concat_mlp"]
)",
                    Header("", "evaluate_on = \"test\"\n"));
  std::set<std::string> test_ids;
  std::set<std::string> kinds;
  int checked = 0;
  for (const auto& j : p.jobs) {
    if (!j.reportable || Attr(j, "target") != "c") continue;
    std::set<std::string> test = Ids(j.spec.eval.at("test"));
    if (test_ids.empty()) test_ids = test;
    EXPECT_EQ(test, test_ids) << "experiment " << Attr(j, "experiment");
    kinds.insert(Attr(j, "kind"));
    for (const auto* refs : {&j.spec.train, &j.spec.target_unlabeled, &j.spec.val})
      for (const auto& id : Ids(*refs)) EXPECT_FALSE(test.count(id)) << id << " of a test set trains or selects";
    ++checked;
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"loco", "cross_corpus", "finetune", "fewshot", "adapt"}));
  EXPECT_EQ(checked, 2 + 6 + 2 + 6 + 4);  // loco, zero-shot (3 training sets), finetune, fewshot, adapt; x 2 seeds
  EXPECT_LT(test_ids.size(), 6u * 4 * 3) << "the test share, not the whole corpus";
  EXPECT_FALSE(test_ids.empty());
}

TEST_F(Roles, EvaluateOnWholeIsUsedByZeroShotAndAdaptation) {
  Protocol p = Load(R"([[experiment]]
name = "zs"
kind = "cross_corpus"
source = "a"
target = "solo"
models = ["concat_mlp"]

[[experiment]]
name = "da"
kind = "adapt"
source = "a"
target = "solo"
variants = ["coral_deep"]
models = ["concat_mlp"]
)",
                    Header("evaluate_on = \"whole\"\n"));
  int evaluated = 0;
  for (const auto& j : p.jobs) {
    if (Attr(j, "target") != "solo") continue;
    EXPECT_EQ(Ids(j.spec.eval.at("test")).size(), 12u);
    if (j.spec.kind == "adapt") {
      EXPECT_EQ(Ids(j.spec.target_unlabeled), Ids(j.spec.eval.at("test"))) << "transductive UDA on the whole target";
    }
    ++evaluated;
  }
  EXPECT_EQ(evaluated, 4);
}

TEST_F(Roles, TargetOnlyCorpusEvaluatedOnItsTestShareNeedsASplit) {
  Status s = LoadError(R"([[experiment]]
name = "zs"
kind = "cross_corpus"
source = "a"
target = "solo"
models = ["concat_mlp"]
)",
                       Header("evaluate_on = \"test\"\n"));
  EXPECT_NE(s.message().find("solo"), std::string::npos) << s.message();
}

TEST_F(Roles, TransductiveStepsAreRecordedPerJob) {
  Protocol p = Load(R"([[experiment]]
name = "zs"
kind = "cross_corpus"
source = "a"
target = "c"
models = ["concat_mlp"]
grid = {"train.feature_norm" = ["train", "corpus"]}
seeds = [1]

[[experiment]]
name = "da"
kind = "adapt"
source = "a"
target = "c"
variants = ["dann_ganin", "none"]
models = ["concat_mlp"]
train = {feature_norm = "train"}
seeds = [1]

[[experiment]]
name = "da_im"
kind = "adapt"
source = "a"
target = "c"
variants = ["none"]
selection = "im"
models = ["concat_mlp"]
seeds = [1]
)");
  int seen = 0;
  for (const auto& j : p.jobs) {
    const std::string& steps = Attr(j, kTransductiveAttr);
    if (Attr(j, "experiment") == "zs") {
      EXPECT_EQ(steps, Attr(j, "train.feature_norm") == "corpus" ? "feature_norm=corpus" : "");
    } else if (Attr(j, "experiment") == "da") {
      EXPECT_EQ(steps, Attr(j, "variant") == "none" ? "" : "adapt") << Attr(j, "variant");
    } else {
      EXPECT_EQ(steps, "selection=im");
    }
    ++seen;
  }
  EXPECT_EQ(seen, 7);
}

// Session 18's audit: a graph model predicts the whole evaluation set as one graph (transductive), and a split
// with allow_speaker_overlap tests on speakers the job trained on; both are recorded per job for the caption.
TEST_F(Roles, GraphModelsAndSpeakerDependentSplitsAreRecordedPerJob) {
  Protocol p = Load(R"([[experiment]]
name = "dep"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp", "cemobam"]
features = {audio = "feat", text = "txt"}
split = {method = "stratified", k = 2, val_fraction = 0.2, allow_speaker_overlap = true}
seeds = [1]

[[experiment]]
name = "indep"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
seeds = [1]

[[experiment]]
name = "zs"
kind = "cross_corpus"
source = "a"
target = "c"
models = ["cemobam"]
features = {audio = "feat", text = "txt"}
split = {method = "stratified", k = 2, val_fraction = 0.2, allow_speaker_overlap = true}
seeds = [1]
)");
  int dep = 0, indep = 0, zs = 0;
  for (const auto& j : p.jobs) {
    const std::string& e = Attr(j, "experiment");
    const bool graph = Attr(j, "model") == "cemobam";
    EXPECT_EQ(Attr(j, kTransductiveAttr), graph ? "graph" : "") << e << " " << Attr(j, "model");
    // zs: the source job is tested on a's own test share (speakers shared); its eval job on c's, trained on a.
    const std::string want = e == "dep" || (e == "zs" && j.spec.kind != "eval") ? "test" : "";
    EXPECT_EQ(Attr(j, kSpeakerOverlapAttr), want) << e << " " << j.spec.kind;
    dep += e == "dep";
    indep += e == "indep";
    zs += e == "zs" && j.spec.kind == "eval";
  }
  EXPECT_EQ(dep, 2);  // two models, one stratified fold
  EXPECT_EQ(indep, 3);
  EXPECT_EQ(zs, 1);
}

// helper-62: the flag was keyed by the (interned) test share alone, so an experiment splitting alike without
// allow_speaker_overlap was flagged too; a split that allowed overlap was flagged although none of its speakers
// overlapped; a joint model's per-corpus eval cells (no train of their own) were not flagged.
TEST_F(Roles, SpeakerOverlapIsFlaggedPerExperimentAndForEvalJobsOfTheTrainedModel) {
  Protocol p = Load(R"([[experiment]]
name = "allowed"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
split = {method = "speaker_kfold", k = 2, val_fraction = 0.2, allow_speaker_overlap = true}
seeds = [1]

[[experiment]]
name = "plain"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
split = {method = "speaker_kfold", k = 2, val_fraction = 0.2}
seeds = [2]

[[experiment]]
name = "jt"
kind = "joint"
corpora = ["a", "c"]
models = ["concat_mlp"]
split = {method = "stratified", k = 2, val_fraction = 0.2, allow_speaker_overlap = true}
seeds = [1]
)");
  int allowed = 0, plain = 0, joint_evals = 0;
  for (const auto& j : p.jobs) {
    const std::string& e = Attr(j, "experiment");
    if (e == "allowed") {
      ++allowed;
      EXPECT_EQ(Attr(j, kSpeakerOverlapAttr), "") << "allowed, but speaker k-fold: no test speaker trained on";
    }
    if (e == "plain") {
      ++plain;
      EXPECT_EQ(Attr(j, kSpeakerOverlapAttr), "") << "the same folds, overlap not allowed";
    }
    if (e == "jt" && j.spec.kind == "eval") {
      ++joint_evals;
      EXPECT_EQ(Attr(j, kSpeakerOverlapAttr), "test") << "a per-corpus cell of the joint model";
    }
  }
  EXPECT_EQ(allowed, 2);
  EXPECT_EQ(plain, 2);
  EXPECT_GE(joint_evals, 2);
}

// helper-62: with evaluate_on = "test", experiments whose own splits differ tested one corpus on different
// utterances and shared a table column without a word; the plan now warns (a corpus split of its own fixes it).
TEST_F(Roles, EvaluateOnTestWarnsWhenExperimentsTestACorpusOnDifferentUtterances) {
  const std::string exps = R"([[experiment]]
name = "zs"
kind = "cross_corpus"
source = "a"
target = "c"
models = ["concat_mlp"]
seeds = [1]

[[experiment]]
name = "ad"
kind = "adapt"
source = "a"
target = "c"
models = ["concat_mlp"]
variants = ["dann_ganin"]
seeds = [1]
split = {method = "speaker_kfold", k = 4}
)";
  auto warned = [](const Protocol& p) {
    for (const auto& w : p.warnings)
      if (w.find("corpus 'c' (evaluate_on = \"test\"): experiments 'zs' and 'ad' test it on different utterances") !=
          std::string::npos)
        return true;
    return false;
  };
  EXPECT_TRUE(warned(Load(exps, Header("", "evaluate_on = \"test\"\n"))));
  // The corpus's own split: one test share for every experiment, no warning.
  EXPECT_FALSE(warned(Load(exps, Header("", "evaluate_on = \"test\"\nsplit = {method = \"speaker_kfold\", k = 3}\n"))));
}

// helper-62: two corpus names of one store let a loco experiment hold out the corpus it trained on.
TEST_F(Roles, TwoNamesOfOneStoreInACrossCorpusExperimentAreRefused) {
  const std::string with_copy = WithCorpus("a_copy", "a.h5");
  Status st = LoadError(Loco("a_copy"), with_copy);
  EXPECT_NE(st.message().find("experiment 'lo' reads corpora 'a' and 'a_copy', which are one store"),
            std::string::npos)
      << st.ToString();
  // in_domain reads each corpus alone: allowed.
  EXPECT_FALSE(Load(R"([[experiment]]
name = "id"
kind = "in_domain"
corpora = ["a", "a_copy"]
models = ["concat_mlp"]
seeds = [1]
)", with_copy).jobs.empty());
}

// helper-66: the same store under another spelling (a symbolic link, a hard link) or a byte-identical copy got
// past the path comparison: loco held out an alias of its training corpus (95.6 UA, 45.0 for a real corpus).
TEST_F(Roles, OneStoreReachedByALinkOrCopiedIsRefusedToo) {
  namespace fs = std::filesystem;
  fs::create_symlink(dir_.File("a.h5"), dir_.File("a_link.h5"));
  fs::create_hard_link(dir_.File("a.h5"), dir_.File("a_hard.h5"));
  fs::copy_file(dir_.File("a.h5"), dir_.File("a_copy.h5"));
  for (const char* alias : {"a_link.h5", "a_hard.h5", "a_copy.h5"}) {
    SCOPED_TRACE(alias);
    Status st = LoadError(Loco("x"), WithCorpus("x", alias));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find("experiment 'lo' reads corpora 'a' ("), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find(std::string("which are one store (") +
                                (std::string(alias) == "a_copy.h5" ? "identical content, hash " : "the same file")),
              std::string::npos)
        << st.ToString();
  }
  // Another corpus (another content) under another name is fine.
  EXPECT_FALSE(Load(Loco("x") + "seeds = [1]\n", WithCorpus("x", "c.h5")).jobs.empty());
}

// helper-62: a split file's ids that are not utterances of the store were dropped without a word (a file of
// another corpus, with no corpus hash, then failed with an unrelated message). Mostly unknown: refused; a few
// (rows the label map dropped at import): left out with a warning (helper-65).
TEST_F(Roles, ASplitFileWithIdsOutsideTheStoreIsRefusedOrWarnedAbout) {
  data::SplitSpec spec;
  spec.method = "speaker_kfold";
  spec.k = 3;
  const std::string exp = R"([[experiment]]
name = "f"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
split = {method = "file", file = "a_split.json"}
)";
  auto set = data::MakeSplits(MakeCorpus("a"), spec);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  set->folds[0].test.push_back("not_an_utterance_of_a");
  set->corpus_hash.clear();
  ASSERT_TRUE(data::WriteSplitFile(dir_.File("a_split.json"), *set).ok());
  Protocol p = Load(exp);
  bool warned = false;
  for (const auto& w : p.warnings)
    warned |= w.find("a_split.json: 1 of the split file's") != std::string::npos &&
              w.find("'not_an_utterance_of_a'; they are left out") != std::string::npos;
  EXPECT_TRUE(warned);
  // Another corpus's file: every id unknown.
  auto other = data::MakeSplits(MakeCorpus("b"), spec);
  ASSERT_TRUE(other.ok());
  other->corpus_hash.clear();
  ASSERT_TRUE(data::WriteSplitFile(dir_.File("a_split.json"), *other).ok());
  Status st = LoadError(exp);
  EXPECT_NE(st.message().find("ids are not utterances of corpus 'a'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("a split file of another corpus or store?"), std::string::npos) << st.ToString();
}

// Session 18's audit: a fine-tune job's validation share (early stopping, training-domain grid selection) is the
// target's only under target_val; otherwise no target label beyond the budget is read.
TEST_F(Roles, FewShotReadsTargetValidationLabelsOnlyUnderTargetVal) {
  for (const char* selection : {"last", "source_val", "target_val"}) {
    Protocol p = Load(std::string(R"([[experiment]]
name = "fs"
kind = "fewshot"
source = "a"
target = "c"
budgets = ["50%"]
models = ["concat_mlp"]
seeds = [1]
selection = ")") + selection + "\"\n");
    int finetunes = 0;
    for (const auto& j : p.jobs) {
      if (j.spec.kind != "finetune") continue;
      ++finetunes;
      EXPECT_EQ(Stores(j.spec.val), std::set<std::string>{std::string(selection) == "target_val" ? "c.h5" : "a.h5"})
          << selection;
    }
    EXPECT_EQ(finetunes, 1) << selection;
  }
}

TEST_F(Roles, IdfFittedOnTheEvaluatedCorpusIsTransductive) {
  data::Corpus c = MakeCorpus("c");
  c.features[1].provenance = {{"extractor", "emosweep.tfidf"}, {"extractor_version", 1}};
  WriteStore(dir_, c);
  const std::string exp = R"([[experiment]]
name = "zs"
kind = "cross_corpus"
source = "a"
target = "c"
models = ["concat_mlp"]
seeds = [1]
features = )";
  for (const char* features : {"{text = \"txt\"}", "{audio = \"feat\"}"}) {
    Protocol p = Load(exp + features + "\n");
    for (const auto& j : p.jobs)
      if (j.spec.kind == "eval")
        EXPECT_EQ(Attr(j, kTransductiveAttr), std::string(features).find("txt") != std::string::npos ? "idf" : "")
            << features;
  }
}

}  // namespace
}  // namespace emosweep::protocols
