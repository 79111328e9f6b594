// protocols/config_catalog.cc: model / train / adapt config validation.
#include "protocols/config_catalog.h"

#include <algorithm>

#if EMOSWEEP_HAVE_MODELS_CONFIG
#include "models/adapt_configs.h"
#include "models/model_configs.h"
#endif
#include "jobs/train_config.h"

namespace emosweep::protocols {
namespace {

// Until models/model_configs.cc is linked, the registry names agreed in the
// models brief; configs then pass unvalidated (see EffectiveModelConfig).
[[maybe_unused]] const std::vector<std::string>& FallbackModels() {
  static const std::vector<std::string> kNames = {
      "unimodal_mlp", "concat_mlp", "cross_attention", "gated_unconstrained", "glomer",
      "mer_gfl",      "cemobam",    "hemogat",         "msr_a",               "msr_b"};
  return kNames;
}

}  // namespace

std::string JoinNames(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::vector<std::string> KnownModels() {
#if EMOSWEEP_HAVE_MODELS_CONFIG
  std::vector<std::string> out;
  for (const auto& m : models::ModelInfos()) out.push_back(m.name);
  return out;
#else
  return FallbackModels();
#endif
}

bool IsKnownModel(const std::string& name) {
  auto names = KnownModels();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<std::string> ModelModalities(const std::string& name, const nlohmann::json& config) {
#if EMOSWEEP_HAVE_MODELS_CONFIG
  return models::ModelReadsModalities(name, config);
#else
  (void)name;
  std::vector<std::string> out;  // without the model table only the 'modality' key is known
  if (config.is_object() && config.contains("modality") && config["modality"].is_string())
    out.push_back(config["modality"].get<std::string>());
  return out;
#endif
}

Result<nlohmann::json> EffectiveModelConfig(const std::string& name, const nlohmann::json& given,
                                            const std::string& where, const KeyLines& lines,
                                            const std::string& base_dir, std::set<std::string>* missing_files) {
  if (!IsKnownModel(name))
    return Status::InvalidArgument(where + ": unknown model '" + name + "' (known models: " +
                                   JoinNames(KnownModels()) + ")");
  nlohmann::json out;
#if EMOSWEEP_HAVE_MODELS_CONFIG
  ES_ASSIGN_OR_RETURN(out, models::FindModelInfo(name)->config.Apply(given, where, lines));
  auto line = lines.find("file");
  ES_RETURN_IF_ERROR(ResolveModelFileConfig(
      name, base_dir, where + (line != lines.end() ? " line " + std::to_string(line->second) : ""), &out,
      missing_files));
#else
  (void)base_dir, (void)missing_files;
  out = given.is_null() ? nlohmann::json::object() : given;
#endif
  out["name"] = name;
  return out;
}

Status ResolveModelFileConfig(const std::string& name, const std::string& base_dir, const std::string& where,
                              nlohmann::json* config, std::set<std::string>* missing_files) {
#if EMOSWEEP_HAVE_MODELS_CONFIG
  bool missing = false;
  ES_RETURN_IF_ERROR(models::ResolveModelFile(name, base_dir, where, config, missing_files ? &missing : nullptr));
  if (missing) missing_files->insert((*config)["file"].get<std::string>());
  return Status::Ok();
#else
  (void)name, (void)base_dir, (void)where, (void)config, (void)missing_files;
  return Status::Ok();
#endif
}

Result<nlohmann::json> EffectiveTrainConfig(const nlohmann::json& given, const std::string& where,
                                            const KeyLines& lines) {
  return jobs::EffectiveTrainConfig(given, where, lines);
}

const std::vector<std::string>& KnownAdaptVariants() {
  // Names from ../shared/specs/da-variants.md; "none" = source-only baseline.
  static const std::vector<std::string> kNames = [] {
#if EMOSWEEP_HAVE_MODELS_CONFIG
    std::vector<std::string> v;
    for (const auto& a : models::AdaptInfos()) v.push_back(a.variant);
    v.push_back("none");
    return v;
#else
    return std::vector<std::string>{"dann_ganin",    "dann_tllib", "mmd_rbf",        "mk_mmd_linear",
                                    "mk_mmd_quadratic", "coral_deep", "coral_mean_cov", "none"};
#endif
  }();
  return kNames;
}

bool IsKnownAdaptVariant(const std::string& name) {
  const auto& v = KnownAdaptVariants();
  return std::find(v.begin(), v.end(), name) != v.end();
}

Result<nlohmann::json> EffectiveAdaptConfig(const std::string& variant, double weight,
                                            const nlohmann::json& options, const std::string& where,
                                            const KeyLines& lines) {
  (void)lines;
  if (!IsKnownAdaptVariant(variant))
    return Status::InvalidArgument(where + ": unknown domain-adaptation variant '" + variant +
                                   "' (known: " + JoinNames(KnownAdaptVariants()) + ")");
  if (!(weight >= 0)) return Status::InvalidArgument(where + ": adapt weight must be >= 0");
  nlohmann::json out = options.is_object() ? options : nlohmann::json::object();
  out["variant"] = variant;
  out["weight"] = weight;
#if EMOSWEEP_HAVE_MODELS_CONFIG
  if (variant != "none") return models::ValidateAdaptConfig(out, where);
#endif
  return out;
}

double GrlPeakShare(const nlohmann::json& adapt, int num_epochs, int64_t steps_per_epoch) {
#if EMOSWEEP_HAVE_MODELS_CONFIG
  const double lambda_max = adapt.value("lambda_max", 0.0);
  if (lambda_max <= 0 || num_epochs <= 0 || steps_per_epoch <= 0) return -1;
  // The schedules only grow: the last step (of the last epoch) has the peak.
  const int64_t last_step = static_cast<int64_t>(num_epochs) * steps_per_epoch - 1;
  return models::GrlScheduleLambda(adapt, num_epochs - 1, last_step, num_epochs, steps_per_epoch) / lambda_max;
#else
  (void)adapt, (void)num_epochs, (void)steps_per_epoch;
  return -1;
#endif
}

}  // namespace emosweep::protocols
