// protocols/experiments.h: expansion of one experiment into PlannedJobs.
//
// expand.cc owns the job list (dedup by identity, so a shared pre-training
// job exists once) and the per-corpus data views; exp_supervised.cc expands
// in_domain, loco, cross_corpus and joint; exp_transfer.cc finetune, fewshot
// and adapt. Internal to protocols/.
// Thread-safety: single-threaded expansion state.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/splits.h"
#include "jobs/identity.h"
#include "protocols/expand.h"
#include "protocols/grammar.h"
#include "protocols/store_index.h"

namespace emosweep::protocols {

// One corpus as one experiment sees it: utterances of the experiment's label
// set only, feature sets checked.
struct CorpusView {
  const StoreView* store = nullptr;
  data::Corpus meta;               // filtered utterances (no features)
  jobs::IdList ids;                // all filtered ids, store order (interned)
  jobs::DataRef Ref(jobs::IdList ids) const;
};

// The train / val / test share of a corpus used by every kind except in_domain.
struct Partition {
  std::string fold;
  jobs::IdList train, val, test;   // interned: the jobs that read a share hold one list
};

// The shares of a set of training corpora, pooled in the set's order (one
// DataRef per corpus; an empty val share adds none).
struct Pooled {
  std::vector<jobs::DataRef> train, val, test;
  size_t train_rows = 0;
};

class Expander {
 public:
  Expander(const ProtocolDecl& decl, const StoreIndex& stores) : decl_(decl), stores_(stores) {}
  // LoadOptions::keep_data: false drops each added job's utterance ids after its id is computed.
  void set_keep_data(bool keep) { keep_data_ = keep; }
  // LoadOptions::plan_only: false keeps labels and data references of lean jobs.
  void set_plan_only(bool plan_only) { plan_only_ = plan_only; }
  // LoadOptions::table_only: lean jobs drop their data references and deps too.
  void set_table_only(bool table_only) { table_only_ = table_only; }

  Status Expand(const ExperimentDecl& e, ExperimentSummary* summary);

  std::vector<PlannedJob>& jobs() { return jobs_; }
  std::vector<std::string>& warnings() { return warnings_; }
  std::vector<std::string>& notes() { return notes_; }

  // Helpers for the kind files.
  Result<const CorpusView*> View(const ExperimentDecl& e, const std::string& corpus);
  Result<std::vector<data::Fold>> Folds(const ExperimentDecl& e, const CorpusView& view);
  Result<Partition> PartitionOf(const ExperimentDecl& e, const CorpusView& view);
  Result<Pooled> PoolOf(const ExperimentDecl& e, const std::vector<std::string>& corpora);
  // How `corpus` is evaluated as a target or held-out corpus: its [corpora.x] evaluate_on ("test" | "whole"),
  // else `kind_default`; and that evaluation set.
  std::string EvaluateOn(const std::string& corpus, const std::string& kind_default) const;
  Result<jobs::DataRef> EvalSetOf(const ExperimentDecl& e, const std::string& corpus, const std::string& kind_default);
  // A JobSpec with what every job of (e, point, seed) shares.
  jobs::JobSpec BaseSpec(const ExperimentDecl& e, const GridPoint& point, uint64_t seed) const;
  std::map<std::string, std::string> BaseAttrs(const ExperimentDecl& e, size_t model, const GridPoint& point,
                                               uint64_t seed) const;
  // Computes the id, adds the job unless an identical one exists; returns the id.
  std::string Add(PlannedJob job, ExperimentSummary* summary);

 private:
  Status ExpandInDomain(const ExperimentDecl& e, ExperimentSummary* s);
  Status ExpandLoco(const ExperimentDecl& e, ExperimentSummary* s);
  Status ExpandCrossCorpus(const ExperimentDecl& e, ExperimentSummary* s);
  Status ExpandJoint(const ExperimentDecl& e, ExperimentSummary* s);
  Status ExpandFinetune(const ExperimentDecl& e, ExperimentSummary* s);  // finetune and fewshot
  Status ExpandAdapt(const ExperimentDecl& e, ExperimentSummary* s);
  Status ExpandCrossCorpusSources(const ExperimentDecl& e, ExperimentSummary* s);  // source form
  // A feature set of the job's evaluated or unlabeled data is a TF-IDF set its store fitted on itself.
  bool SelfFittedIdf(const jobs::JobSpec& spec) const;
  // Leave-one-source-out validation jobs of a multi-source experiment (exp_lodo.cc).
  Status ExpandLodo(const ExperimentDecl& e, ExperimentSummary* s);
  // An "eval" job: the checkpoint of `trained` evaluated on `test`.
  std::string AddEval(const PlannedJob& trained, const jobs::DataRef& test, std::map<std::string, std::string> attrs,
                      ExperimentSummary* s);
  // The id of an added job as the one copy its dependents' init_from and deps share (eval jobs
  // of a trained job, fine-tune jobs of a pre-training job, across experiments; issue 15).
  jobs::SharedId ParentId(const std::string& id);

  // Position of the job with this id in jobs_, or -1 (open addressing over jobs_' ids:
  // a std::map keyed by 64-character ids was ~20 % of `plan` at 10^5 jobs, its nodes
  // ~160 bytes a job; issue 15).
  long FindJob(const std::string& id) const;
  void IndexJob(size_t pos);

  const ProtocolDecl& decl_;
  const StoreIndex& stores_;
  std::vector<PlannedJob> jobs_;
  std::vector<uint64_t> id_slots_;  // (hash tag << 32) | (position + 1); 0 = empty
  jobs::IdentityCache identities_;  // midstates of the ids' leading bytes (shared eval sets)
  std::map<std::string, CorpusView> views_;   // key: experiment labels + features + corpus
  std::vector<std::string> warnings_;
  std::vector<std::string> notes_;  // Protocol::notes
  // BaseSpec's features and labels of the experiment last asked for (interned once).
  mutable const ExperimentDecl* shared_for_ = nullptr;
  mutable jobs::FeatureMap shared_features_;
  mutable jobs::IdList shared_labels_;
  // Ids of jobs others depend on, by position in jobs_ (ParentId; empty where none asked).
  std::vector<jobs::SharedId> parent_ids_;
  // Test shares of splits that allow speaker overlap (kept alive so that their addresses stay theirs), with the
  // experiments whose split allowed it: a job of one of them evaluated on such a share and trained on the same
  // store (or evaluating a model that was) gets attrs `speaker_overlap` (protocols/transductive.h). Per
  // experiment: an interned share is shared by every experiment that splits alike (helper-62: another
  // experiment's speaker-independent folds were flagged).
  std::vector<jobs::IdList> overlap_tests_;
  // evaluate_on = "test": per corpus, the test shares experiments evaluate it on, and the first experiment of
  // each (helper-62: experiments with their own splits tested one corpus on different utterances, silently).
  std::map<std::string, std::map<const void*, std::string>> test_shares_;
  std::vector<jobs::IdList> test_share_lists_;  // kept alive: their addresses are the keys above
  std::set<std::string> test_share_warned_;      // corpora warned about (once each)
  std::map<const void*, std::set<std::string>> overlap_test_ptrs_;
  bool keep_data_ = true;
  bool plan_only_ = false;
  bool table_only_ = false;
};

}  // namespace emosweep::protocols
