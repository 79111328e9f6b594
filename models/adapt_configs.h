// models/adapt_configs.h: domain-adaptation variant names and their config tables, without libtorch.
//
// The `adapt = {variant = "...", ...}` section of a job names one variant from
// specs/da-variants.md. The protocol layer validates it with these tables;
// models/da_losses.h builds the matching loss from the validated JSON.
// Thread-safety: immutable tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config_table.h"
#include "core/status.h"

namespace emosweep::models {

struct AdaptInfo {
  std::string variant;  // "dann_ganin", "dann_tllib", "mmd_rbf", "mk_mmd_linear", ...
  std::string summary;
  ConfigTable config;   // every key of this variant, "variant" and "weight" included
};

const std::vector<AdaptInfo>& AdaptInfos();
const AdaptInfo* FindAdaptInfo(const std::string& variant);

// The GRL schedule's horizon (`grl_horizon`), the point at which the schedule reaches its end
// (dann_ganin: p = 1; dann_tllib: i = N): "" = the variant's own (dann_ganin: the whole run;
// dann_tllib: grl_max_iters steps), "<x> steps", "<x> epochs" or "<x> run" (a fraction of the run).
struct GrlHorizon {
  std::string unit;  // "" | "steps" | "epochs" | "run"
  double value = 0;  // > 0 unless unit is ""
  // The horizon in optimizer steps for a run of `num_epochs` x `steps_per_epoch` (0 when unit is "").
  double Steps(int num_epochs, int64_t steps_per_epoch) const;
};
Result<GrlHorizon> ParseGrlHorizon(const std::string& text, const std::string& where);

// The GRL coefficient a DANN variant applies at 0-based `epoch` / optimizer `step` of a run of `num_epochs` x
// `steps_per_epoch` steps, from its validated `adapt` config (dann_ganin: 2/(1+e^{-γp})-1 with p = epoch/num_epochs
// or min(1, epoch·steps_per_epoch/horizon); dann_tllib: 2/(1+e^{-α i/N})-1 with N = grl_max_iters or the
// horizon), times lambda_max. 0 for variants without a schedule. models/da_losses.cc applies exactly this.
double GrlScheduleLambda(const nlohmann::json& adapt, int epoch, int64_t step, int num_epochs,
                         int64_t steps_per_epoch);

// Validates an `adapt` section (must name a known `variant`) and fills defaults.
// An empty object means "no adaptation" and is returned unchanged.
Result<nlohmann::json> ValidateAdaptConfig(const nlohmann::json& adapt, const std::string& where);

}  // namespace emosweep::models
