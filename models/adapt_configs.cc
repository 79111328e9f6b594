#include "models/adapt_configs.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace emosweep::models {
namespace {

ConfigKey VariantKey(const std::string& v) {
  return {"variant", ConfigType::kString, v, "domain-adaptation variant (specs/da-variants.md)", {}, {}, {v}};
}
ConfigKey WeightKey() {
  return {"weight", ConfigType::kDouble, 0.1, "lambda_domain: total = task loss + weight * DA loss (seed 0.1)", 0.0,
          {}, {}};
}

std::vector<ConfigKey> DannKeys(const std::string& v) {
  return {VariantKey(v), WeightKey(),
          {"disc_hidden", ConfigType::kIntList, nlohmann::json::array({256, 128}),
           "discriminator hidden sizes (seed 384->256->128->1; in_dim = the model's feature_dim)", 1.0, {}, {}},
          {"disc_dropout", ConfigType::kDouble, 0.3, "dropout after each discriminator hidden ReLU", 0.0, 0.99, {}},
          {"lambda_max", ConfigType::kDouble, 1.0, "upper end of the GRL coefficient schedule", 0.0, {}, {}},
          {"grl_horizon", ConfigType::kString, "",
           "where the GRL schedule ends: \"\" = the variant's own (dann_ganin: the run; dann_tllib: grl_max_iters "
           "steps), \"<x> steps\", \"<x> epochs\" or \"<x> run\" (fraction of the run)",
           {}, {}, {}}};
}

// MMD/CORAL: whether the target batch back-propagates through the model (DANN always does). The seed runs
// the target forward under no_grad (seed-methods.md §4.6); TLlib and DomainBed back-propagate through both
// domains (one forward over [x_s; x_t]), as the Deep CORAL paper's gradient does.
ConfigKey TargetGradKey(bool dflt) {
  return {"target_grad", ConfigType::kBool, dflt,
          std::string("the target batch back-propagates through the model (") +
              (dflt ? "TLlib/DomainBed; false: the seed's no_grad target forward)"
                    : "true: TLlib/DomainBed and the Deep CORAL paper; false: the seed's no_grad target forward)"),
          {}, {}, {}};
}

std::vector<AdaptInfo> Build() {
  std::vector<AdaptInfo> v;
  {
    auto k = DannKeys("dann_ganin");
    k.push_back({"grl_gamma", ConfigType::kDouble, 10.0, "lambda = 2/(1+exp(-gamma*p))-1, p = epoch/num_epochs", 0.0,
                 {}, {}});
    k.push_back({"loss_form", ConfigType::kString, "seed",
                 "seed: BCE(D(s),0)+BCE(D(t),1); tllib: 0.5*[BCE(D(s),1)+BCE(D(t),0)]", {}, {}, {"seed", "tllib"}});
    v.push_back({"dann_ganin", "DANN, GRL coefficient per epoch (Ganin; multimodal-ser seed)", ConfigTable("adapt", k)});
  }
  {
    auto k = DannKeys("dann_tllib");
    k.push_back({"grl_alpha", ConfigType::kDouble, 1.0, "lambda = 2/(1+exp(-alpha*i/N))-1 per optimizer step i", 0.0,
                 {}, {}});
    k.push_back({"grl_max_iters", ConfigType::kInt, 1000, "N of the warm-start schedule", 1.0, {}, {}});
    k.push_back({"loss_form", ConfigType::kString, "tllib",
                 "seed: BCE(D(s),0)+BCE(D(t),1); tllib: 0.5*[BCE(D(s),1)+BCE(D(t),0)]", {}, {}, {"seed", "tllib"}});
    v.push_back({"dann_tllib", "DANN, warm-start GRL coefficient per step (TLlib)", ConfigTable("adapt", k)});
  }
  v.push_back({"mmd_rbf", "single-RBF biased MMD, gamma = 1/D (multimodal-ser seed)",
               ConfigTable("adapt", {VariantKey("mmd_rbf"), WeightKey(),
                                     {"gamma", ConfigType::kDouble, 0.0, "RBF gamma; 0 = 1/feature_dim", 0.0, {}, {}},
                                     TargetGradKey(false)})});
  for (const char* name : {"mk_mmd_linear", "mk_mmd_quadratic"}) {
    v.push_back({name,
                 std::string("multi-kernel MMD (TLlib), ") +
                     (std::string(name) == "mk_mmd_linear" ? "linear-time estimator" : "quadratic estimator"),
                 ConfigTable("adapt", {VariantKey(name), WeightKey(),
                                       {"kernel_multipliers", ConfigType::kDoubleList,
                                        nlohmann::json::array({0.125, 0.25, 0.5, 1.0, 2.0}),
                                        "Gaussian kernels: sigma^2 = multiplier * mean squared distance", 1e-12, {},
                                        {}},
                                       TargetGradKey(true)})});
  }
  v.push_back({"coral_deep", "Deep CORAL: ||C_s - C_t||_F^2 / (4 d^2) (seed and paper)",
               ConfigTable("adapt", {VariantKey("coral_deep"), WeightKey(), TargetGradKey(false)})});
  v.push_back({"coral_mean_cov", "CORAL mean + covariance: ||dmu||^2/d + ||dC||_F^2/d^2 (TLlib/DomainBed)",
               ConfigTable("adapt", {VariantKey("coral_mean_cov"), WeightKey(), TargetGradKey(true)})});
  return v;
}

}  // namespace

