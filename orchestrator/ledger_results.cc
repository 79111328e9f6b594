// orchestrator/ledger_results.cc: recording a job's results and the read API.
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "orchestrator/id_index.h"
#include "orchestrator/ledger.h"

namespace emosweep::orchestrator {
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

nlohmann::json ParseJsonOr(const std::string& text, nlohmann::json fallback) {
  if (text.empty()) return fallback;
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? fallback : j;
}

Status InsertEval(Db* db, Stmt& metric, Stmt& detail, Stmt& pred, const std::string& id, const std::string& name,
                  const jobs::EvalResult& ev) {
  nlohmann::json details = nlohmann::json::object();
  if (ev.metrics.is_object()) {
    for (auto it = ev.metrics.begin(); it != ev.metrics.end(); ++it) {
      if (it->is_number()) {
        double v = it->get<double>();
        if (!std::isfinite(v))
          return Status::InvalidArgument("job " + id + " eval '" + name + "': metric '" + it.key() +
                                         "' is not finite");
        metric.Reset();
        metric.Bind(1, id).Bind(2, name).Bind(3, it.key()).Bind(4, v);
        ES_RETURN_IF_ERROR(metric.Run());
      } else {
        details[it.key()] = *it;
      }
    }
  }
  detail.Reset();
  detail.Bind(1, id).Bind(2, name).Bind(3, details.dump());
  ES_RETURN_IF_ERROR(detail.Run());
  for (size_t i = 0; i < ev.predictions.size(); ++i) {
    const auto& p = ev.predictions[i];
    pred.Reset();
    pred.Bind(1, id).Bind(2, name).Bind(3, static_cast<int64_t>(i)).Bind(4, p.utt_id).Bind(5, p.label);
    pred.Bind(6, p.pred);
    if (p.probs.empty())
      pred.BindNull(7);
    else
      pred.BindBlob(7, p.probs.data(), p.probs.size() * sizeof(float));  // little-endian float32
    ES_RETURN_IF_ERROR(pred.Run());
  }
  (void)db;
  return Status::Ok();
}

}  // namespace

