// orchestrator/tables.h: paper tables from the ledger (`emosweep table`).
//
// A TableSpec (protocols/expand.h) names the experiments feeding the table,
// the job attribute(s) for rows and the one for columns, the metrics and the
// eval set. BuildTable() collects the protocol's reportable jobs of those
// experiments (and the spec's attribute filter), reads their metrics from the
// ledger and aggregates every (row, column, metric) cell over the remaining
// coordinates (seeds, folds): mean and the labelled spread. With
// grid_selection it first keeps, per cell, the grid point (hp) that wins on
// training-domain validation, leave-one-source-out validation or (flagged)
// the test set. An optional average column averages the per-column means of
// complete rows. "best" needs a two-sided paired t-test (runs matched on the
// aggregated coordinates) against the runner-up below alpha, and a complete
// cell. A cell with fewer runs than planned prints "(n/N)". Renderers then
// print Markdown, LaTeX, CSV or JSON with the caption that says which
// spread, n, seeds, eval set and model-selection policy (oracle flagged).
// Reproduce() lines our cells up with the published values of the spec;
// Compare() runs a paired test between two row values on every column.
// Thread-safety: pure functions over their inputs (the Ledger serializes).
#pragma once

#include <array>
#include <cstdint>
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
  std::vector<std::string> keys;     // per value: its run's aggregate_over coordinates ("seed=1;fold=0;")
  int planned = 0;                   // jobs the protocol plans for this cell
  bool best = false;                 // highest mean in its column and significantly above the runner-up
  std::string selected;              // grid selection: the grid point (hp) chosen for this cell
  bool provisional = false;          // grid selection ranked points with unfinished runs (may change)
  bool complete() const { return !values.empty() && static_cast<int>(values.size()) >= planned && !provisional; }
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
  int planned_jobs = 0, finished_jobs = 0, failed_jobs = 0;  // failed: failed or blocked, not pending
  int average_col = -1;                 // index of the "average" column (spec.average), else -1
  // Per (row, column) cell, r * cols + c: every job planned there is tested on the corpus it trained on
  // (attrs source = target: a cross-corpus matrix's diagonal). A row's average leaves these cells out when the
  // row has others (average_excludes_in_domain), so the average of a matrix is a cross-corpus average.
  std::vector<char> in_domain;
  bool average_excludes_in_domain = false;
  // Attributes not named by rows, columns or aggregate_over in which the runs of one cell differ (a grid pooled
  // without grid selection, several sources under one target, ...): attribute -> the most values in one cell.
  std::map<std::string, size_t> pooled;
  bool ranked_by_trained_val = false;   // grid selection ranked eval jobs by their trained model's val metric
  // Grid selection by im/snd/dev: finished runs of the ranked cells without that criterion at their selected
  // epoch (DEV undefined there); they did not count in their point's mean. rule -> runs.
  std::map<std::string, int> unranked;
  // Columns (and metrics) whose best cell could not be tested against the runner-up (fewer than 2 runs
  // matched on aggregate_over, or equal differences): "emodb UA (1 matched)"; the caption lists them.
  std::vector<std::string> untested;
  std::string caption;

  const TableCell& at(size_t r, size_t c, size_t m) const {
    return cells[(r * cols.size() + c) * spec.metrics.size() + m];
  }
  TableCell& at(size_t r, size_t c, size_t m) { return cells[(r * cols.size() + c) * spec.metrics.size() + m]; }
};

// Name of a table in the protocol ("" = the first); error lists the names.
Result<const protocols::TableSpec*> FindTable(const protocols::Protocol& protocol, const std::string& name);

