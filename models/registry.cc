// models/registry.cc: name -> constructor, one static table (no mutable singleton).
#include <string>

#include "models/model_configs.h"
#include "models/model_factories.h"

namespace emosweep::models {
namespace {

using Factory = Result<ModelPtr> (*)(const ModelSpec&, const nlohmann::json&);
struct Entry {
  const char* name;
  Factory make;
};
constexpr Entry kRegistry[] = {
    {"unimodal_mlp", &MakeUnimodalMlp}, {"concat_mlp", &MakeConcatMlp},   {"cross_attention", &MakeCrossAttention},
    {"gated_unconstrained", &MakeGatedUnconstrained},                    {"glomer", &MakeGlomer},
    {"mer_gfl", &MakeMerGfl},           {"cemobam", &MakeCemobam},       {"hemogat", &MakeHemogat},
    {"msr_a", &MakeMsrA},               {"msr_b", &MakeMsrB},            {"torchscript", &MakeTorchScript},
};

}  // namespace

Result<int64_t> RequireInput(const ModelSpec& spec, const std::string& model, const std::string& modality) {
  auto it = spec.input_dims.find(modality);
  if (it == spec.input_dims.end()) {
    std::string have;
    for (const auto& [m, d] : spec.input_dims) have += (have.empty() ? "" : ", ") + m;
    return Status::InvalidArgument("model '" + model + "' needs modality '" + modality +
                                   "' but the job provides: " + (have.empty() ? "none" : have));
  }
  if (it->second <= 0) return Status::InvalidArgument("model '" + model + "': modality '" + modality + "' has dimension " + std::to_string(it->second));
  return it->second;
}

const torch::Tensor& Input(const Batch& batch, const std::string& modality) {
  auto it = batch.inputs.find(modality);
  TORCH_CHECK(it != batch.inputs.end(), "batch has no '", modality, "' input");
  return it->second;
}

Result<ModelPtr> CreateModel(const std::string& name, const ModelSpec& spec) {
  const ModelInfo* info = FindModelInfo(name);
  const Entry* entry = nullptr;
  for (const auto& e : kRegistry)
    if (name == e.name) entry = &e;
  if (!info || !entry) {
    std::string all;
    for (const auto& e : kRegistry) all += (all.empty() ? "" : ", ") + std::string(e.name);
    return Status::InvalidArgument("unknown model '" + name + "' (known: " + all + ")");
  }
  if (spec.num_classes < 2)
    return Status::InvalidArgument("model '" + name + "': num_classes must be >= 2, got " +
                                   std::to_string(spec.num_classes));
  nlohmann::json given = spec.config.is_null() ? nlohmann::json::object() : spec.config;
  if (given.is_object()) given.erase("name");  // JobSpec.model carries the name beside the keys
  ES_ASSIGN_OR_RETURN(nlohmann::json cfg, info->config.Apply(given, "model '" + name + "'"));
  try {
    return entry->make(spec, cfg);
  } catch (const c10::Error& e) {  // e.g. an allocation beyond memory: the message, not torch's C++ backtrace
    return Status::Internal("building model '" + name + "': " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal("building model '" + name + "': " + e.what());
  }
}

}  // namespace emosweep::models
