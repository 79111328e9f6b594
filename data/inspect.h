// data/inspect.h: what is in a feature store, and is it sound (`emosweep data inspect`).
//
// Reads the whole store without stopping at the first problem: counts
// utterances per speaker x label, lists feature sets with their dimensions and
// provenance, counts NaN/Inf per feature set, recomputes the content hash and
// compares it with the stored one, and reports Corpus::Validate's verdict.
// Thread-safety: pure function over a file (the store takes the HDF5 lock).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/feature_store.h"

namespace emosweep::data {

struct FeatureCheck {
  FeatureSetInfo info;
  int64_t rows = 0;
  int64_t nan = 0, inf = 0;              // in utterance-level values
  int64_t frames = 0;                    // total frames (0 = none)
  int64_t frame_nan = 0, frame_inf = 0;  // in frame-level values
};

struct InspectReport {
  StoreInfo info;
  std::vector<std::string> labels;                 // label_set order, then any label outside it
  std::vector<std::string> speakers;               // sorted
  std::vector<std::vector<int64_t>> counts;        // [speaker][label]
  std::vector<FeatureCheck> features;
  std::string recomputed_hash;
  bool hash_matches = false;
  std::string validation;                          // "" when Corpus::Validate passed, else its message

  // True when nothing is wrong: hash matches, no NaN/Inf, validation passed.
  bool ok() const;
  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// Errors only when the file cannot be read as a store at all (missing,
// corrupt, wrong format/version); problems inside a readable store are in the report.
Result<InspectReport> InspectStore(const std::string& path);

}  // namespace emosweep::data
