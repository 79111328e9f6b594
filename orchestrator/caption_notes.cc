// orchestrator/caption_notes.cc: caption sentences from a table's jobs
// (orchestrator/caption_notes.h).
#include "orchestrator/caption_notes.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "protocols/transductive.h"

namespace emosweep::orchestrator {

using protocols::kTransductiveAttr;
using protocols::PlannedJob;

namespace {

const std::vector<std::string>& StepOrder() {
  static const std::vector<std::string> kOrder = {"feature_norm=corpus", "idf", "adapt", "selection=dev",
                                                  "selection=im", "selection=snd"};
  return kOrder;
}

std::string Describe(const std::string& step) {
  if (step == "feature_norm=corpus")
    return "inputs standardised by each corpus's own statistics, the evaluated corpus's test utterances included "
           "(feature_norm = \"corpus\"; inductive: feature_norm = \"train\")";
  if (step == "idf")
    return "TF-IDF features whose IDF each corpus fitted on its own transcripts, the evaluated corpus's included "
           "(inductive: a text feature set not fitted on the target)";
  if (step == "adapt")
    return "domain adaptation on the target's unlabeled utterances (inductive: variant \"none\")";
  if (step.rfind("selection=", 0) == 0)
    return "model selection on the unlabeled target (selection = \"" + step.substr(10) +
           "\"; inductive: selection = \"source_val\")";
  return step;
}

}  // namespace

std::string TransductiveNote(const std::vector<const PlannedJob*>& jobs, const std::string& rows,
                             const std::string& columns) {
  auto attr = [](const PlannedJob& j, const std::string& k) {
    auto it = j.attrs.find(k);
    return it == j.attrs.end() ? std::string() : it->second;
  };
  using Cell = std::pair<std::string, std::string>;  // (row, column)
  std::vector<std::string> all_rows, all_cols;
  std::set<Cell> all_cells;
  std::map<std::string, std::set<Cell>> cells_of;  // step -> cells whose jobs take it
  for (const auto* j : jobs) {
    const Cell cell{attr(*j, rows), attr(*j, columns)};
    if (std::find(all_rows.begin(), all_rows.end(), cell.first) == all_rows.end()) all_rows.push_back(cell.first);
    if (std::find(all_cols.begin(), all_cols.end(), cell.second) == all_cols.end()) all_cols.push_back(cell.second);
    all_cells.insert(cell);
    std::stringstream ss(attr(*j, kTransductiveAttr));
    std::string step;
    while (std::getline(ss, step, ','))
      if (!step.empty()) cells_of[step].insert(cell);
  }
  if (cells_of.empty()) return "";
  std::vector<std::string> steps;
  for (const auto& s : StepOrder())
    if (cells_of.count(s)) steps.push_back(s);
  for (const auto& [s, c] : cells_of)
    if (std::find(steps.begin(), steps.end(), s) == steps.end()) steps.push_back(s);
  // Where a step is taken: everywhere, whole columns, whole rows, or the cells one by one.
  auto where = [&](const std::set<Cell>& cells) -> std::string {
    if (cells == all_cells) return all_cells.size() > 1 ? ", in every cell" : "";
    auto whole = [&](const std::vector<std::string>& keys, bool by_row) {
      std::vector<std::string> out;
      std::set<Cell> covered;
      for (const auto& k : keys) {
        bool full = true;
        std::set<Cell> mine;
        for (const auto& c : all_cells) {
          if ((by_row ? c.first : c.second) != k) continue;
          full = full && cells.count(c) > 0;
          mine.insert(c);
        }
        if (full && !mine.empty()) {
          out.push_back(k);
          covered.insert(mine.begin(), mine.end());
        }
      }
      return covered == cells ? out : std::vector<std::string>{};
    };
    auto list = [](const std::string& what, const std::vector<std::string>& v) {
      std::string s = ", in " + what + (v.size() > 1 ? "s " : " ");
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
      return s;
    };
    if (columns != "metric") {
      auto cols = whole(all_cols, false);
      if (!cols.empty()) return list("column", cols);
    }
    if (rows != "metric") {
      auto rs = whole(all_rows, true);
      if (!rs.empty()) return list("row", rs);
    }
    std::vector<std::string> named;
    for (const auto& r : all_rows)
      for (const auto& c : all_cols)
        if (cells.count({r, c})) named.push_back(r + " / " + c);
    return list("cell", named);
  };
  std::ostringstream c;
  c << "Transductive steps (unlabeled data of the evaluated corpus used): ";
  for (size_t i = 0; i < steps.size(); ++i) c << (i ? "; " : "") << Describe(steps[i]) << where(cells_of[steps[i]]);
  c << ".";
  return c.str();
}

}  // namespace emosweep::orchestrator
