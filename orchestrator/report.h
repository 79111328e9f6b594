// orchestrator/report.h: `emosweep report`: one self-contained HTML file.
//
// The page holds the sweep status, every table of the protocol (with the
// reproduce check when the protocol has published values) and plots drawn
// here as inline SVG (orchestrator/svg.h): a heatmap per table, source ×
// target heatmaps for cross-corpus experiments, few-shot curves (budget vs
// metric with the table's spread), confusion matrices and learning curves.
// No external assets: it opens offline and can be attached to an email.
// Thread-safety: reentrant (the Ledger serializes its own access).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchestrator/ledger.h"
#include "protocols/expand.h"

namespace emosweep::orchestrator {

struct ReportOptions {
  std::string ledger_label;     // how the ledger is named on the page
  int max_confusions = 6;       // per table
  int max_curves = 6;           // learning curves per table
};

Result<std::string> BuildReport(const protocols::Protocol& protocol, Ledger* ledger, const ReportOptions& options);

// One run's recorded confusion matrix (eval_details "confusion": rows true, columns predicted) and the classes
// its rows and columns are, in its own order.
struct RunConfusion {
  const std::vector<std::string>* classes;
  const nlohmann::json* confusion;
};

// The runs' matrices summed in the class order `labels`, each run's entries placed by class name (a run whose
// classes come in another order is re-ordered; one with other classes, or a matrix not square in `labels`'
// size, is left out and counted in *left_out). A run without class names (classes empty) is added as recorded.
// *summed counts the runs added. Empty when none was.
std::vector<std::vector<int64_t>> SumConfusions(const std::vector<std::string>& labels,
                                                const std::vector<RunConfusion>& runs, int* summed, int* left_out);

}  // namespace emosweep::orchestrator
