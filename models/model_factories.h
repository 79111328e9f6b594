// models/model_factories.h: constructors of the registered models (internal to models/).
//
// Each factory receives the spec and the config already validated against the
// model's ConfigTable (defaults filled); it checks the modalities it needs and
// returns InvalidArgument naming what is missing. registry.cc maps names to these.
// Thread-safety: pure constructors.
#pragma once

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "models/model.h"

namespace emosweep::models {

Result<ModelPtr> MakeUnimodalMlp(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeConcatMlp(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeCrossAttention(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeGatedUnconstrained(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeGlomer(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeMerGfl(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeCemobam(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeHemogat(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeMsrA(const ModelSpec& spec, const nlohmann::json& cfg);
Result<ModelPtr> MakeMsrB(const ModelSpec& spec, const nlohmann::json& cfg);
// `torchscript`: loads cfg "file" (absolute, resolved by ResolveModelFile), checks it (dry forward pass)
// and initialises it under the current torch seed (models/torchscript_model.cc).
Result<ModelPtr> MakeTorchScript(const ModelSpec& spec, const nlohmann::json& cfg);

// Input dimension of `modality`, or InvalidArgument naming the model and the missing modality.
Result<int64_t> RequireInput(const ModelSpec& spec, const std::string& model, const std::string& modality);
// The tensor of `modality` in `batch` (throws c10::Error naming it when missing: Forward runs inside
// the trainer's exception boundary).
const torch::Tensor& Input(const Batch& batch, const std::string& modality);

}  // namespace emosweep::models
