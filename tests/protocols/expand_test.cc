// tests/protocols/expand_test.cc: expansion of every experiment kind on small
// synthetic stores (real HDF5 files), identities, shared pre-training, few-shot
// subsets.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "protocols/expand.h"
#include "tests/protocols/protocol_test_util.h"

namespace emosweep::protocols {
namespace {

using testing::CountKind;
using testing::MakeCorpus;
using testing::MustLoad;
using testing::TestDir;
using testing::WriteStore;

const char* kHeader = R"(version = 1
name = "x"
[corpora.a]
store = "a.h5"
[corpora.b]
store = "b.h5"
[corpora.c]
store = "c.h5"
[defaults]
labels = "core4"
features = {audio = "feat"}
seeds = [1, 2]
selection = "source_val"
split = {method = "speaker_kfold", k = 3}
)";

// Every job parsed back from its JSON (as a worker or the ledger reads it), each checked
// to keep its id.
std::vector<PlannedJob> ParsedBack(const std::vector<PlannedJob>& planned) {
  std::vector<PlannedJob> parsed;
  for (const auto& j : planned) {
    auto spec = jobs::JobSpec::FromJson(j.spec.ToJson(), "job");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    if (!spec.ok()) continue;
    EXPECT_EQ(spec->ComputeId(), j.spec.id);
    parsed.push_back(PlannedJob{*spec, j.deps, j.attrs, j.reportable});
  }
  return parsed;
}

class Expand : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : {"a", "b", "c"}) WriteStore(dir_, MakeCorpus(n));
  }
  Protocol Load(const std::string& experiments, const std::string& header = kHeader) {
    return MustLoad(dir_.Write("p.toml", header + experiments));
  }
  static std::map<std::string, std::string> IdsByKey(const Protocol& p) {
    std::map<std::string, std::string> out;
    for (const auto& j : p.jobs) {
      std::string key = j.spec.kind;
      for (const auto& [k, v] : j.attrs) key += "|" + k + "=" + v;
      out[key] = j.spec.id;
    }
    return out;
  }
  TestDir dir_;
};

size_t TotalIds(const std::vector<jobs::DataRef>& refs) {
  size_t n = 0;
  for (const auto& r : refs) n += r.ids.size();
  return n;
}

TEST_F(Expand, InDomainFoldsModelsSeeds) {
  Protocol p = Load(R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a", "b"]
models = ["concat_mlp", {name = "concat_mlp", label = "wide", hidden_dims = [512]}]
)");
  // 2 corpora × 3 folds × 2 models × 2 seeds
  EXPECT_EQ(p.jobs.size(), 24u);
  EXPECT_EQ(CountKind(p, "supervised"), 24);
  ASSERT_EQ(p.experiments.size(), 1u);
  EXPECT_TRUE(p.experiments[0].expanded);
  EXPECT_EQ(p.experiments[0].jobs, 24);
  for (const auto& j : p.jobs) {
    // core4 filter: no "fear" utterance anywhere; train/test speakers disjoint
    std::set<std::string> train(j.spec.train[0].ids.begin(), j.spec.train[0].ids.end());
    for (const auto& id : j.spec.eval.at("test")[0].ids) EXPECT_FALSE(train.count(id));
    for (const auto& id : train) EXPECT_EQ(id.find("fear"), std::string::npos);
    EXPECT_EQ(j.spec.labels, (std::vector<std::string>{"anger", "happiness", "neutral", "sadness"}));
    EXPECT_FALSE(j.spec.val.empty());
    EXPECT_TRUE(j.spec.train_config.contains("lr")) << "train config must be effective (defaults filled)";
    EXPECT_TRUE(j.reportable);
    EXPECT_FALSE(j.attrs.at("fold").empty());
  }
  // The label distinguishes two configs of one model; their ids differ.
  std::set<std::string> ids;
  for (const auto& j : p.jobs) ids.insert(j.spec.id);
  EXPECT_EQ(ids.size(), 24u);
  // The utterances outside the label set are said once per corpus (helper-72: they went unsaid).
  EXPECT_EQ(p.notes, (std::vector<std::string>{
                         "corpus 'a' (classes anger,happiness,neutral,sadness): 72 of 90 utterances kept; left out: fear 18",
                         "corpus 'b' (classes anger,happiness,neutral,sadness): 72 of 90 utterances kept; left out: fear 18"}));
}

