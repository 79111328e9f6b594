// jobs/pack.cc: the packing rule (docs/design/packing.md).
#include "jobs/pack.h"

#include "core/hash.h"

namespace emosweep::jobs {

std::string PackKey(const JobSpec& spec) {
  // Conservative first rule: the MLP family, supervised / pre-training jobs
  // without adaptation or inherited weights, selected on labelled data.
  const std::string model = spec.model.is_object() ? spec.model.value("name", std::string()) : std::string();
  if (model != "concat_mlp" && model != "unimodal_mlp") return "";
  if (spec.kind != "supervised" && spec.kind != "pretrain") return "";
  if (!spec.adapt.empty() || !spec.init_from.empty() || !spec.target_unlabeled.empty()) return "";
  if (spec.selection != "source_val" && spec.selection != "target_val" && spec.selection != "last") return "";
  // Everything that shapes the batched model or the step count must agree; the
  // members' data, seeds and evaluation sets may differ.
  nlohmann::json key = {{"model", spec.model},
                        {"features", spec.features},
                        {"labels", spec.labels.size()},
                        {"train_config", spec.train_config},
                        {"selection", spec.selection}};
  return HashJson(key);
}

}  // namespace emosweep::jobs