Result<bool> Ledger::Complete(const std::string& id, const std::string& owner, const jobs::JobResult& result,
                              const nlohmann::json& provenance) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  {
    Stmt q(&db_, "SELECT status, owner FROM jobs WHERE id = ?", Stmt::kKeep);
    ES_RETURN_IF_ERROR(q.status());
    q.Bind(1, id);
    ES_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row || q.Text(0) != "running" || q.Text(1) != owner) return false;
  }
  // Rows left by an earlier run of this identity (a user deleting only the jobs row) go first.
  for (const char* table : {"metrics", "eval_details", "curves", "predictions", "provenance"}) {
    Stmt del(&db_, std::string("DELETE FROM ") + table + " WHERE job_id = ?", Stmt::kKeep);
    ES_RETURN_IF_ERROR(del.status());
    del.Bind(1, id);
    ES_RETURN_IF_ERROR(del.Run());
  }
  // Every statement of a completion is prepared once per connection (Stmt::kKeep): a
  // sweep completes one job after another with the same dozen statements.
  Stmt metric(&db_, "INSERT INTO metrics(job_id, eval, name, value) VALUES (?,?,?,?)", Stmt::kKeep);
  Stmt detail(&db_, "INSERT INTO eval_details(job_id, eval, details_json) VALUES (?,?,?)", Stmt::kKeep);
  Stmt pred(&db_, "INSERT INTO predictions(job_id, eval, idx, utt_id, label, pred, probs) VALUES (?,?,?,?,?,?,?)",
            Stmt::kKeep);
  Stmt curve(&db_,
             "INSERT OR REPLACE INTO curves(job_id, epoch, train_loss, val_loss, val_metrics_json, lr, seconds) "
             "VALUES (?,?,?,?,?,?,?)",
             Stmt::kKeep);
  for (Stmt* s : {&metric, &detail, &pred, &curve}) ES_RETURN_IF_ERROR(s->status());
  for (const auto& [name, ev] : result.evals) ES_RETURN_IF_ERROR(InsertEval(&db_, metric, detail, pred, id, name, ev));
  for (const auto& e : result.curve) {
    curve.Reset();
    curve.Bind(1, id).Bind(2, e.epoch).Bind(3, e.train_loss).Bind(4, e.val_loss);
    curve.Bind(5, e.val_metrics.is_null() ? std::string("{}") : e.val_metrics.dump()).Bind(6, e.lr).Bind(7, e.seconds);
    ES_RETURN_IF_ERROR(curve.Run());
  }
  double now = NowSeconds();
  Stmt prov(&db_,
            "INSERT INTO provenance(job_id, git_revision, host, pid, build_json, world_size, device, threads, "
            "started_at, finished_at, seconds, extra_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            Stmt::kKeep);
  ES_RETURN_IF_ERROR(prov.status());
  const nlohmann::json p = provenance.is_object() ? provenance : nlohmann::json::object();
  prov.Bind(1, id).Bind(2, p.value("git_revision", "")).Bind(3, p.value("host", ""));
  prov.Bind(4, p.value("pid", int64_t{0})).Bind(5, p.value("build", nlohmann::json::object()).dump());
  prov.Bind(6, p.value("world_size", 1)).Bind(7, p.value("device", "cpu")).Bind(8, p.value("threads", 1));
  prov.Bind(9, p.value("started_at", now)).Bind(10, now).Bind(11, p.value("seconds", 0.0));
  // Keys without a column of their own (the coordinator's group_size, worker_host, worker_rank) go to extra_json.
  nlohmann::json extra = p.value("extra", nlohmann::json::object());
  for (const auto& [k, v] : p.items()) {
    static const char* const kColumns[] = {"git_revision", "host", "pid", "build", "world_size", "device",
                                           "threads", "started_at", "seconds", "extra"};
    if (std::find(std::begin(kColumns), std::end(kColumns), k) == std::end(kColumns)) extra[k] = v;
  }
  prov.Bind(12, extra.dump());
  ES_RETURN_IF_ERROR(prov.Run());
  Stmt up(&db_,
          "UPDATE jobs SET status = 'done', error = NULL, owner = NULL, finished_at = ?, selected_epoch = ?, "
          "checkpoint = ?, info_json = ? WHERE id = ?", Stmt::kKeep);
  ES_RETURN_IF_ERROR(up.status());
  up.Bind(1, now).Bind(2, result.selected_epoch).Bind(3, result.checkpoint).Bind(4, result.info.dump()).Bind(5, id);
  ES_RETURN_IF_ERROR(up.Run());
  ES_RETURN_IF_ERROR(tx.Commit());
  return true;
}

namespace {

// out[key], inserted with the end as hint: O(1) when rows come in key order (callers that
// pass sorted ids: SQLite answers an IN list in index order), the usual walk otherwise.
template <typename Map>
typename Map::mapped_type& AtEnd(Map* out, std::string key) {
  if (!out->empty() && out->rbegin()->first == key) return out->rbegin()->second;
  return out->emplace_hint(out->end(), std::move(key), typename Map::mapped_type())->second;
}

}  // namespace

Result<std::map<std::string, JobStatus>> Ledger::StatusOf(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, JobStatus> out;
  if (ids.size() < 1000) {
    ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT id, status FROM jobs WHERE id", "", [&](Stmt& st) {
      auto s = ParseJobStatus(st.Text(1));
      if (s.ok()) out[st.Text(0)] = *s;
    }));
    return out;
  }
  // Many ids (`table` over a large sweep): index-only reads, as in CountDone (a row's
  // status sits behind its config, kilobytes of overflow pages): every (status, rowid)
  // from jobs_by_status, then each id's rowid from the primary key; one read snapshot.
  ES_RETURN_IF_ERROR(db_.Exec("BEGIN DEFERRED"));
  Status st = [&]() -> Status {
    std::vector<std::pair<int64_t, JobStatus>> rows;
    for (JobStatus v : {JobStatus::kPending, JobStatus::kRunning, JobStatus::kDone, JobStatus::kFailed,
                        JobStatus::kBlocked}) {
      Stmt q(&db_, "SELECT rowid FROM jobs WHERE status = ?");
      ES_RETURN_IF_ERROR(q.status());
      q.Bind(1, std::string(JobStatusName(v)));
      for (;;) {
        ES_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        rows.emplace_back(q.Int(0), v);
      }
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return ForChunks(&db_, ids, "SELECT id, rowid FROM jobs WHERE id", "", [&](Stmt& q) {
      const int64_t rowid = q.Int(1);
      auto it = std::lower_bound(rows.begin(), rows.end(), rowid,
                                 [](const auto& a, int64_t r) { return a.first < r; });
      if (it != rows.end() && it->first == rowid) out.emplace_hint(out.end(), q.Text(0), it->second);
    });
  }();
  (void)db_.Exec("COMMIT");
  ES_RETURN_IF_ERROR(st);
  return out;
}