// Issue 15: every job of one split holds the same utterance-id list (one copy in
// memory however many models, seeds and grid points read it), after expansion
// and after a JSON round trip of the job list, and the identities do not change.
TEST_F(Expand, JobsOfOneSplitShareOneIdList) {
  Protocol p = Load(R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a", "b"]
models = ["concat_mlp", {name = "concat_mlp", label = "wide", hidden_dims = [512]}]
[[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
)");
  // (experiment, corpus, fold, role) -> the list every such job holds
  std::map<std::string, std::set<const void*>> lists;
  std::map<std::string, size_t> jobs;
  auto collect = [&](const std::vector<PlannedJob>& planned, const std::string& tag) {
    lists.clear();
    jobs.clear();
    for (const auto& j : planned) {
      if (j.attrs.count("experiment") == 0 || j.attrs.at("experiment") != "in") continue;
      const std::string key = tag + "|" + j.attrs.at("corpus") + "|" + j.attrs.at("fold");
      for (const auto& [role, refs] : std::map<std::string, const std::vector<jobs::DataRef>*>{
               {"train", &j.spec.train}, {"val", &j.spec.val}, {"test", &j.spec.eval.at("test")}}) {
        ASSERT_EQ(refs->size(), 1u);
        ASSERT_FALSE(refs->front().ids.empty());
        lists[key + "|" + role].insert(refs->front().ids.shared());
        ++jobs[key + "|" + role];
      }
    }
  };
  collect(p.jobs, "expanded");
  ASSERT_EQ(lists.size(), 2u * 3 * 3);  // 2 corpora x 3 folds x (train, val, test)
  for (const auto& [key, ptrs] : lists) {
    EXPECT_EQ(jobs[key], 4u) << key;    // 2 models x 2 seeds read it
    EXPECT_EQ(ptrs.size(), 1u) << key;  // ... and hold one list
  }
  // Cross-corpus: every job tested on corpus b (whole corpus or test share) holds one list per content.
  std::map<std::vector<std::string>, std::set<const void*>> by_content;
  for (const auto& j : p.jobs)
    for (const auto& [name, refs] : j.spec.eval)
      for (const auto& r : refs) by_content[r.ids.vec()].insert(r.ids.shared());
  for (const auto& [content, ptrs] : by_content) EXPECT_EQ(ptrs.size(), 1u) << content.size() << " ids";

  // JSON round trip of the job list (as the coordinator ships jobs and the ledger stores them).
  std::vector<PlannedJob> parsed;
  for (const auto& j : p.jobs) {
    auto spec = jobs::JobSpec::FromJson(j.spec.ToJson(), "job");
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    EXPECT_EQ(spec->ComputeId(), j.spec.id);
    parsed.push_back(PlannedJob{*spec, j.deps, j.attrs, j.reportable});
  }
  collect(parsed, "parsed");
  ASSERT_EQ(lists.size(), 2u * 3 * 3);
  for (const auto& [key, ptrs] : lists) EXPECT_EQ(ptrs.size(), 1u) << key;
}

// Issue 15: every job of one grid point holds the same model and train config tree (one
// tree per distinct config, however many seeds, folds and corpora read it), after
// expansion and after a JSON round trip.
// An in-domain experiment with a two-point grid and a cross-corpus one (the sharing tests below).
const std::string kInDomainAndCrossCorpus = R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a", "b"]
models = ["concat_mlp"]
grid = {"train.lr" = [0.01, 0.001]}
[[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
)";

// Issue 15: every data reference to a store holds one pooled copy of its path and
// content hash (jobs::PooledString), in a full and a lean expansion and after a JSON
// round trip: per-job std::strings were ~130 bytes a reference, most of a lean job.
TEST_F(Expand, JobsShareOneCopyOfEachStorePathAndHash) {
  const std::string experiments = kInDomainAndCrossCorpus;
  auto check = [](const std::vector<PlannedJob>& planned, const std::string& tag) {
    std::map<std::string, std::set<const void*>> paths, hashes;  // value -> where its bytes live
    size_t refs = 0;
    for (const auto& j : planned) {
      auto add = [&](const std::vector<jobs::DataRef>& list) {
        for (const auto& r : list) {
          paths[r.store].insert(r.store.data());
          hashes[r.corpus_hash].insert(r.corpus_hash.data());
          ++refs;
        }
      };
      add(j.spec.train), add(j.spec.val), add(j.spec.target_unlabeled);
      for (const auto& [name, list] : j.spec.eval) add(list);
    }
    EXPECT_GT(refs, planned.size()) << tag;
    ASSERT_EQ(paths.size(), 3u) << tag;  // stores a, b, c
    ASSERT_EQ(hashes.size(), 3u) << tag;
    for (const auto& [path, where] : paths) EXPECT_EQ(where.size(), 1u) << tag << " " << path;
    for (const auto& [hash, where] : hashes) EXPECT_EQ(where.size(), 1u) << tag << " " << hash;
  };
  Protocol p = Load(experiments);
  check(p.jobs, "expanded");
  LoadOptions lean;
  lean.keep_data = false;
  check(MustLoad(dir_.Write("p.toml", std::string(kHeader) + experiments), lean).jobs, "lean");
  check(ParsedBack(p.jobs), "parsed");
}

// Issue 15: jobs hold one labels list and one feature map per distinct value (interned:
// jobs::IdList, jobs::FeatureMap), not a copy each, in a full and a lean expansion and
// after a JSON round trip. Addresses of the first label's characters and of the first
// map entry: equal only when the jobs share the list and the map.
TEST_F(Expand, JobsShareOneLabelsListAndOneFeatureMap) {
  const std::string experiments = kInDomainAndCrossCorpus + "labels = [\"anger\", \"sadness\"]\n";
  auto check = [](const std::vector<PlannedJob>& planned, bool features, const std::string& tag) {
    std::map<std::vector<std::string>, std::set<const void*>> labels;  // value -> where it lives
    std::map<std::map<std::string, std::string>, std::set<const void*>> maps;
    for (const auto& j : planned) {
      ASSERT_FALSE(j.spec.labels.empty()) << tag;
      labels[{j.spec.labels.begin(), j.spec.labels.end()}].insert(j.spec.labels[0].data());
      if (!features) continue;
      ASSERT_FALSE(j.spec.features.empty()) << tag;
      maps[{j.spec.features.begin(), j.spec.features.end()}].insert(&*j.spec.features.begin());
    }
    EXPECT_GT(planned.size(), 20u) << tag;
    EXPECT_EQ(labels.size(), 2u) << tag;  // core4 and the cross-corpus experiment's own
    for (const auto& [value, where] : labels) EXPECT_EQ(where.size(), 1u) << tag << " " << value.size() << " labels";
    if (!features) return;
    EXPECT_EQ(maps.size(), 1u) << tag;
    for (const auto& [value, where] : maps) EXPECT_EQ(where.size(), 1u) << tag << " " << value.begin()->second;
  };
  Protocol p = Load(experiments);
  check(p.jobs, true, "expanded");
  LoadOptions lean;
  lean.keep_data = false;  // keeps the labels (tables read them), drops the feature sets
  check(MustLoad(dir_.Write("p.toml", std::string(kHeader) + experiments), lean).jobs, false, "lean");
  check(ParsedBack(p.jobs), true, "parsed");
}

// Issue 15: `plan`'s expansion (LoadOptions::plan_only) keeps what plan reads of a job,
// the same as a full expansion's, and nothing else.
TEST_F(Expand, PlanOnlyExpansionKeepsIdsKindsDepsAndAttributes) {
  const std::string experiments = R"([[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
[[experiment]]
name = "ft"
kind = "finetune"
source = "a"
target = "b"
models = ["concat_mlp"]
)";
  Protocol full = Load(experiments);
  LoadOptions o;
  o.keep_data = false;
  o.plan_only = true;
  Protocol plan = MustLoad(dir_.Write("p.toml", std::string(kHeader) + experiments), o);
  ASSERT_EQ(plan.jobs.size(), full.jobs.size());
  EXPECT_EQ(plan.expansion_key, full.expansion_key);
  size_t with_deps = 0;
  for (size_t i = 0; i < full.jobs.size(); ++i) {
    const auto &a = full.jobs[i], &b = plan.jobs[i];
    EXPECT_EQ(a.spec.id, b.spec.id);
    EXPECT_EQ(a.spec.kind, b.spec.kind);
    EXPECT_EQ(a.deps, b.deps);
    EXPECT_EQ(a.attrs, b.attrs);
    EXPECT_EQ(a.reportable, b.reportable);
    with_deps += !a.deps.empty();
    EXPECT_FALSE(a.spec.labels.empty() || a.spec.eval.empty());
    EXPECT_TRUE(b.spec.labels.empty() && b.spec.train.empty() && b.spec.val.empty() && b.spec.eval.empty() &&
                b.spec.target_unlabeled.empty() && b.spec.features.empty());
  }
  EXPECT_GT(with_deps, 0u);
  // plan_only means nothing without keep_data = false: a full expansion keeps everything.
  o.keep_data = true;
  Protocol kept = MustLoad(dir_.Write("p.toml", std::string(kHeader) + experiments), o);
  ASSERT_EQ(kept.jobs.size(), full.jobs.size());
  EXPECT_FALSE(kept.jobs[0].spec.labels.empty() || kept.jobs[0].spec.train.empty());
}

TEST_F(Expand, JobsOfOneGridPointShareOneConfigTree) {
  Protocol p = Load(R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a", "b"]
models = ["concat_mlp", {name = "concat_mlp", label = "wide", hidden_dims = [512]}]
grid = {"train.lr" = [0.01, 0.001]}
)");
  auto check = [](const std::vector<PlannedJob>& planned, const std::string& tag) {
    std::map<std::string, std::set<const void*>> models, trains;  // (model label, hp) -> trees
    std::map<std::string, size_t> jobs;
    std::set<const void*> all_models, all_trains;
    for (const auto& j : planned) {
      const std::string key = j.attrs.at("model") + "|" + j.attrs.at("hp");
      models[key].insert(j.spec.model.shared());
      trains[key].insert(j.spec.train_config.shared());
      all_models.insert(j.spec.model.shared());
      all_trains.insert(j.spec.train_config.shared());
      ++jobs[key];
      EXPECT_TRUE(j.spec.model.interned() && j.spec.train_config.interned()) << tag;
    }
    ASSERT_EQ(models.size(), 4u) << tag;  // 2 models x 2 learning rates
    for (const auto& [key, trees] : models) {
      EXPECT_EQ(jobs[key], 2u * 3 * 2) << tag << " " << key;  // 2 corpora x 3 folds x 2 seeds
      EXPECT_EQ(trees.size(), 1u) << tag << " " << key;
      EXPECT_EQ(trains[key].size(), 1u) << tag << " " << key;
    }
    EXPECT_EQ(all_models.size(), 2u) << tag;  // the learning rate is not in the model config
    EXPECT_EQ(all_trains.size(), 2u) << tag;
  };
  check(p.jobs, "expanded");
  check(ParsedBack(p.jobs), "parsed");
}

TEST_F(Expand, LocoTrainsOnAllButOne) {
  Protocol p = Load(R"([[experiment]]
name = "loco"
kind = "loco"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
)");
  EXPECT_EQ(p.jobs.size(), 6u);  // 3 held-out × 2 seeds
  for (const auto& j : p.jobs) {
    const std::string& held = j.attrs.at("heldout");
    ASSERT_EQ(j.spec.train.size(), 2u);
    for (const auto& r : j.spec.train) EXPECT_EQ(r.store.find(held + ".h5"), std::string::npos);
    ASSERT_EQ(j.spec.eval.at("test").size(), 1u);
    EXPECT_NE(j.spec.eval.at("test")[0].store.find(held + ".h5"), std::string::npos);
    EXPECT_EQ(j.spec.eval.at("test")[0].ids.size(), 6u * 4 * 3);  // the whole held-out corpus (core4)
    EXPECT_EQ(j.spec.eval.at("test_in").size(), 2u);
  }
}

// Issue 14: a table selecting the grid by leave-one-source-out adds, per target, grid point and seed, one job
// per training corpus left out: trained on the others, evaluated on the whole left-out corpus.
TEST_F(Expand, LodoGridSelectionAddsLeaveOneSourceOutJobs) {
  const std::string exp = R"([[experiment]]
name = "loco"
kind = "loco"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
grid = {"train.lr" = [0.01, 0.001]}
)";
  const std::string table = R"([[table]]
name = "t"
experiment = "loco"
rows = "model"
columns = "target"
metrics = ["ua"]
spread = "std"
grid_selection = "lodo"
)";
  Protocol plain = Load(exp + table.substr(0, table.find("grid_selection")));
  Protocol p = Load(exp + table);
  EXPECT_EQ(plain.jobs.size(), 12u) << "3 targets x 2 points x 2 seeds";
  ASSERT_EQ(p.jobs.size(), 12u + 24u) << "+ 3 targets x 2 left-out corpora x 2 points x 2 seeds";
  EXPECT_NE(plain.expansion_key, p.expansion_key) << "the table's cached expansion must include the LODO jobs";
  std::set<std::string> seen;
  for (const auto& j : p.jobs) {
    if (!j.attrs.count("role")) {
      EXPECT_TRUE(j.reportable);
      continue;
    }
    EXPECT_EQ(j.attrs.at("role"), "lodo");
    EXPECT_FALSE(j.reportable);
    const std::string target = j.attrs.at("target"), left = j.attrs.at("lodo_val");
    EXPECT_NE(target, left);
    ASSERT_EQ(j.spec.train.size(), 1u) << "trained on the one remaining source";
    const std::string& train_store = j.spec.train[0].store;
    EXPECT_EQ(train_store.find(target + ".h5"), std::string::npos) << "the target is never read";
    EXPECT_EQ(train_store.find(left + ".h5"), std::string::npos);
    EXPECT_EQ(j.spec.val.size(), 1u);
    ASSERT_EQ(j.spec.eval.size(), 1u);
    ASSERT_EQ(j.spec.eval.at("test").size(), 1u);
    EXPECT_NE(j.spec.eval.at("test")[0].store.find(left + ".h5"), std::string::npos);
    EXPECT_EQ(j.spec.eval.at("test")[0].ids.size(), 6u * 4 * 3) << "the whole left-out corpus";
    seen.insert(target + "|" + left + "|" + j.attrs.at("hp") + "|" + j.attrs.at("seed"));
  }
  EXPECT_EQ(seen.size(), 24u);
}

