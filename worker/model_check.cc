// worker/model_check.cc: CheckModelFiles (worker/job.h), the pre-flight check of the model
// files a sweep reads (`torchscript`), run by `emosweep run` before the first job starts.
//
// Each distinct (model config, feature dims, classes) is built exactly as the trainer
// builds it (models::CreateModel: TorchScript load, signature, parameters, a dry forward
// pass on 2 rows), so a bad file fails the whole run with exit 2 instead of failing every
// job that uses it. Dims come from the stores' attributes (no feature matrix is read).
#include <torch/torch.h>

#include <set>

#include "data/feature_store.h"
#include "models/model.h"
#include "worker/job.h"

namespace emosweep::worker {

Status CheckModelFiles(const std::vector<JobSpec>& jobs) {
  std::set<std::string> seen;
  std::map<std::string, data::StoreInfo> stores;
  for (const auto& spec : jobs) {
    if (!spec.model.is_object() || !spec.model.contains("file")) continue;
    const DataRef* ref = nullptr;
    for (const auto* refs : {&spec.train, &spec.val})
      if (!ref && !refs->empty()) ref = &refs->front();
    for (const auto& [n, refs] : spec.eval)
      if (!ref && !refs.empty()) ref = &refs.front();
    if (!ref) continue;  // the trainer reports a job without data
    auto it = stores.find(ref->store);
    if (it == stores.end()) {
      ES_ASSIGN_OR_RETURN(data::StoreInfo info, data::ReadStoreInfo(ref->store, /*check_hash=*/false));
      it = stores.emplace(ref->store, std::move(info)).first;
    }
    models::ModelSpec ms;
    ms.num_classes = static_cast<int64_t>(spec.labels.size());
    ms.labels = spec.labels;
    ms.config = spec.model;
    for (const auto& [modality, set] : spec.features)
      for (const auto& f : it->second.features)
        if (f.name == set) ms.input_dims[modality] = f.dim;
    std::string key = spec.model.dump() + "|" + std::to_string(ms.num_classes);
    for (const auto& [m, d] : ms.input_dims) key += "|" + m + ":" + std::to_string(d);
    if (!seen.insert(key).second) continue;
    torch::manual_seed(0);  // the trainer reseeds before building the job's own model
    Result<models::ModelPtr> built = models::CreateModel(spec.model.value("name", ""), ms);
    if (!built.ok()) {
      const Status& s = built.status();
      return s.IsBadInput() ? s : Status::InvalidArgument(s.message());
    }
  }
  return Status::Ok();
}

}  // namespace emosweep::worker
