// jobs/train_config.h: the `train` section of a job, as one typed table.
//
// TrainConfigTable() is the single declaration of every training key (type,
// default, bounds, help). The protocol layer applies it at plan time so that
// job identities hash the *effective* config (defaults filled in); the trainer
// parses the same JSON into a TrainConfig. No libtorch here.
// Thread-safety: the table is immutable; TrainConfig is a plain value.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config_table.h"
#include "core/status.h"

namespace emosweep::jobs {

struct TrainConfig {
  // Optimizer.
  std::string optimizer = "adamw";  // adamw | adam | sgd
  double lr = 1e-3;
  double weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double momentum = 0.0;
  bool nesterov = false;
  // Data.
  int batch_size = 32;
  int epochs = 50;
  bool drop_last = false;
  bool balanced_sampling = false;
  // Schedules: onecycle and inv step per batch; the others once per epoch (as the seeds do).
  std::string schedule = "none";  // none | onecycle | plateau | cosine | step | inv
  double onecycle_max_lr_factor = 10.0;
  double onecycle_pct_start = 0.3;
  double onecycle_div_factor = 25.0;
  double onecycle_final_div_factor = 1e4;
  bool onecycle_cycle_momentum = true;
  double onecycle_base_momentum = 0.85, onecycle_max_momentum = 0.95;
  std::string plateau_metric = "loss";  // the validation value the plateau schedule watches
  std::string plateau_mode = "auto";    // auto (min for loss, max otherwise) | min | max
  double plateau_factor = 0.1;
  int plateau_patience = 10;
  double plateau_threshold = 1e-4;
  std::string plateau_threshold_mode = "rel";
  int plateau_cooldown = 0;
  double plateau_min_lr = 0.0;
  double plateau_eps = 1e-8;
  int cosine_t_max = 0;  // 0 = epochs
  double cosine_eta_min = 0.0;
  int step_size = 30;
  double step_gamma = 0.1;
  // inv (per step): lr·(1 + inv_gamma·x)^−inv_power, x = step/total_steps (inv_per "run") or the step.
  double inv_gamma = 10.0, inv_power = 0.75;
  std::string inv_per = "run";
  // Regularisation and loss.
  double grad_clip = 0.0;  // max global L2 norm; 0 = off
  std::string class_weights = "none";  // none | balanced | inverse_frequency
  double label_smoothing = 0.0;
  std::vector<std::string> freeze;     // parameter-name prefixes kept fixed (fine-tuning)
  // Input standardisation (worker/dataset.h Standardize): none | train | corpus.
  std::string feature_norm = "none";
  // Validation, early stopping, model selection.
  std::string metric = "ua";  // ua | wa | macro_f1 | loss: early stopping and best-epoch selection
  int patience = 0;           // epochs without improvement before stopping; 0 = off
  int eval_every = 1;         // validate every N epochs (and always at the last one)
  int threads = 0;            // intra-op threads; 0 = the JobContext's

  bool MetricHigherIsBetter() const { return metric != "loss"; }
};

// The table of the `train` section (docs/trainer.md lists it).
const ConfigTable& TrainConfigTable();

// Validates `given` against the table and fills defaults (the effective config).
Result<nlohmann::json> EffectiveTrainConfig(const nlohmann::json& given, const std::string& where,
                                            const std::map<std::string, int>& lines = {});

// Parses an effective (or partial) config into a TrainConfig.
Result<TrainConfig> ParseTrainConfig(const nlohmann::json& given, const std::string& where);

}  // namespace emosweep::jobs