TEST_F(Expand, CrossCorpusMatrixUsesEvalJobs) {
  Protocol p = Load(R"([[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
seeds = [7]
)");
  EXPECT_EQ(CountKind(p, "supervised"), 3);
  EXPECT_EQ(CountKind(p, "eval"), 6);
  std::set<std::pair<std::string, std::string>> cells;
  std::map<std::string, const PlannedJob*> by_id;
  for (const auto& j : p.jobs) by_id[j.spec.id] = &j;
  for (const auto& j : p.jobs) {
    cells.insert({j.attrs.at("source"), j.attrs.at("target")});
    if (j.spec.kind == "eval") {
      ASSERT_EQ(j.deps.size(), 1u);
      ASSERT_TRUE(by_id.count(j.deps[0])) << "dependency must be in the plan";
      EXPECT_LT(by_id[j.deps[0]], &j) << "dependencies come first";
      EXPECT_EQ(j.spec.init_from, j.deps[0]);
      EXPECT_TRUE(by_id[j.deps[0]]->spec.keep_checkpoint);
      EXPECT_TRUE(j.spec.train.empty());
    }
  }
  EXPECT_EQ(cells.size(), 9u);  // full 3×3 matrix, diagonal included
}

TEST_F(Expand, JointTrainsTogetherTestsEach) {
  Protocol p = Load(R"([[experiment]]
name = "joint"
kind = "joint"
corpora = ["a", "b"]
models = ["concat_mlp"]
seeds = [1]
)");
  EXPECT_EQ(CountKind(p, "supervised"), 1);
  EXPECT_EQ(CountKind(p, "eval"), 2);
  EXPECT_EQ(p.jobs[0].spec.train.size(), 2u);
}