// What tables read of the ledger, read once per command for all of them (issue 15:
// `table --all` read every job's status and metrics per table, into maps keyed by the
// 64-character id). Arrays indexed by the job's position in protocol.jobs; only the
// jobs some table reads, only the metrics the tables show.
struct TableInputs {
  std::vector<uint8_t> done;                // per job: 1 when the ledger has it done
  std::vector<uint8_t> failed;              // per job: 1 when it failed (or is blocked by a failed dependency)
  std::vector<std::string> evals, names;    // metric slots: eval e, name m -> e * names.size() + m
  std::vector<double> values;               // [job * slots + slot]; NaN: no such metric row
  std::map<size_t, std::vector<std::string>> warnings;  // finished adaptation jobs' warning codes, by job
  // Jobs whose "val" metrics are those of the job they evaluate (an eval job has no validation share of its own;
  // training-domain grid selection ranks it by the trained model's validation metric).
  std::set<size_t> val_of_trained;
  // Finished adaptation jobs' unsupervised criteria at their selected epoch (info.da_selected): im, snd, dev, NaN
  // where not recorded. Grid selection by im/snd/dev ranks on them.
  std::map<size_t, std::array<double, 3>> criteria;
  // When the ledger holds results of more than one build (Ledger::ResultBuilds): each finished job's build, as an
  // index into `builds` (kNoBuild: none recorded); both empty otherwise (not read: one build needs no note).
  std::vector<std::string> builds;
  std::vector<uint32_t> build_of;
  static constexpr uint32_t kNoBuild = static_cast<uint32_t>(-1);
  // Index into `criteria`'s arrays of an UnsupervisedGridRule (im 0, snd 1, dev 2).
  static size_t CriterionIndex(const std::string& rule) { return rule == "im" ? 0 : rule == "snd" ? 1 : 2; }
  // A finished job's metric, or nullptr.
  const double* Metric(size_t job, const std::string& eval, const std::string& name) const;
  // The same in two steps, the slot found once for many jobs (kNoSlot: not read).
  static constexpr size_t kNoSlot = static_cast<size_t>(-1);
  size_t Slot(const std::string& eval, const std::string& name) const;
  const double* MetricAt(size_t job, size_t slot) const;
};
// One status read, one metric read and one info read for the jobs of all `specs` (the
// protocol must outlive nothing here: indices, not pointers).
Result<TableInputs> ReadTableInputs(const protocols::Protocol& protocol,
                                    const std::vector<const protocols::TableSpec*>& specs, Ledger* ledger);
// `inputs` from ReadTableInputs over specs that include `spec`, for the same protocol.
Result<TableData> BuildTable(const protocols::Protocol& protocol, const protocols::TableSpec& spec,
                             const TableInputs& inputs);
// One table: ReadTableInputs for it alone, then BuildTable.
Result<TableData> BuildTable(const protocols::Protocol& protocol, const protocols::TableSpec& spec, Ledger* ledger);

// The caption BuildTable writes into TableData::caption, from the table's spec, cells and counts.
std::string TableCaption(const TableData& t);

std::string MetricLabel(const std::string& metric);  // "ua" -> "UA"
// The cell as printed: "63.4 ± 1.2", "63.4" (n = 1), "63.4 ± 1.2 (2/3)" (runs missing), "…‡" (provisional grid
// selection), or the missing marker.
std::string CellText(const TableData& t, const TableCell& cell);

// format: markdown | latex | csv | json.
Result<std::string> RenderTable(const TableData& t, const std::string& format);
nlohmann::json TableJson(const TableData& t);

// Grid selection: "Selected grid points (rules): row / column: point; ..." ("" without grid selection).
std::string SelectedGridPoints(const TableData& t);

// The first line of `--format csv`: one row per (row, column, metric) cell; with `table --all` one header and
// the tables' rows after it (docs/formats/tables.md).
inline constexpr const char* kTableCsvHeader =
    "table,row,column,metric,mean,spread,spread_kind,n,planned,complete,provisional,best,selected";

struct ReproduceLine {
  std::string row, col, metric;
  bool have_ours = false;
  double ours = 0, published = 0, diff = 0;
  std::string cell;         // ours as the table prints it: mean ± spread, (n/N) when incomplete
  int n = 0, planned = 0;   // finished and planned runs of the cell
  bool complete = false;    // every planned run finished (and, with grid selection, the choice is final)
  bool within = false;      // |diff| <= tolerance at the printed precision, on a complete cell only
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
