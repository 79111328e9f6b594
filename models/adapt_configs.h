// models/adapt_configs.h: domain-adaptation variant names and their config tables, without libtorch.
//
// The `adapt = {variant = "...", ...}` section of a job names one variant from
// specs/da-variants.md. The protocol layer validates it with these tables;
// models/da_losses.h builds the matching loss from the validated JSON.
// Thread-safety: immutable tables.
#pragma once

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

// Validates an `adapt` section (must name a known `variant`) and fills defaults.
// An empty object means "no adaptation" and is returned unchanged.
Result<nlohmann::json> ValidateAdaptConfig(const nlohmann::json& adapt, const std::string& where);

}  // namespace emosweep::models
