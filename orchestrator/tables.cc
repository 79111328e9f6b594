// orchestrator/tables.cc: building table cells and their caption (rendering: table_render.cc).
#include "orchestrator/tables.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
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

// One attribute of many jobs, read remembering where its key was in the last job's
// sorted entries: jobs of one experiment have the same keys, so it is mostly there again
// and one string compare replaces the binary search (issue 15: attribute lookups were
// ~9 % of `table --all` at 10^6 jobs). Same answers as Attrs::find.
class AttrReader {
 public:
  explicit AttrReader(std::string key) : key_(std::move(key)) {}
  // The value, or nullptr when the job has no such attribute.
  const std::string* Find(const protocols::Attrs& attrs) {
    const auto& e = attrs.entries();
    if (hint_ < e.size() && e[hint_]->first == key_) return &e[hint_]->second;
    auto it = std::lower_bound(e.begin(), e.end(), key_,
                               [](protocols::Attrs::Entry p, const std::string& k) { return p->first < k; });
    if (it == e.end() || (*it)->first != key_) return nullptr;
    hint_ = static_cast<size_t>(it - e.begin());
    return &(*it)->second;
  }
  // The value, or "" when absent (Attrs::Get).
  const std::string& Get(const protocols::Attrs& attrs) {
    static const std::string kEmpty;
    const std::string* v = Find(attrs);
    return v ? *v : kEmpty;
  }

 private:
  std::string key_;
  size_t hint_ = 0;
};

// The row key of a job: the values of the row attributes, joined by " / " (empty values left out). False when
// the job has none of them.
bool RowKey(std::vector<AttrReader>* names, const protocols::Attrs& attrs, std::string* key) {
  bool any = false;
  key->clear();
  for (auto& n : *names) {
    const std::string* v = n.Find(attrs);
    if (!v) continue;
    any = true;
    if (!v->empty()) *key += (key->empty() ? "" : " / ") + *v;
  }
  return any;
}

