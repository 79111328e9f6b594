// jobs/job.h: the contract between the protocol layer and the trainer.
//
// protocols/ expands a protocol file into JobSpecs (plain data, JSON
// round-trippable, no torch); the trainer (worker/, loaded only by the commands
// that train) runs one JobSpec and returns a JobResult. Nothing in jobs/
// includes libtorch or any worker type, so the protocol layer, the
// orchestrator and the state commands stay torch-free (docs/design/architecture.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
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
  std::map<std::string, std::vector<DataRef>> eval;  // named evaluation sets ("test", "test:emodb", ...)
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
  std::function<std::string(const std::string& job_id)> checkpoint_of;  // path of a finished job's model
  const std::atomic<bool>* stop_requested = nullptr;  // preemption: checkpoint and return Aborted
  std::function<void(const EpochRecord&)> on_epoch;   // progress / heartbeats
};

}  // namespace emosweep::jobs
