// orchestrator/ledger_gc.cc: `ledger gc` and `ledger vacuum` (issue 15): what a
// ledger may drop once protocols change, and giving the space back.
//
// gc keeps everything a kept protocol references (its jobs, whatever their status,
// with all their results) and every done job's scalar results (metrics, eval
// details, curves, provenance: small, and what old tables were made from). It drops
//  - jobs no kept protocol references that are not done (pending, failed, blocked:
//    attempts of protocols that changed), with their rows (foreign-key cascade) and
//    their sweep links (a sweep that loses links loses its job set hash: schema v3);
//  - the per-utterance predictions of jobs no kept protocol references (the bulk
//    of a ledger: one row per test utterance per job);
//  - result rows of superseded attempts: a job sent back to pending (lost
//    checkpoint) keeps its old rows until it completes again; and rows of no job
//    (a job row deleted by hand);
//  - utterance-id lists (schema v5, id_lists) that no job left names.
// Applying runs in one IMMEDIATE transaction (a concurrent sweep waits on SQLite's
// lock, never sees half of it) and refuses while any sweep or job is running, so a
// live sweep never loses a job it is about to claim; then VACUUM gives the space
// back to the file system.
#include <sys/stat.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "orchestrator/ledger.h"

namespace emosweep::orchestrator {
namespace {

constexpr const char* kResultTables[] = {"metrics", "eval_details", "curves", "predictions", "provenance"};

Result<int64_t> Scalar(Db* db, const std::string& sql) {
  Stmt st(db, sql);
  ES_RETURN_IF_ERROR(st.status());
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  return row && !st.IsNull(0) ? st.Int(0) : 0;
}

}  // namespace

int64_t Ledger::FileBytes() const {
  int64_t n = 0;
  for (const std::string& f : {db_.path(), db_.path() + "-wal"}) {
    struct stat sb;
    if (::stat(f.c_str(), &sb) == 0) n += static_cast<int64_t>(sb.st_size);
  }
  return n;
}

Status Ledger::RefuseWhileRunningLocked(const std::string& what) {
  ES_ASSIGN_OR_RETURN(int64_t sweeps, Scalar(&db_, "SELECT count(*) FROM sweeps WHERE status = 'running'"));
  ES_ASSIGN_OR_RETURN(int64_t jobs, Scalar(&db_, "SELECT count(*) FROM jobs WHERE status = 'running'"));
  if (sweeps == 0 && jobs == 0) return Status::Ok();
  return Status::FailedPrecondition(db_.path() + ": " + std::to_string(sweeps) + " sweep(s) and " +
                                    std::to_string(jobs) + " job(s) are running on this ledger (their processes "
                                    "are alive); run " + what + " again when they have finished (see 'emosweep ledger "
                                    "status')");
}

Result<GcReport> Ledger::CollectGarbage(const std::vector<std::string>& keep, bool apply) {
  if (apply && options_.read_only) return Status::FailedPrecondition(path() + ": opened read-only, cannot drop rows");
  if (apply) {
    ES_RETURN_IF_ERROR(MarkDeadSweeps(600).status());
    ES_RETURN_IF_ERROR(ReleaseDeadJobs(600).status());
  }
  std::lock_guard<std::mutex> lock(mu_);
  GcReport r;
  r.file_bytes_before = FileBytes();
  // Applying: the write lock from the first read on, so what is counted is what is dropped.
  ES_RETURN_IF_ERROR(db_.Exec(apply ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  auto body = [&]() -> Status {
    if (apply) ES_RETURN_IF_ERROR(RefuseWhileRunningLocked("gc"));
    const std::unordered_set<std::string> kept(keep.begin(), keep.end());
    std::vector<int64_t> done_rows;
    {
      Stmt st(&db_, "SELECT rowid FROM jobs WHERE status = 'done'");
      ES_RETURN_IF_ERROR(st.status());
      for (;;) {
        ES_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        done_rows.push_back(st.Int(0));
      }
      std::sort(done_rows.begin(), done_rows.end());
    }
    std::vector<std::string> drop_jobs, drop_predictions;
    {
      Stmt st(&db_, "SELECT rowid, id FROM jobs");
      ES_RETURN_IF_ERROR(st.status());
      for (;;) {
        ES_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        std::string id = st.Text(1);
        if (kept.count(id)) continue;
        ++r.unreferenced_jobs;
        if (std::binary_search(done_rows.begin(), done_rows.end(), st.Int(0)))
          drop_predictions.push_back(std::move(id));
        else
          drop_jobs.push_back(std::move(id));
      }
    }
    std::sort(drop_jobs.begin(), drop_jobs.end());
    r.dropped_jobs = static_cast<int64_t>(drop_jobs.size());
    r.dropped_prediction_jobs = static_cast<int64_t>(drop_predictions.size());
    r.dropped_job_ids.assign(drop_jobs.begin(), drop_jobs.end());  // all (--json); the text names kListed
    // Sizes before anything is dropped (payload bytes; SQLite's own overhead comes on top).
    ES_RETURN_IF_ERROR(ForChunks(&db_, drop_jobs,
                                 "SELECT sum(length(config_json) + length(attrs_json) + length(deps_json) + "
                                 "ifnull(length(info_json), 0) + 128) FROM jobs WHERE id",
                                 "", [&](Stmt& st) { r.bytes += st.Int(0); }));
    ES_RETURN_IF_ERROR(ForChunks(&db_, drop_predictions,
                                 "SELECT count(*), sum(length(utt_id) + ifnull(length(probs), 0) + 24) "
                                 "FROM predictions WHERE job_id",
                                 "", [&](Stmt& st) {
                                   r.prediction_rows += st.Int(0);
                                   r.bytes += st.Int(1);
                                 }));
    // Utterance-id lists (schema v5) that no job left names: a kept job's config_json names its lists as
    // "ids_list":"<hash>" (nlohmann's compact dump, as RegisterJobs writes it).
    std::vector<std::string> drop_lists;
    if (schema_version_ >= 5) {
      std::unordered_set<std::string> named;
      Stmt st(&db_, "SELECT id, config_json FROM jobs");
      ES_RETURN_IF_ERROR(st.status());
      static constexpr std::string_view kKey = "\"ids_list\":\"";
      for (;;) {
        ES_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        if (std::binary_search(drop_jobs.begin(), drop_jobs.end(), st.Text(0))) continue;
        const std::string_view config = st.TextView(1);
        for (size_t at = config.find(kKey); at != std::string_view::npos; at = config.find(kKey, at)) {
          at += kKey.size();
          const size_t end = config.find('"', at);
          if (end == std::string_view::npos) break;
          named.emplace(config.substr(at, end - at));
        }
      }
      Stmt lists(&db_, "SELECT hash, length(ids_json) FROM id_lists");
      ES_RETURN_IF_ERROR(lists.status());
      for (;;) {
        ES_ASSIGN_OR_RETURN(bool row, lists.Step());
        if (!row) break;
        std::string hash = lists.Text(0);
        if (named.count(hash)) continue;
        r.bytes += lists.Int(1) + 96;
        drop_lists.push_back(std::move(hash));
      }
      r.dropped_id_lists = static_cast<int64_t>(drop_lists.size());
    }
    // Rows of a job that is not done (any more) or of no job at all; a dropped job's
    // rows are among them (they go with it).
    for (const char* t : kResultTables) {
      const std::string where = std::string(" FROM ") + t + " WHERE job_id NOT IN (SELECT id FROM jobs WHERE status = 'done')";
      ES_ASSIGN_OR_RETURN(int64_t n, Scalar(&db_, "SELECT count(*)" + where));
      r.stale_result_rows += n;
      r.bytes += 48 * n;
    }
    if (!apply) return Status::Ok();
    ES_RETURN_IF_ERROR(ForChunks(&db_, drop_jobs, "DELETE FROM jobs WHERE id", "", [](Stmt&) {}));
    ES_RETURN_IF_ERROR(ForChunks(&db_, drop_predictions, "DELETE FROM predictions WHERE job_id", "", [](Stmt&) {}));
    ES_RETURN_IF_ERROR(ForChunks(&db_, drop_lists, "DELETE FROM id_lists WHERE hash", "", [](Stmt&) {}));
    for (const char* t : kResultTables)
      ES_RETURN_IF_ERROR(
          db_.Exec(std::string("DELETE FROM ") + t + " WHERE job_id NOT IN (SELECT id FROM jobs WHERE status = 'done')"));
    // A sweep that loses links no longer holds the job set its hash names: no later run
    // may share its links for that list (schema v3). Sweeps sharing its links lose them
    // with it, as each would have lost its own copy.
    ES_RETURN_IF_ERROR(db_.Exec(
        "UPDATE sweeps SET job_set = NULL WHERE job_set IS NOT NULL AND id IN "
        "(SELECT sweep_id FROM sweep_jobs WHERE job_id NOT IN (SELECT id FROM jobs))"));
    ES_RETURN_IF_ERROR(db_.Exec("DELETE FROM sweep_jobs WHERE job_id NOT IN (SELECT id FROM jobs)"));
    // The builds whose results are left (ResultBuilds), recounted from provenance.
    ES_RETURN_IF_ERROR(db_.Exec(
        "DELETE FROM meta WHERE key LIKE 'result_build:%'; "
        "INSERT OR IGNORE INTO meta(key, value) SELECT 'result_build:' || git_revision, '' FROM provenance "
        "WHERE coalesce(git_revision, '') != '' GROUP BY git_revision"));
    return db_.Exec(
        "UPDATE sweeps SET jobs = (SELECT count(*) FROM sweep_jobs sj WHERE sj.sweep_id = "
        "coalesce(sweeps.links_from, sweeps.id))");
  };
  Status st = body();
  if (!st.ok()) {
    (void)db_.Exec("ROLLBACK");
    return st;
  }
  ES_RETURN_IF_ERROR(db_.Exec("COMMIT"));
  if (apply) {
    ES_RETURN_IF_ERROR(db_.Exec("VACUUM"));
    (void)db_.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    r.applied = true;
    r.file_bytes_after = FileBytes();
    r.bytes = std::max<int64_t>(0, r.file_bytes_before - r.file_bytes_after);
  }
  return r;
}

Result<std::vector<std::string>> Ledger::ResultBuilds() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  if (schema_version_ < 5) return out;
  Stmt st(&db_, "SELECT substr(key, 14) FROM meta WHERE key LIKE 'result_build:%' ORDER BY 1");
  ES_RETURN_IF_ERROR(st.status());
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(st.Text(0));
  }
  return out;
}

Result<std::vector<std::string>> Ledger::BuildsOf(const std::vector<std::string_view>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::unordered_map<std::string_view, size_t> first;  // id -> its first position in `ids`
  first.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) first.emplace(ids[i], i);
  std::vector<std::string> out(ids.size());
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT job_id, git_revision FROM provenance WHERE job_id", "",
                               [&](Stmt& st) {
                                 auto at = first.find(st.TextView(0));
                                 if (at != first.end() && !st.IsNull(1)) out[at->second] = st.Text(1);
                               }));
  for (size_t i = 0; i < ids.size(); ++i) out[i] = out[first[ids[i]]];  // a repeated id: its first position's
  return out;
}

Result<std::pair<int64_t, int64_t>> Ledger::Vacuum() {
  if (options_.read_only) return Status::FailedPrecondition(path() + ": opened read-only, cannot vacuum");
  ES_RETURN_IF_ERROR(MarkDeadSweeps(600).status());
  ES_RETURN_IF_ERROR(ReleaseDeadJobs(600).status());
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t before = FileBytes();
  // VACUUM holds the write lock for as long as it copies the file: a live sweep would
  // stall on it (and past its busy timeout, fail), so wait until none is running.
  ES_RETURN_IF_ERROR(RefuseWhileRunningLocked("vacuum"));
  ES_RETURN_IF_ERROR(db_.Exec("VACUUM"));
  (void)db_.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  return std::make_pair(before, FileBytes());
}

}  // namespace emosweep::orchestrator