const std::vector<AdaptInfo>& AdaptInfos() {
  static const std::vector<AdaptInfo> kInfos = Build();
  return kInfos;
}

const AdaptInfo* FindAdaptInfo(const std::string& variant) {
  for (const auto& i : AdaptInfos())
    if (i.variant == variant) return &i;
  return nullptr;
}

Result<nlohmann::json> ValidateAdaptConfig(const nlohmann::json& adapt, const std::string& where) {
  if (adapt.is_null() || (adapt.is_object() && adapt.empty())) return nlohmann::json::object();
  if (!adapt.is_object()) return Status::InvalidArgument(where + ": [adapt] must be a table");
  if (!adapt.contains("variant") || !adapt["variant"].is_string())
    return Status::InvalidArgument(where + ": [adapt] needs a string key 'variant'");
  const std::string v = adapt["variant"].get<std::string>();
  const AdaptInfo* info = FindAdaptInfo(v);
  if (!info) {
    std::string all;
    for (const auto& i : AdaptInfos()) all += (all.empty() ? "" : ", ") + i.variant;
    return Status::InvalidArgument(where + ": unknown adapt variant '" + v + "' (known: " + all + ")");
  }
  ES_ASSIGN_OR_RETURN(nlohmann::json out, info->config.Apply(adapt, where));
  if (out.contains("grl_horizon")) ES_RETURN_IF_ERROR(ParseGrlHorizon(out["grl_horizon"], where).status());
  // target_grad = false is how every MMD/CORAL variant ran before the key existed: it is left out of the effective
  // config, so those jobs keep their identities (the TLlib variants' new default, true, changes theirs).
  if (out.contains("target_grad") && !out["target_grad"].get<bool>()) out.erase("target_grad");
  return out;
}

double GrlHorizon::Steps(int num_epochs, int64_t steps_per_epoch) const {
  const double spe = static_cast<double>(steps_per_epoch);
  if (unit == "steps") return value;
  if (unit == "epochs") return value * spe;
  if (unit == "run") return value * static_cast<double>(num_epochs) * spe;
  return 0;
}

double GrlScheduleLambda(const nlohmann::json& adapt, int epoch, int64_t step, int num_epochs,
                         int64_t steps_per_epoch) {
  const std::string v = adapt.value("variant", std::string());
  if (v != "dann_ganin" && v != "dann_tllib") return 0.0;
  const double lambda_max = adapt.value("lambda_max", 1.0);
  auto h = ParseGrlHorizon(adapt.value("grl_horizon", std::string()), "adapt");
  const double horizon = h.ok() ? h->Steps(num_epochs, steps_per_epoch) : 0.0;
  if (v == "dann_tllib") {
    const double n = horizon > 0 ? horizon : static_cast<double>(adapt.value("grl_max_iters", int64_t{1000}));
    const double r = static_cast<double>(step) / std::max(n, 1e-12);
    return 2.0 * lambda_max / (1.0 + std::exp(-adapt.value("grl_alpha", 1.0) * r)) - lambda_max;
  }
  double p;
  if (horizon > 0)
    p = std::min(1.0, static_cast<double>(epoch) * static_cast<double>(steps_per_epoch) / horizon);
  else
    p = num_epochs > 0 ? static_cast<double>(epoch) / static_cast<double>(num_epochs) : 1.0;
  return lambda_max * (2.0 / (1.0 + std::exp(-adapt.value("grl_gamma", 10.0) * p)) - 1.0);
}

Result<GrlHorizon> ParseGrlHorizon(const std::string& text, const std::string& where) {
  GrlHorizon h;
  if (text.empty()) return h;
  const size_t sp = text.find(' ');
  const std::string num = text.substr(0, sp), unit = sp == std::string::npos ? "" : text.substr(sp + 1);
  char* end = nullptr;
  const double v = std::strtod(num.c_str(), &end);
  const bool unit_ok = unit == "steps" || unit == "epochs" || unit == "run";
  if (num.empty() || end != num.c_str() + num.size() || !std::isfinite(v) || v <= 0 || !unit_ok)
    return Status::InvalidArgument(where + ": grl_horizon '" + text +
                                   "' is not \"<x> steps\", \"<x> epochs\" or \"<x> run\" with x > 0 "
                                   "(e.g. \"1000 steps\", \"8 epochs\", \"0.5 run\")");
  h.unit = unit;
  h.value = v;
  return h;
}

}  // namespace emosweep::models