const char* kTransfer = R"([[experiment]]
name = "ft"
kind = "finetune"
source = "a"
target = "b"
models = ["concat_mlp"]
finetune_train = {lr = 0.0001}
grid = {"finetune.epochs" = [5, 10]}

[[experiment]]
name = "fs"
kind = "fewshot"
source = "a"
target = "b"
models = ["concat_mlp"]
budgets = ["25%", "50%"]
shots = [1]
finetune_train = {lr = 0.0001}
selection = "target_val"
)";

// Issue 15: the dependents of a job (the eval jobs of a trained job, the fine-tune jobs of a
// pre-training job shared by grid points and experiments) hold one copy of its id between
// them, in init_from and deps alike (two copies a dependent were ~190 bytes of an eval job).
TEST_F(Expand, DependentsShareOneCopyOfTheirParentsId) {
  Protocol p = Load(std::string(kTransfer) + R"(
[[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
[[experiment]]
name = "jt"
kind = "joint"
corpora = ["a", "b"]
models = ["concat_mlp"]
)");
  std::set<std::string> before;                         // ids of the jobs seen so far
  std::map<std::string, std::set<const void*>> copies;  // parent id -> where its dependents hold it
  std::map<std::string, int> dependents;
  for (const auto& j : p.jobs) {
    if (j.spec.init_from.empty()) {
      EXPECT_TRUE(j.deps.empty()) << j.spec.kind;
    } else {
      const std::string parent = j.spec.init_from;
      ASSERT_EQ(j.deps.size(), 1u) << j.spec.kind;
      EXPECT_EQ(j.deps[0], parent);
      EXPECT_EQ(before.count(parent), 1u) << "the parent comes first";
      copies[parent].insert(j.spec.init_from.data());
      copies[parent].insert(j.deps[0].data());
      ++dependents[parent];
    }
    before.insert(j.spec.id);
  }
  EXPECT_EQ(CountKind(p, "eval"), 2 * 3 * 2 + 2 * 2);  // seeds x (3 sources x 2 targets + 2 joint evals)
  EXPECT_EQ(CountKind(p, "finetune"), 2 * 2 + 3 * 2);
  EXPECT_EQ(dependents.size(), 2u * 3 + 2 + 2);  // trained per seed: 3 cross-corpus, 1 joint, 1 pretrain
  for (const auto& [parent, n] : dependents) {
    EXPECT_GE(n, 2) << parent;
    EXPECT_EQ(copies[parent].size(), 1u) << parent.substr(0, 12) << ": " << n << " dependents";
  }
}

TEST_F(Expand, SharedPretrainJobAppearsOnceWithDeps) {
  Protocol p = Load(kTransfer);
  // One pretrain per seed, shared by the finetune grid points and every few-shot budget.
  EXPECT_EQ(CountKind(p, "pretrain"), 2);
  EXPECT_EQ(CountKind(p, "finetune"), 2 * 2 + 3 * 2);
  std::map<std::string, const PlannedJob*> pre;
  for (const auto& j : p.jobs)
    if (j.spec.kind == "pretrain") {
      pre[j.spec.id] = &j;
      EXPECT_TRUE(j.spec.keep_checkpoint);
      EXPECT_FALSE(j.reportable);
    }
  std::set<std::string> seen_before;
  std::map<std::string, int> dependents;
  for (const auto& j : p.jobs) {
    if (j.spec.kind == "finetune") {
      ASSERT_EQ(j.deps.size(), 1u);
      ASSERT_TRUE(pre.count(j.deps[0]));
      EXPECT_TRUE(seen_before.count(j.deps[0])) << "pretrain job must come before its dependents";
      EXPECT_EQ(j.spec.init_from, j.deps[0]);
      EXPECT_EQ(pre[j.deps[0]]->spec.seed, j.spec.seed);
      ++dependents[j.deps[0]];
    }
    seen_before.insert(j.spec.id);
  }
  for (const auto& [id, n] : dependents) EXPECT_EQ(n, 5) << "2 finetune + 3 few-shot jobs per seed";
  // Experiment summaries count the shared job once, where it was first made.
  EXPECT_EQ(p.experiments[0].jobs_by_kind.at("pretrain"), 2);
  EXPECT_EQ(p.experiments[1].jobs_by_kind.count("pretrain"), 0u);
}

TEST_F(Expand, FewshotSubsetsStratifiedAndSeeded) {
  Protocol p = Load(kTransfer);
  std::map<std::string, std::vector<std::string>> subset;  // budget|seed -> ids
  size_t target_train = 0;
  for (const auto& j : p.jobs) {
    if (j.attrs.count("budget") == 0) {
      if (j.spec.kind == "finetune") target_train = j.spec.train[0].ids.size();
      continue;
    }
    subset[j.attrs.at("budget") + "|" + j.attrs.at("seed")] = j.spec.train[0].ids;
    EXPECT_EQ(std::to_string(j.spec.train[0].ids.size()), j.attrs.at("budget_n"));
  }
  ASSERT_EQ(subset.size(), 6u);
  ASSERT_GT(target_train, 0u);
  auto per_class = [](const std::vector<std::string>& ids) {
    std::map<std::string, int> c;
    for (const auto& id : ids)
      for (const char* l : {"anger", "happiness", "neutral", "sadness"})
        if (id.find(std::string("_") + l + "_") != std::string::npos) ++c[l];
    return c;
  };
  // Every class of the balanced target train share has target_train/4 utterances.
  size_t n_c = target_train / 4;
  for (const auto& [key, ids] : subset) {
    auto c = per_class(ids);
    ASSERT_EQ(c.size(), 4u) << key;
    int want = key.rfind("1-shot", 0) == 0 ? 1
               : key.rfind("25%", 0) == 0 ? std::max<int>(1, static_cast<int>(n_c * 0.25))
                                          : static_cast<int>(n_c * 0.5);
    for (const auto& [label, n] : c) EXPECT_EQ(n, want) << key << " " << label;
  }
  EXPECT_NE(subset["50%|1"], subset["50%|2"]) << "different seeds draw different subsets";
  Protocol again = Load(kTransfer);
  for (const auto& j : again.jobs)
    if (j.attrs.count("budget"))
      EXPECT_EQ(j.spec.train[0].ids, subset[j.attrs.at("budget") + "|" + j.attrs.at("seed")]) << "same seed, same subset";
}

// `label_map` in [corpora.X]: the store must have been imported with that map. A store that records none
// (synthetic, or imported without one) was accepted without a word (session 17's audit).
TEST_F(Expand, LabelMapOfTheCorpusMustBeTheStores) {
  std::string header = kHeader;
  header.replace(header.find("store = \"a.h5\""), 14, "store = \"a.h5\"\nlabel_map = \"emodb\"");
  const std::string exp = "[[experiment]]\nname = \"in\"\nkind = \"in_domain\"\ncorpora = [\"a\"]\nmodels = [\"concat_mlp\"]\n";
  auto none = LoadProtocol(dir_.Write("p.toml", header + exp));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("expects label map 'emodb' but"), std::string::npos) << none.status().message();
  EXPECT_NE(none.status().message().find("records none"), std::string::npos) << none.status().message();
  data::Corpus a = MakeCorpus("a");
  a.metadata = {{"label_map", "emodb"}};
  WriteStore(dir_, a);
  EXPECT_TRUE(LoadProtocol(dir_.Write("p.toml", header + exp)).ok());
  a.metadata = {{"label_map", "ravdess"}};
  WriteStore(dir_, a);
  auto other = LoadProtocol(dir_.Write("p.toml", header + exp));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("was imported with 'ravdess'"), std::string::npos) << other.status().message();
}

