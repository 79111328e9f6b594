// orchestrator/ledger_jobs.cc: reading job rows: GetJob, ListJobs, Infos, SelectedEpochs, and where a
// job's checkpoint lies (CheckpointOf, StoredCheckpointPath).
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "orchestrator/ledger.h"
#include "orchestrator/ledger_internal.h"

namespace emosweep::orchestrator {
using internal::ParseJsonOr;

int64_t Ledger::statements_prepared() const {
  std::lock_guard<std::mutex> lock(mu_);
  return db_.statements();
}

Result<std::map<std::string, std::string>> Ledger::EvalParents(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::string> out;
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT id, deps_json FROM jobs WHERE id", " AND kind = 'eval'",
                               [&](Stmt& st) {
                                 const nlohmann::json deps = ParseJsonOr(st.Text(1), nlohmann::json::array());
                                 if (deps.is_array() && !deps.empty() && deps[0].is_string())
                                   out.emplace(st.Text(0), deps[0].get<std::string>());
                               }));
  return out;
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
  // Ledgers reached through a symbolic link held them relative to the link's directory before they were stored
  // relative to the real file's (helper-70).
  if (!std::filesystem::exists(here, ec) && !given_dir_.empty() && given_dir_ != base_dir_) {
    const std::string via_link = (std::filesystem::path(given_dir_) / stored).lexically_normal().string();
    if (std::filesystem::exists(via_link, ec)) return via_link;
  }
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

}  // namespace emosweep::orchestrator
