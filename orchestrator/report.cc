// orchestrator/report.cc: see report.h.
#include "orchestrator/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "core/build_info.h"
#include "orchestrator/svg.h"
#include "orchestrator/tables.h"

namespace emosweep::orchestrator {

std::vector<std::vector<int64_t>> SumConfusions(const std::vector<std::string>& labels,
                                                const std::vector<RunConfusion>& runs, int* summed, int* left_out) {
  *summed = *left_out = 0;
  std::vector<std::vector<int64_t>> sum;
  for (const RunConfusion& run : runs) {
    const nlohmann::json& cm = *run.confusion;
    if (!cm.is_array() || cm.empty()) continue;
    // The sum's size: the classes' count (a first run that does not fit must not decide it; helper-74).
    const size_t n = !labels.empty() ? labels.size() : !sum.empty() ? sum.size() : cm.size();
    std::vector<size_t> at(cm.size());
    bool fits = cm.size() == n;
    for (size_t a = 0; fits && a < cm.size(); ++a) {
      if (!cm[a].is_array() || cm[a].size() != cm.size()) fits = false;
      if (!fits || run.classes->empty()) {
        at[a] = a;  // no names to go by: as recorded
        continue;
      }
      const auto pos = run.classes->size() == cm.size() && labels.size() == cm.size()
                           ? std::find(labels.begin(), labels.end(), (*run.classes)[a])
                           : labels.end();
      fits = pos != labels.end();
      if (fits) at[a] = static_cast<size_t>(pos - labels.begin());
    }
    if (!fits) {
      ++*left_out;
      continue;
    }
    if (sum.empty()) sum.assign(n, std::vector<int64_t>(n, 0));
    for (size_t a = 0; a < cm.size(); ++a)
      for (size_t b = 0; b < cm.size(); ++b)
        if (cm[a][b].is_number()) sum[at[a]][at[b]] += cm[a][b].get<int64_t>();
    ++*summed;
  }
  if (*summed == 0) sum.clear();
  return sum;
}

namespace {

using svg::Escape;

constexpr const char* kStyle = R"CSS(
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222}
h1{margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}h3{margin-top:22px}
.meta{color:#666;font-size:13px}table.t{border-collapse:collapse;margin:10px 0;font-size:14px}
table.t th,table.t td{border-bottom:1px solid #e4e4e4;padding:4px 10px;text-align:right}
table.t th:first-child,table.t td:first-child{text-align:left}table.t thead th{border-bottom:2px solid #999}
caption,.cap{caption-side:bottom;text-align:left;color:#555;font-size:12.5px;padding-top:2px;max-width:1100px;margin-top:0}
.warn{color:#a40000;font-weight:bold}.ok{color:#187a18}.bad{color:#a40000}
.plots{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}.plots>div{flex:0 1 auto}
.counts span{display:inline-block;margin-right:14px;padding:2px 8px;border-radius:4px;background:#f2f2f2}
)CSS";

std::string Fixed(double v, int d) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", d, v);
  return buf;
}

std::string Attr(const protocols::PlannedJob& j, const std::string& k) {
  auto it = j.attrs.find(k);
  return it == j.attrs.end() ? std::string() : it->second;
}

size_t IndexIn(std::vector<std::string>& v, const std::string& x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) return static_cast<size_t>(it - v.begin());
  v.push_back(x);
  return v.size() - 1;
}

std::string HtmlTable(const TableData& t) {
  std::ostringstream o;
  size_t nm = t.spec.metrics.size();
  o << "<table class=\"t\"><thead><tr><th>" << Escape(t.spec.rows) << "</th>";
  for (const auto& c : t.cols)
    for (const auto& m : t.spec.metrics) o << "<th>" << Escape(nm == 1 ? c : c + " " + MetricLabel(m)) << "</th>";
  o << "</tr></thead><tbody>";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    o << "<tr><td>" << Escape(t.rows[r]) << "</td>";
    for (size_t c = 0; c < t.cols.size(); ++c)
      for (size_t m = 0; m < nm; ++m) {
        const TableCell& cell = t.at(r, c, m);
        std::string text = Escape(CellText(t, cell));
        o << "<td>" << (cell.best ? "<b>" + text + "</b>" : text) << "</td>";
      }
    o << "</tr>";
  }
  // The caption goes below as a paragraph: a <caption> is only as wide as its table.
  o << "</tbody></table><p class=\"cap\">";
  std::string cap = Escape(t.caption);
  size_t w = cap.find("WARNING:");
  if (w != std::string::npos) {
    size_t end = cap.find(". ", w);
    end = end == std::string::npos ? cap.size() : end + 1;
    cap = cap.substr(0, w) + "<span class=\"warn\">" + cap.substr(w, end - w) + "</span>" + cap.substr(end);
  }
  o << cap << "</p>";
  const std::string selected = SelectedGridPoints(t);
  if (!selected.empty()) o << "<p class=\"cap\">" << Escape(selected) << "</p>";
  return o.str();
}

std::string ReproduceHtml(const TableData& t) {
  auto lines = Reproduce(t);
  if (!lines.ok()) return "";
  std::ostringstream o;
  int within = 0, incomplete = 0, have = 0;
  for (const auto& l : *lines) within += l.within, have += l.have_ours, incomplete += l.have_ours && !l.complete;
  o << "<h3>Reproduction check</h3><table class=\"t\"><thead><tr><th>" << Escape(t.spec.rows) << "</th><th>"
    << Escape(t.spec.columns) << "</th><th>metric</th><th>ours</th><th>published</th><th>diff</th><th>within ±"
    << Fixed(t.spec.tolerance, t.spec.decimals) << "</th></tr></thead><tbody>";
  for (const auto& l : *lines)
    o << "<tr><td>" << Escape(l.row) << "</td><td>" << Escape(l.col) << "</td><td>" << MetricLabel(l.metric)
      << "</td><td>" << Escape(l.have_ours ? l.cell : t.spec.missing) << "</td><td>"
      << Fixed(l.published, t.spec.decimals) << "</td><td>"
      << (l.have_ours ? (l.diff >= 0 ? "+" : "") + Fixed(l.diff, t.spec.decimals) : "") << "</td><td class=\""
      << (l.within ? "ok" : l.have_ours && !l.complete ? "warn" : "bad") << "\">"
      << (!l.have_ours ? "missing" : !l.complete ? "incomplete" : l.within ? "yes" : "no") << "</td></tr>";
  o << "</tbody><caption>" << within << " of " << lines->size() << " published cells within tolerance ("
    << lines->size() - have << " without a finished run";
  if (incomplete) o << ", " << incomplete << " with runs missing: not compared until complete";
  o << "). ours: as the table prints it, mean ± spread over the cell's runs, (n/N) when runs are missing.</caption></table>";
  return o.str();
}

// Mean of the first metric per (row, col): the table as a heatmap, or as a curve
// when the columns are few-shot budgets.
std::string TablePlot(const TableData& t) {
  if (t.rows.empty() || t.cols.size() < 2) return "";
  std::string metric = MetricLabel(t.spec.metrics.front());
  if (t.spec.columns == "budget" || t.spec.columns == "budget_n") {
    std::vector<svg::Series> series;
    for (size_t r = 0; r < t.rows.size(); ++r) {
      svg::Series s{t.rows[r], {}, {}};
      for (size_t c = 0; c < t.cols.size(); ++c) {
        const auto& cell = t.at(r, c, 0);
        s.y.push_back(cell.values.empty() ? NAN : cell.summary.mean);
        s.err.push_back(cell.summary.Spread(t.spec.spread));
      }
      series.push_back(s);
    }
    return svg::LinePlot(t.spec.name + ": " + metric + " by label budget (bars: " + t.spec.spread + ")",
                         "label budget", metric, t.cols, series);
  }
  std::vector<std::vector<double>> v(t.rows.size(), std::vector<double>(t.cols.size(), NAN));
  std::vector<std::vector<std::string>> marks(t.rows.size(), std::vector<std::string>(t.cols.size()));
  bool any_mark = false;
  for (size_t r = 0; r < t.rows.size(); ++r)
    for (size_t c = 0; c < t.cols.size(); ++c) {
      const TableCell& cell = t.at(r, c, 0);
      if (cell.values.empty()) continue;
      v[r][c] = cell.summary.mean;
      marks[r][c] = std::string(static_cast<int>(cell.values.size()) < cell.planned ? "*" : "") +
                    (cell.provisional ? "‡" : "");
      any_mark = any_mark || !marks[r][c].empty();
    }
  return svg::Heatmap(t.spec.name + ": mean " + metric, t.rows, t.cols, v, t.spec.decimals, t.spec.rows,
                      t.spec.columns, marks,
                      any_mark ? "* = runs missing (n/N in the table); ‡ = grid choice may change" : "");
}

// Columns that name the corpus a run is tested on ("row → corpus" in titles; other columns are settings).
bool ColumnsAreTestCorpora(const TableData& t) {
  const std::string& c = t.spec.columns;
  return c == "heldout" || c == "target" || c == "corpus";
}

// One matrix per table cell (per row when the table has one column), summed over the cell's runs.
// *groups: how many matrices the table has runs for (only the first `limit` are drawn).
Result<std::string> Confusions(const TableData& t, Ledger* ledger, int limit, int* groups) {
  std::ostringstream o;
  *groups = 0;
  // Per cell when the table has several columns: columns are test corpora (a LOCO row pools four test sets
  // otherwise) or settings (feature_norm none / corpus), and neither may be summed into one matrix.
  const bool per_column = t.cols.size() > 1;
  const std::string arrow = ColumnsAreTestCorpora(t) ? " → " : " / ";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (size_t group = 0; group < (per_column ? t.cols.size() : 1); ++group) {
      std::vector<std::string> ids;
      std::vector<const std::vector<std::string>*> job_labels;  // each run's classes, in its own order
      std::vector<std::string> labels;
      for (size_t c = 0; c < t.cols.size(); ++c) {
        if (per_column && c != group) continue;
        for (const auto* j : t.at(r, c, 0).jobs) {
          ids.push_back(j->spec.id);
          job_labels.push_back(&j->spec.labels.vec());
          if (labels.empty()) labels = j->spec.labels;
        }
      }
      if (ids.empty()) continue;
      if (++*groups > limit) continue;
      ES_ASSIGN_OR_RETURN(auto details, ledger->EvalDetails(ids));
      std::vector<RunConfusion> runs;
      for (size_t k = 0; k < ids.size(); ++k) {
        auto d = details[ids[k]].find(t.spec.eval);
        if (d == details[ids[k]].end() || !d->second.contains("confusion") || !d->second["confusion"].is_array())
          continue;
        runs.push_back({job_labels[k], &d->second["confusion"]});
      }
      // Runs whose classes come in another order are added by class name: a cell pooling two experiments with
      // the same classes in different orders summed their matrices by index (helper-72).
      int jobs = 0, other_classes = 0;
      std::vector<std::vector<int64_t>> sum = SumConfusions(labels, runs, &jobs, &other_classes);
      if (sum.empty()) continue;
      while (labels.size() < sum.size()) labels.push_back("c" + std::to_string(labels.size()));
      std::string title = t.rows[r] + (per_column ? arrow + t.cols[group] : "") + " (" + std::to_string(jobs) +
                          " runs, '" + t.spec.eval + "'" +
                          (other_classes ? "; " + std::to_string(other_classes) + " runs with other classes left out"
                                         : std::string()) +
                          ")";
      o << "<div>" << svg::Confusion(title, labels, sum) << "</div>";
    }
  }
  return o.str();
}

// Mean train/val loss per epoch over a row's runs, drawn only at epochs where every run has a value
// (runs that stopped early are named in the title, never averaged in silently), with the epochs the
// runs selected marked as rings on the validation curve.
// At most kCurveRuns runs a row (the first in table order; the title says so). *rows: how many rows have
// runs (only the first `limit` are drawn).
constexpr size_t kCurveRuns = 30;
Result<std::string> LearningCurves(const TableData& t, Ledger* ledger, int limit, int* rows) {
  std::ostringstream o;
  *rows = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    std::vector<std::string> ids;
    size_t row_runs = 0;
    for (size_t c = 0; c < t.cols.size(); ++c)
      for (const auto* j : t.at(r, c, 0).jobs)
        if (++row_runs <= kCurveRuns) ids.push_back(j->spec.id);
    if (ids.empty() || ++*rows > limit) continue;
    std::map<int, std::pair<double, int>> train, val;  // epoch -> (sum, count)
    std::vector<int> lengths;
    std::map<int, int> selected;  // epoch -> runs that selected it
    ES_ASSIGN_OR_RETURN(auto chosen, ledger->SelectedEpochs(ids));
    for (const auto& id : ids) {
      ES_ASSIGN_OR_RETURN(auto curve, ledger->Curve(id));
      if (curve.empty()) continue;
      int last = 0;
      for (const auto& e : curve) {
        if (std::isfinite(e.train_loss)) train[e.epoch].first += e.train_loss, train[e.epoch].second++;
        if (std::isfinite(e.val_loss)) val[e.epoch].first += e.val_loss, val[e.epoch].second++;
        last = std::max(last, e.epoch);
      }
      lengths.push_back(last + 1);  // epochs it ran
      auto sel = chosen.find(id);
      if (sel != chosen.end() && sel->second >= 0) selected[sel->second]++;
    }
    const int jobs = static_cast<int>(lengths.size());
    if (jobs == 0 || (train.empty() && val.empty())) continue;
    const int shortest = *std::min_element(lengths.begin(), lengths.end());
    const int longest = *std::max_element(lengths.begin(), lengths.end());
    std::set<int> epochs;
    for (const auto& [e, _] : train) epochs.insert(e);
    for (const auto& [e, _] : val) epochs.insert(e);
    std::vector<std::string> xs;
    svg::Series st{"train loss", {}, {}}, sv{"val loss", {}, {}}, ss{"selected epoch", {}, {}, true};
    auto mean_if_all = [&](std::map<int, std::pair<double, int>>& m, int e) {
      auto it = m.find(e);
      return it != m.end() && it->second.second == jobs ? it->second.first / jobs : NAN;
    };
    for (int e : epochs) {
      xs.push_back(std::to_string(e + 1));  // epochs counted from 1 on the page (the ledger's are 0-based)
      st.y.push_back(mean_if_all(train, e));
      sv.y.push_back(mean_if_all(val, e));
      double at = std::isfinite(sv.y.back()) ? sv.y.back() : st.y.back();
      ss.y.push_back(selected.count(e) ? at : NAN);
    }
    std::string title = t.rows[r] + ": mean of " + std::to_string(jobs) + " runs" +
                        (row_runs > ids.size() ? " (the first " + std::to_string(ids.size()) + " of the row's " +
                                                     std::to_string(row_runs) + ")"
                                               : "");
    if (shortest != longest) {
      int early = 0;
      for (int n : lengths) early += n < longest;
      title += "; " + std::to_string(early) + " stopped early (" + std::to_string(shortest) + "-" +
               std::to_string(longest) + " epochs), mean drawn up to epoch " + std::to_string(shortest);
    }
    if (!selected.empty()) {
      std::vector<int> sel;
      for (const auto& [e, n] : selected) sel.insert(sel.end(), n, e);
      title += "; selected epoch " + (sel.front() == sel.back() ? std::to_string(sel.front() + 1)
                                                                 : std::to_string(sel.front() + 1) + "-" +
                                                                       std::to_string(sel.back() + 1) + " (median " +
                                                                       std::to_string(sel[sel.size() / 2] + 1) + ")");
    }
    std::vector<svg::Series> series = {st, sv};
    if (!selected.empty()) series.push_back(ss);
    o << "<div>" << svg::LinePlot(title, "epoch", "loss", xs, series) << "</div>";
  }
  return o.str();
}

// Domain adaptation, per row (variant; per row and column when the table has several columns): the GRL λ, the discriminator's accuracy and the largest predicted class
// share on the unlabeled target by epoch (means over the row's runs), and the predicted class distribution on the
// unlabeled target at the selected epoch. Empty when the table's jobs recorded no DA diagnostics.
Result<std::string> DaPlots(const TableData& t, Ledger* ledger) {
  struct Acc {
    std::map<int, std::pair<double, int>> by_epoch;
    void Add(int e, const nlohmann::json& v) {
      if (!v.is_number()) return;
      by_epoch[e].first += v.get<double>();
      by_epoch[e].second++;
    }
  };
  const std::vector<std::pair<std::string, std::string>> kPlots = {
      {"lambda", "GRL coefficient λ (weight of the reversed gradient)"},
      {"disc_acc", "domain discriminator accuracy (0.5 = domains indistinguishable)"},
      {"target_max_share", "largest predicted class share on the unlabeled target (1 = collapse)"},
      {"mmd_linear", "source-target distance of mean embeddings (linear MMD²)"}};
  // One series per row, or per row and column when the table has several columns (settings differ there).
  std::vector<std::string> names;
  std::vector<std::vector<std::pair<size_t, size_t>>> cells;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (t.cols.size() <= 1) {
      names.push_back(t.rows[r]);
      cells.push_back({{r, 0}});
      continue;
    }
    for (size_t c = 0; c < t.cols.size(); ++c) {
      names.push_back(t.rows[r] + " / " + t.cols[c]);
      cells.push_back({{r, c}});
    }
  }
  const size_t ns = names.size();
  std::map<std::string, std::vector<Acc>> acc;  // key -> per series
  for (const auto& [k, _] : kPlots) acc[k].resize(ns);
  std::vector<std::vector<double>> dist(ns);
  std::vector<int> dist_n(ns, 0);
  std::vector<std::string> labels;
  std::set<int> epochs;
  bool any = false, capped = false;
  for (size_t r = 0; r < ns; ++r) {
    int jobs = 0;
    for (const auto& [row, c] : cells[r])
      for (const auto* j : t.at(row, c, 0).jobs) {
        if (j->spec.target_unlabeled.empty()) continue;
        if (static_cast<size_t>(++jobs) > kCurveRuns) {
          capped = true;
          continue;
        }
        ES_ASSIGN_OR_RETURN(auto curve, ledger->Curve(j->spec.id));
        for (const auto& e : curve) {
          if (!e.val_metrics.is_object() || !e.val_metrics.contains("da")) continue;
          const auto& d = e.val_metrics["da"];
          any = true;
          epochs.insert(e.epoch);
          for (const auto& [k, _] : kPlots) acc[k][r].Add(e.epoch, d.value(k, nlohmann::json()));
        }
        ES_ASSIGN_OR_RETURN(auto row, ledger->GetJob(j->spec.id));
        if (!row || !row->info.is_object() || !row->info.contains("da_selected")) continue;
        const auto& td = row->info["da_selected"].value("target_dist", nlohmann::json());
        if (!td.is_array()) continue;
        if (labels.empty()) labels = j->spec.labels;
        // Shares of the heatmap's classes, in its column order: a run with other classes (or the same in another
        // order) is not added by index (helper-72); its rows are still in the curves above.
        if (j->spec.labels != labels) continue;
        if (dist[r].empty()) dist[r].assign(td.size(), 0.0);
        if (dist[r].size() != td.size()) continue;
        for (size_t k = 0; k < td.size(); ++k) dist[r][k] += td[k].is_number() ? td[k].get<double>() : 0.0;
        dist_n[r]++;
      }
  }
  if (!any) return std::string();
  std::vector<std::string> xs;
  for (int e : epochs) xs.push_back(std::to_string(e + 1));
  std::ostringstream o;
  for (const auto& [k, title] : kPlots) {
    std::vector<svg::Series> series;
    for (size_t r = 0; r < ns; ++r) {
      const auto& a = acc[k][r].by_epoch;
      if (a.empty()) continue;
      svg::Series line{names[r], {}, {}};
      for (int e : epochs) {
        auto it = a.find(e);
        line.y.push_back(it == a.end() ? NAN : it->second.first / it->second.second);
      }
      series.push_back(line);
    }
    if (series.empty()) continue;
    o << "<div>"
      << svg::LinePlot(t.spec.name + ": " + title + ", mean over runs" +
                           (capped ? " (the first " + std::to_string(kCurveRuns) + " of a series)" : ""),
                       "epoch", k, xs, series)
      << "</div>";
  }
  std::vector<std::string> dist_rows;
  std::vector<std::vector<double>> dist_v;
  for (size_t r = 0; r < ns; ++r) {
    if (dist_n[r] == 0) continue;
    dist_rows.push_back(names[r] + " (" + std::to_string(dist_n[r]) + " runs)");
    std::vector<double> v;
    for (double x : dist[r]) v.push_back(100 * x / dist_n[r]);
    dist_v.push_back(v);
  }
  if (!dist_v.empty()) {
    while (labels.size() < dist_v.front().size()) labels.push_back("c" + std::to_string(labels.size()));
    labels.resize(dist_v.front().size());
    o << "<div>"
      << svg::Heatmap(t.spec.name + ": predicted class share (%) on the unlabeled target at the selected epoch",
                      dist_rows, labels, dist_v, 1, t.spec.rows, "predicted class")
      << "</div>";
  }
  return o.str();
}

