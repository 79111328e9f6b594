// orchestrator/ledger_status.cc: job and sweep status reads: StatusOf, StatusList, StatusCounts,
// Sweeps, and the SQL that `ledger status` and the status counts run.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "orchestrator/id_index.h"
#include "orchestrator/ledger.h"

namespace emosweep::orchestrator {

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

}  // namespace emosweep::orchestrator
