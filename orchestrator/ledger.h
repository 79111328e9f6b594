// orchestrator/ledger.h: the SQLite ledger, where every result of a sweep lives.
//
// One file per project (or per sweep family). Schema v4 is specified in
// docs/formats/ledger.md; Open() creates, migrates (PRAGMA user_version and
// the migration list in ledger_schema.cc) or rejects a file with a message
// that says why. Writes that belong together share one IMMEDIATE transaction:
// a job's metrics, curves, predictions, provenance and its status 'done'
// commit together, so a kill -9 never leaves half a result.
//
// Claiming is what makes several `emosweep run` processes on one ledger
// safe: Claim() moves a job from pending (or from running whose owner is
// dead: same host and pid gone, or heartbeat older than stale_after_s) to
// running with this process as owner, inside BEGIN IMMEDIATE, so exactly one
// claimant wins. A takeover does not count the dead owner's attempt (kill -9).
// Completion checks the owner again, so a job that was taken over is never
// recorded twice.
//
// Thread-safety: a Ledger is one SQLite connection behind a mutex; every
// method may be called from any thread. Across processes SQLite's file locks
// (WAL mode, busy timeout) serialize writers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "orchestrator/sqlite_util.h"
#include "protocols/expand.h"
#include "jobs/job.h"

namespace emosweep::orchestrator {

constexpr int kLedgerSchemaVersion = 5;
// The oldest schema a read-only open reads without migrating (v2 added indices and sweeps.jobs,
// v3 shared job sets: a sweep of an older file holds its own links; v4 kept status counts:
// an older file is counted from its indices; v5 stores id lists apart: an older file holds them
// in config_json).
constexpr int kLedgerMinReadableVersion = 1;
constexpr int32_t kLedgerApplicationId = 0x454d4f53;  // "EMOS"

enum class JobStatus { kPending, kRunning, kDone, kFailed, kBlocked };
const char* JobStatusName(JobStatus s);
Result<JobStatus> ParseJobStatus(const std::string& s);

struct LedgerOptions {
  bool read_only = false;       // SQLITE_OPEN_READONLY + PRAGMA query_only
  int busy_timeout_ms = 60000;  // two sweeps on one file wait for each other, not fail
};

// "host:pid" of this process; the owner recorded on claimed jobs.
std::string ThisOwner();
// True when `owner` ("host:pid") names a process on this host that no longer exists.
bool OwnerIsDeadHere(const std::string& owner);
double NowSeconds();  // wall clock, seconds since the epoch

struct SweepInfo {
  std::string protocol_name, protocol_path, protocol_hash;
  nlohmann::json effective;    // the effective protocol
  nlohmann::json options;      // run options (threads, parallel, ...)
};

// The scheduler's view of one job row.
struct JobState {
  JobStatus status = JobStatus::kPending;
  int attempts = 0;
  std::string owner;
  double heartbeat_at = 0;
  std::string error;
};

struct JobRow {
  std::string id, kind, error, owner, worker, checkpoint;
  JobStatus status = JobStatus::kPending;
  int attempts = 0;
  nlohmann::json config, attrs, deps, info;
  double claimed_at = 0, started_at = 0, finished_at = 0, heartbeat_at = 0;
};

struct ClaimOptions {
  double stale_after_s = 600;   // heartbeat age after which a running job is taken over
  int max_attempts = 2;         // kept for callers; a takeover gives the dead owner's attempt back
  std::string worker;           // worker group label, for humans
};

enum class ClaimOutcome {
  kClaimed,       // was pending, now ours
  kTaken,         // was running under a dead or silent owner, now ours
  kNotClaimable,  // running elsewhere (alive), or done/failed/blocked, or gone
  kExhausted,     // no longer returned: a dead owner's attempt is never counted (issue 13)
};
struct ClaimResult {
  ClaimOutcome outcome;
  int attempts;   // attempts after the claim (including this one)
};

// Per-utterance predictions of one job and eval set (for significance tests, confusion).
struct PredictionSet {
  std::vector<std::string> utt_ids;
  std::vector<int> labels, preds;
};

// What `ledger gc` drops (Ledger::CollectGarbage, orchestrator/ledger_gc.cc).
struct GcReport {
  int64_t unreferenced_jobs = 0;       // jobs no kept protocol references (all statuses)
  int64_t dropped_jobs = 0;            // ... of them not done (pending/failed/blocked): rows deleted
  int64_t dropped_prediction_jobs = 0; // ... of them done: their predictions dropped (metrics kept)
  int64_t prediction_rows = 0;         // prediction rows dropped (both cases above)
  int64_t stale_result_rows = 0;       // result rows of superseded attempts (job not done) or of no job
  int64_t dropped_id_lists = 0;        // utterance-id lists (schema v5) no job left names
  int64_t bytes = 0;                   // dry run: payload bytes the drops free (estimate); applied: file shrink
  int64_t file_bytes_before = 0, file_bytes_after = 0;
  bool applied = false;
  std::vector<std::string> dropped_job_ids;  // every one (the text printout names the first 10)
};

// The SQL `ledger status` counts jobs with: (kind, status, count) rows, ordered, for
// every job (sweep_id < 0) or one sweep's. From schema v2 on it reads indices only
// (jobs_by_kind_status; sweep_jobs joined to jobs_by_id_state); on an older file opened
// read-only it is the same count, reading job rows. `sweep_id` names the sweep that holds
// the links (Ledger::LinkHolder: from v3 a sweep may share another's).
std::string StatusCountSql(int schema_version, int64_t sweep_id);

class Ledger {
 public:
  static Result<std::unique_ptr<Ledger>> Open(const std::string& path, const LedgerOptions& options = {});
  const std::string& path() const { return db_.path(); }
  int schema_version() const { return schema_version_; }

