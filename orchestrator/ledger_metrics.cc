// orchestrator/ledger_metrics.cc: reading results: metrics (Metrics, ForEachMetric), eval details,
// curves and predictions.
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "orchestrator/id_index.h"
#include "orchestrator/ledger.h"
#include "orchestrator/ledger_internal.h"

namespace emosweep::orchestrator {
using internal::ParseJsonOr;
namespace {

// A list of user strings as SQL literals, quotes doubled: ('a','it''s').
std::string SqlList(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) {
    out += out.empty() ? "('" : ",'";
    for (char c : x) out += c == '\'' ? std::string("''") : std::string(1, c);
    out += "'";
  }
  return out + ")";
}

// out[key], inserted with the end as hint: O(1) when rows come in key order (callers that
// pass sorted ids: SQLite answers an IN list in index order), the usual walk otherwise.
template <typename Map>
typename Map::mapped_type& AtEnd(Map* out, std::string key) {
  if (!out->empty() && out->rbegin()->first == key) return out->rbegin()->second;
  return out->emplace_hint(out->end(), std::move(key), typename Map::mapped_type())->second;
}

// A metric value as the scheduler writes it: a finite number (a non-finite one fails its job instead). Text
// (which SQLite reads as 0.0) or a non-finite value means the file was edited or damaged: a table must not
// print it as a result.
Result<double> MetricValue(const Stmt& st, int col, const std::string& ledger, std::string_view job,
                           std::string_view eval, std::string_view name) {
  const int type = st.ColumnType(col);
  const double v = st.Double(col);
  if ((type == SQLITE_FLOAT || type == SQLITE_INTEGER) && std::isfinite(v)) return v;
  std::string what = type == SQLITE_TEXT ? "the text '" + std::string(st.TextView(col)).substr(0, 40) + "'"
                     : type == SQLITE_NULL ? std::string("NULL")
                     : type == SQLITE_BLOB ? std::string("a blob")
                                           : std::to_string(v);
  return Status::Corruption(ledger + ": job " + std::string(job) + ": metric '" + std::string(name) + "' of '" +
                            std::string(eval) + "' is " + what +
                            ", not a finite number (the ledger was edited or is damaged)");
}

// The metric rows of `ids` (and `suffix`'s filter) as a map, every value checked (MetricValue).
Result<Ledger::MetricMap> MetricsWhere(Db* db, const std::vector<std::string>& ids, const std::string& suffix) {
  Ledger::MetricMap out;
  Status bad;
  ES_RETURN_IF_ERROR(ForChunks(db, ids, "SELECT job_id, eval, name, value FROM metrics WHERE job_id", suffix,
                               [&](Stmt& st) {
                                 Result<double> v = MetricValue(st, 3, db->path(), st.TextView(0), st.TextView(1),
                                                                st.TextView(2));
                                 if (!v.ok() && bad.ok()) bad = v.status();
                                 AtEnd(&out, st.Text(0))[st.Text(1)][st.Text(2)] = v.ok() ? *v : 0.0;
                               }));
  ES_RETURN_IF_ERROR(bad);
  return out;
}

}  // namespace