TEST_F(Expand, FewshotClassMissingInTargetIsAnError) {
  WriteStore(dir_, MakeCorpus("b", 6, 3, {"anger", "happiness", "neutral"}));  // no sadness in b
  auto p = LoadProtocol(dir_.Write("p.toml", std::string(kHeader) + kTransfer));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("'sadness'"), std::string::npos) << p.status().message();
}

TEST_F(Expand, IdenticalFewshotBudgetsRunOnceWithWarning) {
  // 10% of 9 utterances per class is 1 per class: the same subset as 1-shot.
  Protocol p = Load(R"([[experiment]]
name = "fs"
kind = "fewshot"
source = "a"
target = "b"
models = ["concat_mlp"]
budgets = ["10%"]
shots = [1]
seeds = [1]
)");
  EXPECT_EQ(CountKind(p, "finetune"), 1);
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("budget=1-shot"), std::string::npos) << p.warnings[0];
  EXPECT_NE(p.warnings[0].find("budget=10%"), std::string::npos) << p.warnings[0];
}

TEST_F(Expand, AdaptVariantsUseUnlabeledTarget) {
  Protocol p = Load(R"([[experiment]]
name = "da"
kind = "adapt"
source = "a"
target = "b"
models = ["concat_mlp"]
variants = ["dann_ganin", "mmd_rbf", "none"]
weight = 0.3
seeds = [1]
)");
  EXPECT_EQ(CountKind(p, "adapt"), 2);
  EXPECT_EQ(CountKind(p, "supervised"), 1);
  for (const auto& j : p.jobs) {
    EXPECT_NE(j.spec.eval.at("test")[0].store.find("b.h5"), std::string::npos);
    EXPECT_NE(j.spec.train[0].store.find("a.h5"), std::string::npos);
    EXPECT_NE(j.spec.val[0].store.find("a.h5"), std::string::npos) << "source_val selects on source data";
    if (j.spec.kind == "adapt") {
      EXPECT_EQ(j.spec.adapt.at("variant"), j.attrs.at("variant"));
      EXPECT_DOUBLE_EQ(j.spec.adapt.at("weight").get<double>(), 0.3);
      ASSERT_EQ(j.spec.target_unlabeled.size(), 1u);
      std::set<std::string> test(j.spec.eval.at("test")[0].ids.begin(), j.spec.eval.at("test")[0].ids.end());
      for (const auto& id : j.spec.target_unlabeled[0].ids) EXPECT_FALSE(test.count(id)) << "target test never trains";
    }
  }
}