  // --- sweeps ---
  Result<int64_t> BeginSweep(const SweepInfo& info);
  Status FinishSweep(int64_t sweep_id, const std::string& status, const nlohmann::json& summary);

  // --- jobs (writer side: the scheduler) ---
  // Inserts jobs not yet present as pending and links them all to the sweep; one transaction.
  // Linking (here and in LinkJobs), from schema v3 on: a sweep that has no links yet and
  // whose ordered job list hashes (JobSetHash) to the job set of a sweep that holds its
  // own links shares them (sweeps.links_from; no sweep_jobs rows written: O(1) for any
  // size); otherwise its links are written and, when they are its first, the hash is
  // kept as its job set. A sweep others share links from that gets more links first
  // gives each of them a copy of the links they shared.
  Status RegisterJobs(int64_t sweep_id, const std::vector<protocols::PlannedJob>& jobs);
  // failed/blocked jobs among `ids` back to pending with attempts 0 (a new run retries them).
  Status ResetFailed(const std::vector<std::string>& ids);
  Status ResetFailed(const std::vector<std::string_view>& ids);  // views: no copy of every id (issue 15)
  // How many of `ids` are done (indexed lookups, 500 ids a query): a re-run of a
  // finished protocol checks its cached job ids with this instead of expanding (issue 15).
  Result<size_t> CountDone(const std::vector<std::string>& ids);
  // Links jobs already in the ledger to the sweep (sweep_jobs, in the given order, or shared
  // as in RegisterJobs); one transaction. `job_set`: JobSetHash(ids) when the caller has it.
  Status LinkJobs(int64_t sweep_id, const std::vector<std::string>& ids, const std::string& job_set = "");
  // SHA-256 (hex) of an ordered job list: each id and a newline. Equal lists, equal links.
  static std::string JobSetHash(const std::vector<std::string>& ids);
  static std::string JobSetHash(const std::vector<std::string_view>& ids);
  // The key of an utterance-id list in id_lists (schema v5): the SHA-256 (hex) of its compact JSON
  // (IdList::CanonicalJson; `scratch` as there).
  static std::string IdListHash(const jobs::IdList& ids, std::string* scratch);
  // The emosweep builds (git revisions) whose results the ledger holds, sorted; schema v5 (empty before).
  Result<std::vector<std::string>> ResultBuilds();
  // The build (provenance.git_revision) of each of `ids`, in their order ("" where the ledger
  // has no provenance for it). One indexed read per 500 ids; `table` asks only when
  // ResultBuilds() names more than one build.
  Result<std::vector<std::string>> BuildsOf(const std::vector<std::string_view>& ids);
  // The sweep that holds the job set `hash` of `n` jobs in its own links (the latest), if
  // any (schema v3; the index sweeps_by_job_set). RecordFinishedRerun counts its jobs.
  Result<std::optional<int64_t>> FindJobSet(const std::string& hash, size_t n);
  static std::string FindJobSetSql();  // ?1 the hash, ?2 a sweep id to pass over (tests: its plan)
  // The sweep whose sweep_jobs rows are `sweep_id`'s links: its sweeps.links_from, or
  // itself (always itself before schema v3, and for a sweep that does not exist).
  Result<int64_t> LinkHolder(int64_t sweep_id);
  // The state of every job the sweep links (its own links or the ones it shares). A done
  // job's state is its status alone (attempts 0, no owner or error: nothing reads them
  // until it is no longer done, and then a refresh reads them): from schema v2 on the
  // statuses come from an index (SweepStatusSql), the rest from the rows of jobs not done.
  // A hash map: the scheduler looks every job of a 10^6-job sweep up in it, twice at start.
  Result<std::unordered_map<std::string, JobState>> SweepStates(int64_t sweep_id);
  // The same states handed to `fn(id, state)` one job at a time (no map of every id: the
  // scheduler looks them up in its own index, issue 15). `fn` runs under the ledger's lock
  // and must not call the ledger.
  Status ForEachSweepState(int64_t sweep_id, const std::function<void(std::string_view, JobState&&)>& fn);
  static std::string SweepStatusSql();
  Result<ClaimResult> Claim(const std::string& id, const std::string& owner, const ClaimOptions& options);
  Status Heartbeat(const std::vector<std::string>& ids, const std::string& owner);
  // Writes results + provenance and sets 'done', in one transaction. Returns false
  // (and writes nothing) when the job is no longer ours (taken over, or done elsewhere).
  Result<bool> Complete(const std::string& id, const std::string& owner, const jobs::JobResult& result,
                        const nlohmann::json& provenance);
  // retry = true: back to pending (error kept); false: failed.
  Status Fail(const std::string& id, const std::string& owner, const std::string& error, bool retry);
  // Interrupted (SIGINT/SIGTERM): back to pending, the attempt is not counted.
  Status Release(const std::string& id, const std::string& owner);
  Status Block(const std::string& id, const std::string& reason);
  // A done job whose kept checkpoint is missing or corrupt: back to pending with fresh
  // attempts, so it runs again (its old result rows are replaced when it completes).
  Status Supersede(const std::string& id, const std::string& reason);
  // Sweeps still 'running' whose process is gone (this host, pid dead) or silent (another
  // host: started more than stale_after_s ago and none of its jobs heartbeating) become
  // 'interrupted'. Returns how many. Called at the start of every run.
  Result<int> MarkDeadSweeps(double stale_after_s);
  // Jobs still 'running' under an owner that is gone (this host, pid dead) or silent (heartbeat older than
  // stale_after_s) go back to pending, the attempt not counted (as a run's takeover does). Returns how many.
  // gc and vacuum call it: after a kill -9 they refused until a run took the jobs over (helper-69).
  Result<int> ReleaseDeadJobs(double stale_after_s);

