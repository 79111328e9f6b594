// protocols/transductive.cc: the transductive steps of a job
// (protocols/transductive.h).
#include "protocols/transductive.h"

#include <vector>

#include "models/model_configs.h"

namespace emosweep::protocols {

std::string TransductiveSteps(const jobs::JobSpec& spec, bool self_fitted_idf) {
  std::vector<std::string> steps;
  if (spec.train_config.is_object() && spec.train_config.value("feature_norm", "") == "corpus")
    steps.push_back("feature_norm=corpus");
  if (self_fitted_idf) steps.push_back("idf");
  if (spec.kind == "adapt") steps.push_back("adapt");
  if ((spec.selection == "dev" || spec.selection == "im" || spec.selection == "snd") && spec.kind != "eval" &&
      !spec.target_unlabeled.empty())
    steps.push_back("selection=" + spec.selection);
  if (spec.model.is_object() && !spec.eval.empty()) {
    const models::ModelInfo* info = models::FindModelInfo(spec.model.value("name", ""));
    if (info && info->transductive) steps.push_back("graph");
  }
  std::string out;
  for (const auto& s : steps) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace emosweep::protocols
