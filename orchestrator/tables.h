// orchestrator/tables.h: paper tables from the ledger (`emosweep table`).
//
// A TableSpec (protocols/expand.h) names the experiment feeding the table,
// the job attribute for rows and for columns, the metrics and the eval set.
// BuildTable() collects the protocol's reportable jobs of that experiment
// (and the spec's attribute filter), reads their metrics from the ledger and
// aggregates every (row, column, metric) cell over the remaining
// coordinates (seeds, folds): mean and the labelled spread. Renderers then
// print Markdown, LaTeX, CSV or JSON with the caption that says which
// spread, n, seeds, eval set and model-selection policy (oracle flagged).
// Reproduce() lines our cells up with the published values of the spec;
// Compare() runs a paired test between two row values on every column.
// Thread-safety: pure functions over their inputs (the Ledger serializes).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchestrator/ledger.h"
#include "orchestrator/stats.h"
#include "protocols/expand.h"

namespace emosweep::orchestrator {

struct TableCell {
  Summary summary;                   // of the scaled values
  std::vector<double> values;        // one per finished job, scaled
  std::vector<const protocols::PlannedJob*> jobs;  // finished jobs behind the values
  int planned = 0;                   // jobs the protocol plans for this cell
  bool best = false;                 // highest mean in its column (per metric)
};

struct TableData {
  protocols::TableSpec spec;
  std::vector<std::string> rows, cols;  // in protocol order of first appearance
  std::vector<TableCell> cells;         // [(r * cols + c) * metrics + m]
  std::set<uint64_t> seeds;
  std::set<std::string> selections;
  std::string oracle_eval;
  // Warnings the finished jobs recorded (JobResult info "warnings", e.g. a DA schedule that never ramps up or
  // collapsed target predictions): code -> row (or "row / column" when there are several columns) -> runs;
  // and the finished runs of each such row (or cell).
  std::map<std::string, std::map<std::string, int>> warnings;
  std::map<std::string, int> row_runs;
  int planned_jobs = 0, finished_jobs = 0;
  std::string caption;

  const TableCell& at(size_t r, size_t c, size_t m) const {
    return cells[(r * cols.size() + c) * spec.metrics.size() + m];
  }
  TableCell& at(size_t r, size_t c, size_t m) { return cells[(r * cols.size() + c) * spec.metrics.size() + m]; }
};

// Name of a table in the protocol ("" = the first); error lists the names.
Result<const protocols::TableSpec*> FindTable(const protocols::Protocol& protocol, const std::string& name);
Result<TableData> BuildTable(const protocols::Protocol& protocol, const protocols::TableSpec& spec, Ledger* ledger);

std::string MetricLabel(const std::string& metric);  // "ua" -> "UA"
// The cell as printed: "63.4 ± 1.2", "63.4" (n = 1), or the missing marker.
std::string CellText(const TableData& t, const TableCell& cell);

// format: markdown | latex | csv | json.
Result<std::string> RenderTable(const TableData& t, const std::string& format);
nlohmann::json TableJson(const TableData& t);

struct ReproduceLine {
  std::string row, col, metric;
  bool have_ours = false;
  double ours = 0, published = 0, diff = 0;
  bool within = false;
};
// Published keys are "row|column" (first metric) or "row|column|metric".
Result<std::vector<ReproduceLine>> Reproduce(const TableData& t);
Result<std::string> RenderReproduce(const TableData& t, const std::vector<ReproduceLine>& lines,
                                    const std::string& format);

struct CompareOptions {
  std::string a, b;                  // row values
  std::string test = "permutation";  // | bootstrap
  int resamples = 2000;
  uint64_t seed = 1;
};
struct CompareLine {
  std::string col, metric;
  int pairs = 0;                     // job pairs matched on the aggregated coordinates
  PairedTestResult result;
  std::string note;                  // why no test ran ("no predictions", ...)
};
// Pairs A's and B's jobs in each column by the aggregate_over coordinates
// (seed, fold), then their predictions by utterance id.
Result<std::vector<CompareLine>> Compare(const TableData& t, Ledger* ledger, const CompareOptions& options);
Result<std::string> RenderCompare(const TableData& t, const CompareOptions& options,
                                  const std::vector<CompareLine>& lines, const std::string& format);

}  // namespace emosweep::orchestrator
