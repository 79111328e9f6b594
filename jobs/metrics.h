// jobs/metrics.h: classification metrics under their standard names.
//
// UA (= UAR, macro recall), WA (accuracy), macro-F1, weighted-F1, per-class
// recall and the confusion matrix (rows = truth, columns = prediction), from
// integer label/prediction vectors. Absent-class conventions (documented in
// docs/trainer.md, matching scikit-learn):
//  - UA averages recall over the classes present in the truth
//    (= sklearn balanced_accuracy_score, which the seeds use); a class that is
//    only predicted lowers precision/F1, not UA.
//  - macro-F1 averages F1 over classes present in truth ∪ predictions
//    (= sklearn f1_score(average="macro") without `labels`); F1 of a class
//    with no true or no predicted sample is 0.
//  - weighted-F1 weights each class's F1 by its true count.
//  - per-class recall is NaN (JSON null) for a class absent from the truth.
// No libtorch here. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace emosweep::jobs {

struct ClassificationMetrics {
  int64_t n = 0;
  double ua = 0, wa = 0, macro_f1 = 0, weighted_f1 = 0;
  std::vector<double> per_class_recall;            // NaN for classes absent from the truth
  std::vector<std::vector<int64_t>> confusion;     // [truth][pred]

  // {"n","ua","wa","macro_f1","weighted_f1","per_class_recall"[, "confusion"]}
  nlohmann::json ToJson(bool with_confusion = true) const;
  // Value of a metric by name ("ua", "wa", "macro_f1", "weighted_f1").
  double Get(const std::string& name) const;
};

// Labels and predictions must have the same length, values in [0, num_classes).
Result<ClassificationMetrics> ComputeMetrics(const std::vector<int>& labels, const std::vector<int>& preds,
                                             int num_classes);

// Confusion matrix counts → metrics (lets ranks sum confusion matrices first).
ClassificationMetrics MetricsFromConfusion(const std::vector<std::vector<int64_t>>& confusion);

}  // namespace emosweep::jobs