  // --- maintenance (`ledger gc`, `ledger vacuum`; orchestrator/ledger_gc.cc) ---
  // Counts (apply = false) or drops (apply = true, one IMMEDIATE transaction, then
  // VACUUM) what `keep` (the job ids of the protocols to keep) does not reference:
  // such jobs that are not done, and the predictions of such jobs that are done; and
  // everywhere, result rows of superseded attempts (a job no longer done still holding
  // its old metrics/curves/predictions) and rows of no job. Applying refuses
  // (FailedPrecondition) while a sweep or job is running on the ledger (after marking
  // sweeps whose process is gone as interrupted): a running sweep may still claim them.
  Result<GcReport> CollectGarbage(const std::vector<std::string>& keep, bool apply);
  // VACUUM + WAL truncate; refuses while a sweep is running. Returns (bytes before, after).
  Result<std::pair<int64_t, int64_t>> Vacuum();

  // --- read API (plan, ledger, table, report) ---
  Result<std::map<std::string, JobStatus>> StatusOf(const std::vector<std::string>& ids);
  // The status of each of `ids`, in their order (nullopt where the ledger has no such job;
  // a repeated id gets it at each of its positions);
  // `table` reads it once per command for every table (issue 15). Index-only reads
  // (schema v2: jobs_by_id_state; a v1 file as StatusOf), matched to `ids` by a hash.
  Result<std::vector<std::optional<JobStatus>>> StatusList(const std::vector<std::string_view>& ids);
  Result<std::vector<std::optional<JobStatus>>> StatusList(const std::vector<std::string>& ids);
  // Every metric row of `ids` on one of `evals` named one of `names`, as
  // fn(index into ids, index into evals, index into names, value), once for each position
  // of a repeated id: no map keyed by id (issue 15: what `table` reads once per command).
  Status ForEachMetric(const std::vector<std::string_view>& ids, const std::vector<std::string>& evals,
                       const std::vector<std::string>& names,
                       const std::function<void(size_t, size_t, size_t, double)>& fn);
  // StatusList and ForEachMetric over ids in id order (std::string order = SQLite's
  // BINARY collation) that are at least 1/kStatusMergeShare of the ledger's jobs read
  // one scan each instead of a 500-id IN list a chunk (issue 15: `table --all` at 10^6
  // jobs): the status from the covering index in id order, merged with the ids; the
  // metrics from the table in rowid order, each job's id looked up once. These are the
  // scans (tests run EXPLAIN QUERY PLAN on them); MetricRowsSql's evals and names are
  // SQL-quoted lists such as ('test','val').
  static std::string JobStatusByIdSql();
  static std::string MetricRowsSql(const std::string& evals, const std::string& names);
  // Statements prepared on this connection so far (tests check what a command reads).
  int64_t statements_prepared() const;
  Result<std::optional<JobRow>> GetJob(const std::string& id);
  // id -> the job's info JSON (JobRow::info) for many ids at once, without the rest of the row.
  // min_bytes > 0: only infos whose stored text has at least that many bytes; the others
  // are not read (their size comes from the row's header, not its overflow pages).
  Result<std::map<std::string, nlohmann::json>> Infos(const std::vector<std::string>& ids, size_t min_bytes = 0);
  // id -> the job it evaluates, for those of `ids` that are `eval` jobs (kind "eval": a trained model tested on
  // another corpus; its first dependency). Tables rank such a job's grid point by that job's validation metric.
  Result<std::map<std::string, std::string>> EvalParents(const std::vector<std::string>& ids);
  // All jobs (filtered by status/kind when non-empty), protocol order not implied.
  Result<std::vector<JobRow>> ListJobs(const std::string& status = "", const std::string& kind = "");
  // Path of a done job's kept checkpoint, resolved: stored relative to the ledger's
  // directory (or absolute); a relative path of an older ledger that is not there is
  // looked up relative to the current directory too (docs/formats/ledger.md).
  Result<std::string> CheckpointOf(const std::string& id);
  // job id -> eval -> metric -> value (scalar metrics only).
  using MetricMap = std::map<std::string, std::map<std::string, std::map<std::string, double>>>;
  Result<MetricMap> Metrics(const std::vector<std::string>& ids);
  // Only the given eval sets and metric names (what one table reads: a fraction of the rows).
  Result<MetricMap> Metrics(const std::vector<std::string>& ids, const std::vector<std::string>& evals,
                            const std::vector<std::string>& names);
  // job id -> eval -> details JSON (per_class_recall, confusion, n).
  Result<std::map<std::string, std::map<std::string, nlohmann::json>>> EvalDetails(
      const std::vector<std::string>& ids);
  Result<std::vector<jobs::EpochRecord>> Curve(const std::string& id);
  // The epoch each finished job selected (jobs without one recorded are absent).
  Result<std::map<std::string, int>> SelectedEpochs(const std::vector<std::string>& ids);
  Result<PredictionSet> Predictions(const std::string& id, const std::string& eval);
  Result<nlohmann::json> Sweeps();
  // `ledger status`'s counts: [[kind, status, count], ...] ordered by kind and status, of
  // every job (sweep_id < 0) or of one sweep's (StatusCountSql's rows). From schema v4 on
  // they are the counts the ledger keeps (KeptStatusCountSql: tables kept by triggers, a
  // few rows whatever the size). On an older file opened read-only they are counted: from
  // schema v2 on, a sweep that links a large share of the ledger's jobs (kStatusMergeShare)
  // by merging two index scans in id order (its links; every job's id, kind and status)
  // instead of one index lookup a job and a sort of the joined rows (issue 15).
  Result<nlohmann::json> StatusCounts(int64_t sweep_id);
  // `ledger status`'s lists of failed and blocked jobs (id, kind, status, attempts, error,
  // attrs) and of running ones (id, kind, owner, worker, heartbeat_age_s, attrs), of every
  // job (holder < 0) or of the jobs `holder` links (LinkHolder). Found by jobs_by_status;
  // a sweep's links are probed once per job found (listing them all first cost 46 ms at
  // 10^5 links for 3 failed jobs, issue 15).
  static std::string FailedJobsSql(int64_t holder);
  static std::string RunningJobsSql(int64_t holder);
  // Schema v4: the kept counts (status_counts, or sweep_status_counts of the sweep that
  // holds the links), rows with a count of 0 left out; the rows of StatusCountSql.
  static std::string KeptStatusCountSql(int64_t sweep_id);
  static constexpr int64_t kStatusMergeShare = 8;  // merge when links * this >= the jobs' max rowid
  // The two scans StatusCounts merges (tests run EXPLAIN QUERY PLAN on them).
  static std::string SweepLinksByIdSql();
  static std::string JobStatesByIdSql();
  // Raw read-only SQL (the ledger must have been opened read_only): columns + rows.
  // A statement that could write or create anything (VACUUM INTO, ATTACH, pragma
  // assignments) is refused before it runs; timeout_s > 0 interrupts a longer query.
  Result<nlohmann::json> Query(const std::string& sql, double timeout_s = 0);
  // The same statement, row by row: `on_columns` once with the column names, then `on_row` per row (a JSON
  // array of the row's values); nothing is held (`ledger export` of 10^6 predictions held 2-3 GB). A non-OK
  // Status from on_row stops the query and is returned.
  Status QueryEach(const std::string& sql, double timeout_s, const std::function<void(const nlohmann::json&)>& on_columns,
                   const std::function<Status(nlohmann::json&)>& on_row);

