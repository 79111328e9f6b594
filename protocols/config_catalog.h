// protocols/config_catalog.h: the typed config tables the protocol layer
// validates against, so that job identities hold *effective* configs.
//
// Model configs come from models/model_configs.h (target
// emosweep_models_config), the train section from jobs/train_config.h
// (in emosweep_jobs), DA variants from the names of
// ../shared/specs/da-variants.md. All torch-free: `plan` validates and fills
// defaults without loading libtorch (docs/design/protocols.md says why this
// departs from the architecture's dependency table).
// Thread-safety: pure functions over immutable tables.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace emosweep::protocols {

// key -> source line, for "file line N" messages on merged configs.
using KeyLines = std::map<std::string, int>;

std::vector<std::string> KnownModels();
bool IsKnownModel(const std::string& name);
// The input modalities a model reads under this effective config: the model's required ones (models/
// model_configs.h; "any" requires none) and its 'modality' key where it has one (unimodal_mlp).
std::vector<std::string> ModelModalities(const std::string& name, const nlohmann::json& config);
// {"name": name, ...given with defaults filled}; errors name `where` and the key's line.
// A model that reads a file (`torchscript`) gets it resolved against `base_dir` and its
// SHA-256 filled in (models::ResolveModelFile): a missing file is an error here, at plan time.
Result<nlohmann::json> EffectiveModelConfig(const std::string& name, const nlohmann::json& given,
                                            const std::string& where, const KeyLines& lines,
                                            const std::string& base_dir = ".",
                                            std::set<std::string>* missing_files = nullptr);
// Resolves and hashes a model's file in `config` (see EffectiveModelConfig); Ok for other models.
// `missing_files` non-null: a model file that does not exist is added there instead of being an error.
Status ResolveModelFileConfig(const std::string& name, const std::string& base_dir, const std::string& where,
                              nlohmann::json* config, std::set<std::string>* missing_files = nullptr);
Result<nlohmann::json> EffectiveTrainConfig(const nlohmann::json& given, const std::string& where,
                                            const KeyLines& lines);

const std::vector<std::string>& KnownAdaptVariants();
bool IsKnownAdaptVariant(const std::string& name);
// {"variant": v, "weight": w, ...options}, validated.
Result<nlohmann::json> EffectiveAdaptConfig(const std::string& variant, double weight,
                                            const nlohmann::json& options, const std::string& where,
                                            const KeyLines& lines);

// The largest GRL coefficient a DANN `adapt` config reaches in a run of num_epochs x steps_per_epoch steps, as a
// share of its lambda_max; -1 for variants without a schedule (or a build without the models' config tables).
double GrlPeakShare(const nlohmann::json& adapt, int num_epochs, int64_t steps_per_epoch);

// "a, b, c" for messages.
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace emosweep::protocols