Result<std::vector<std::optional<JobStatus>>> Ledger::StatusList(const std::vector<std::string>& ids) {
  return StatusList(std::vector<std::string_view>(ids.begin(), ids.end()));
}

Result<std::vector<std::optional<JobStatus>>> Ledger::StatusList(const std::vector<std::string_view>& ids) {
  std::vector<std::optional<JobStatus>> out(ids.size());
  if (schema_version_ < 2) {  // no jobs_by_id_state: StatusOf's index-only reads
    ES_ASSIGN_OR_RETURN(auto m, StatusOf(std::vector<std::string>(ids.begin(), ids.end())));
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = m.find(std::string(ids[i]));
      if (it != m.end()) out[i] = it->second;
    }
    return out;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ES_ASSIGN_OR_RETURN(const bool merge, MergeScanPays(ids));
  if (merge) {
    // One scan of (id, status) in id order, stepped along the sorted ids.
    Stmt st(&db_, JobStatusByIdSql());
    ES_RETURN_IF_ERROR(st.status());
    size_t at = 0;
    while (at < ids.size()) {
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      const std::string_view id = st.TextView(0);
      int c = -1;  // one compare of 64 characters a row where the ids match (issue 15)
      while (at < ids.size() && (c = ids[at].compare(id)) < 0) ++at;
      if (c != 0) continue;
      const std::string_view s = st.TextView(1);
      for (JobStatus v : {JobStatus::kDone, JobStatus::kPending, JobStatus::kRunning, JobStatus::kFailed,
                          JobStatus::kBlocked})
        if (s == JobStatusName(v)) {
          out[at++] = v;
          for (; at < ids.size() && ids[at] == id; ++at) out[at] = v;
          break;
        }
    }
    return out;
  }
  const IdIndex index(ids);
  // INDEXED BY: the planner would take the primary key's index and read each row, whose
  // status sits behind kilobytes of config (overflow pages); this index holds it.
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT id, status FROM jobs INDEXED BY jobs_by_id_state WHERE id", "",
                               [&](Stmt& st) {
                                 const std::string_view s = st.TextView(1);
                                 for (JobStatus v : {JobStatus::kDone, JobStatus::kPending, JobStatus::kRunning,
                                                     JobStatus::kFailed, JobStatus::kBlocked})
                                   if (s == JobStatusName(v)) {
                                     for (size_t i = index.Find(st.TextView(0)); i != IdIndex::npos; i = index.Next(i))
                                       out[i] = v;
                                     break;
                                   }
                               }));
  return out;
}

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
        const double v = st.Double(3);
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
          const double v = st.Double(1);
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

int64_t Ledger::statements_prepared() const {
  std::lock_guard<std::mutex> lock(mu_);
  return db_.statements();
}

