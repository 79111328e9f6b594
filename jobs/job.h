// jobs/job.h: the contract between the protocol layer and the trainer.
//
// protocols/ expands a protocol file into JobSpecs (plain data, JSON
// round-trippable, no torch); the trainer (worker/, loaded only by the commands
// that train) runs one JobSpec and returns a JobResult. Nothing in jobs/
// includes libtorch or any worker type, so the protocol layer, the
// orchestrator and the state commands stay torch-free (docs/design/architecture.md).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "jobs/feature_map.h"
#include "jobs/id_list.h"
#include "jobs/pooled_string.h"
#include "jobs/shared_id.h"
#include "jobs/shared_json.h"

namespace emosweep::cluster {
class GradientReducer;
}

namespace emosweep::jobs {

// A set of utterances from one feature store. The strings read like const std::strings
// (jobs/pooled_string.h): every reference to a store holds one pooled copy of its path
// and hash.
struct DataRef {
  PooledString store;              // path to the HDF5 feature store
  PooledString corpus_hash;        // content hash the ids refer to (checked at load)
  IdList ids;                      // utterance ids, in a fixed order (shared by every job of the split)
};

// A job's named evaluation sets ("test", "test:emodb", ...), in name order. Reads like a
// std::map<std::string, std::vector<DataRef>> (operator[], at, count, find, iteration over
// (name, refs) pairs in name order), and is built implicitly from one. A flat sorted
// vector: most jobs have one set, which a map held in a ~100-byte tree node (issue 15).
class EvalSets {
 public:
  using value_type = std::pair<std::string, std::vector<DataRef>>;
  using iterator = std::vector<value_type>::iterator;
  using const_iterator = std::vector<value_type>::const_iterator;

  EvalSets() = default;
  EvalSets(const std::map<std::string, std::vector<DataRef>>& m) : sets_(m.begin(), m.end()) {}  // NOLINT: implicit
  EvalSets(std::initializer_list<value_type> sets) {
    for (const auto& [name, refs] : sets) (*this)[name] = refs;
  }

  std::vector<DataRef>& operator[](const std::string& name) {
    auto it = LowerBound(name);
    if (it == sets_.end() || it->first != name) it = sets_.insert(it, {name, {}});
    return it->second;
  }
  const std::vector<DataRef>& at(const std::string& name) const {  // throws std::out_of_range, as a map's
    auto it = find(name);
    if (it == end()) throw std::out_of_range("no evaluation set '" + name + "'");
    return it->second;
  }
  const_iterator find(const std::string& name) const {
    auto it = std::lower_bound(sets_.begin(), sets_.end(), name,
                               [](const value_type& e, const std::string& n) { return e.first < n; });
    return it != sets_.end() && it->first == name ? it : sets_.end();
  }
  size_t count(const std::string& name) const { return find(name) == end() ? 0 : 1; }
  size_t size() const { return sets_.size(); }
  bool empty() const { return sets_.empty(); }
  void clear() { std::vector<value_type>().swap(sets_); }
  iterator begin() { return sets_.begin(); }
  iterator end() { return sets_.end(); }
  const_iterator begin() const { return sets_.begin(); }
  const_iterator end() const { return sets_.end(); }

 private:
  iterator LowerBound(const std::string& name) {
    return std::lower_bound(sets_.begin(), sets_.end(), name,
                            [](const value_type& e, const std::string& n) { return e.first < n; });
  }
  std::vector<value_type> sets_;  // sorted by name, names distinct
};

struct JobSpec {
  std::string id;                  // identity: SHA-256 of the canonical JSON of everything below
  // kind, selection and oracle_eval read like const std::strings (jobs/pooled_string.h):
  // a pointer to the process's one copy of each of their few values (issue 15).
  PooledString kind;               // "supervised" | "pretrain" | "finetune" | "adapt" | "eval"
  // The features and labels read like a const std::map / std::vector (jobs/feature_map.h,
  // jobs/id_list.h): jobs of one experiment share one map and one list (interned by the
  // expansion and by FromJson).
  FeatureMap features;             // modality ("audio"/"text"/"video") -> feature set name
  IdList labels;                   // class order (canonical labels)
  std::vector<DataRef> train;                   // labelled training data (may span corpora: joint/LOCO)
  std::vector<DataRef> val;                     // model-selection / early-stopping data
  EvalSets eval;                                 // named evaluation sets ("test", "test:emodb", ...)
  std::vector<DataRef> target_unlabeled;        // adapt: target-domain data, labels never read
  // The configs read like const nlohmann::json (jobs/shared_json.h): jobs of one grid point
  // share one tree (interned by the expansion and by FromJson).
  SharedJson model;                // {"name": "...", <model config>}
  SharedJson train_config;         // see jobs/train_config.h for the keys
  SharedJson adapt;                // {"variant": "dann_ganin", "weight": 0.1, ...} or {}
  PooledString selection = "source_val";  // source_val | target_val | last | oracle | dev | im | snd
  PooledString oracle_eval;                           // eval set used by "oracle" selection (flagged)
  uint64_t seed = 0;
  // finetune/adapt/eval: id of the job whose checkpoint initialises the model; reads like a const
  // std::string (jobs/shared_id.h): a parent's dependents share one copy (the expansion, issue 15).
  SharedId init_from;
  bool keep_checkpoint = false;    // dependents need this job's final model

