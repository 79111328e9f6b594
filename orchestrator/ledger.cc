// orchestrator/ledger.cc: opening, claiming and recording (schema in ledger_schema.cc).
#include "orchestrator/ledger.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <random>

namespace emosweep::orchestrator {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}


}  // namespace

const char* JobStatusName(JobStatus s) {
  switch (s) {
    case JobStatus::kPending: return "pending";
    case JobStatus::kRunning: return "running";
    case JobStatus::kDone: return "done";
    case JobStatus::kFailed: return "failed";
    case JobStatus::kBlocked: return "blocked";
  }
  return "?";
}

Result<JobStatus> ParseJobStatus(const std::string& s) {
  for (JobStatus v : {JobStatus::kPending, JobStatus::kRunning, JobStatus::kDone, JobStatus::kFailed,
                      JobStatus::kBlocked})
    if (s == JobStatusName(v)) return v;
  return Status::InvalidArgument("unknown job status '" + s + "' (pending|running|done|failed|blocked)");
}

std::string ThisOwner() {
  // host:pid:nonce. The nonce tells this process from an earlier one that had the
  // same pid (containers restart with the same pids), whose claims are stale.
  static const std::string kOwner = [] {
    std::random_device rd;
    char nonce[9];
    std::snprintf(nonce, sizeof nonce, "%08x", rd());
    return HostName() + ":" + std::to_string(::getpid()) + ":" + nonce;
  }();
  return kOwner;
}

bool OwnerIsDeadHere(const std::string& owner) {
  size_t a = owner.find(':');
  if (a == std::string::npos) return false;
  size_t b = owner.find(':', a + 1);
  if (owner.substr(0, a) != HostName()) return false;  // another host: only heartbeats tell
  long pid = std::strtol(owner.c_str() + a + 1, nullptr, 10);
  if (pid <= 0) return false;
  if (pid == ::getpid()) return owner != ThisOwner();  // an earlier process with our pid
  (void)b;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path, const LedgerOptions& options) {
  std::unique_ptr<Ledger> l(new Ledger());
  l->options_ = options;
  if (options.read_only && ::access(path.c_str(), F_OK) != 0)
    return Status::NotFound(path + ": no such ledger file");
  int flags = (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX;
  ES_RETURN_IF_ERROR(l->db_.Open(path, flags, options.busy_timeout_ms));
  if (options.read_only) {
    ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA query_only = ON"));
  } else {
    // WAL: readers (ledger status, table) never block the writer; NORMAL sync is
    // durable against process kills (power loss may drop the last commits).
    ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA journal_mode = WAL"));
    ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA synchronous = NORMAL"));
  }
  ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA foreign_keys = ON"));
  ES_RETURN_IF_ERROR(l->Migrate());
  return l;
}

Result<int64_t> Ledger::BeginSweep(const SweepInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "INSERT INTO sweeps(protocol_name, protocol_path, protocol_hash, effective_json, options_json, "
          "started_at, host, pid) VALUES (?,?,?,?,?,?,?,?)");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, info.protocol_name).Bind(2, info.protocol_path).Bind(3, info.protocol_hash);
  st.Bind(4, info.effective.dump()).Bind(5, info.options.dump()).Bind(6, NowSeconds());
  st.Bind(7, HostName()).Bind(8, static_cast<int64_t>(::getpid()));
  ES_RETURN_IF_ERROR(st.Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_.raw()));
}

Status Ledger::FinishSweep(int64_t sweep_id, const std::string& status, const nlohmann::json& summary) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_, "UPDATE sweeps SET finished_at = ?, status = ?, summary_json = ? WHERE id = ?");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, NowSeconds()).Bind(2, status).Bind(3, summary.dump()).Bind(4, sweep_id);
  return st.Run();
}

Status Ledger::RegisterJobs(int64_t sweep_id, const std::vector<protocols::PlannedJob>& jobs) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  Stmt ins(&db_,
           "INSERT OR IGNORE INTO jobs(id, kind, config_json, attrs_json, deps_json, reportable, created_at) "
           "VALUES (?,?,?,?,?,?,?)");
  Stmt link(&db_, "INSERT OR IGNORE INTO sweep_jobs(sweep_id, job_id, ord) VALUES (?,?,?)");
  ES_RETURN_IF_ERROR(ins.status());
  ES_RETURN_IF_ERROR(link.status());
  double now = NowSeconds();
  int64_t ord = 0;
  for (const auto& j : jobs) {
    if (j.spec.id.empty()) return Status::InvalidArgument("planned job without an id (kind " + j.spec.kind + ")");
    ins.Reset();
    ins.Bind(1, j.spec.id).Bind(2, j.spec.kind).Bind(3, j.spec.ToJson().dump());
    ins.Bind(4, nlohmann::json(j.attrs).dump()).Bind(5, nlohmann::json(j.deps).dump());
    ins.Bind(6, j.reportable ? 1 : 0).Bind(7, now);
    ES_RETURN_IF_ERROR(ins.Run());
    link.Reset();
    link.Bind(1, sweep_id).Bind(2, j.spec.id).Bind(3, ord++);
    ES_RETURN_IF_ERROR(link.Run());
  }
  return tx.Commit();
}

