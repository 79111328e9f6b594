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

// Validates an `adapt` section (must name a known `variant`) and fills defaults.
// An empty object means "no adaptation" and is returned unchanged.
Result<nlohmann::json> ValidateAdaptConfig(const nlohmann::json& adapt, const std::string& where);

}  // namespace emosweep::models