// The average column: per row and metric, the mean over the row's averaged columns of their means, when every
// one of them is complete; its runs are the per-key (seed, fold) means over those columns, so the ± and the
// paired test of "best" work on them as on any cell. A row's averaged columns are all its columns, less its
// in-domain cells (source = target) when it has cross-corpus ones too.
void FillAverage(TableData* t) {
  const size_t avg = static_cast<size_t>(t->average_col), nm = t->spec.metrics.size(), nc = t->cols.size();
  for (size_t r = 0; r < t->rows.size(); ++r) {
    std::vector<size_t> cols;
    bool cross = false;
    for (size_t c = 0; c < avg; ++c) cross |= !t->in_domain[r * nc + c];
    for (size_t c = 0; c < avg; ++c)
      if (!cross || !t->in_domain[r * nc + c]) cols.push_back(c);
    if (cols.size() < avg) t->average_excludes_in_domain = true;
    const size_t n_cols = cols.size();
    for (size_t m = 0; m < nm; ++m) {
      TableCell& out = t->at(r, avg, m);
      double sum = 0;
      bool complete = n_cols > 0;
      std::map<std::string, std::pair<double, size_t>> per_key;  // key -> (sum of column means of that key, columns)
      for (size_t i = 0; i < n_cols && complete; ++i) {
        const TableCell& cell = t->at(r, cols[i], m);
        complete = cell.complete();
        sum += cell.summary.mean;
        std::map<std::string, std::pair<double, int>> here;
        for (size_t k = 0; k < cell.values.size(); ++k) here[cell.keys[k]].first += cell.values[k], here[cell.keys[k]].second++;
        for (const auto& [key, v] : here) per_key[key].first += v.first / v.second, per_key[key].second++;
      }
      if (!complete) continue;
      for (const auto& [key, v] : per_key)
        if (v.second == n_cols) out.values.push_back(v.first / n_cols), out.keys.push_back(key);
      if (out.values.empty()) out.values.push_back(sum / n_cols), out.keys.push_back("");
      out.planned = static_cast<int>(out.values.size());
      out.summary = Summarize(out.values);
      out.summary.mean = sum / n_cols;  // the mean of the per-column means, as the caption says
    }
  }
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
  if (s.experiments.size() > 1) {
    c << "Experiments: ";
    for (size_t k = 0; k < s.experiments.size(); ++k) c << (k ? ", " : "") << s.experiments[k];
    c << ". ";
  }
  int lo = 1 << 30, hi = 0;
  bool partial = false, provisional = false;
  for (size_t k = 0; k < t.cells.size(); ++k) {
    const TableCell& cell = t.cells[k];
    provisional |= cell.provisional;
    int n = static_cast<int>(cell.values.size());
    if (n == 0 || (t.average_col >= 0 && (k / s.metrics.size()) % t.cols.size() == static_cast<size_t>(t.average_col)))
      continue;
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
    else if (lo == 1) c << "; a cell of one run shows no spread";
    c << ". ";
  }
  if (!t.seeds.empty()) {
    // Every seed up to 12; beyond, a run of consecutive seeds as a range, else the first 10 and a count (a
    // 2000-seed grid wrote 2000 numbers into the caption; helper-67). The protocol and the ledger keep them all.
    constexpr size_t kListed = 12;
    const std::vector<uint64_t> seeds(t.seeds.begin(), t.seeds.end());
    c << "Seeds: ";
    if (seeds.size() <= kListed) {
      for (size_t i = 0; i < seeds.size(); ++i) c << (i ? ", " : "") << seeds[i];
    } else if (std::is_sorted(seeds.begin(), seeds.end()) && seeds.back() - seeds.front() + 1 == seeds.size()) {
      c << seeds.front() << "–" << seeds.back() << " (" << seeds.size() << ")";
    } else {
      for (size_t i = 0; i < 10; ++i) c << (i ? ", " : "") << seeds[i];
      c << " and " << seeds.size() - 10 << " more (" << seeds.size() << ")";
    }
    c << ". ";
  }
  std::string selection;
  for (const auto& sel : t.selections) selection += (selection.empty() ? "" : ", ") + sel;
  if (selection.empty()) selection = s.selection.empty() ? "unknown" : s.selection;
  if (s.HasGridSelection()) {
    const std::string on = MetricLabel(s.metrics.front());
    const auto rules = s.GridRules();
    // Rules that rank by the table's metric share the words "with the highest mean UA"; the unsupervised ones
    // rank by their own criterion, so with one of them in the table each rule names what it ranks by.
    const bool own_words = std::any_of(rules.begin(), rules.end(), protocols::UnsupervisedGridRule);
    c << "Grid selection: per cell, the grid point (hp) ";
    if (!own_words) c << "with the highest mean " << on << " ";
    for (size_t i = 0; i < rules.size(); ++i) {
      const std::string& rule = rules[i];
      if (i) c << "; ";
      if (!s.grid_selection_by.empty()) {  // name the experiments each rule applies to
        std::string which;
        for (const auto& e : s.experiments.empty() ? std::vector<std::string>{s.experiment} : s.experiments)
          if (s.GridRuleFor(e) == rule) which += (which.empty() ? "" : ", ") + e;
        c << "in rows of " << which << ": ";
      }
      if (own_words && !protocols::UnsupervisedGridRule(rule)) c << "with the highest mean " << on << " ";
      if (rule == "im" || rule == "snd") {
        c << "with the highest mean "
          << (rule == "im" ? "information maximisation (im)" : "soft neighbourhood density (snd, Saito et al. 2021)")
          << " of its runs on the unlabeled target at their selected epochs";
      } else if (rule == "dev") {
        c << "with the lowest mean deep-embedded-validation risk (dev, You et al. 2019) of its runs at their "
             "selected epochs";
      } else if (rule == "training_domain") {
        c << "on the training corpora's pooled validation share (training-domain validation, DomainBed)";
        if (t.ranked_by_trained_val)
          c << " (a run that tests a trained model on another corpus is ranked by that model's validation metric)";
      } else if (rule == "lodo") {
        c << "when each training corpus in turn is left out, trained on the others and evaluated whole "
             "(leave-one-source-out validation, DomainBed), averaged over left-out corpora and runs";
      } else {
        c << "on the '" << s.eval << "' set itself (oracle)";
      }
      if (auto u = t.unranked.find(rule); u != t.unranked.end())
        c << " (" << u->second << " finished run" << (u->second == 1 ? "" : "s") << " without a " << rule
          << " value there did not count)";
    }
    const auto used = s.GridRules();
    if (std::count(used.begin(), used.end(), "oracle"))
      c << "; the target is used";
    else if (own_words)
      c << "; the target's labels are not used";
    else
      c << "; the target is not used";
    c << ". Epoch selection: ";
  } else {
    c << "Model selection: ";
  }
  c << selection;
  std::string unsupervised;
  for (const auto& sel : t.selections) {
    if (sel == "dev")
      unsupervised += std::string(unsupervised.empty() ? "" : "; ") +
                      "dev = the epoch with the lowest deep-embedded-validation risk (importance-weighted "
                      "source-validation loss, You et al. 2019; epochs where DEV is undefined rank after the "
                      "others, by im)";
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
  if (t.selections.count("target_val"))
    c << " (target_val = the epoch with the best metric on the target's labelled validation share: target labels "
         "beyond the training data, and beyond any few-shot budget)";
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
                         : code == "dev_undefined"
                             ? "DEV was undefined at the selected epoch (importance weights near 0, too few effective "
                               "rows or too few rows: the job's warning says which), which was chosen by im instead"
                         : code == "dev_sparse"
                             ? "DEV was defined at only a minority of the validated epochs, so where it was defined "
                               "decided the epoch as much as its value (an epoch with DEV ranks above every epoch "
                               "without)"
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
  if (const auto rules = s.GridRules(); std::count(rules.begin(), rules.end(), "oracle"))
    c << "WARNING: oracle grid selection: grid points were chosen on the evaluation set '" << s.eval
      << "', so these numbers are optimistic. ";
  if (t.average_col >= 0) {
    if (t.average_excludes_in_domain)
      c << "average: per row, the mean over its cross-corpus " << s.columns
        << " columns (the in-domain cell, source = target, is left out) of their cell means";
    else
      c << "average: the mean over the " << t.average_col << " " << s.columns << " columns of their cell means";
    c << ", shown only when every one of them is complete (± over the runs' means across columns, matched on "
      << s.aggregate_over << "). ";
  }
  if (!t.pooled.empty()) {
    c << "Each cell also pools runs that differ in ";
    bool first = true;
    for (const auto& [attr, n] : t.pooled) c << (first ? "" : ", ") << attr << " (up to " << n << " values)", first = false;
    c << " (not in rows, columns or aggregate_over: its ± includes that variation). ";
  }
  char alpha[32];
  std::snprintf(alpha, sizeof alpha, "%g", s.alpha);
  c << "Bold: the best cell of its column, only where a two-sided paired t-test over runs matched on ("
    << s.aggregate_over << ") finds it better than the runner-up at alpha = " << alpha
    << ", and never on an incomplete cell or on means tied at the printed precision. ";
  if (!t.untested.empty()) {
    c << "Not tested, so not bold, for lack of runs matched on (" << s.aggregate_over << ") or with equal "
         "differences: ";
    for (size_t i = 0; i < t.untested.size(); ++i) c << (i ? ", " : "") << t.untested[i];
    c << ". ";
  }
  bool any_missing = std::any_of(t.cells.begin(), t.cells.end(), [](const TableCell& x) { return x.values.empty(); });
  if (any_missing) c << s.missing << ": no finished run. ";
  if (partial) c << "(n/N): n of N planned runs finished. ";
  if (provisional) c << "‡: grid selection over unfinished runs (may change once they finish). ";
  if (t.finished_jobs < t.planned_jobs) {
    c << (t.planned_jobs - t.finished_jobs) << " of " << t.planned_jobs << " planned runs not finished";
    if (t.failed_jobs)
      c << " (" << t.failed_jobs << " failed or blocked: `emosweep ledger query --status failed` says why; "
        << "`run` retries them)";
    c << ".";
  }
  std::string out = c.str();
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string TableCaption(const TableData& t) { return Caption(t); }

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
  if (static_cast<int>(cell.values.size()) < cell.planned)
    s += " (" + std::to_string(cell.values.size()) + "/" + std::to_string(cell.planned) + ")";
  if (cell.provisional) s += "‡";
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

namespace {

// How a job feeds a table: not at all, as a cell's run, or as a leave-one-source-out
// validation run of grid selection (protocols/exp_lodo.cc).
enum class Feed { kNone, kCell, kLodo };

// FeedOf(spec, job) for many jobs (AttrReader's remembered positions).
class Feeder {
 public:
  explicit Feeder(const protocols::TableSpec& spec) : spec_(&spec) {
    for (const auto& [k, v] : spec.filter) filter_.emplace_back(AttrReader(k), &v);
  }
  Feed Of(const protocols::PlannedJob& j) {
    const protocols::TableSpec& spec = *spec_;
    const std::string& experiment = experiment_.Get(j.attrs);
    const bool in_table =
        !spec.experiments.empty()
            ? std::find(spec.experiments.begin(), spec.experiments.end(), experiment) != spec.experiments.end()
            : spec.experiment.empty() || experiment == spec.experiment;
    if (!in_table) return Feed::kNone;
    for (auto& [reader, value] : filter_)
      if (reader.Get(j.attrs) != *value) return Feed::kNone;
    if (j.reportable) return Feed::kCell;
    return role_.Get(j.attrs) == "lodo" && spec.GridRuleFor(experiment) == "lodo" ? Feed::kLodo : Feed::kNone;
  }

 private:
  const protocols::TableSpec* spec_;
  AttrReader experiment_{"experiment"}, role_{"role"};
  std::vector<std::pair<AttrReader, const std::string*>> filter_;
};

// Adaptation experiments' jobs (every variant, "none" included, sees the unlabeled
// target) record warnings. Read from the attributes too: a job from the expansion
// cache (protocols/expand_cache.h) carries no spec.kind.
bool IsAdapt(const protocols::PlannedJob& j, AttrReader* kind) {
  return j.spec.kind == "adapt" || !j.spec.target_unlabeled.empty() || kind->Get(j.attrs) == "adapt";
}

}  // namespace

Result<TableInputs> ReadTableInputs(const protocols::Protocol& protocol,
                                    const std::vector<const protocols::TableSpec*>& specs, Ledger* ledger) {
  TableInputs in;
  const size_t n = protocol.jobs.size();
  // The metric slots: every table's eval set and metrics, "val" (training-domain grid
  // selection) and "test" (leave-one-source-out jobs) only where a table selects so.
  auto add = [](std::vector<std::string>* v, const std::string& x) {
    if (std::find(v->begin(), v->end(), x) == v->end()) v->push_back(x);
  };
  for (const auto* spec : specs) {
    add(&in.evals, spec->eval);
    for (const auto& m : spec->metrics) add(&in.names, m);
    for (const auto& rule : spec->GridRules()) {
      if (rule == "training_domain") add(&in.evals, "val");
      if (rule == "lodo") add(&in.evals, "test");
    }
  }
  // The jobs any of the tables reads, in id order: SQLite then walks its indices in
  // order, chunk after chunk (10^6 ids in protocol order jump across the whole file).
  // Sorted by the id's first 8 bytes as one integer, ties by the whole id.
  std::vector<std::pair<uint64_t, size_t>> order;
  std::vector<Feeder> feeders;
  for (const auto* spec : specs) feeders.emplace_back(*spec);
  for (size_t k = 0; k < n; ++k) {
    const auto& j = protocol.jobs[k];
    for (auto& feeder : feeders)
      if (feeder.Of(j) != Feed::kNone) {
        uint64_t prefix = 0;
        for (size_t b = 0; b < 8; ++b)
          prefix = prefix << 8 | (b < j.spec.id.size() ? static_cast<uint8_t>(j.spec.id[b]) : 0);
        order.emplace_back(prefix, k);
        break;
      }
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return protocol.jobs[a.second].spec.id < protocol.jobs[b.second].spec.id;
  });
  std::vector<size_t> read;               // job index of each id below
  std::vector<std::string_view> ids;      // views of the protocol's ids (no copies)
  read.reserve(order.size());
  ids.reserve(order.size());
  for (const auto& [prefix, k] : order) {
    read.push_back(k);
    ids.emplace_back(protocol.jobs[k].spec.id);
  }
  order = {};
  in.done.assign(n, 0);
  in.failed.assign(n, 0);
  ES_ASSIGN_OR_RETURN(auto status, ledger->StatusList(ids));
  for (size_t i = 0; i < read.size(); ++i) {
    in.done[read[i]] = status[i] == JobStatus::kDone;
    in.failed[read[i]] = status[i] == JobStatus::kFailed || status[i] == JobStatus::kBlocked;
  }
  const size_t slots = in.evals.size() * in.names.size();
  in.values.assign(n * slots, std::numeric_limits<double>::quiet_NaN());  // NaN: no such row (stored metrics are finite)
  ES_RETURN_IF_ERROR(ledger->ForEachMetric(ids, in.evals, in.names, [&](size_t i, size_t e, size_t m, double v) {
    in.values[read[i] * slots + e * in.names.size() + m] = v;
  }));
  // Training-domain grid selection: an eval job (a trained model tested on another corpus: a zero-shot cell) has no
  // validation share; it is ranked by the validation metrics of the job it evaluates, read here in one batch.
  const size_t val_eval = static_cast<size_t>(std::find(in.evals.begin(), in.evals.end(), "val") - in.evals.begin());
  if (val_eval < in.evals.size()) {
    // Only the cells of tables that rank by training-domain validation (not, say, leave-one-source-out runs).
    std::vector<std::pair<Feeder, const protocols::TableSpec*>> ranked;
    for (const auto* spec : specs)
      for (const auto& rule : spec->GridRules())
        if (rule == "training_domain") {
          ranked.emplace_back(Feeder(*spec), spec);
          break;
        }
    AttrReader experiment("experiment");
    auto ranks = [&](const protocols::PlannedJob& j) {
      for (auto& [feeder, spec] : ranked)
        if (feeder.Of(j) == Feed::kCell && spec->GridRuleFor(experiment.Get(j.attrs)) == "training_domain") return true;
      return false;
    };
    std::vector<std::string> lacking;
    std::vector<size_t> lacking_job;
    for (size_t i = 0; i < read.size(); ++i) {
      if (!in.done[read[i]] || !ranks(protocol.jobs[read[i]])) continue;
      bool any = false;
      for (size_t m = 0; m < in.names.size(); ++m)
        any |= !std::isnan(in.values[read[i] * slots + val_eval * in.names.size() + m]);
      if (!any) lacking.emplace_back(ids[i]), lacking_job.push_back(read[i]);
    }
    ES_ASSIGN_OR_RETURN(auto parents, ledger->EvalParents(lacking));
    std::map<std::string, std::vector<size_t>> jobs_of;  // trained job -> the eval jobs that take its val metrics
    for (size_t i = 0; i < lacking.size(); ++i)
      if (auto p = parents.find(lacking[i]); p != parents.end()) jobs_of[p->second].push_back(lacking_job[i]);
    std::vector<std::string_view> trained;
    for (const auto& [id, v] : jobs_of) trained.emplace_back(id);
    ES_RETURN_IF_ERROR(ledger->ForEachMetric(trained, {"val"}, in.names, [&](size_t i, size_t, size_t m, double v) {
      for (size_t job : jobs_of[std::string(trained[i])]) {
        in.values[job * slots + val_eval * in.names.size() + m] = v;
        in.val_of_trained.insert(job);
      }
    }));
  }
  // The build of each finished job, only when the ledger holds results of several (the caption then says which
  // builds its runs come from: a job's identity does not cover the build; docs/trainer.md, "Determinism").
  ES_ASSIGN_OR_RETURN(auto result_builds, ledger->ResultBuilds());
  if (result_builds.size() > 1) {
    std::vector<std::string_view> finished;
    std::vector<size_t> finished_job;
    for (size_t i = 0; i < read.size(); ++i)
      if (in.done[read[i]]) finished.push_back(ids[i]), finished_job.push_back(read[i]);
    ES_ASSIGN_OR_RETURN(auto builds, ledger->BuildsOf(finished));
    in.build_of.assign(n, TableInputs::kNoBuild);
    std::map<std::string, uint32_t> index;
    for (size_t i = 0; i < finished.size(); ++i) {
      if (builds[i].empty()) continue;
      auto [it, added] = index.try_emplace(builds[i], static_cast<uint32_t>(in.builds.size()));
      if (added) in.builds.push_back(builds[i]);
      in.build_of[finished_job[i]] = it->second;
    }
  }
  // Warning codes of finished adaptation jobs, in one batch.
  std::vector<std::string> adapt_ids;
  std::vector<size_t> adapt_jobs;
  AttrReader kind("kind");
  for (size_t i = 0; i < read.size(); ++i)
    if (in.done[read[i]] && IsAdapt(protocol.jobs[read[i]], &kind)) {
      adapt_ids.emplace_back(ids[i]);
      adapt_jobs.push_back(read[i]);
    }
  // Only infos that can hold a warning: '{"warnings":[]}' is the shortest (15 bytes); most
  // are "{}" (issue 15: not read at all).
  ES_ASSIGN_OR_RETURN(auto infos, ledger->Infos(adapt_ids, /*min_bytes=*/15));
  for (size_t i = 0; i < adapt_ids.size(); ++i) {
    auto info = infos.find(adapt_ids[i]);
    if (info == infos.end() || !info->second.is_object()) continue;
    if (auto da = info->second.find("da_selected"); da != info->second.end() && da->is_object()) {
      std::array<double, 3> c;
      for (const char* name : {"im", "snd", "dev"}) {
        auto v = da->find(name);
        c[TableInputs::CriterionIndex(name)] =
            v != da->end() && v->is_number() ? v->get<double>() : std::numeric_limits<double>::quiet_NaN();
      }
      in.criteria[adapt_jobs[i]] = c;
    }
    if (!info->second.contains("warnings") || !info->second["warnings"].is_array()) continue;
    std::set<std::string> codes;
    for (const auto& w : info->second["warnings"])
      if (w.is_object() && w.contains("code") && w["code"].is_string()) codes.insert(w["code"].get<std::string>());
    in.warnings[adapt_jobs[i]].assign(codes.begin(), codes.end());
  }
  return in;
}

const double* TableInputs::Metric(size_t job, const std::string& eval, const std::string& name) const {
  return MetricAt(job, Slot(eval, name));
}

size_t TableInputs::Slot(const std::string& eval, const std::string& name) const {
  auto e = std::find(evals.begin(), evals.end(), eval);
  auto m = std::find(names.begin(), names.end(), name);
  if (e == evals.end() || m == names.end()) return kNoSlot;
  return static_cast<size_t>(e - evals.begin()) * names.size() + static_cast<size_t>(m - names.begin());
}

const double* TableInputs::MetricAt(size_t job, size_t slot) const {
  if (slot == kNoSlot || !done[job]) return nullptr;
  const double* v = &values[job * evals.size() * names.size() + slot];
  return std::isnan(*v) ? nullptr : v;
}

Result<TableData> BuildTable(const protocols::Protocol& protocol, const protocols::TableSpec& spec, Ledger* ledger) {
  if (spec.metrics.empty()) return Status::InvalidArgument("table '" + spec.name + "' names no metrics");
  ES_ASSIGN_OR_RETURN(auto inputs, ReadTableInputs(protocol, {&spec}, ledger));
  return BuildTable(protocol, spec, inputs);
}

Result<TableData> BuildTable(const protocols::Protocol& protocol, const protocols::TableSpec& spec,
                             const TableInputs& inputs) {
  if (spec.metrics.empty()) return Status::InvalidArgument("table '" + spec.name + "' names no metrics");
  if (inputs.done.size() != protocol.jobs.size())
    return Status::InvalidArgument("table '" + spec.name + "': inputs read for another protocol");
  ES_RETURN_IF_ERROR(SpreadLabel(spec.spread).status());
  TableData t;
  t.spec = spec;
  const std::vector<std::string> keys = SplitCommas(spec.aggregate_over);
  auto attr_of = [](const protocols::PlannedJob& j, const std::string& k) -> const std::string& {
    return j.attrs.Get(k);
  };
  auto index_of = [&](const protocols::PlannedJob& j) { return static_cast<size_t>(&j - protocol.jobs.data()); };
  std::vector<const protocols::PlannedJob*> jobs;
  std::vector<std::pair<size_t, size_t>> where;
  // Leave-one-source-out jobs (protocols/exp_lodo.cc) by the coordinates of the job they validate.
  std::map<std::string, std::vector<const protocols::PlannedJob*>> lodo;
  auto lodo_key = [&](const protocols::PlannedJob& j) {
    std::string k;
    for (const char* a : {"experiment", "model", "hp", "target", "seed", "fold"}) k += attr_of(j, a) + "\t";
    return k;
  };
  std::vector<AttrReader> row_names;
  for (const auto& n : spec.row_attrs.empty() ? std::vector<std::string>{spec.rows} : spec.row_attrs)
    row_names.emplace_back(n);
  AttrReader column(spec.columns);
  Feeder feeder(spec);
  std::string row;
  for (const auto& j : protocol.jobs) {
    const Feed feed = feeder.Of(j);
    if (feed == Feed::kNone) continue;
    if (feed == Feed::kLodo) {
      lodo[lodo_key(j)].push_back(&j);
      continue;
    }
    const std::string* col = column.Find(j.attrs);
    if (!RowKey(&row_names, j.attrs, &row) || !col) continue;
    jobs.push_back(&j);
    where.emplace_back(IndexIn(t.rows, row), IndexIn(t.cols, *col));
  }
  if (spec.average && !t.cols.empty()) {
    t.average_col = static_cast<int>(t.cols.size());
    t.cols.push_back("average");
  }
  size_t nm = spec.metrics.size();
  t.cells.assign(t.rows.size() * t.cols.size() * nm, TableCell());
  {  // in-domain cells: every job there trained and is tested on one corpus (source = target)
    t.in_domain.assign(t.rows.size() * t.cols.size(), 1);
    std::vector<char> any(t.in_domain.size(), 0);
    AttrReader source("source"), target("target");
    for (size_t k = 0; k < jobs.size(); ++k) {
      const size_t cell = where[k].first * t.cols.size() + where[k].second;
      const std::string* s = source.Find(jobs[k]->attrs);
      const std::string* g = target.Find(jobs[k]->attrs);
      any[cell] = 1;
      if (!s || !g || s->empty() || *s != *g) t.in_domain[cell] = 0;
    }
    for (size_t i = 0; i < any.size(); ++i) t.in_domain[i] &= any[i];
  }
  // Status and metrics come from `inputs`, read once for every table of the command
  // (issue 15): arrays indexed by the job's position in the protocol, no lookup by id.
  auto finished = [&](const protocols::PlannedJob& j) { return inputs.done[index_of(j)] != 0; };
  // A finished job's metric on an eval set, or nullptr.
  auto metric_of = [&](const protocols::PlannedJob& j, const std::string& eval, const std::string& metric) {
    return inputs.Metric(index_of(j), eval, metric);
  };
  for (const auto* j : jobs) t.finished_jobs += finished(*j), t.failed_jobs += inputs.failed[index_of(*j)];
  for (const auto& [k, v] : lodo)
    for (const auto* j : v) t.finished_jobs += finished(*j), t.failed_jobs += inputs.failed[index_of(*j)];
  t.planned_jobs = static_cast<int>(jobs.size());
  for (const auto& [k, v] : lodo) t.planned_jobs += static_cast<int>(v.size());
  // Grid selection: per cell, keep the jobs of the grid point (hp) with the best score on the first metric.
  std::vector<bool> keep(jobs.size(), true);
  if (spec.HasGridSelection()) {
    const std::string& metric = spec.metrics.front();
    std::map<std::pair<size_t, size_t>, std::vector<size_t>> by_cell;
    for (size_t k = 0; k < jobs.size(); ++k) by_cell[where[k]].push_back(k);
    for (const auto& [rc, members] : by_cell) {
      // One rule per cell: the grammar keeps experiments with different rules in different rows or columns.
      const std::string& rule = spec.GridRuleFor(attr_of(*jobs[members.front()], "experiment"));
      if (rule.empty()) continue;  // this experiment's grid points are pooled
      std::vector<std::string> points;  // protocol order
      std::map<std::string, std::pair<double, int>> score;  // hp -> (sum, n)
      bool pending = false;
      for (size_t k : members) {
        const auto& j = *jobs[k];
        const std::string hp = attr_of(j, "hp");
        IndexIn(points, hp);
        auto& sc = score[hp];
        // A run not finished yet makes the choice provisional; a failed one does not (a diverged grid point
        // fails the same way on every retry: it just loses; the caption counts failed runs), nor a finished one
        // without a score.
        auto add = [&](const protocols::PlannedJob& of, const double* v) {
          if (v) sc.first += *v, sc.second++;
          else if (!inputs.done[index_of(of)] && !inputs.failed[index_of(of)]) pending = true;
        };
        if (rule == "training_domain") {
          add(j, metric_of(j, "val", metric));
          t.ranked_by_trained_val |= inputs.val_of_trained.count(index_of(j)) > 0;
        } else if (rule == "oracle") {
          add(j, metric_of(j, spec.eval, metric));
        } else if (protocols::UnsupervisedGridRule(rule)) {
          // The run's criterion at its selected epoch; dev is a risk (lower is better), so it ranks negated.
          const double* v = nullptr;
          double criterion = 0;
          if (auto c = inputs.criteria.find(index_of(j)); c != inputs.criteria.end()) {
            criterion = c->second[TableInputs::CriterionIndex(rule)];
            if (!std::isnan(criterion)) v = &criterion, criterion = rule == "dev" ? -criterion : criterion;
          }
          if (!v && inputs.done[index_of(j)]) t.unranked[rule]++;
          add(j, v);
        } else {
          auto l = lodo.find(lodo_key(j));
          if (l == lodo.end()) pending = true;
          else
            for (const auto* v : l->second) add(*v, metric_of(*v, "test", metric));
        }
      }
      std::string best;
      double best_score = -INFINITY;
      for (const auto& hp : points) {
        const auto& sc = score[hp];
        if (sc.second == 0) continue;
        double mean = sc.first / sc.second;
        if (mean > best_score) best_score = mean, best = hp;
      }
      bool chosen = best_score > -INFINITY;
      for (size_t k : members) keep[k] = chosen && attr_of(*jobs[k], "hp") == best;
      for (size_t m = 0; m < nm; ++m) {
        t.at(rc.first, rc.second, m).selected = chosen ? (best.empty() ? "(no grid)" : best) : "";
        t.at(rc.first, rc.second, m).provisional = pending && chosen;
      }
    }
  }
  {  // Attributes that vary within a cell although rows, columns and aggregate_over do not name them.
    std::set<std::string> named(keys.begin(), keys.end());
    named.insert(spec.columns);
    for (const auto& n : spec.row_attrs.empty() ? std::vector<std::string>{spec.rows} : spec.row_attrs) named.insert(n);
    for (const char* a : {"experiment", "model", "hp", "source", "target", "heldout", "budget", "variant", "seed",
                          "fold", "selection"}) {
      if (named.count(a)) continue;
      // Per cell its first value; the distinct values only of cells where a second one shows up (issue 15:
      // one comparison per job, no set, at 10^6 jobs).
      AttrReader reader(a);
      std::vector<const std::string*> first(t.rows.size() * t.cols.size(), nullptr);
      std::map<size_t, std::set<std::string>> varying;
      for (size_t k = 0; k < jobs.size(); ++k) {
        if (!keep[k]) continue;
        const size_t cell = where[k].first * t.cols.size() + where[k].second;
        const std::string& v = reader.Get(jobs[k]->attrs);
        if (!first[cell]) first[cell] = &v;
        else if (*first[cell] != v || varying.count(cell)) varying[cell].insert({*first[cell], v});
      }
      size_t most = 1;
      for (const auto& [cell, v] : varying) most = std::max(most, v.size());
      if (most > 1) t.pooled[a] = most;
    }
  }
  // Per job below: the metric slots of the table's eval set, each cell's warning label and
  // the aggregation attributes found once per table, not per job (issue 15).
  std::vector<size_t> slots(nm);
  for (size_t m = 0; m < nm; ++m) slots[m] = inputs.Slot(spec.eval, spec.metrics[m]);
  std::vector<std::string> labels(t.rows.size() * t.cols.size());
  for (size_t r = 0; r < t.rows.size(); ++r)
    for (size_t c = 0; c < t.cols.size(); ++c)
      labels[r * t.cols.size() + c] = t.cols.size() > 1 ? t.rows[r] + " / " + t.cols[c] : t.rows[r];
  std::vector<int> runs(labels.size(), 0);
  std::vector<AttrReader> key_attrs;
  for (const auto& a : keys) key_attrs.emplace_back(a);
  const uint64_t* last_seed = nullptr;
  const std::string* last_selection = nullptr;
  for (size_t k = 0; k < jobs.size(); ++k) {
    const auto& j = *jobs[k];
    if (!keep[k]) {
      // No point of this cell has a score yet: every point's runs count as planned.
      if (t.at(where[k].first, where[k].second, 0).selected.empty())
        for (size_t m = 0; m < nm; ++m) t.at(where[k].first, where[k].second, m).planned++;
      continue;
    }
    auto [r, c] = where[k];
    for (size_t m = 0; m < nm; ++m) t.at(r, c, m).planned++;
    if (!last_seed || *last_seed != j.spec.seed) t.seeds.insert(j.spec.seed), last_seed = &j.spec.seed;
    if (!last_selection || *last_selection != j.spec.selection)
      t.selections.insert(j.spec.selection), last_selection = &j.spec.selection.str();
    if (!j.spec.oracle_eval.empty()) t.oracle_eval = j.spec.oracle_eval;
    if (!finished(j)) continue;
    // Warnings are counted per row, or per row and column when there are several columns.
    const std::string& cell = labels[r * t.cols.size() + c];
    runs[r * t.cols.size() + c]++;
    if (auto w = inputs.warnings.find(index_of(j)); w != inputs.warnings.end())
      for (const auto& code : w->second) t.warnings[code][cell]++;
    std::string key;
    for (size_t a = 0; a < keys.size(); ++a) {
      const std::string* v = key_attrs[a].Find(j.attrs);
      key.append(keys[a]).push_back('=');
      if (v) key.append(*v);
      key.push_back(';');
    }
    for (size_t m = 0; m < nm; ++m) {
      const double* v = inputs.MetricAt(index_of(j), slots[m]);
      if (!v) continue;
      t.at(r, c, m).values.push_back(*v * spec.scale);
      t.at(r, c, m).keys.push_back(key);
      t.at(r, c, m).jobs.push_back(&j);
    }
  }
  for (size_t i = 0; i < runs.size(); ++i)
    if (runs[i]) t.row_runs[labels[i]] += runs[i];
  for (auto& cell : t.cells) cell.summary = Summarize(cell.values);
  if (t.average_col >= 0) FillAverage(&t);
  // Best per column: the highest mean (as printed), complete, and significantly above the runner-up.
  for (size_t c = 0; c < t.cols.size(); ++c)
    for (size_t m = 0; m < nm; ++m) {
      std::vector<size_t> order;
      for (size_t r = 0; r < t.rows.size(); ++r)
        if (!t.at(r, c, m).values.empty()) order.push_back(r);
      auto shown = [&](size_t r) { return std::stod(Fixed(t.at(r, c, m).summary.mean, spec.decimals)); };
      std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return shown(x) > shown(y); });
      if (order.size() < 2) continue;
      TableCell& top = t.at(order[0], c, m);
      const TableCell& next = t.at(order[1], c, m);
      if (!top.complete() || shown(order[0]) == shown(order[1])) continue;
      std::map<std::string, std::pair<double, int>> a, b;  // key -> (sum, n): runs of one key are averaged
      for (size_t i = 0; i < top.values.size(); ++i) a[top.keys[i]].first += top.values[i], a[top.keys[i]].second++;
      for (size_t i = 0; i < next.values.size(); ++i)
        b[next.keys[i]].first += next.values[i], b[next.keys[i]].second++;
      std::vector<double> xa, xb;
      for (const auto& [key, v] : a) {
        auto w = b.find(key);
        if (w == b.end()) continue;
        xa.push_back(v.first / v.second);
        xb.push_back(w->second.first / w->second.second);
      }
      const std::string where = t.cols[c] + (nm > 1 ? " " + MetricLabel(spec.metrics[m]) : "");
      if (xa.size() < 2) {
        t.untested.push_back(where + " (" + std::to_string(xa.size()) + " matched)");
        continue;
      }
      auto p = PairedTTestP(xa, xb);
      if (!p.ok()) {
        t.untested.push_back(where + " (equal differences)");
        continue;
      }
      // Better on the matched runs too: the ranking uses every run, the test only the matched ones, and a
      // two-sided p is small as well when the top cell is significantly *worse* there.
      double da = 0;
      for (size_t i = 0; i < xa.size(); ++i) da += xa[i] - xb[i];
      top.best = *p < spec.alpha && da > 0;
    }
  t.caption = Caption(t);
  // Transductive steps and speaker-dependent evaluation of the jobs the cells report (after grid selection)
  // (orchestrator/caption_notes.h), with their inductive alternative.
  std::vector<CellJob> shown;
  for (size_t k = 0; k < jobs.size(); ++k)
    if (keep[k]) shown.push_back({jobs[k], &t.rows[where[k].first], &t.cols[where[k].second]});
  AttrReader experiment_of("experiment");
  auto grid_step = [&](const protocols::PlannedJob& j) {
    const std::string& rule = spec.GridRuleFor(experiment_of.Get(j.attrs));
    return protocols::UnsupervisedGridRule(rule) ? "grid_selection=" + rule : std::string();
  };
  static const std::string kNone;
  auto build_of = [&](const protocols::PlannedJob& j) -> const std::string& {
    if (inputs.build_of.empty()) return kNone;
    const uint32_t b = inputs.build_of[index_of(j)];
    return b == TableInputs::kNoBuild ? kNone : inputs.builds[b];
  };
  for (const std::string& note : {TransductiveNote(shown, spec.rows, spec.columns, grid_step),
                                  SpeakerOverlapNote(shown, spec.rows, spec.columns, spec.eval),
                                  ClassesNote(shown, spec.rows, spec.columns), BuildsNote(shown, build_of)})
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
        line.cell = CellText(t, cell);
        line.n = static_cast<int>(cell.values.size());
        line.planned = cell.planned;
        line.complete = cell.complete();
        // Compared at the printed precision, so "63.4 vs 63.4" is never "outside"; a cell with runs
        // missing is no reproduction yet, whatever its mean.
        double shown = std::stod(Fixed(line.diff, t.spec.decimals));
        line.within = line.complete && std::fabs(shown) <= t.spec.tolerance + 1e-9;
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
      if (static_cast<int>(c) == t.average_col) continue;  // no utterances of its own: the columns are tested
      CompareLine line;
      line.col = t.cols[c];
      line.metric = t.spec.metrics[m];
      const TableCell& ca = t.at(ra - t.rows.begin(), c, m);
      const TableCell& cb = t.at(rb - t.rows.begin(), c, m);
      // Runs of one key (a cell that pools a grid or several sources: TableData::pooled) pair in protocol order,
      // the k-th of A's with the k-th of B's, never all of A's with one of B's.
      std::map<std::string, std::vector<const protocols::PlannedJob*>> b_by_key;
      std::map<std::string, size_t> a_seen;
      for (const auto* j : cb.jobs) b_by_key[key_of(j)].push_back(j);
      std::vector<int> labels, pa, pb, group;
      int classes = 0, matched_runs = 0;
      for (const auto* ja : ca.jobs) {
        const std::string key = key_of(ja);
        auto jb = b_by_key.find(key);
        const size_t k = a_seen[key]++;
        if (jb == b_by_key.end() || k >= jb->second.size()) continue;
        ++matched_runs;
        ES_ASSIGN_OR_RETURN(const PredictionSet* a, preds(ja));
        ES_ASSIGN_OR_RETURN(const PredictionSet* b, preds(jb->second[k]));
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
        line.note = ca.jobs.empty() || cb.jobs.empty() ? "missing runs"
                    : matched_runs == 0               ? "no runs matched on (" + t.spec.aggregate_over + ")"
                                                      : "no paired predictions";
      } else {
        ES_ASSIGN_OR_RETURN(line.result, PairedTest(o.test, line.metric, labels, pa, pb, group, classes, o.resamples,
                                                    o.seed));
      }
      out.push_back(line);
    }
  return out;
}

}  // namespace emosweep::orchestrator
