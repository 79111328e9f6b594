// jobs/pack.cc: the packing rule (docs/design/packing.md).
#include "jobs/pack.h"

#include "core/hash.h"

namespace emosweep::jobs {

bool PackableAdaptVariant(const std::string& variant) {
  return variant == "mmd_rbf" || variant == "mk_mmd_linear" || variant == "mk_mmd_quadratic" ||
         variant == "coral_deep" || variant == "coral_mean_cov" || variant == "dann_ganin" || variant == "dann_tllib";
}

std::string PackKey(const JobSpec& spec) {
  // What the batched trainer (worker/packed_trainer.h) supports: the MLP family; without domain adaptation or
  // with any of its variants (MMD, CORAL, DANN); selected on labelled data (or on nothing: `last`) or by the
  // unsupervised criteria computed from the per-epoch DA diagnostics (dev, im, snd); on CPU (the worker decides
  // the device).
  const std::string model = spec.model.is_object() ? spec.model.value("name", std::string()) : std::string();
  if (model != "concat_mlp" && model != "unimodal_mlp") return "";
  if (spec.kind != "supervised" && spec.kind != "pretrain" && spec.kind != "finetune" && spec.kind != "eval" &&
      spec.kind != "adapt")
    return "";
  if (!spec.adapt.empty() &&
      !PackableAdaptVariant(spec.adapt.is_object() ? spec.adapt.value("variant", std::string()) : std::string()))
    return "";
  if (spec.selection != "source_val" && spec.selection != "target_val" && spec.selection != "last" &&
      spec.selection != "dev" && spec.selection != "im" && spec.selection != "snd")
    return "";
  // Everything that shapes the batched model (architecture, feature sets by name, classes, frozen
  // parameters; the sets' dimensions live in the stores, unread here: members whose stores give one set
  // different dimensions share a key, and the batched trainer then runs the pack's members one after
  // another, worker/packed_trainer.cc BuildPack), the number of steps (batch_size, epochs, drop_last), the evaluation batches
  // (batch_size), the adaptation (variant and settings: every member adapts the same way, or none does)
  // or the process (threads) must agree. The members' data, seeds, evaluation sets, init_from
  // checkpoints, dropout, optimizer settings, schedules, class weights, early stopping, feature_norm,
  // selection policy and DA weight may differ.
  nlohmann::json model_key = spec.model;
  model_key.erase("dropout");
  nlohmann::json adapt_key = spec.adapt.is_object() ? spec.adapt.tree() : nlohmann::json::object();
  adapt_key.erase("weight");
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
  // Only adapting jobs carry the key (the keys of jobs without adaptation are unchanged).
  if (!adapt_key.empty()) key["adapt"] = adapt_key;
  return HashJson(key);
}

}  // namespace emosweep::jobs