Result<std::map<std::string, nlohmann::json>> Ledger::Infos(const std::vector<std::string>& ids, size_t min_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, nlohmann::json> out;
  if (min_bytes == 0) {
    ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT id, info_json FROM jobs WHERE id", "", [&](Stmt& st) {
      if (!st.IsNull(1)) out.emplace(st.Text(0), ParseJsonOr(st.Text(1), nlohmann::json::object()));
    }));
    return out;
  }
  // info_json is the row's last column, behind kilobytes of config_json in overflow
  // pages: reading it walks the row's whole overflow chain (issue 15: 10^5 adaptation
  // jobs' "{}" were ~0.7 s of `table --all` at 10^6). Its size is in the record header,
  // on the row's first page: an incremental-blob handle gives it without the content.
  // Only rows with enough bytes are then read. One read snapshot for all three steps.
  ES_RETURN_IF_ERROR(db_.Exec("BEGIN DEFERRED"));
  Status status = [&]() -> Status {
    std::vector<std::pair<int64_t, std::string>> rows;  // (rowid, id), index-only
    ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT id, rowid FROM jobs WHERE id", "",
                                 [&](Stmt& st) { rows.emplace_back(st.Int(1), st.Text(0)); }));
    std::sort(rows.begin(), rows.end());
    sqlite3_blob* blob = nullptr;
    std::vector<size_t> wanted;
    for (size_t k = 0; k < rows.size(); ++k) {
      const int rc = blob ? sqlite3_blob_reopen(blob, rows[k].first)
                          : sqlite3_blob_open(db_.raw(), "main", "jobs", "info_json", rows[k].first, 0, &blob);
      if (rc != SQLITE_OK) {  // NULL (no info) or an error: the row read below tells which
        if (blob) sqlite3_blob_close(blob);  // a handle that failed to move cannot be reused
        blob = nullptr;
        wanted.push_back(k);
        continue;
      }
      if (static_cast<size_t>(sqlite3_blob_bytes(blob)) >= min_bytes) wanted.push_back(k);
    }
    if (blob) sqlite3_blob_close(blob);
    Stmt st(&db_, "SELECT info_json FROM jobs WHERE rowid = ?");
    ES_RETURN_IF_ERROR(st.status());
    for (size_t k : wanted) {
      st.Reset();
      st.Bind(1, rows[k].first);
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (row && !st.IsNull(0) && st.TextView(0).size() >= min_bytes)
        out.emplace(rows[k].second, ParseJsonOr(st.Text(0), nlohmann::json::object()));
    }
    return Status::Ok();
  }();
  (void)db_.Exec("COMMIT");
  ES_RETURN_IF_ERROR(status);
  return out;
}

Result<std::map<std::string, int>> Ledger::SelectedEpochs(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int> out;
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT id, selected_epoch FROM jobs WHERE selected_epoch IS NOT NULL AND id",
                               "", [&](Stmt& st) { out[st.Text(0)] = static_cast<int>(st.Int(1)); }));
  return out;
}

namespace {
constexpr const char* kJobColumns =
    "SELECT id, kind, status, attempts, error, owner, worker, checkpoint, config_json, attrs_json, deps_json, "
    "info_json, claimed_at, started_at, finished_at, heartbeat_at FROM jobs";

JobRow ReadJobRow(Stmt& st) {
  JobRow r;
  r.id = st.Text(0);
  r.kind = st.Text(1);
  auto s = ParseJobStatus(st.Text(2));
  r.status = s.ok() ? *s : JobStatus::kFailed;
  r.attempts = static_cast<int>(st.Int(3));
  r.error = st.Text(4);
  r.owner = st.Text(5);
  r.worker = st.Text(6);
  r.checkpoint = st.Text(7);
  r.config = ParseJsonOr(st.Text(8), nlohmann::json::object());
  r.attrs = ParseJsonOr(st.Text(9), nlohmann::json::object());
  r.deps = ParseJsonOr(st.Text(10), nlohmann::json::array());
  r.info = ParseJsonOr(st.Text(11), nlohmann::json::object());
  r.claimed_at = st.Double(12);
  r.started_at = st.Double(13);
  r.finished_at = st.Double(14);
  r.heartbeat_at = st.Double(15);
  return r;
}
}  // namespace

Result<std::optional<JobRow>> Ledger::GetJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_, std::string(kJobColumns) + " WHERE id = ?");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, id);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<JobRow>();
  return std::optional<JobRow>(ReadJobRow(st));
}

Result<std::vector<JobRow>> Ledger::ListJobs(const std::string& status, const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_, std::string(kJobColumns) +
                    " WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR kind = ?2) ORDER BY created_at, id");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, status).Bind(2, kind);
  std::vector<JobRow> out;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(ReadJobRow(st));
  }
  return out;
}