Status Ledger::ForEachMetric(const std::vector<std::string_view>& ids, const std::vector<std::string>& evals,
                             const std::vector<std::string>& names,
                             const std::function<void(size_t, size_t, size_t, double)>& fn) {
  if (evals.empty() || names.empty() || ids.empty()) return Status::Ok();
  const std::string suffix = " AND +eval IN " + SqlList(evals) + " AND +name IN " + SqlList(names);
  auto find = [](const std::vector<std::string>& v, std::string_view x) {
    for (size_t k = 0; k < v.size(); ++k)
      if (v[k] == x) return k;
    return IdIndex::npos;
  };
  // Two passes (issue 15). A metric row's value sits in the table, whose rows are in
  // completion order: reading them in id order is one random page read per job (10^6
  // preads of a 9 GB ledger). First the primary key's index alone (it holds job_id,
  // eval, name and the rowid): which rows and whose; then the values by rowid, in
  // rowid order, so each table page is read once, in file order.
  struct Row {
    int64_t rowid;
    uint32_t pos;
    uint16_t eval, name;
  };
  std::vector<Row> rows;
  std::lock_guard<std::mutex> lock(mu_);
  ES_RETURN_IF_ERROR(db_.Exec("BEGIN DEFERRED"));  // both passes see one snapshot
  Status status = [&]() -> Status {
    auto add = [&](size_t i, Stmt& st) {
      const size_t e = find(evals, st.TextView(1)), n = find(names, st.TextView(2));
      if (e == IdIndex::npos || n == IdIndex::npos) return false;
      rows.push_back({st.Int(3), static_cast<uint32_t>(i), static_cast<uint16_t>(e), static_cast<uint16_t>(n)});
      return true;
    };
    const IdIndex index(ids);
    ES_ASSIGN_OR_RETURN(const bool scan, MergeScanPays(ids));
    if (scan) {
      // Most of the ledger's jobs: one pass over the table in rowid (file) order reads each
      // page once, instead of the key's index and then the table (issue 15: ~850 -> ~450 MB
      // of pages at 10^6 jobs). A job's rows are consecutive (one Complete writes them), so
      // its id is looked up once, not once a row.
      Stmt st(&db_, MetricRowsSql(SqlList(evals), SqlList(names)));
      ES_RETURN_IF_ERROR(st.status());
      std::string last;
      size_t pos = IdIndex::npos;
      bool first = true;
      for (;;) {
        ES_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        const std::string_view id = st.TextView(0);
        if (first || id != last) {
          last.assign(id);
          pos = index.Find(id);
          first = false;
        }
        if (pos == IdIndex::npos) continue;
        const size_t e = find(evals, st.TextView(1)), n = find(names, st.TextView(2));
        if (e == IdIndex::npos || n == IdIndex::npos) continue;
        ES_ASSIGN_OR_RETURN(const double v, MetricValue(st, 3, db_.path(), id, evals[e], names[n]));
        for (size_t i = pos; i != IdIndex::npos; i = index.Next(i)) fn(i, e, n, v);
      }
      return Status::Ok();
    }
    ES_RETURN_IF_ERROR(
        ForChunks(&db_, ids, "SELECT job_id, eval, name, rowid FROM metrics WHERE job_id", suffix, [&](Stmt& st) {
          for (size_t i = index.Find(st.TextView(0)); i != IdIndex::npos; i = index.Next(i))
            if (!add(i, st)) break;
        }));
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.rowid < b.rowid; });
    // The values in rowid order: one statement, seeking to the next wanted row and stepping
    // over short gaps (rows of evals/metrics not shown), so each table page is read once
    // and nothing is prepared per chunk (issue 15).
    constexpr int64_t kStepGap = 16;  // rows stepped over rather than sought past
    Stmt st(&db_, "SELECT rowid, value FROM metrics WHERE rowid >= ? ORDER BY rowid");
    ES_RETURN_IF_ERROR(st.status());
    size_t at = 0;
    while (at < rows.size()) {
      st.Reset();
      st.Bind(1, rows[at].rowid);
      for (;;) {
        ES_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) {
          at = rows.size();  // no row at or after the wanted ones (deleted meanwhile: none, one snapshot)
          break;
        }
        const int64_t rowid = st.Int(0);
        while (at < rows.size() && rows[at].rowid < rowid) ++at;
        if (at == rows.size()) break;
        if (rows[at].rowid == rowid) {
          ES_ASSIGN_OR_RETURN(const double v, MetricValue(st, 1, db_.path(), ids[rows[at].pos], evals[rows[at].eval],
                                                          names[rows[at].name]));
          for (; at < rows.size() && rows[at].rowid == rowid; ++at) fn(rows[at].pos, rows[at].eval, rows[at].name, v);
          if (at == rows.size()) break;
        }
        if (rows[at].rowid - rowid > kStepGap) break;  // seek
      }
    }
    return Status::Ok();
  }();
  (void)db_.Exec("COMMIT");
  return status;
}

std::string Ledger::MetricRowsSql(const std::string& evals, const std::string& names) {
  return "SELECT job_id, eval, name, value FROM metrics WHERE +eval IN " + evals + " AND +name IN " + names;
}

Result<Ledger::MetricMap> Ledger::Metrics(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  return MetricsWhere(&db_, ids, "");
}

Result<Ledger::MetricMap> Ledger::Metrics(const std::vector<std::string>& ids, const std::vector<std::string>& evals,
                                          const std::vector<std::string>& names) {
  if (evals.empty() || names.empty()) return MetricMap();
  // "+": rows found by job_id alone (one seek a job), then filtered (a seek per (eval, name) is slower).
  const std::string suffix = " AND +eval IN " + SqlList(evals) + " AND +name IN " + SqlList(names);
  std::lock_guard<std::mutex> lock(mu_);
  return MetricsWhere(&db_, ids, suffix);
}

Result<std::map<std::string, std::map<std::string, nlohmann::json>>> Ledger::EvalDetails(
    const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::map<std::string, nlohmann::json>> out;
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT job_id, eval, details_json FROM eval_details WHERE job_id", "",
                               [&](Stmt& st) {
                                 out[st.Text(0)][st.Text(1)] = ParseJsonOr(st.Text(2), nlohmann::json::object());
                               }));
  return out;
}

Result<std::vector<jobs::EpochRecord>> Ledger::Curve(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "SELECT epoch, train_loss, val_loss, val_metrics_json, lr, seconds FROM curves WHERE job_id = ? "
          "ORDER BY epoch");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, id);
  std::vector<jobs::EpochRecord> out;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    jobs::EpochRecord e;
    e.epoch = static_cast<int>(st.Int(0));
    e.train_loss = st.Double(1);
    e.val_loss = st.Double(2);
    e.val_metrics = ParseJsonOr(st.Text(3), nlohmann::json::object());
    e.lr = st.Double(4);
    e.seconds = st.Double(5);
    out.push_back(std::move(e));
  }
  return out;
}

Result<PredictionSet> Ledger::Predictions(const std::string& id, const std::string& eval) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_, "SELECT utt_id, label, pred FROM predictions WHERE job_id = ? AND eval = ? ORDER BY idx");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, id).Bind(2, eval);
  PredictionSet out;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.utt_ids.push_back(st.Text(0));
    out.labels.push_back(static_cast<int>(st.Int(1)));
    out.preds.push_back(static_cast<int>(st.Int(2)));
  }
  return out;
}

}  // namespace emosweep::orchestrator