// What a plot outside the tables pools: the runs of one setting (experiment, model and every attribute below)
// differ only in seed and fold. A grid, several DA variants or selection rules make several plots, each named.
constexpr const char* kSettingAttrs[] = {"hp", "variant", "selection", "heldout"};

// The setting attributes (kSettingAttrs and `also`) whose values differ among an experiment's jobs: only
// those name a plot (a protocol-wide selection rule is not repeated in every title).
std::map<std::string, std::set<std::string>> VaryingSettings(const std::vector<const protocols::PlannedJob*>& jobs,
                                                             const char* also) {
  std::map<std::string, std::map<std::string, std::set<std::string>>> seen;  // experiment -> attr -> values
  for (const auto* j : jobs) {
    auto& e = seen[Attr(*j, "experiment")];
    for (const char* a : kSettingAttrs) e[a].insert(Attr(*j, a));
    e[also].insert(Attr(*j, also));
  }
  std::map<std::string, std::set<std::string>> varying;
  for (const auto& [exp, attrs] : seen)
    for (const auto& [a, values] : attrs)
      if (values.size() > 1) varying[exp].insert(a);
  return varying;
}

std::string Setting(const protocols::PlannedJob& j, const std::map<std::string, std::set<std::string>>& varying,
                    const char* also) {
  auto it = varying.find(Attr(j, "experiment"));
  if (it == varying.end()) return "";
  std::string s;
  for (const char* a : kSettingAttrs)
    if (it->second.count(a)) s += (s.empty() ? "" : ", ") + std::string(a) + "=" + Attr(j, a);
  if (it->second.count(also)) s += (s.empty() ? "" : ", ") + std::string(also) + "=" + Attr(j, also);
  return s;
}