Result<std::string> Ledger::CheckpointOf(const std::string& id) {
  ES_ASSIGN_OR_RETURN(auto row, GetJob(id));
  if (!row) return Status::NotFound(path() + ": no job " + id);
  if (row->status != JobStatus::kDone)
    return Status::FailedPrecondition("job " + id + " is " + JobStatusName(row->status) + ", not done");
  if (row->checkpoint.empty()) return Status::NotFound("job " + id + " kept no checkpoint");
  const std::filesystem::path stored(row->checkpoint);
  if (stored.is_absolute()) return row->checkpoint;
  const std::string here = (std::filesystem::path(base_dir_) / stored).lexically_normal().string();
  std::error_code ec;
  // Ledgers written before paths were stored relative to the ledger held them relative
  // to the working directory of the run that wrote them.
  if (!std::filesystem::exists(here, ec) && std::filesystem::exists(stored, ec)) return row->checkpoint;
  return here;
}

std::string Ledger::StoredCheckpointPath(const std::string& path) const {
  if (path.empty() || base_dir_.empty()) return path;
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return path;
  abs = abs.lexically_normal();
  std::filesystem::path rel = abs.lexically_relative(base_dir_);
  if (rel.empty() || *rel.begin() == "..") return abs.string();  // elsewhere (scratch disk): absolute
  return rel.string();
}

Result<Ledger::MetricMap> Ledger::Metrics(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  MetricMap out;
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT job_id, eval, name, value FROM metrics WHERE job_id", "",
                               [&](Stmt& st) { AtEnd(&out, st.Text(0))[st.Text(1)][st.Text(2)] = st.Double(3); }));
  return out;
}

Result<Ledger::MetricMap> Ledger::Metrics(const std::vector<std::string>& ids, const std::vector<std::string>& evals,
                                          const std::vector<std::string>& names) {
  if (evals.empty() || names.empty()) return MetricMap();
  // "+": rows found by job_id alone (one seek a job), then filtered (a seek per (eval, name) is slower).
  const std::string suffix = " AND +eval IN " + SqlList(evals) + " AND +name IN " + SqlList(names);
  std::lock_guard<std::mutex> lock(mu_);
  MetricMap out;
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT job_id, eval, name, value FROM metrics WHERE job_id", suffix,
                               [&](Stmt& st) { AtEnd(&out, st.Text(0))[st.Text(1)][st.Text(2)] = st.Double(3); }));
  return out;
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

std::string StatusCountSql(int schema_version, int64_t sweep_id) {
  const std::string group = " GROUP BY j.kind, j.status ORDER BY j.kind, j.status";
  if (sweep_id < 0) return "SELECT j.kind, j.status, count(*) FROM jobs j" + group;
  const std::string sweep = std::to_string(sweep_id);
  // The planner prefers the unique id index (one row a lookup, but the row itself);
  // INDEXED BY makes the lookup index-only. The index exists from schema v2 on.
  if (schema_version >= 2)
    return "SELECT j.kind, j.status, count(*) FROM sweep_jobs s JOIN jobs j INDEXED BY jobs_by_id_state "
           "ON j.id = s.job_id WHERE s.sweep_id = " + sweep + group;
  return "SELECT j.kind, j.status, count(*) FROM jobs j WHERE j.id IN (SELECT job_id FROM sweep_jobs WHERE "
         "sweep_id = " + sweep + ")" + group;
}

