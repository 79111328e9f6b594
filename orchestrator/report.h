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

#include "orchestrator/ledger.h"
#include "protocols/expand.h"

namespace emosweep::orchestrator {

struct ReportOptions {
  std::string ledger_label;     // how the ledger is named on the page
  int max_confusions = 6;       // per table
  int max_curves = 6;           // learning curves per table
};

Result<std::string> BuildReport(const protocols::Protocol& protocol, Ledger* ledger, const ReportOptions& options);

}  // namespace emosweep::orchestrator