// Mean test UA (%) per (series, x) of `jobs`, with the planned and finished runs of each.
struct Grid {
  std::vector<std::string> rows, cols;
  std::map<std::pair<size_t, size_t>, std::vector<double>> values;
  std::map<std::pair<size_t, size_t>, int> planned;
};

Status Fill(Grid* g, const std::vector<const protocols::PlannedJob*>& jobs, Ledger* ledger,
            const std::function<std::pair<std::string, std::string>(const protocols::PlannedJob&)>& where) {
  std::vector<std::string> ids;
  for (const auto* j : jobs) ids.push_back(j->spec.id);
  ES_ASSIGN_OR_RETURN(auto metrics, ledger->Metrics(ids));
  for (const auto* j : jobs) {
    auto [row, col] = where(*j);
    const std::pair<size_t, size_t> rc{IndexIn(g->rows, row), IndexIn(g->cols, col)};
    g->planned[rc]++;
    auto m = metrics.find(j->spec.id);
    if (m == metrics.end()) continue;
    auto ev = m->second.find("test");
    if (ev != m->second.end() && ev->second.count("ua")) g->values[rc].push_back(100 * ev->second.at("ua"));
  }
  return Status::Ok();
}

// The settings of a group of plots, at most kMaxExtraPlots drawn; the page says how many were not.
constexpr size_t kMaxExtraPlots = 24;