Result<nlohmann::json> Ledger::Sweeps() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          std::string("SELECT s.id, s.protocol_name, s.protocol_path, s.started_at, s.finished_at, s.status, s.host, "
                      "s.pid, ") +
              // v2 keeps the count on the sweep row; a v1 file (read-only) counts the links.
              (schema_version_ >= 2 ? "coalesce(s.jobs, (SELECT count(*) FROM sweep_jobs sj WHERE sj.sweep_id = s.id))"
                                    : "(SELECT count(*) FROM sweep_jobs sj WHERE sj.sweep_id = s.id)") +
              " FROM sweeps s ORDER BY s.id");
  ES_RETURN_IF_ERROR(st.status());
  nlohmann::json out = nlohmann::json::array();
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back({{"id", st.Int(0)},
                   {"protocol", st.Text(1)},
                   {"path", st.Text(2)},
                   {"started_at", st.Double(3)},
                   {"finished_at", st.IsNull(4) ? nlohmann::json() : nlohmann::json(st.Double(4))},
                   {"status", st.Text(5)},
                   {"host", st.Text(6)},
                   {"pid", st.Int(7)},
                   {"jobs", st.Int(8)}});
  }
  return out;
}

std::string Ledger::KeptStatusCountSql(int64_t sweep_id) {
  if (sweep_id < 0) return "SELECT kind, status, n FROM status_counts WHERE n != 0 ORDER BY kind, status";
  return "SELECT kind, status, n FROM sweep_status_counts WHERE sweep_id = " + std::to_string(sweep_id) +
         " AND n != 0 ORDER BY kind, status";
}

namespace {
std::string LinkedBy(int64_t holder) {
  return holder < 0 ? std::string()
                    : " AND EXISTS (SELECT 1 FROM sweep_jobs sj WHERE sj.sweep_id = " + std::to_string(holder) +
                          " AND sj.job_id = j.id)";
}
}  // namespace

std::string Ledger::FailedJobsSql(int64_t holder) {
  return "SELECT j.id, j.kind, j.status, j.attempts, j.error, j.attrs_json AS attrs FROM jobs j WHERE "
         "j.status IN ('failed','blocked')" + LinkedBy(holder) + " ORDER BY j.status, j.id";
}

std::string Ledger::RunningJobsSql(int64_t holder) {
  return "SELECT j.id, j.kind, j.owner, j.worker, CAST(strftime('%s','now') AS REAL) - j.heartbeat_at AS "
         "heartbeat_age_s, j.attrs_json AS attrs FROM jobs j WHERE j.status = 'running'" + LinkedBy(holder) +
         " ORDER BY j.id";
}

std::string Ledger::SweepLinksByIdSql() { return "SELECT job_id FROM sweep_jobs WHERE sweep_id = ? ORDER BY job_id"; }
std::string Ledger::JobStatesByIdSql() {
  return "SELECT id, kind, status FROM jobs INDEXED BY jobs_by_id_state ORDER BY id";
}

std::string Ledger::JobStatusByIdSql() { return "SELECT id, status FROM jobs INDEXED BY jobs_by_id_state ORDER BY id"; }
std::string Ledger::MetricRowsSql(const std::string& evals, const std::string& names) {
  return "SELECT job_id, eval, name, value FROM metrics WHERE +eval IN " + evals + " AND +name IN " + names;
}

Result<bool> Ledger::MergeScanPays(const std::vector<std::string_view>& ids) {
  if (schema_version_ < 2 || ids.empty() || !std::is_sorted(ids.begin(), ids.end())) return false;
  Stmt mx(&db_, "SELECT max(rowid) FROM jobs");
  ES_RETURN_IF_ERROR(mx.status());
  ES_ASSIGN_OR_RETURN(bool row, mx.Step());
  const int64_t max_rowid = row && !mx.IsNull(0) ? mx.Int(0) : 0;
  return static_cast<int64_t>(ids.size()) * kStatusMergeShare >= max_rowid;
}