Status Ledger::ResetFailed(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids,
                               "UPDATE jobs SET status = 'pending', attempts = 0, owner = NULL "
                               "WHERE status IN ('failed','blocked') AND id",
                               "", [](Stmt&) { return Status::Ok(); }));
  return tx.Commit();
}

Result<std::map<std::string, JobState>> Ledger::SweepStates(int64_t sweep_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "SELECT j.id, j.status, j.attempts, j.owner, j.heartbeat_at, j.error FROM sweep_jobs s "
          "JOIN jobs j ON j.id = s.job_id WHERE s.sweep_id = ?");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, sweep_id);
  std::map<std::string, JobState> out;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    JobState s;
    ES_ASSIGN_OR_RETURN(s.status, ParseJobStatus(st.Text(1)));
    s.attempts = static_cast<int>(st.Int(2));
    s.owner = st.Text(3);
    s.heartbeat_at = st.Double(4);
    s.error = st.Text(5);
    out.emplace(st.Text(0), std::move(s));
  }
  return out;
}

Result<ClaimResult> Ledger::Claim(const std::string& id, const std::string& owner, const ClaimOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  Stmt q(&db_, "SELECT status, owner, heartbeat_at, attempts FROM jobs WHERE id = ?");
  ES_RETURN_IF_ERROR(q.status());
  q.Bind(1, id);
  ES_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return ClaimResult{ClaimOutcome::kNotClaimable, 0};
  std::string status = q.Text(0), prev_owner = q.Text(1);
  double heartbeat = q.Double(2), now = NowSeconds();
  int attempts = static_cast<int>(q.Int(3));
  ClaimOutcome outcome = ClaimOutcome::kClaimed;
  if (status == "running") {
    bool dead = prev_owner != owner &&
                (OwnerIsDeadHere(prev_owner) || now - heartbeat > options.stale_after_s);
    if (!dead) return ClaimResult{ClaimOutcome::kNotClaimable, attempts};
    if (attempts >= options.max_attempts) {
      Stmt f(&db_,
             "UPDATE jobs SET status = 'failed', owner = NULL, finished_at = ?, error = ? WHERE id = ?");
      ES_RETURN_IF_ERROR(f.status());
      f.Bind(1, now).Bind(2, "its process (" + prev_owner + ") died while running it; " +
                                   std::to_string(attempts) + " attempt(s), the maximum");
      f.Bind(3, id);
      ES_RETURN_IF_ERROR(f.Run());
      ES_RETURN_IF_ERROR(tx.Commit());
      return ClaimResult{ClaimOutcome::kExhausted, attempts};
    }
    outcome = ClaimOutcome::kTaken;
  } else if (status != "pending") {
    return ClaimResult{ClaimOutcome::kNotClaimable, attempts};
  }
  Stmt up(&db_,
          "UPDATE jobs SET status = 'running', owner = ?, worker = ?, attempts = attempts + 1, "
          "claimed_at = ?, started_at = ?, heartbeat_at = ? WHERE id = ?");
  ES_RETURN_IF_ERROR(up.status());
  up.Bind(1, owner).Bind(2, options.worker).Bind(3, now).Bind(4, now).Bind(5, now).Bind(6, id);
  ES_RETURN_IF_ERROR(up.Run());
  ES_RETURN_IF_ERROR(tx.Commit());
  return ClaimResult{outcome, attempts + 1};
}

Status Ledger::Heartbeat(const std::vector<std::string>& ids, const std::string& owner) {
  if (ids.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  Stmt st(&db_, "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND owner = ? AND status = 'running'");
  ES_RETURN_IF_ERROR(st.status());
  double now = NowSeconds();
  for (const auto& id : ids) {
    st.Reset();
    st.Bind(1, now).Bind(2, id).Bind(3, owner);
    ES_RETURN_IF_ERROR(st.Run());
  }
  return tx.Commit();
}

Status Ledger::Fail(const std::string& id, const std::string& owner, const std::string& error, bool retry) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "UPDATE jobs SET status = ?, error = ?, owner = NULL, finished_at = ? "
          "WHERE id = ? AND owner = ? AND status = 'running'");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, retry ? "pending" : "failed").Bind(2, error).Bind(3, NowSeconds()).Bind(4, id).Bind(5, owner);
  return st.Run();
}

Status Ledger::Release(const std::string& id, const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "UPDATE jobs SET status = 'pending', owner = NULL, attempts = max(attempts - 1, 0) "
          "WHERE id = ? AND owner = ? AND status = 'running'");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, id).Bind(2, owner);
  return st.Run();
}

Status Ledger::Block(const std::string& id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_, "UPDATE jobs SET status = 'blocked', error = ? WHERE id = ? AND status = 'pending'");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, reason).Bind(2, id);
  return st.Run();
}

}  // namespace emosweep::orchestrator