// Source × target matrices of cross-corpus experiments whose tables do not draw one: per model and setting.
Result<std::string> CrossCorpus(const protocols::Protocol& p, Ledger* ledger, const std::set<std::string>& plotted) {
  std::vector<const protocols::PlannedJob*> all;
  for (const auto& j : p.jobs)
    if (j.reportable && Attr(j, "kind") == "cross_corpus" && !plotted.count(Attr(j, "experiment"))) all.push_back(&j);
  const auto varying = VaryingSettings(all, "budget");
  std::map<std::string, std::vector<const protocols::PlannedJob*>> by_setting;
  for (const auto* j : all) {
    const std::string setting = Setting(*j, varying, "budget");
    by_setting[Attr(*j, "experiment") + " / " + Attr(*j, "model") + (setting.empty() ? "" : " (" + setting + ")")]
        .push_back(j);
  }
  std::ostringstream o;
  size_t drawn = 0;
  for (const auto& [name, jobs] : by_setting) {
    if (++drawn > kMaxExtraPlots) continue;
    Grid g;
    ES_RETURN_IF_ERROR(Fill(&g, jobs, ledger, [](const protocols::PlannedJob& j) {
      return std::make_pair(Attr(j, "source"), Attr(j, "target"));
    }));
    std::vector<std::vector<double>> v(g.rows.size(), std::vector<double>(g.cols.size(), NAN));
    std::vector<std::vector<std::string>> marks(g.rows.size(), std::vector<std::string>(g.cols.size()));
    bool missing = false;
    for (const auto& [rc, vals] : g.values) {
      v[rc.first][rc.second] = Summarize(vals).mean;
      if (static_cast<int>(vals.size()) < g.planned[rc]) marks[rc.first][rc.second] = "*", missing = true;
    }
    o << "<div>"
      << svg::Heatmap(name + ": test UA (%), mean over seeds and folds", g.rows, g.cols, v, 1, "train (source)",
                      "test (target)", marks, missing ? "* = not every planned run finished" : "")
      << "</div>";
  }
  if (drawn > kMaxExtraPlots)
    o << "<p class=\"cap\">" << drawn - kMaxExtraPlots << " more settings not drawn (at most " << kMaxExtraPlots
      << "); `emosweep table` or `emosweep ledger export` has them all.</p>";
  return o.str();
}

