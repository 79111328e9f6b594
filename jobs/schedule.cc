// jobs/schedule.cc: PyTorch's schedule formulas (see schedule.h).
#include "jobs/schedule.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace emosweep::jobs {
namespace {

constexpr double kPi = 3.14159265358979323846;

double CosAnneal(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1); }

}  // namespace

Schedule::Schedule(const TrainConfig& config, int64_t total_steps)
    : kind_(config.schedule), c_(config), total_steps_(std::max<int64_t>(1, total_steps)) {
  cycle_momentum_ = config.onecycle_cycle_momentum;
  best_ = c_.plateau_mode == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  lr_ = c_.lr;
  momentum_ = c_.optimizer == "sgd" ? c_.momentum : c_.beta1;
  Recompute();
}

void Schedule::Recompute() {
  if (kind_ == "onecycle") {
    // OneCycleLR._schedule_phases (three_phase=False) and get_lr().
    const double max_lr = c_.lr * c_.onecycle_max_lr_factor;
    const double initial = max_lr / c_.onecycle_div_factor;
    const double min_lr = initial / c_.onecycle_final_div_factor;
    const double end1 = c_.onecycle_pct_start * static_cast<double>(total_steps_) - 1;
    const double end2 = static_cast<double>(total_steps_) - 1;
    const double s = static_cast<double>(step_);
    if (s <= end1) {
      const double pct = s / end1;
      lr_ = CosAnneal(initial, max_lr, pct);
      momentum_ = CosAnneal(c_.onecycle_max_momentum, c_.onecycle_base_momentum, pct);
    } else {
      const double pct = (s - end1) / (end2 - end1);
      lr_ = CosAnneal(max_lr, min_lr, pct);
      momentum_ = CosAnneal(c_.onecycle_base_momentum, c_.onecycle_max_momentum, pct);
    }
  } else if (kind_ == "cosine") {
    lr_ = c_.cosine_eta_min +
          (c_.lr - c_.cosine_eta_min) * (1 + std::cos(kPi * static_cast<double>(epoch_) / c_.cosine_t_max)) / 2;
  } else if (kind_ == "inv") {
    // Ganin & Lempitsky (2015): lr/(1+10p)^0.75, p the run's progress; TLlib: lr·(1+γi)^−0.75 per step i.
    const double x = c_.inv_per == "step" ? static_cast<double>(step_)
                                          : static_cast<double>(step_) / static_cast<double>(total_steps_);
    lr_ = c_.lr * std::pow(1.0 + c_.inv_gamma * x, -c_.inv_power);
  } else if (kind_ == "step") {
    lr_ = c_.lr * std::pow(c_.step_gamma, static_cast<double>(epoch_ / c_.step_size));
  }
  // "none" keeps lr; "plateau" changes lr only in StepValidation.
}

void Schedule::StepBatch() {
  if (kind_ != "onecycle" && kind_ != "inv") return;
  // PyTorch raises past total_steps; a run only gets there if the step count
  // was planned wrongly, so hold the final value instead.
  if (step_ < total_steps_) ++step_;
  Recompute();
}

void Schedule::StepEpoch() {
  if (kind_ != "cosine" && kind_ != "step") return;
  ++epoch_;
  Recompute();
}

void Schedule::StepValidation(double value) {
  if (kind_ != "plateau") return;
  const bool min_mode = c_.plateau_mode == "min";
  const bool rel = c_.plateau_threshold_mode == "rel";
  const double t = c_.plateau_threshold;
  bool better;
  if (min_mode) better = rel ? value < best_ * (1 - t) : value < best_ - t;
  else better = rel ? value > best_ * (1 + t) : value > best_ + t;
  if (better) {
    best_ = value;
    num_bad_ = 0;
  } else {
    ++num_bad_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_ = 0;
  }
  if (num_bad_ > c_.plateau_patience) {
    const double new_lr = std::max(lr_ * c_.plateau_factor, c_.plateau_min_lr);
    if (lr_ - new_lr > c_.plateau_eps) lr_ = new_lr;
    cooldown_counter_ = c_.plateau_cooldown;
    num_bad_ = 0;
  }
}

nlohmann::json Schedule::State() const {
  // best_ may be ±inf, which JSON cannot hold: store it with a flag.
  return {{"kind", kind_}, {"step", step_},       {"epoch", epoch_},       {"lr", lr_},
          {"best_finite", std::isfinite(best_)}, {"best", std::isfinite(best_) ? best_ : 0.0},
          {"num_bad", num_bad_}, {"cooldown_counter", cooldown_counter_}};
}

Status Schedule::LoadState(const nlohmann::json& s) {
  if (!s.is_object() || s.value("kind", "") != kind_)
    return Status::Corruption("schedule state is for '" + s.value("kind", std::string("?")) + "', expected '" + kind_ +
                              "'");
  step_ = s["step"];
  epoch_ = s["epoch"];
  num_bad_ = s["num_bad"];
  cooldown_counter_ = s["cooldown_counter"];
  if (s["best_finite"].get<bool>()) best_ = s["best"];
  Recompute();
  lr_ = s["lr"];  // plateau's lr is state, not a function of the counters
  return Status::Ok();
}

}  // namespace emosweep::jobs