Result<nlohmann::json> Ledger::StatusCounts(int64_t sweep_id) {
  std::lock_guard<std::mutex> lock(mu_);
  // A sweep that shares another's links (schema v3) counts the holder's.
  if (sweep_id >= 0) {
    ES_ASSIGN_OR_RETURN(sweep_id, LinkHolderLocked(sweep_id));
  }
  auto rows_of = [this](const std::string& sql) -> Result<nlohmann::json> {
    Stmt st(&db_, sql);
    ES_RETURN_IF_ERROR(st.status());
    nlohmann::json rows = nlohmann::json::array();
    for (;;) {
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      rows.push_back({st.Text(0), st.Text(1), st.Int(2)});
    }
    return rows;
  };
  if (schema_version_ >= 4) return rows_of(KeptStatusCountSql(sweep_id));  // kept by triggers
  if (sweep_id < 0 || schema_version_ < 2) return rows_of(StatusCountSql(schema_version_, sweep_id));
  // One lookup a linked job costs ~8 steps of a scan (10^5 jobs: 34 ms of lookups, and
  // 31 ms more to sort the joined rows for GROUP BY; a scan of jobs_by_id_state, 2 ms).
  int64_t links = -1, max_rowid = 0;
  {
    Stmt st(&db_, "SELECT jobs FROM sweeps WHERE id = ?");
    ES_RETURN_IF_ERROR(st.status());
    st.Bind(1, sweep_id);
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row && !st.IsNull(0)) links = st.Int(0);
    Stmt mx(&db_, "SELECT max(rowid) FROM jobs");
    ES_RETURN_IF_ERROR(mx.status());
    ES_ASSIGN_OR_RETURN(bool r2, mx.Step());
    if (r2 && !mx.IsNull(0)) max_rowid = mx.Int(0);
  }
  if (links < 0 || links * kStatusMergeShare < max_rowid) return rows_of(StatusCountSql(schema_version_, sweep_id));
  Stmt a(&db_, SweepLinksByIdSql()), b(&db_, JobStatesByIdSql());
  ES_RETURN_IF_ERROR(a.status());
  ES_RETURN_IF_ERROR(b.status());
  a.Bind(1, sweep_id);
  std::map<std::pair<std::string, std::string>, int64_t> counts;
  ES_ASSIGN_OR_RETURN(bool more_a, a.Step());
  ES_ASSIGN_OR_RETURN(bool more_b, b.Step());
  std::string ida = more_a ? a.Text(0) : "", idb = more_b ? b.Text(0) : "";
  while (more_a && more_b) {  // both in id order (BINARY collation, as std::string compares)
    const int c = ida.compare(idb);
    if (c == 0) ++counts[{b.Text(1), b.Text(2)}];
    if (c <= 0) {
      ES_ASSIGN_OR_RETURN(more_a, a.Step());
      if (more_a) ida = a.Text(0);
    }
    if (c >= 0) {
      ES_ASSIGN_OR_RETURN(more_b, b.Step());
      if (more_b) idb = b.Text(0);
    }
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [ks, n] : counts) rows.push_back({ks.first, ks.second, n});
  return rows;
}

namespace {

// What raw SQL may do: read tables, call functions, query pragmas. Everything else
// (writes, ATTACH, pragma assignments such as query_only = OFF) is refused while the
// statement is prepared, before anything runs or any file is created.
struct AuthState {
  bool pragma = false;  // the statement queries a pragma (these are not "read-only" to SQLite)
  bool other = false;   // and does something besides
};

int ReadOnlyAuthorizer(void* p, int action, const char* a1, const char* a2, const char*, const char*) {
  auto* st = static_cast<AuthState*>(p);
  switch (action) {
    case SQLITE_SELECT:
      return SQLITE_OK;
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      st->other = true;
      return SQLITE_OK;
    case SQLITE_UPDATE:
      // Preparing a table-valued pragma (pragma_table_info('jobs')) re-reads the schema and
      // asks for sqlite_master; a real write there is still caught by sqlite3_stmt_readonly.
      if (a1 == nullptr || (sqlite3_stricmp(a1, "sqlite_master") != 0 && sqlite3_stricmp(a1, "sqlite_temp_master") != 0))
        return SQLITE_DENY;
      st->other = true;
      return SQLITE_OK;
    case SQLITE_PRAGMA: {
      // Pragmas that only read; those whose argument would set something take none.
      static const char* const kWithArgument[] = {
          "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
          "foreign_key_list", "integrity_check", "quick_check"};
      static const char* const kNoArgument[] = {
          "user_version", "application_id", "schema_version", "page_count", "page_size", "freelist_count",
          "encoding", "database_list", "collation_list", "function_list", "module_list", "pragma_list",
          "compile_options", "data_version", "journal_mode"};
      if (a1 == nullptr) return SQLITE_DENY;
      st->pragma = true;
      for (const char* k : kWithArgument)
        if (sqlite3_stricmp(a1, k) == 0) return SQLITE_OK;
      if (a2 != nullptr) return SQLITE_DENY;
      for (const char* k : kNoArgument)
        if (sqlite3_stricmp(a1, k) == 0) return SQLITE_OK;
      return SQLITE_DENY;
    }
    default:
      return SQLITE_DENY;
  }
}

struct Deadline {
  std::chrono::steady_clock::time_point at;
  bool hit = false;
};

int PastDeadline(void* p) {
  auto* d = static_cast<Deadline*>(p);
  if (std::chrono::steady_clock::now() < d->at) return 0;
  d->hit = true;
  return 1;
}

}  // namespace

