// jobs/pack.cc: the packing rule (docs/design/packing.md).
#include "jobs/pack.h"

#include "core/hash.h"

namespace emosweep::jobs {

std::string PackKey(const JobSpec& spec) {
  // What the batched trainer (worker/packed_trainer.h) supports: the MLP family, jobs without domain
  // adaptation, selected on labelled data (or on nothing: `last`), on CPU (the worker decides the device).
  const std::string model = spec.model.is_object() ? spec.model.value("name", std::string()) : std::string();
  if (model != "concat_mlp" && model != "unimodal_mlp") return "";
  if (spec.kind != "supervised" && spec.kind != "pretrain" && spec.kind != "finetune" && spec.kind != "eval")
    return "";
  if (!spec.adapt.empty() || !spec.target_unlabeled.empty()) return "";
  if (spec.selection != "source_val" && spec.selection != "target_val" && spec.selection != "last") return "";
  // Everything that shapes the batched model (architecture, feature dimensions, classes, frozen
  // parameters), the number of steps (batch_size, epochs, drop_last), the evaluation batches
  // (batch_size) or the process (threads) must agree. The members' data, seeds, evaluation sets,
  // init_from checkpoints, dropout, optimizer settings, schedules, class weights, early stopping,
  // feature_norm and selection policy may differ.
  nlohmann::json model_key = spec.model;
  model_key.erase("dropout");
  const nlohmann::json& t = spec.train_config.is_object() ? spec.train_config.tree() : nlohmann::json::object();
  auto get = [&](const char* k) { return t.contains(k) ? t.at(k) : nlohmann::json(nullptr); };
  nlohmann::json key = {{"kind", spec.kind},
                        {"model", model_key},
                        {"features", spec.features},
                        {"labels", spec.labels.size()},
                        {"batch_size", get("batch_size")},
                        {"epochs", get("epochs")},
                        {"drop_last", get("drop_last")},
                        {"freeze", get("freeze")},
                        {"threads", get("threads")}};
  return HashJson(key);
}

}  // namespace emosweep::jobs
