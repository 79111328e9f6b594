// orchestrator/stats.h: the statistics behind table cells and significance tests.
//
// Spread is always labelled (architecture decision 9): std (sample standard
// deviation, ddof = 1), SEM (std / sqrt(n)) or ci95 (half-width of the 95%
// confidence interval of the mean with Student's t, n - 1 degrees of
// freedom). With n = 1 every spread is undefined (NaN) and tables print the
// mean alone with n = 1 in the caption.
//
// Paired tests compare two systems on the same utterances: both get the same
// items (matched by job coordinates and utterance id). The paired bootstrap
// resamples items with replacement; the permutation test (approximate
// randomization) swaps the two systems' predictions per item with
// probability 1/2. Both are seeded, so the p-values are reproducible.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::orchestrator {

struct Summary {
  int n = 0;
  double mean = 0;
  double std = 0;     // ddof = 1
  double sem = 0;
  double ci95 = 0;    // half-width
  double Spread(const std::string& kind) const;  // "std" | "sem" | "ci95"
};

Summary Summarize(const std::vector<double>& values);
// Two-sided quantile of Student's t: t such that P(|T| <= t) = level, df degrees of freedom.
double StudentTQuantile(double level, int df);
// CDF of Student's t.
double StudentTCdf(double t, int df);
// Two-sided paired t-test of a vs b (equal lengths >= 2; pairs by index), df = n - 1: the p-value. All-zero
// differences give 1; equal non-zero differences (spread 0) are not testable (FailedPrecondition); a
// non-finite value is InvalidArgument.
Result<double> PairedTTestP(const std::vector<double>& a, const std::vector<double>& b);
// Caption wording of a spread kind: "std (ddof=1)", "SEM", "95% CI half-width (Student t)".
Result<std::string> SpreadLabel(const std::string& kind);

// One metric ("ua", "wa", "macro_f1", "weighted_f1") from labels and predictions.
Result<double> MetricFromPredictions(const std::string& metric, const std::vector<int>& labels,
                                     const std::vector<int>& preds, int num_classes);

struct PairedTestResult {
  std::string test;          // "permutation" | "bootstrap"
  std::string metric;
  int n_items = 0;
  int resamples = 0;
  double a = 0, b = 0;       // metric of each system: the mean over the groups (job pairs) of its metric
  double delta = 0;          // a - b
  double p_value = 1;        // two-sided
};

// `group` gives each item its evaluation unit (e.g. a seed/fold pair): the
// metric is computed per group and averaged, as the table cell is; pass all
// zeros for one pooled group.
Result<PairedTestResult> PairedTest(const std::string& test, const std::string& metric,
                                    const std::vector<int>& labels, const std::vector<int>& pred_a,
                                    const std::vector<int>& pred_b, const std::vector<int>& group,
                                    int num_classes, int resamples, uint64_t seed);

}  // namespace emosweep::orchestrator
