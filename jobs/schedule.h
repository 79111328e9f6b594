// jobs/schedule.h: learning-rate (and momentum) schedules that behave like PyTorch's.
//
// libtorch 1.13 ships only StepLR, so the schedules the seeds use are written
// here from PyTorch's definitions (torch/optim/lr_scheduler.py):
//  - onecycle: OneCycleLR(three_phase=False, anneal_strategy="cos"), stepped per
//    optimizer step; with cycle_momentum it also cycles beta1 (adam/adamw) or
//    momentum (sgd) between max_momentum and base_momentum.
//  - plateau: ReduceLROnPlateau (mode, factor, patience, threshold(+mode),
//    cooldown, min_lr, eps), stepped per validation with the watched value.
//  - cosine: CosineAnnealingLR in its closed form, stepped per epoch.
//  - step: StepLR, stepped per epoch.
//  - inv: lr·(1 + γ·x)^−power per optimizer step, x = step/total_steps (Ganin & Lempitsky's
//    lr/(1+10p)^0.75) or the step itself (TLlib's lr·(1+γi)^−0.75); PyTorch has no class for it
//    (TLlib uses LambdaLR with this lambda).
// The schedule only computes values; the trainer applies them to its
// optimizer. State() / LoadState() make it part of a checkpoint. No libtorch.
// Thread-safety: one instance per job.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "jobs/train_config.h"

namespace emosweep::jobs {

class Schedule {
 public:
  // `total_steps`: optimizer steps over the whole run (onecycle, inv per run).
  Schedule(const TrainConfig& config, int64_t total_steps);

  double lr() const { return lr_; }
  // Momentum (beta1 or sgd momentum) to use now; only meaningful when cycles_momentum().
  double momentum() const { return momentum_; }
  bool cycles_momentum() const { return kind_ == "onecycle" && cycle_momentum_; }

  void StepBatch();                   // after each optimizer step
  void StepEpoch();                   // after each epoch (cosine, step)
  void StepValidation(double value);  // after each validation (plateau)

  nlohmann::json State() const;
  Status LoadState(const nlohmann::json& state);

 private:
  void Recompute();

  std::string kind_;
  TrainConfig c_;
  bool cycle_momentum_ = false;
  int64_t total_steps_ = 1;
  int64_t step_ = 0;   // optimizer steps taken (onecycle, inv)
  int64_t epoch_ = 0;  // epochs completed (cosine, step)
  double lr_ = 0, momentum_ = 0;
  // ReduceLROnPlateau state.
  double best_ = 0;
  int num_bad_ = 0, cooldown_counter_ = 0;
};

}  // namespace emosweep::jobs
