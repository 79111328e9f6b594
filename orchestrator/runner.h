// orchestrator/runner.h: the single-process sweep runner behind `emosweep run`.
//
// Drives a Scheduler in a loop from `parallel` worker threads (each job gets
// `threads` intra-op threads, parallel × threads ≤ cores), runs each job
// through an injected Executor (production: worker::RunJob in this process
// for --parallel 1, a ProcessPool of worker processes otherwise, so jobs are
// reproducible: orchestrator/process_pool.h; tests: a fake),
// and feeds the outcome back to the scheduler, which records it. A job that
// fails is recorded with its error and the sweep goes on. A heartbeat thread
// stamps running jobs so concurrent runs on the same ledger do not take them
// over. When *stop becomes true (SIGINT/SIGTERM) no new job is handed out,
// running jobs see JobContext::stop_requested (checkpoint and return
// Aborted) and go back to pending.
// Packs (issue 16, options.pack > 1): a worker thread asks Scheduler::NextPack
// for up to `pack` jobs of one PackKey; a pack of one runs through the
// Executor as a single job, a larger one through the PackExecutor (production:
// worker::RunPack, in this process or in one worker process). Each member's
// outcome is then recorded under its own id exactly as a single job's (done,
// failed alone, or interrupted back to pending); its provenance names the pack
// in extra_json: {"pack": {"id": HashJson(member ids), "size": K, "index": i}}.
// Thread-safety: RunSweep is reentrant; it owns its threads and joins them.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "orchestrator/ledger.h"
#include "orchestrator/scheduler.h"
#include "protocols/expand.h"
#include "jobs/job.h"

namespace emosweep::orchestrator {

using Executor = std::function<Result<jobs::JobResult>(const jobs::JobSpec&, const jobs::JobContext&)>;
// K jobs as one pack (worker::RunPack's contract, worker/pack.h): one outcome per member, in order.
using PackExecutor = std::function<std::vector<Result<jobs::JobResult>>(const std::vector<jobs::JobSpec>&,
                                                                       const std::vector<jobs::JobContext>&)>;

// A warning when the ledger holds results of emosweep builds other than this one and `skipped` done jobs are
// reused (a done job is never re-run, whichever build computed it: docs/trainer.md, "Determinism"); "" otherwise.
std::string OtherBuildsWarning(Ledger* ledger, int skipped);

struct RunOptions {
  int threads = 1;              // intra-op threads per job
  int job_threads = 0;          // the largest train.threads a job sets (0: none; it wins over `threads`)
  int parallel = 1;             // jobs at once (0 = the usable cores); never more than the jobs to run
  std::string work_dir = "emosweep-work";  // checkpoints (JobContext::work_dir)
  std::string device = "cpu";
  SchedulerOptions scheduler;
  double heartbeat_s = 15;      // must be well below scheduler.stale_after_s
  double poll_s = 0.25;         // wait between NextReady calls when nothing is ready
  const std::atomic<bool>* stop = nullptr;  // set by the signal handler
  bool progress = true;         // progress line with ETA on stderr
  // Packs (issue 16): at most `pack` jobs of one PackKey at once (1 = off: single jobs, today's path).
  int pack = 1;
  // true (--pack auto): a pack takes at most its share of the open jobs of its key, so every
  // worker thread gets packs of it (Scheduler::NextPack's share = the workers, busy or not).
  bool pack_share = false;
  PackExecutor pack_executor;   // unset: the members one after another through the Executor
};

struct RunSummary {
  int64_t sweep_id = 0;
  SchedulerCounts counts;
  double seconds = 0;
  bool stopped = false;         // interrupted by *stop
  std::vector<std::pair<std::string, std::string>> failures;  // (id, error): failed + blocked
  int pack_limit = 1;           // RunOptions::pack
  std::map<int, int> packs;     // pack size -> packs of that size run (only when pack_limit > 1)
  nlohmann::json ToJson() const;
  std::string PacksText() const;  // "packs <= 32: 2 x 8, 3 x 1" ("" when packing is off)
};

// Registers the sweep and its jobs in the ledger and builds the scheduler: the
// common start of the single-process runner and the MPI coordinator.
struct StartedSweep {
  int64_t sweep_id = 0;
  std::unique_ptr<Scheduler> scheduler;
};
Result<StartedSweep> StartSweep(const protocols::Protocol& protocol, Ledger* ledger, const RunOptions& options);
// As above, the protocol's jobs moved into the scheduler instead of copied
// (protocol->jobs is left empty, every other field as it was): one copy of a
// 10^6-job list in memory, not two (issue 15).
Result<StartedSweep> StartSweep(protocols::Protocol* protocol, Ledger* ledger, const RunOptions& options);

// The re-run of a finished protocol without expanding it (issue 15): `protocol` may be
// parsed only (LoadOptions::expand = false), `ids` are its job ids in protocol order
// (protocols::ReadExpansionIds). When every one of them is done in the ledger this
// records the sweep as RunSweep would (a sweep row, its jobs linked, status 'done',
// every job skipped) and returns its summary; otherwise it writes nothing and returns
// nullopt: expand and RunSweep as usual. When an earlier sweep holds exactly this job
// list (Ledger::FindJobSet, schema v3) its jobs are counted from two index scans and
// the new sweep shares its links: no id lookups and no link rows (O(1) writes).
Result<std::optional<RunSummary>> RecordFinishedRerun(const protocols::Protocol& protocol,
                                                      const std::vector<std::string>& ids, Ledger* ledger,
                                                      const RunOptions& options);

// Runs the protocol's jobs not yet done in the ledger. Returns an error only
// when the sweep itself cannot proceed (missing stores, ledger I/O); failed
// jobs are in the summary (the CLI exits 1 when there are any).
Result<RunSummary> RunSweep(const protocols::Protocol& protocol, Ledger* ledger, const Executor& executor,
                            const RunOptions& options);
// As above, moving the protocol's jobs into the scheduler (protocol->jobs is left empty).
Result<RunSummary> RunSweep(protocols::Protocol* protocol, Ledger* ledger, const Executor& executor,
                            const RunOptions& options);

}  // namespace emosweep::orchestrator