// Few-shot curves of experiments whose tables do not draw one: budget vs test UA per model, variant and
// setting, bars = std over seeds.
Result<std::string> FewShot(const protocols::Protocol& p, Ledger* ledger, const std::set<std::string>& plotted) {
  std::map<std::string, std::vector<const protocols::PlannedJob*>> by_exp;
  std::vector<const protocols::PlannedJob*> all;
  for (const auto& j : p.jobs)
    if (j.reportable && !Attr(j, "budget").empty() && !plotted.count(Attr(j, "experiment"))) {
      by_exp[Attr(j, "experiment")].push_back(&j);
      all.push_back(&j);
    }
  const auto varying = VaryingSettings(all, "target");
  std::ostringstream o;
  size_t drawn = 0;
  for (const auto& [exp, jobs] : by_exp) {
    if (++drawn > kMaxExtraPlots) continue;
    Grid g;
    ES_RETURN_IF_ERROR(Fill(&g, jobs, ledger, [&varying](const protocols::PlannedJob& j) {
      const std::string setting = Setting(j, varying, "target");
      return std::make_pair(Attr(j, "model") + (setting.empty() ? "" : " (" + setting + ")"), Attr(j, "budget"));
    }));
    std::vector<svg::Series> series;
    bool missing = false;
    for (size_t s = 0; s < g.rows.size(); ++s) {
      svg::Series line{g.rows[s], {}, {}};
      for (size_t b = 0; b < g.cols.size(); ++b) {
        auto it = g.values.find({s, b});
        Summary sum = it == g.values.end() ? Summarize({}) : Summarize(it->second);
        line.y.push_back(sum.mean);
        line.err.push_back(sum.std);
        const int finished = it == g.values.end() ? 0 : static_cast<int>(it->second.size());
        missing = missing || (finished > 0 && finished < g.planned[{s, b}]);
      }
      series.push_back(line);
    }
    o << "<div>"
      << svg::LinePlot(exp + ": test UA (%) by label budget (bars: std over seeds)" +
                           (missing ? "; some points lack runs (not every planned run finished)" : ""),
                       "label budget", "UA (%)", g.cols, series)
      << "</div>";
  }
  if (drawn > kMaxExtraPlots)
    o << "<p class=\"cap\">" << drawn - kMaxExtraPlots << " more experiments not drawn (at most " << kMaxExtraPlots
      << ").</p>";
  return o.str();
}