TEST_F(Expand, UnsupervisedDaSelectionGivesEveryVariantTheTargetAndSourceVal) {
  for (const char* sel : {"dev", "im", "snd"}) {
    Protocol p = Load(std::string(R"([[experiment]]
name = "da"
kind = "adapt"
source = "a"
target = "b"
models = ["concat_mlp"]
variants = ["dann_tllib", "none"]
adapt_options = {grl_horizon = "0.5 run"}
seeds = [1]
selection = ")") + sel + "\"\n");
    ASSERT_EQ(p.jobs.size(), 2u);
    for (const auto& j : p.jobs) {
      EXPECT_EQ(j.spec.selection, sel);
      ASSERT_EQ(j.spec.target_unlabeled.size(), 1u) << "also 'none': its epochs are selected on the target";
      EXPECT_NE(j.spec.target_unlabeled[0].store.find("b.h5"), std::string::npos);
      ASSERT_EQ(j.spec.val.size(), 1u);
      EXPECT_NE(j.spec.val[0].store.find("a.h5"), std::string::npos) << "DEV weights source validation rows";
      if (j.spec.kind == "adapt") EXPECT_EQ(j.spec.adapt.at("grl_horizon"), "0.5 run");
    }
  }
}

TEST_F(Expand, GrlScheduleLongerThanTheRunIsWarnedAtPlanTime) {
  const std::string exp = R"([[experiment]]
name = "da"
kind = "adapt"
source = "a"
target = "b"
models = ["concat_mlp"]
variants = ["dann_tllib", "dann_ganin", "mmd_rbf"]
seeds = [1, 2]
train = {epochs = 4}
)";
  Protocol p = Load(exp);
  ASSERT_EQ(p.warnings.size(), 1u) << "one warning for dann_tllib, not one per seed; none for dann_ganin or mmd_rbf";
  EXPECT_NE(p.warnings[0].find("variant 'dann_tllib'"), std::string::npos) << p.warnings[0];
  EXPECT_NE(p.warnings[0].find("grl_horizon"), std::string::npos) << p.warnings[0];
  std::string fitted = exp;
  const std::string list = "variants = [\"dann_tllib\", \"dann_ganin\", \"mmd_rbf\"]";
  fitted.replace(fitted.find(list), list.size(),
                 "variants = [\"dann_tllib\"]\nadapt_options = {grl_horizon = \"1 run\"}");
  EXPECT_TRUE(Load(fitted).warnings.empty()) << Load(fitted).warnings[0];
}