  nlohmann::json ToJson() const;   // canonical content (without "id")
  // The job as the ledger's jobs.config_json keeps it (schema v5, docs/formats/ledger.md): ToJson() with
  // every data reference's "ids" list replaced by "ids_list": list_ref(ids) (the key of the list in the
  // ledger's id_lists table) and "n_ids": its length. The lists are not built as JSON here.
  nlohmann::json ToJson(const std::function<std::string(const IdList&)>& list_ref) const;
  static Result<JobSpec> FromJson(const nlohmann::json& j, const std::string& where);
  std::string ComputeId() const;   // HashJson of ToJson() plus the identity version
};

struct Prediction {
  std::string utt_id;
  int label = -1;                  // index into JobSpec::labels
  int pred = -1;
  std::vector<float> probs;
};

struct EvalResult {
  // Standard names: "ua" (= UAR, macro recall), "wa" (accuracy), "macro_f1",
  // "weighted_f1", "per_class_recall" (list), "confusion" (rows = truth), "n".
  nlohmann::json metrics;
  std::vector<Prediction> predictions;
};

struct EpochRecord {
  int epoch = 0;
  double train_loss = 0;
  double val_loss = 0;
  nlohmann::json val_metrics;      // same keys as EvalResult::metrics (no confusion); jobs with target_unlabeled
                                   // data add "da": the epoch's DA diagnostics (docs/trainer.md)
  double lr = 0;
  double seconds = 0;
};

struct JobResult {
  std::map<std::string, EvalResult> evals;  // one per JobSpec::eval entry (plus "val")
  std::vector<EpochRecord> curve;
  int selected_epoch = -1;
  std::string checkpoint;          // final model for dependents ("" unless keep_checkpoint)
  nlohmann::json info = nlohmann::json::object();  // params, timings, device, world size
};

// JobResult <-> JSON (the MPI coordinator ships results between ranks as JSON;
// probabilities are kept at float precision).
nlohmann::json JobResultToJson(const JobResult& result);
Result<JobResult> JobResultFromJson(const nlohmann::json& j, const std::string& where);

struct JobContext {
  int threads = 1;                 // intra-op threads for this job
  std::string device = "cpu";      // "cpu" | "cuda:N"
  cluster::GradientReducer* reducer = nullptr;  // data-parallel group; nullptr = world of one
  std::string work_dir;            // checkpoints for resume/dependents live under here
  std::string label;               // what log lines name the job by besides its id (the protocol's
                                   // "experiment / model / ..."); empty: the id alone
  std::function<std::string(const std::string& job_id)> checkpoint_of;  // path of a finished job's model
  const std::atomic<bool>* stop_requested = nullptr;  // preemption: checkpoint and return Aborted
  std::function<void(const EpochRecord&)> on_epoch;   // progress / heartbeats
  // Packs (worker::RunPack): a member's result as soon as it is final (it stopped early or ran its last epoch, and
  // was evaluated), before the pack returns, so the caller can record it at once (helper-58: a crash of the pack
  // lost the results of members that had finished long before). The pack's returned outcomes still include it.
  // Called on the thread that runs the pack. Single jobs never call it.
  std::function<void(const JobResult&)> on_finished;
};

}  // namespace emosweep::jobs