// Now, or SOURCE_DATE_EPOCH when set (reproducible builds' convention): two reports of one ledger are then
// byte-identical.
std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  if (const char* fixed = std::getenv("SOURCE_DATE_EPOCH")) {
    char* end = nullptr;
    const long long v = std::strtoll(fixed, &end, 10);
    if (end != fixed && *end == '\0' && v >= 0) now = static_cast<std::time_t>(v);
  }
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  return buf;
}

}  // namespace

Result<std::string> BuildReport(const protocols::Protocol& p, Ledger* ledger, const ReportOptions& options) {
  std::vector<std::string> ids;
  for (const auto& j : p.jobs) ids.push_back(j.spec.id);
  ES_ASSIGN_OR_RETURN(auto status, ledger->StatusOf(ids));
  std::map<std::string, int> counts;
  for (const auto& id : ids) {
    auto it = status.find(id);
    counts[it == status.end() ? "not started" : JobStatusName(it->second)]++;
  }
  auto build = BuildInfo();
  std::ostringstream o;
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << Escape(p.name)
    << " — emosweep report</title><style>" << kStyle << "</style></head><body>";
  o << "<h1>" << Escape(p.name) << "</h1>";
  if (!p.description.empty()) o << "<p>" << Escape(p.description) << "</p>";
  o << "<p class=\"meta\">protocol " << Escape(p.path) << " · ledger " << Escape(options.ledger_label) << " · generated "
    << UtcNow() << " by emosweep " << Escape(build.value("version", "")) << " (git "
    << Escape(build.value("git_revision", "")) << ")</p>";
  o << "<h2>Sweep status</h2><p class=\"counts\"><span>" << ids.size() << " jobs</span>";
  for (const auto& [s, n] : counts) o << "<span>" << n << " " << Escape(s) << "</span>";
  o << "</p>";
  int listed = 0;
  constexpr int kMaxListed = 20;
  for (const auto& id : ids) {
    auto it = status.find(id);
    if (it == status.end() || (it->second != JobStatus::kFailed && it->second != JobStatus::kBlocked)) continue;
    if (listed == 0) o << "<table class=\"t\"><thead><tr><th>job</th><th style=\"text-align:left\">status</th><th style=\"text-align:left\">error</th></tr></thead><tbody>";
    if (++listed > kMaxListed) continue;
    ES_ASSIGN_OR_RETURN(auto row, ledger->GetJob(id));
    o << "<tr><td>" << id.substr(0, 12) << "</td><td style=\"text-align:left\">" << JobStatusName(it->second)
      << "</td><td style=\"text-align:left\">"
      << Escape(row ? row->error : "") << "</td></tr>";
  }
  if (listed) o << "</tbody></table>";
  if (listed > kMaxListed)
    o << "<p class=\"cap\">" << listed - kMaxListed << " more failed or blocked jobs not listed; `emosweep ledger status` "
      << "lists them all.</p>";

  // Experiments whose source x target matrix or budget curve a table already draws: not drawn again below.
  std::set<std::string> plotted;
  std::vector<const protocols::TableSpec*> specs;
  for (const auto& spec : p.tables) specs.push_back(&spec);
  ES_ASSIGN_OR_RETURN(auto inputs, ReadTableInputs(p, specs, ledger));  // once for every table (issue 15)
  for (const auto& spec : p.tables) {
    ES_ASSIGN_OR_RETURN(auto t, BuildTable(p, spec, inputs));
    o << "<h2>Table: " << Escape(spec.name) << "</h2>" << HtmlTable(t);
    if (!spec.published.empty()) o << ReproduceHtml(t);
    std::string plot = TablePlot(t);
    if (!plot.empty()) o << "<div class=\"plots\"><div>" << plot << "</div></div>";
    if (!plot.empty() && ((spec.rows == "source" && spec.columns == "target") ||
                          spec.columns == "budget" || spec.columns == "budget_n"))
      plotted.insert(spec.experiment);
    int matrices = 0;
    ES_ASSIGN_OR_RETURN(std::string cms, Confusions(t, ledger, options.max_confusions, &matrices));
    if (!cms.empty())
      o << "<h3>Confusion matrices (summed over the runs of each row"
        << (t.cols.size() <= 1 ? "" : ColumnsAreTestCorpora(t) ? " and test corpus" : " and column")
        << "; rows = truth, % of the true class)</h3>"
        << "<div class=\"plots\">" << cms << "</div>";
    if (matrices > options.max_confusions)
      o << "<p class=\"cap\">" << options.max_confusions << " of " << matrices
        << " confusion matrices drawn (the first in table order).</p>";
    ES_ASSIGN_OR_RETURN(std::string da, DaPlots(t, ledger));
    if (!da.empty())
      o << "<h3>Domain adaptation: what the adaptation did (docs/trainer.md, \"Domain-adaptation diagnostics\")</h3>"
        << "<div class=\"plots\">" << da << "</div>";
    int curve_rows = 0;
    ES_ASSIGN_OR_RETURN(std::string lc, LearningCurves(t, ledger, options.max_curves, &curve_rows));
    if (!lc.empty())
      o << "<h3>Learning curves (mean over each row's runs"
        << (t.cols.size() > 1 ? ", every column's runs together" : "") << ")</h3><div class=\"plots\">" << lc
        << "</div>";
    if (curve_rows > options.max_curves)
      o << "<p class=\"cap\">Learning curves of " << options.max_curves << " of " << curve_rows
        << " rows drawn (the first in table order).</p>";
  }
  ES_ASSIGN_OR_RETURN(std::string cross, CrossCorpus(p, ledger, plotted));
  if (!cross.empty()) o << "<h2>Cross-corpus matrices</h2><div class=\"plots\">" << cross << "</div>";
  ES_ASSIGN_OR_RETURN(std::string few, FewShot(p, ledger, plotted));
  if (!few.empty()) o << "<h2>Few-shot curves</h2><div class=\"plots\">" << few << "</div>";
  if (p.tables.empty() && cross.empty() && few.empty())
    o << "<p>The protocol declares no tables; see <code>emosweep ledger query</code> for the raw results.</p>";
  o << "</body></html>\n";
  return o.str();
}

}  // namespace emosweep::orchestrator
