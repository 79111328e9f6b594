// jobs/train_config.cc: the `train` table and its parser. No libtorch here.
#include "jobs/train_config.h"

namespace emosweep::jobs {
namespace {

using J = nlohmann::json;
constexpr auto kB = ConfigType::kBool;
constexpr auto kI = ConfigType::kInt;
constexpr auto kD = ConfigType::kDouble;
constexpr auto kS = ConfigType::kString;

ConfigTable BuildTable() {
  // Defaults follow PyTorch's where PyTorch has one, so a config that names
  // only what a paper states behaves like that paper's script.
  return ConfigTable(
      "train",
      {
          {"optimizer", kS, "adamw", "adamw (decoupled decay) | adam (L2 decay) | sgd", {}, {}, {"adamw", "adam", "sgd"}},
          {"lr", kD, 1e-3, "base learning rate", 0.0, {}, {}},
          {"weight_decay", kD, 0.01, "adamw: decoupled decay; adam/sgd: L2 added to the gradient", 0.0, {}, {}},
          {"betas", ConfigType::kDoubleList, J::array({0.9, 0.999}), "adam/adamw (beta1, beta2)", 0.0, 1.0, {}},
          {"eps", kD, 1e-8, "adam/adamw epsilon", 0.0, {}, {}},
          {"momentum", kD, 0.0, "sgd momentum", 0.0, 1.0, {}},
          {"nesterov", kB, false, "sgd Nesterov momentum (needs momentum > 0)", {}, {}, {}},
          {"batch_size", kI, 32, "training mini-batch size (transductive models use the whole split)", 1.0, 16777216.0, {}},
          {"epochs", kI, 50, "maximum number of epochs", 1.0, {}, {}},
          {"drop_last", kB, false, "drop the last incomplete training batch", {}, {}, {}},
          {"balanced_sampling", kB, false, "draw training batches class-balanced (with replacement)", {}, {}, {}},
          {"schedule", kS, "none", "learning-rate schedule", {}, {}, {"none", "onecycle", "plateau", "cosine", "step", "inv"}},
          {"onecycle_max_lr_factor", kD, 10.0, "onecycle: max_lr = factor * lr", 0.0, {}, {}},
          {"onecycle_pct_start", kD, 0.3, "onecycle: share of steps spent increasing", 0.0, 1.0, {}},
          {"onecycle_div_factor", kD, 25.0, "onecycle: initial lr = max_lr / div_factor", 1e-12, {}, {}},
          {"onecycle_final_div_factor", kD, 1e4, "onecycle: final lr = initial lr / final_div_factor", 1e-12, {}, {}},
          {"onecycle_cycle_momentum", kB, true, "onecycle: cycle beta1 (adam) or momentum (sgd)", {}, {}, {}},
          {"onecycle_base_momentum", kD, 0.85, "onecycle: lowest momentum", 0.0, 1.0, {}},
          {"onecycle_max_momentum", kD, 0.95, "onecycle: highest momentum", 0.0, 1.0, {}},
          {"plateau_metric", kS, "loss", "plateau: validation value watched", {}, {}, {"loss", "ua", "wa", "macro_f1", "weighted_f1"}},
          {"plateau_mode", kS, "auto", "plateau: min | max | auto (min for loss, max otherwise)", {}, {}, {"auto", "min", "max"}},
          {"plateau_factor", kD, 0.1, "plateau: lr *= factor on a plateau", 0.0, 1.0, {}},
          {"plateau_patience", kI, 10, "plateau: bad epochs tolerated", 0.0, {}, {}},
          {"plateau_threshold", kD, 1e-4, "plateau: significant-change threshold", 0.0, {}, {}},
          {"plateau_threshold_mode", kS, "rel", "plateau: rel | abs", {}, {}, {"rel", "abs"}},
          {"plateau_cooldown", kI, 0, "plateau: epochs to wait after a reduction", 0.0, {}, {}},
          {"plateau_min_lr", kD, 0.0, "plateau: lower bound of the lr", 0.0, {}, {}},
          {"plateau_eps", kD, 1e-8, "plateau: reductions smaller than this are skipped", 0.0, {}, {}},
          {"cosine_t_max", kI, 0, "cosine: half-period in epochs (0 = epochs)", 0.0, {}, {}},
          {"cosine_eta_min", kD, 0.0, "cosine: minimum lr", 0.0, {}, {}},
          {"step_size", kI, 30, "step: epochs between decays", 1.0, {}, {}},
          {"step_gamma", kD, 0.1, "step: decay factor", 0.0, {}, {}},
          {"inv_gamma", kD, 10.0, "inv: lr * (1 + inv_gamma * x)^-inv_power, x = p in [0, 1] (inv_per \"run\") or the step i", 0.0, {}, {}},
          {"inv_power", kD, 0.75, "inv: the decay exponent", 0.0, {}, {}},
          {"inv_per", kS, "run", "inv: x is the run's progress p (Ganin: gamma 10) or the optimizer step i (TLlib: gamma 0.001)", {}, {}, {"run", "step"}},
          {"grad_clip", kD, 0.0, "max global L2 norm of the gradient (0 = off)", 0.0, {}, {}},
          {"class_weights", kS, "none", "loss class weights from the training labels", {}, {}, {"none", "balanced", "inverse_frequency"}},
          {"label_smoothing", kD, 0.0, "cross-entropy label smoothing", 0.0, 1.0, {}},
          {"feature_norm", kS, "none",
           "input standardisation per dimension: none | train (training rows' mean/std, applied to every split) | "
           "corpus (each corpus by its own whole-store mean/std; unlabelled, transductive)",
           {}, {}, {"none", "train", "corpus"}},
          {"freeze", ConfigType::kStringList, J::array(), "parameter-name prefixes not trained", {}, {}, {}},
          {"metric", kS, "ua", "validation metric for early stopping and best-epoch selection", {}, {}, {"ua", "wa", "macro_f1", "weighted_f1", "loss"}},
          {"patience", kI, 0, "early stopping: epochs without improvement (0 = off)", 0.0, {}, {}},
          {"eval_every", kI, 1, "validate every N epochs (always at the last)", 1.0, {}, {}},
          {"threads", kI, 0, "intra-op threads (0 = the worker's setting)", 0.0, 1024.0, {}},
      });
}

}  // namespace

const ConfigTable& TrainConfigTable() {
  static const ConfigTable kTable = BuildTable();
  return kTable;
}

Result<nlohmann::json> EffectiveTrainConfig(const nlohmann::json& given, const std::string& where,
                                            const std::map<std::string, int>& lines) {
  ES_ASSIGN_OR_RETURN(nlohmann::json j, TrainConfigTable().Apply(given, where, lines));
  auto at = [&](const char* key) {
    auto it = lines.find(key);
    return it == lines.end() ? where : where + " line " + std::to_string(it->second);
  };
  if (j["betas"].size() != 2)
    return Status::InvalidArgument(at("betas") + ": 'betas' must have two values, got " + j["betas"].dump());
  // Adam's bias correction divides by 1 - beta^t: a beta of 1 makes it 0/0 at the first step, which then read as
  // "diverged" (helper-61). torch refuses it too ("Invalid beta parameter").
  const std::string opt = j["optimizer"].get<std::string>();
  if (opt == "adam" || opt == "adamw") {
    for (int b = 0; b < 2; ++b)
      if (j["betas"][b].get<double>() >= 1.0)
        return Status::InvalidArgument(at("betas") + ": 'betas' must be below 1 for " + opt + " (beta" +
                                       std::to_string(b + 1) + " = " + j["betas"][b].dump() +
                                       " makes the bias correction 1 - beta^t zero)");
    if (j["schedule"] == "onecycle" && j["onecycle_cycle_momentum"].get<bool>() &&
        j["onecycle_max_momentum"].get<double>() >= 1.0)
      return Status::InvalidArgument(at("onecycle_max_momentum") +
                                     ": onecycle_max_momentum must be below 1 for " + opt +
                                     ": the schedule sets beta1 to it, and a beta1 of 1 makes the bias correction zero");
  }
  if (j["schedule"] == "onecycle" && !(j["onecycle_max_lr_factor"].get<double>() > 0))
    return Status::InvalidArgument(at("onecycle_max_lr_factor") +
                                   ": onecycle_max_lr_factor must be above 0 (0 trains at lr 0 throughout)");
  // The inv schedule's keys are in a job's effective config only when it uses the schedule: the identities of
  // jobs from before the schedule existed stay the same (an identity hashes the effective config).
  // Like the other schedules' keys, they are accepted (and unused) beside another schedule: a grid over schedules.
  if (j["schedule"] != "inv")
    for (const char* k : {"inv_gamma", "inv_power", "inv_per"}) j.erase(k);
  if (j["nesterov"].get<bool>() && j["momentum"].get<double>() <= 0)
    return Status::InvalidArgument(at("nesterov") + ": 'nesterov' needs momentum > 0");
  if (j["onecycle_base_momentum"].get<double>() > j["onecycle_max_momentum"].get<double>())
    return Status::InvalidArgument(at("onecycle_base_momentum") +
                                   ": onecycle_base_momentum must not exceed onecycle_max_momentum");
  return j;
}

Result<TrainConfig> ParseTrainConfig(const nlohmann::json& given, const std::string& where) {
  ES_ASSIGN_OR_RETURN(nlohmann::json j, EffectiveTrainConfig(given, where));
  TrainConfig c;
  c.optimizer = j["optimizer"];
  c.lr = j["lr"];
  c.weight_decay = j["weight_decay"];
  c.beta1 = j["betas"][0];
  c.beta2 = j["betas"][1];
  c.eps = j["eps"];
  c.momentum = j["momentum"];
  c.nesterov = j["nesterov"];
  c.batch_size = j["batch_size"];
  c.epochs = j["epochs"];
  c.drop_last = j["drop_last"];
  c.balanced_sampling = j["balanced_sampling"];
  c.schedule = j["schedule"];
  c.onecycle_max_lr_factor = j["onecycle_max_lr_factor"];
  c.onecycle_pct_start = j["onecycle_pct_start"];
  c.onecycle_div_factor = j["onecycle_div_factor"];
  c.onecycle_final_div_factor = j["onecycle_final_div_factor"];
  c.onecycle_cycle_momentum = j["onecycle_cycle_momentum"];
  c.onecycle_base_momentum = j["onecycle_base_momentum"];
  c.onecycle_max_momentum = j["onecycle_max_momentum"];
  c.plateau_metric = j["plateau_metric"];
  c.plateau_mode = j["plateau_mode"];
  if (c.plateau_mode == "auto") c.plateau_mode = c.plateau_metric == "loss" ? "min" : "max";
  c.plateau_factor = j["plateau_factor"];
  c.plateau_patience = j["plateau_patience"];
  c.plateau_threshold = j["plateau_threshold"];
  c.plateau_threshold_mode = j["plateau_threshold_mode"];
  c.plateau_cooldown = j["plateau_cooldown"];
  c.plateau_min_lr = j["plateau_min_lr"];
  c.plateau_eps = j["plateau_eps"];
  c.cosine_t_max = j["cosine_t_max"];
  if (c.cosine_t_max == 0) c.cosine_t_max = j["epochs"].get<int>();
  c.cosine_eta_min = j["cosine_eta_min"];
  c.step_size = j["step_size"];
  c.step_gamma = j["step_gamma"];
  c.inv_gamma = j.value("inv_gamma", c.inv_gamma);
  c.inv_power = j.value("inv_power", c.inv_power);
  c.inv_per = j.value("inv_per", c.inv_per);
  c.grad_clip = j["grad_clip"];
  c.class_weights = j["class_weights"];
  c.label_smoothing = j["label_smoothing"];
  c.feature_norm = j["feature_norm"];
  c.freeze = j["freeze"].get<std::vector<std::string>>();
  c.metric = j["metric"];
  c.patience = j["patience"];
  c.eval_every = j["eval_every"];
  c.threads = j["threads"];
  return c;
}

}  // namespace emosweep::jobs