Result<nlohmann::json> Ledger::Query(const std::string& sql, double timeout_s) {
  if (!options_.read_only)
    return Status::FailedPrecondition("raw SQL needs a ledger opened read-only (PRAGMA query_only)");
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  AuthState auth;
  sqlite3_set_authorizer(db_.raw(), ReadOnlyAuthorizer, &auth);
  std::unique_ptr<sqlite3, void (*)(sqlite3*)> unset(db_.raw(), [](sqlite3* db) {
    sqlite3_set_authorizer(db, nullptr, nullptr);
    sqlite3_progress_handler(db, 0, nullptr, nullptr);
  });
  int rc = sqlite3_prepare_v2(db_.raw(), sql.c_str(), static_cast<int>(sql.size()), &raw, &tail);
  if ((rc & 0xff) == SQLITE_AUTH)
    return Status::InvalidArgument(path() + ": refused: --sql runs read-only statements (SELECT, read-only "
                                            "PRAGMA) only: " + sql.substr(0, 80));
  if (rc != SQLITE_OK) return db_.Error("bad SQL", rc);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(raw, sqlite3_finalize);
  if (!raw) return Status::InvalidArgument("empty SQL statement");
  for (const char* t = tail; t && *t; ++t)
    if (!std::isspace(static_cast<unsigned char>(*t)) && *t != ';')
      return Status::InvalidArgument("--sql takes exactly one statement");
  // SQLite counts a pragma query (journal_mode) as not read-only; the authorizer vetted those.
  if (!sqlite3_stmt_readonly(raw) && !(auth.pragma && !auth.other))
    return Status::InvalidArgument(path() + ": refused: --sql runs read-only statements only: " +
                                   sql.substr(0, 80));
  Deadline deadline;
  if (timeout_s > 0) {
    deadline.at = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(timeout_s));
    sqlite3_progress_handler(db_.raw(), 1000, PastDeadline, &deadline);
  }
  nlohmann::json cols = nlohmann::json::array(), rows = nlohmann::json::array();
  int n = sqlite3_column_count(raw);
  for (int i = 0; i < n; ++i) cols.push_back(sqlite3_column_name(raw, i));
  for (;;) {
    rc = sqlite3_step(raw);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      if (deadline.hit) {
        char b[32];
        std::snprintf(b, sizeof b, "%g", timeout_s);
        return Status::Unavailable(path() + ": query stopped after the --timeout of " + std::string(b) +
                                   " s (raise --timeout, or 0 for none)");
      }
      return db_.Error("query failed", rc);
    }
    nlohmann::json r = nlohmann::json::array();
    for (int i = 0; i < n; ++i) {
      switch (sqlite3_column_type(raw, i)) {
        case SQLITE_INTEGER: r.push_back(sqlite3_column_int64(raw, i)); break;
        case SQLITE_FLOAT: r.push_back(sqlite3_column_double(raw, i)); break;
        case SQLITE_NULL: r.push_back(nullptr); break;
        case SQLITE_BLOB: r.push_back("<blob " + std::to_string(sqlite3_column_bytes(raw, i)) + " bytes>"); break;
        default: r.push_back(reinterpret_cast<const char*>(sqlite3_column_text(raw, i)));
      }
    }
    rows.push_back(std::move(r));
  }
  return nlohmann::json{{"columns", cols}, {"rows", rows}};
}

}  // namespace emosweep::orchestrator
