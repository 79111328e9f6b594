// orchestrator/tables.cc: building table cells and their caption (rendering: table_render.cc).
#include "orchestrator/tables.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "orchestrator/caption_notes.h"

namespace emosweep::orchestrator {
namespace {

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

size_t IndexIn(std::vector<std::string>& v, const std::string& x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) return static_cast<size_t>(it - v.begin());
  v.push_back(x);
  return v.size() - 1;
}

std::string Caption(const TableData& t) {
  const auto& s = t.spec;
  std::ostringstream c;
  if (!s.caption.empty()) {
    c << s.caption;
    char last = s.caption.back();
    c << (last == '.' || last == '!' || last == '?' ? " " : ". ");
  }
  std::string metrics;
  for (const auto& m : s.metrics) metrics += (metrics.empty() ? "" : ", ") + MetricLabel(m);
  c << metrics << " on the '" << s.eval << "' set";
  if (s.scale == 100.0) c << ", in %";
  else if (s.scale != 1.0) c << " (×" << s.scale << ")";
  c << "; rows: " << s.rows << ", columns: " << s.columns << ". ";
  int lo = 1 << 30, hi = 0;
  bool partial = false;
  for (const auto& cell : t.cells) {
    int n = static_cast<int>(cell.values.size());
    if (n == 0) continue;
    lo = std::min(lo, n);
    hi = std::max(hi, n);
    partial |= n < cell.planned;
  }
  std::string spread = SpreadLabel(s.spread).ok() ? *SpreadLabel(s.spread) : s.spread;
  if (hi == 0) {
    c << "No finished runs yet. ";
  } else {
    c << "Cells: mean ± " << spread << " over ";
    if (lo == hi) c << "n = " << lo;
    else c << "n = " << lo << "–" << hi;
    c << " runs per cell (aggregated over " << s.aggregate_over << ")";
    if (hi == 1) c << "; n = 1, so no spread is shown";
    c << ". ";
  }
  if (!t.seeds.empty()) {
    c << "Seeds: ";
    bool first = true;
    for (uint64_t seed : t.seeds) c << (first ? "" : ", ") << seed, first = false;
    c << ". ";
  }
  std::string selection;
  for (const auto& sel : t.selections) selection += (selection.empty() ? "" : ", ") + sel;
  if (selection.empty()) selection = s.selection.empty() ? "unknown" : s.selection;
  c << "Model selection: " << selection;
  std::string unsupervised;
  for (const auto& sel : t.selections) {
    if (sel == "dev")
      unsupervised += std::string(unsupervised.empty() ? "" : "; ") +
                      "dev = the epoch with the lowest deep-embedded-validation risk (importance-weighted "
                      "source-validation loss, You et al. 2019)";
    else if (sel == "im")
      unsupervised += std::string(unsupervised.empty() ? "" : "; ") +
                      "im = the epoch with the highest information maximisation H(mean p) - mean H(p) on the "
                      "unlabeled target";
    else if (sel == "snd")
      unsupervised += std::string(unsupervised.empty() ? "" : "; ") +
                      "snd = the epoch with the highest soft neighbourhood density on the unlabeled target (Saito "
                      "et al. 2021)";
  }
  if (!unsupervised.empty()) c << " (" << unsupervised << "; no target labels)";
  c << ". ";
  if (!t.warnings.empty()) {
    // One sentence (the HTML report marks "WARNING: ... ." in red).
    c << "WARNING: ";
    bool first = true;
    for (const auto& [code, rows] : t.warnings) {
      std::string what = code == "target_collapse"
                             ? "target predictions collapsed (one class takes over 90% of the unlabeled target at "
                               "the selected epoch)"
                         : code == "short_schedule"
                             ? "the GRL schedule never exceeded 10% of its maximum (horizon longer than the run: "
                               "close to no adaptation)"
                             : code;
      c << (first ? "" : "; ") << what << " in ";
      bool first_row = true;
      for (const auto& [row, n] : rows) {
        auto rr = t.row_runs.find(row);
        c << (first_row ? "" : ", ") << row << " (" << n << " of " << (rr == t.row_runs.end() ? n : rr->second)
          << " runs)";
        first_row = false;
      }
      first = false;
    }
    c << ". ";
  }
  if (t.selections.count("oracle") || s.selection == "oracle") {
    std::string on = t.oracle_eval.empty() ? s.oracle_eval : t.oracle_eval;
    c << "WARNING: oracle selection: checkpoints were chosen on the evaluation set"
      << (on.empty() ? "" : " '" + on + "'") << ", so these numbers are optimistic. ";
  }
  c << "Best per column in bold. ";
  bool any_missing = std::any_of(t.cells.begin(), t.cells.end(), [](const TableCell& x) { return x.values.empty(); });
  if (any_missing) c << s.missing << ": no finished run. ";
  if (partial) c << "†: fewer runs than planned. ";
  if (t.finished_jobs < t.planned_jobs)
    c << (t.planned_jobs - t.finished_jobs) << " of " << t.planned_jobs << " planned runs not finished.";
  std::string out = c.str();
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string MetricLabel(const std::string& metric) {
  if (metric == "ua") return "UA";
  if (metric == "wa") return "WA";
  if (metric == "macro_f1") return "Macro-F1";
  if (metric == "weighted_f1") return "Weighted-F1";
  return metric;
}

std::string CellText(const TableData& t, const TableCell& cell) {
  if (cell.values.empty()) return t.spec.missing;
  std::string s = Fixed(cell.summary.mean, t.spec.decimals);
  if (cell.summary.n > 1) s += " ± " + Fixed(cell.summary.Spread(t.spec.spread), t.spec.decimals);
  if (static_cast<int>(cell.values.size()) < cell.planned) s += "†";
  return s;
}

Result<const protocols::TableSpec*> FindTable(const protocols::Protocol& protocol, const std::string& name) {
  if (protocol.tables.empty()) return Status::NotFound(protocol.path + ": the protocol declares no [[table]]");
  if (name.empty()) return &protocol.tables.front();
  std::string names;
  for (const auto& t : protocol.tables) {
    if (t.name == name) return &t;
    names += (names.empty() ? "" : ", ") + t.name;
  }
  return Status::NotFound(protocol.path + ": no table named '" + name + "' (tables: " + names + ")");
}

Result<TableData> BuildTable(const protocols::Protocol& protocol, const protocols::TableSpec& spec, Ledger* ledger) {
  if (spec.metrics.empty()) return Status::InvalidArgument("table '" + spec.name + "' names no metrics");
  ES_RETURN_IF_ERROR(SpreadLabel(spec.spread).status());
  TableData t;
  t.spec = spec;
  std::vector<const protocols::PlannedJob*> jobs;
  std::vector<std::pair<size_t, size_t>> where;
  for (const auto& j : protocol.jobs) {
    if (!j.reportable) continue;
    auto attr = [&](const std::string& k) {
      auto it = j.attrs.find(k);
      return it == j.attrs.end() ? std::string() : it->second;
    };
    if (!spec.experiment.empty() && attr("experiment") != spec.experiment) continue;
    bool match = true;
    for (const auto& [k, v] : spec.filter) match &= attr(k) == v;
    if (!match || !j.attrs.count(spec.rows) || !j.attrs.count(spec.columns)) continue;
    jobs.push_back(&j);
    where.emplace_back(IndexIn(t.rows, attr(spec.rows)), IndexIn(t.cols, attr(spec.columns)));
  }
  size_t nm = spec.metrics.size();
  t.cells.assign(t.rows.size() * t.cols.size() * nm, TableCell());
  std::vector<std::string> ids;
  for (const auto* j : jobs) ids.push_back(j->spec.id);
  ES_ASSIGN_OR_RETURN(auto status, ledger->StatusOf(ids));
  ES_ASSIGN_OR_RETURN(auto metrics, ledger->Metrics(ids));
  t.planned_jobs = static_cast<int>(jobs.size());
  for (size_t k = 0; k < jobs.size(); ++k) {
    const auto& j = *jobs[k];
    auto [r, c] = where[k];
    for (size_t m = 0; m < nm; ++m) t.at(r, c, m).planned++;
    t.seeds.insert(j.spec.seed);
    t.selections.insert(j.spec.selection);
    if (!j.spec.oracle_eval.empty()) t.oracle_eval = j.spec.oracle_eval;
    auto st = status.find(j.spec.id);
    if (st == status.end() || st->second != JobStatus::kDone) continue;
    t.finished_jobs++;
    // Warnings are counted per row, or per row and column when there are several columns.
    const std::string cell = t.cols.size() > 1 ? t.rows[r] + " / " + t.cols[c] : t.rows[r];
    t.row_runs[cell]++;
    // Adaptation experiments' jobs (every variant, "none" included, sees the
    // unlabeled target). Read from the attributes too: a job from the
    // expansion cache (protocols/expand_cache.h) carries no spec.kind.
    auto exp_kind = j.attrs.find("kind");
    if (j.spec.kind == "adapt" || !j.spec.target_unlabeled.empty() ||
        (exp_kind != j.attrs.end() && exp_kind->second == "adapt")) {
      ES_ASSIGN_OR_RETURN(auto row, ledger->GetJob(j.spec.id));
      if (row && row->info.is_object() && row->info.contains("warnings") && row->info["warnings"].is_array()) {
        std::set<std::string> codes;
        for (const auto& w : row->info["warnings"])
          if (w.is_object() && w.contains("code") && w["code"].is_string()) codes.insert(w["code"].get<std::string>());
        for (const auto& code : codes) t.warnings[code][cell]++;
      }
    }
    const auto& per_eval = metrics[j.spec.id];
    auto ev = per_eval.find(spec.eval);
    for (size_t m = 0; m < nm; ++m) {
      if (ev == per_eval.end()) continue;
      auto v = ev->second.find(spec.metrics[m]);
      if (v == ev->second.end()) continue;
      t.at(r, c, m).values.push_back(v->second * spec.scale);
      t.at(r, c, m).jobs.push_back(&j);
    }
  }
  for (auto& cell : t.cells) cell.summary = Summarize(cell.values);
  // Best per column, compared as printed (ties at the shown precision are all bold).
  for (size_t c = 0; c < t.cols.size(); ++c)
    for (size_t m = 0; m < nm; ++m) {
      double best = -INFINITY;
      for (size_t r = 0; r < t.rows.size(); ++r)
        if (!t.at(r, c, m).values.empty())
          best = std::max(best, std::stod(Fixed(t.at(r, c, m).summary.mean, spec.decimals)));
      for (size_t r = 0; r < t.rows.size(); ++r) {
        auto& cell = t.at(r, c, m);
        cell.best = !cell.values.empty() && std::stod(Fixed(cell.summary.mean, spec.decimals)) == best;
      }
    }
  t.caption = Caption(t);
  // Transductive steps of the table's jobs (orchestrator/caption_notes.h), with their inductive alternative.
  const std::string note = TransductiveNote(jobs, spec.rows, spec.columns);
  if (!note.empty()) t.caption += " " + note;
  return t;
}

Result<std::vector<ReproduceLine>> Reproduce(const TableData& t) {
  if (t.spec.published.empty())
    return Status::NotFound("table '" + t.spec.name + "' has no published values to reproduce");
  std::vector<ReproduceLine> out;
  for (const auto& [key, value] : t.spec.published) {
    auto parts = std::vector<std::string>();
    std::stringstream ss(key);
    std::string p;
    while (std::getline(ss, p, '|')) parts.push_back(p);
    if (parts.size() < 2 || parts.size() > 3)
      return Status::InvalidArgument("published key '" + key + "' is not 'row|column' or 'row|column|metric'");
    ReproduceLine line;
    line.row = parts[0];
    line.col = parts[1];
    line.metric = parts.size() == 3 ? parts[2] : t.spec.metrics.front();
    line.published = value;
    auto r = std::find(t.rows.begin(), t.rows.end(), line.row);
    auto c = std::find(t.cols.begin(), t.cols.end(), line.col);
    auto m = std::find(t.spec.metrics.begin(), t.spec.metrics.end(), line.metric);
    if (r != t.rows.end() && c != t.cols.end() && m != t.spec.metrics.end()) {
      const TableCell& cell = t.at(r - t.rows.begin(), c - t.cols.begin(), m - t.spec.metrics.begin());
      if (!cell.values.empty()) {
        line.have_ours = true;
        line.ours = cell.summary.mean;
        line.diff = line.ours - line.published;
        // Compared at the printed precision, so "63.4 vs 63.4" is never "outside".
        double shown = std::stod(Fixed(line.diff, t.spec.decimals));
        line.within = std::fabs(shown) <= t.spec.tolerance + 1e-9;
      }
    }
    out.push_back(line);
  }
  return out;
}

Result<std::vector<CompareLine>> Compare(const TableData& t, Ledger* ledger, const CompareOptions& o) {
  auto ra = std::find(t.rows.begin(), t.rows.end(), o.a), rb = std::find(t.rows.begin(), t.rows.end(), o.b);
  std::string rows;
  for (const auto& r : t.rows) rows += (rows.empty() ? "" : ", ") + r;
  if (ra == t.rows.end() || rb == t.rows.end())
    return Status::InvalidArgument("--compare " + o.a + "," + o.b + ": both must be rows of table '" + t.spec.name +
                                   "' (rows: " + rows + ")");
  std::vector<std::string> keys = SplitCommas(t.spec.aggregate_over);
  auto key_of = [&](const protocols::PlannedJob* j) {
    std::string k;
    for (const auto& a : keys) {
      auto it = j->attrs.find(a);
      k += a + "=" + (it == j->attrs.end() ? "" : it->second) + ";";
    }
    return k;
  };
  std::map<std::string, PredictionSet> cache;
  auto preds = [&](const protocols::PlannedJob* j) -> Result<const PredictionSet*> {
    auto it = cache.find(j->spec.id);
    if (it == cache.end()) {
      ES_ASSIGN_OR_RETURN(auto p, ledger->Predictions(j->spec.id, t.spec.eval));
      it = cache.emplace(j->spec.id, std::move(p)).first;
    }
    return &it->second;
  };
  std::vector<CompareLine> out;
  for (size_t c = 0; c < t.cols.size(); ++c)
    for (size_t m = 0; m < t.spec.metrics.size(); ++m) {
      CompareLine line;
      line.col = t.cols[c];
      line.metric = t.spec.metrics[m];
      const TableCell& ca = t.at(ra - t.rows.begin(), c, m);
      const TableCell& cb = t.at(rb - t.rows.begin(), c, m);
      std::map<std::string, const protocols::PlannedJob*> b_by_key;
      for (const auto* j : cb.jobs) b_by_key[key_of(j)] = j;
      std::vector<int> labels, pa, pb, group;
      int classes = 0;
      for (const auto* ja : ca.jobs) {
        auto jb = b_by_key.find(key_of(ja));
        if (jb == b_by_key.end()) continue;
        ES_ASSIGN_OR_RETURN(const PredictionSet* a, preds(ja));
        ES_ASSIGN_OR_RETURN(const PredictionSet* b, preds(jb->second));
        std::map<std::string, size_t> b_index;
        for (size_t i = 0; i < b->utt_ids.size(); ++i) b_index[b->utt_ids[i]] = i;
        int paired_here = 0;
        for (size_t i = 0; i < a->utt_ids.size(); ++i) {
          auto bi = b_index.find(a->utt_ids[i]);
          if (bi == b_index.end() || b->labels[bi->second] != a->labels[i]) continue;
          labels.push_back(a->labels[i]);
          pa.push_back(a->preds[i]);
          pb.push_back(b->preds[bi->second]);
          group.push_back(line.pairs);
          classes = std::max({classes, a->labels[i] + 1, a->preds[i] + 1, b->preds[bi->second] + 1});
          ++paired_here;
        }
        if (paired_here > 0) ++line.pairs;
        classes = std::max(classes, static_cast<int>(ja->spec.labels.size()));
      }
      if (labels.empty()) {
        line.note = ca.jobs.empty() || cb.jobs.empty() ? "missing runs" : "no paired predictions";
      } else {
        ES_ASSIGN_OR_RETURN(line.result, PairedTest(o.test, line.metric, labels, pa, pb, group, classes, o.resamples,
                                                    o.seed));
      }
      out.push_back(line);
    }
  return out;
}

}  // namespace emosweep::orchestrator