 private:
  Ledger() = default;
  Status Migrate();
  Result<int64_t> LinkHolderLocked(int64_t sweep_id);
  Result<std::optional<int64_t>> FindJobSetLocked(const std::string& hash, size_t n, int64_t other_than);
  // Links `ids` to the sweep (shared when its job set allows, see RegisterJobs), inside
  // the caller's transaction; `job_set` = JobSetHash(ids).
  Status LinkLocked(int64_t sweep_id, const std::vector<std::string_view>& ids, const std::string& job_set);
  std::string StoredCheckpointPath(const std::string& path) const;
  Status ReadSchema();
  Status RefuseWhileRunningLocked(const std::string& what);
  int64_t FileBytes() const;

  mutable std::mutex mu_;
  Db db_;
  LedgerOptions options_;
  int schema_version_ = 0;
  // True when `ids` are in id order and many enough for a merged scan (see above).
  Result<bool> MergeScanPays(const std::vector<std::string_view>& ids);
  std::string base_dir_;  // absolute directory of the ledger file: checkpoint paths are relative to it
  std::string given_dir_;  // absolute directory of the path as given (a symbolic link's: older ledgers' base)
  // The file this connection opened (device, inode), to tell when it was deleted or replaced (FinishSweep).
  uint64_t file_dev_ = 0, file_ino_ = 0;
};

}  // namespace emosweep::orchestrator
