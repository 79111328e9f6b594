// orchestrator/caption_notes.cc: caption sentences from a table's jobs
// (orchestrator/caption_notes.h).
#include "orchestrator/caption_notes.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "protocols/transductive.h"

namespace emosweep::orchestrator {

using protocols::kTransductiveAttr;
using protocols::PlannedJob;

namespace {

const std::vector<std::string>& StepOrder() {
  static const std::vector<std::string> kOrder = {"feature_norm=corpus", "idf", "adapt", "selection=dev",
                                                  "selection=im", "selection=snd", "grid_selection=dev",
                                                  "grid_selection=im", "grid_selection=snd", "graph"};
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
  if (step == "graph")
    return "a graph model's predictions over the whole evaluation set at once (one kNN graph: each prediction "
           "depends on the other evaluated utterances' features; inductive: a model that is not transductive)";
  if (step.rfind("grid_selection=", 0) == 0)
    return "grid points chosen on the unlabeled target (grid_selection = \"" + step.substr(15) +
           "\"; inductive: grid_selection = \"training_domain\")";
  if (step.rfind("selection=", 0) == 0)
    return "model selection on the unlabeled target (selection = \"" + step.substr(10) +
           "\"; inductive: selection = \"source_val\")";
  return step;
}

}  // namespace

namespace {

using Cell = std::pair<std::string, std::string>;  // (row, column)

// The cells of a table's jobs and, per step (a value of a comma-separated attribute), the cells whose jobs take it.
struct StepCells {
  std::vector<std::string> all_rows, all_cols;
  std::set<Cell> all_cells;
  std::map<std::string, std::set<Cell>> cells_of;
};

StepCells Collect(const std::vector<CellJob>& jobs, const std::string& attribute,
                  const std::function<std::string(const PlannedJob&)>& table_step = nullptr) {
  StepCells s;
  for (const auto& cj : jobs) {
    const Cell cell{*cj.row, *cj.col};
    if (std::find(s.all_rows.begin(), s.all_rows.end(), cell.first) == s.all_rows.end()) s.all_rows.push_back(cell.first);
    if (std::find(s.all_cols.begin(), s.all_cols.end(), cell.second) == s.all_cols.end()) s.all_cols.push_back(cell.second);
    s.all_cells.insert(cell);
    if (table_step)
      if (std::string step = table_step(*cj.job); !step.empty()) s.cells_of[step].insert(cell);
    auto it = cj.job->attrs.find(attribute);
    if (it == cj.job->attrs.end()) continue;
    std::stringstream ss(it->second);
    std::string step;
    while (std::getline(ss, step, ','))
      if (!step.empty()) s.cells_of[step].insert(cell);
  }
  return s;
}

// Where a step is taken: everywhere, whole columns, whole rows, or the cells one by one.
std::string Where(const StepCells& s, const std::set<Cell>& cells, const std::string& rows, const std::string& columns) {
  if (cells == s.all_cells) return s.all_cells.size() > 1 ? ", in every cell" : "";
  auto whole = [&](const std::vector<std::string>& keys, bool by_row) {
    std::vector<std::string> out;
    std::set<Cell> covered;
    for (const auto& k : keys) {
      bool full = true;
      std::set<Cell> mine;
      for (const auto& c : s.all_cells) {
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
    std::string out = ", in " + what + (v.size() > 1 ? "s " : " ");
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return out;
  };
  if (columns != "metric") {
    auto cols = whole(s.all_cols, false);
    if (!cols.empty()) return list("column", cols);
  }
  if (rows != "metric") {
    auto rs = whole(s.all_rows, true);
    if (!rs.empty()) return list("row", rs);
  }
  std::vector<std::string> named;
  for (const auto& r : s.all_rows)
    for (const auto& c : s.all_cols)
      if (cells.count({r, c})) named.push_back(c.empty() ? r : r + " / " + c);
  return list("cell", named);
}

}  // namespace

std::string TransductiveNote(const std::vector<CellJob>& jobs, const std::string& rows, const std::string& columns,
                             const std::function<std::string(const PlannedJob&)>& table_step) {
  const StepCells s = Collect(jobs, kTransductiveAttr, table_step);
  if (s.cells_of.empty()) return "";
  std::vector<std::string> steps;
  for (const auto& step : StepOrder())
    if (s.cells_of.count(step)) steps.push_back(step);
  for (const auto& [step, c] : s.cells_of)
    if (std::find(steps.begin(), steps.end(), step) == steps.end()) steps.push_back(step);
  std::ostringstream c;
  c << "Transductive steps (unlabeled data of the evaluated corpus used): ";
  for (size_t i = 0; i < steps.size(); ++i)
    c << (i ? "; " : "") << Describe(steps[i]) << Where(s, s.cells_of.at(steps[i]), rows, columns);
  c << ".";
  return c.str();
}

std::string SpeakerOverlapNote(const std::vector<CellJob>& jobs, const std::string& rows, const std::string& columns,
                               const std::string& eval) {
  const StepCells s = Collect(jobs, protocols::kSpeakerOverlapAttr);
  auto it = s.cells_of.find(eval);
  if (it == s.cells_of.end()) return "";
  return "Speaker-dependent evaluation: the test utterances share speakers with the training utterances (a split "
         "with allow_speaker_overlap = true; speaker-independent: a split without it)" +
         Where(s, it->second, rows, columns) + ".";
}

std::string ClassesNote(const std::vector<CellJob>& jobs, const std::string& rows, const std::string& columns) {
  // The distinct (row, column, class list) triples first, by pointer (one copy of each label and interned list
  // however many jobs: 10^6 at scale); names are compared only for those.
  std::set<std::tuple<const std::string*, const std::string*, const void*>> seen;
  std::vector<std::pair<const CellJob*, const void*>> distinct;
  for (const auto& cj : jobs) {
    const auto& labels = cj.job->spec.labels;
    if (!labels.empty() && seen.insert(std::make_tuple(cj.row, cj.col, labels.shared())).second)
      distinct.emplace_back(&cj, labels.shared());  // insert: no node allocated for a triple already seen
  }
  StepCells s;
  std::vector<std::string> lists;              // as printed (the first order seen), in order of first appearance
  std::map<std::string, std::string> printed;  // the set (sorted names) -> its printed list
  std::map<const void*, const std::string*> of;  // a class list -> its printed list
  for (const auto& [cj, shared] : distinct) {
    auto [known, added] = of.try_emplace(shared);
    if (added) {
      const auto& labels = cj->job->spec.labels;
      std::vector<std::string> sorted(labels.begin(), labels.end());
      std::sort(sorted.begin(), sorted.end());
      std::string set;
      for (const auto& l : sorted) set += l + '\n';
      auto [p, first] = printed.try_emplace(set);
      if (first) {
        p->second = "(" + std::to_string(labels.size()) + ") ";
        for (size_t i = 0; i < labels.size(); ++i) p->second += (i ? ", " : "") + labels[i];
        lists.push_back(p->second);
      }
      known->second = &p->second;
    }
    const Cell cell{*cj->row, *cj->col};
    if (std::find(s.all_rows.begin(), s.all_rows.end(), cell.first) == s.all_rows.end()) s.all_rows.push_back(cell.first);
    if (std::find(s.all_cols.begin(), s.all_cols.end(), cell.second) == s.all_cols.end()) s.all_cols.push_back(cell.second);
    s.all_cells.insert(cell);
    s.cells_of[*known->second].insert(cell);
  }
  if (lists.empty()) return "";
  if (lists.size() == 1) return "Classes " + lists[0] + ".";
  std::string out = "Classes differ between cells (UA and F1 average over each job's own classes): ";
  for (size_t i = 0; i < lists.size(); ++i) out += (i ? "; " : "") + lists[i] + Where(s, s.cells_of.at(lists[i]), rows, columns);
  return out + ".";
}

std::string BuildsNote(const std::vector<CellJob>& jobs,
                       const std::function<const std::string&(const PlannedJob&)>& build_of) {
  // By pointer: one copy of each label and build name however many jobs (10^6 at scale).
  std::map<const std::string*, size_t> runs_of;  // build -> runs
  std::vector<std::pair<const std::string*, const std::string*>> cells;  // in order of first appearance
  std::map<std::pair<const std::string*, const std::string*>, std::set<const std::string*>> builds_in;
  for (const auto& cj : jobs) {
    const std::string& b = build_of(*cj.job);
    if (b.empty()) continue;
    ++runs_of[&b];
    auto [it, added] = builds_in.try_emplace({cj.row, cj.col});
    if (added) cells.emplace_back(cj.row, cj.col);
    it->second.insert(&b);
  }
  std::map<std::string, size_t> runs;  // by name (a build given by two copies of its name counts once)
  for (const auto& [b, n] : runs_of) runs[*b] += n;
  if (runs.size() < 2) return "";
  std::vector<std::pair<std::string, size_t>> by_runs(runs.begin(), runs.end());
  std::stable_sort(by_runs.begin(), by_runs.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  constexpr size_t kListed = 3;  // builds and cells named; the rest counted
  std::ostringstream c;
  c << "Runs of " << by_runs.size() << " emosweep builds (provenance.git_revision): ";
  for (size_t i = 0; i < by_runs.size() && i < kListed; ++i)
    c << (i ? ", " : "") << by_runs[i].first << " (" << by_runs[i].second << (by_runs[i].second == 1 ? " run)" : " runs)");
  if (by_runs.size() > kListed) c << " and " << by_runs.size() - kListed << " more";
  std::vector<std::string> mixed;
  for (const auto& cell : cells) {
    std::set<std::string> names;
    for (const std::string* b : builds_in[cell]) names.insert(*b);
    if (names.size() > 1) mixed.push_back(cell.second->empty() ? *cell.first : *cell.first + " / " + *cell.second);
  }
  if (mixed.empty()) {
    c << "; no cell mixes them.";
  } else {
    c << "; " << mixed.size() << (mixed.size() == 1 ? " cell mixes them: " : " cells mix them: ");
    for (size_t i = 0; i < mixed.size() && i < kListed; ++i) c << (i ? ", " : "") << mixed[i];
    if (mixed.size() > kListed) c << " and " << mixed.size() - kListed << " more";
    c << ".";
  }
  c << " A job's identity does not cover the build: a fix that changed what a job computes does not show in runs "
       "of an earlier build (docs/trainer.md, \"Determinism\").";
  return c.str();
}

}  // namespace emosweep::orchestrator