TEST_F(Expand, IdentitiesStableAcrossRunsAndKeyOrder) {
  const std::string exp = R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a"]
models = [{name = "concat_mlp", hidden_dims = [128], dropout = 0.2}]
train = {lr = 0.01, epochs = 3}
)";
  Protocol p1 = Load(exp);
  Protocol p2 = Load(exp);
  ASSERT_EQ(p1.jobs.size(), 6u);
  EXPECT_EQ(IdsByKey(p1), IdsByKey(p2));
  // Same content, keys in another order (top level, defaults, experiment, inline tables).
  const std::string reordered = R"(name = "x"
version = 1
[corpora.c]
store = "c.h5"
[corpora.b]
store = "b.h5"
[corpora.a]
store = "a.h5"
[defaults]
split = {k = 3, method = "speaker_kfold"}
selection = "source_val"
seeds = [1, 2]
features = {audio = "feat"}
labels = "core4"
[[experiment]]
train = {epochs = 3, lr = 0.01}
models = [{dropout = 0.2, hidden_dims = [128], name = "concat_mlp"}]
corpora = ["a"]
kind = "in_domain"
name = "in"
)";
  Protocol p3 = MustLoad(dir_.Write("q.toml", reordered));
  EXPECT_EQ(IdsByKey(p1), IdsByKey(p3));
  // Writing a default explicitly changes nothing: identities hash effective configs.
  Protocol p4 = Load(R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a"]
models = [{name = "concat_mlp", hidden_dims = [128], dropout = 0.2}]
train = {lr = 0.01, epochs = 3, optimizer = "adamw"}
)");
  EXPECT_EQ(IdsByKey(p1), IdsByKey(p4));
}

TEST_F(Expand, HyperparameterChangeChangesExactlyAffectedJobs) {
  auto with = [&](const std::string& ft_lr, const std::string& grid) {
    return Load(std::string(R"([[experiment]]
name = "ft"
kind = "finetune"
source = "a"
target = "b"
models = ["concat_mlp"]
finetune_train = {lr = )") + ft_lr + "}\ngrid = {\"train.epochs\" = " + grid + "}\n");
  };
  Protocol base = with("0.0001", "[3, 4]");
  Protocol ft = with("0.0002", "[3, 4]");    // fine-tune stage only
  Protocol grid = with("0.0001", "[3, 5]");  // one grid point of both stages
  auto by_kind = [](const Protocol& p, const std::string& kind) {
    std::map<std::string, std::string> m;  // seed|epochs -> id
    for (const auto& j : p.jobs)
      if (j.spec.kind == kind) m[j.attrs.at("seed") + "|" + j.attrs.at("train.epochs")] = j.spec.id;
    return m;
  };
  EXPECT_EQ(by_kind(base, "pretrain"), by_kind(ft, "pretrain")) << "fine-tune lr does not touch pre-training";
  for (const auto& [k, id] : by_kind(base, "finetune")) EXPECT_NE(by_kind(ft, "finetune").at(k), id);
  auto bp = by_kind(base, "pretrain"), gp = by_kind(grid, "pretrain");
  EXPECT_EQ(bp.at("1|3"), gp.at("1|3"));
  EXPECT_EQ(bp.at("2|3"), gp.at("2|3"));
  EXPECT_FALSE(gp.count("1|4"));
  EXPECT_EQ(gp.size(), 4u);
  std::set<std::string> base_ids, grid_ids;
  for (const auto& j : base.jobs) base_ids.insert(j.spec.id);
  for (const auto& j : grid.jobs) grid_ids.insert(j.spec.id);
  int changed = 0;
  for (const auto& id : grid_ids) changed += !base_ids.count(id);
  EXPECT_EQ(changed, 4) << "epochs 4 -> 5: 2 pretrain + 2 finetune jobs (2 seeds) change, the rest keep their ids";
}

TEST_F(Expand, CorpusSplitOverridesExperimentSplit) {
  WriteStore(dir_, MakeCorpus("c", 2, 6));  // two speakers: no 3-fold speaker split possible
  const std::string loco = R"([[experiment]]
name = "loco"
kind = "loco"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
seeds = [1]
)";
  auto bad = LoadProtocol(dir_.Write("p.toml", std::string(kHeader) + loco));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'c'"), std::string::npos) << bad.status().message();
  std::string header = kHeader;
  header.replace(header.find("store = \"c.h5\""), 14,
                 "store = \"c.h5\"\nsplit = {method = \"stratified\", test_fraction = 0.2, allow_speaker_overlap = true}");
  Protocol p = Load(loco, header);
  ASSERT_EQ(p.jobs.size(), 3u);
  for (const auto& j : p.jobs) {
    if (j.attrs.at("heldout") == "c") continue;
    for (const auto& r : j.spec.eval.at("test_in"))
      if (r.store.find("c.h5") != std::string::npos) EXPECT_EQ(r.ids.size(), 4u * 2) << "per class round(12 * 0.2) = 2";
  }
}

TEST_F(Expand, MissingStoreIsReportedNotFatal) {
  std::filesystem::remove(dir_.File("c.h5"));
  Protocol p = Load(R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]

[[experiment]]
name = "loco"
kind = "loco"
corpora = ["a", "b", "c"]
models = ["concat_mlp"]
)");
  ASSERT_EQ(p.missing_inputs.size(), 1u);
  EXPECT_NE(p.missing_inputs[0].find("c.h5"), std::string::npos);
  EXPECT_TRUE(p.experiments[0].expanded);
  EXPECT_FALSE(p.experiments[1].expanded);
  EXPECT_NE(p.experiments[1].reason.find("c"), std::string::npos);
  EXPECT_EQ(p.jobs.size(), 6u);
}

TEST_F(Expand, UnknownFeatureSetNamesStore) {
  auto p = LoadProtocol(dir_.Write("p.toml", std::string(kHeader) + R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
features = {audio = "wav2vec9"}
)"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find("a.h5"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("wav2vec9"), std::string::npos);
}

TEST_F(Expand, CorruptStoreIsAnErrorNamingIt) {
  testing::TestDir other;
  std::string bad = dir_.Write("a.h5", "this is not an HDF5 file");
  auto p = LoadProtocol(dir_.Write("p.toml", std::string(kHeader) + R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
)"));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find(bad), std::string::npos) << p.status().message();
}

TEST_F(Expand, OracleSelectionIsFlaggedInAttrs) {
  Protocol p = Load(R"([[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
selection = "oracle"
oracle_eval = "test"
seeds = [1]
)");
  ASSERT_FALSE(p.jobs.empty());
  EXPECT_EQ(p.jobs[0].spec.selection, "oracle");
  EXPECT_EQ(p.jobs[0].spec.oracle_eval, "test");
  EXPECT_EQ(p.jobs[0].attrs.at("selection"), "oracle(test)");
}

TEST(JobLabel, NamesExperimentModelCorporaSeedAndFold) {
  EXPECT_EQ(JobLabel({{"experiment", "loco"}, {"model", "mlp_wide"}, {"corpus", "emovo"}, {"heldout", "emovo"},
                      {"target", "emovo"}, {"seed", "2"}, {"fold", "0"}}),
            "loco mlp_wide heldout=emovo seed=2 fold=0");
  EXPECT_EQ(JobLabel({{"experiment", "adapt"}, {"model", "concat_mlp"}, {"variant", "dann_ganin"}, {"source", "a"},
                      {"target", "b"}, {"corpus", "b"}, {"seed", "1"}}),
            "adapt concat_mlp dann_ganin a->b seed=1");
  EXPECT_EQ(JobLabel({{"experiment", "fs"}, {"model", "m"}, {"source", "a"}, {"target", "a"}, {"corpus", "a"},
                      {"role", "pretrain"}, {"seed", "3"}}),
            "fs m a seed=3 (pretrain)");
}

}  // namespace
}  // namespace emosweep::protocols
