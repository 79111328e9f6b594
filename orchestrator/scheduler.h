// orchestrator/scheduler.h: the coordination algorithm, written once above any transport.
//
// The single-process runner (orchestrator/runner.h) calls it in a loop from
// its worker threads; the MPI coordinator (issue 6) drives the same object
// from messages on rank 0. It is the only writer of the ledger for its sweep.
//
// How it works, step by step:
//  1. Create() registers every PlannedJob of the protocol in the ledger
//     (INSERT OR IGNORE: jobs already there keep their status and results),
//     links them to this sweep, and (retry_failed) puts failed/blocked jobs
//     back to pending with fresh attempts. It builds the DAG in memory: for
//     each job, its dependents and the number of its deps not yet done.
//  2. The ledger is the truth. Refresh() re-reads the status of this sweep's
//     jobs (other processes on the same ledger make progress too) at most
//     every max(refresh_s, 20 x the last refresh's duration), so it costs
//     at most ~5 % however large the sweep; when nothing is ready or running
//     locally, at every poll spaced at least 20 x its duration (5 % again:
//     a waiting run of a 10^5-job sweep used 0.37 of a core). Jobs done at
//     Create() count as "skipped": a finished protocol runs zero jobs.
//  3. A job is READY when it is pending (or running under an owner that looks
//     dead: same host and pid gone, or heartbeat older than stale_after_s)
//     and all its deps are done. Ready jobs wait in one ordered set, by:
//       a. most transitive dependents first (a shared pre-training job
//          unblocks its fine-tune/few-shot/DA dependents early),
//       b. then longest expected cost first (train utterances × epochs;
//          longest-processing-time-first shortens the tail of a parallel sweep),
//       c. then protocol order (deterministic).
//     While nothing is ready here but jobs run here, NextReady does not refresh
//     before the spacing above either: the next local completion is what will
//     make jobs ready, so a coordinator asked for work by an idle rank does not
//     re-read the whole sweep per question (issue 15: hand-out cost independent
//     of the sweep's size). With nothing running here it refreshes at once.
//  4. NextReady(worker) walks the ready set in that order and Claim()s in the
//     ledger (one IMMEDIATE transaction) until one claim succeeds: it returns
//     that job. A claim lost to another process just moves on. If nothing
//     could be claimed it returns kWait (jobs are running here or elsewhere,
//     or deps are not done yet) or kDone (every job is done/failed/blocked).
//  5. OnFinished() writes the result and 'done' in one transaction and makes
//     dependents whose deps are now all done ready. OnFailed() retries (back
//     to pending) while attempts < max_attempts and the error is not bad input
//     (bad input fails the same way again); otherwise the job is 'failed' and
//     every transitive dependent becomes 'blocked' with the reason. The sweep
//     goes on with everything else. OnInterrupted() (SIGINT/SIGTERM,
//     preemption) puts the job back to pending without counting the attempt.
//     Before claiming a job whose deps kept a checkpoint (pretrain -> finetune,
//     fewshot, eval), each such checkpoint is checked (check_checkpoint; a
//     file already checked with the same size and mtime is not read again).
//     One that is missing or corrupt puts its producing job back to pending
//     (Ledger::Supersede): it runs again (same identity, same seed, so the
//     same model) and its dependents wait for it instead of failing for ever
//     (once per producer and process, so an invisible work dir cannot loop).
//  6. Heartbeat() stamps every job running here, so other processes do not
//     take them over; call it more often than stale_after_s.
//  7. Packs (issue 16, docs/design/packing.md): with max_pack > 1, a job's
//     jobs::PackKey is computed once, when it first becomes ready (a finished
//     protocol computes none: issue 15), and the scheduler keeps, beside the
//     ready set, one ready set per non-empty key (same order). NextPack(worker, k) takes
//     the first ready job as NextReady does, then up to k - 1 more from the
//     ready set of its key, in order (begin() of a set: no scan of the ready
//     jobs), each claimed in the ledger like a single job (own row, own
//     attempt). It never waits for members that are not ready yet. The
//     members are then reported one by one (OnFinished/OnFailed/
//     OnInterrupted), exactly as single jobs.
//     Balance (`share` = the workers, busy ones included): a hand-out takes at
//     most ceil((ready + running here) jobs of its key / share), so 12 ready
//     jobs of one key on 2 workers become two packs of 6 even while the other
//     worker is busy with something else (taking all 12 left it idle at the
//     end: the tail). A cap per key (SchedulerOptions::pack_cap, asked once
//     per key, with its first ready job) bounds a pack further (on CPU: the members' optimizer
//     state within a cache budget, orchestrator/pack_limit.h). Both are kept
//     per key (counts, not scans): a hand-out stays O(members log n).
//
// Thread-safety: every public method takes an internal mutex; call from any
// thread. PlannedJob pointers returned stay valid for the Scheduler's life.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "orchestrator/ledger.h"

namespace emosweep::orchestrator {

struct SchedulerOptions {
  int max_attempts = 2;         // claims per job before it is failed for good
  double stale_after_s = 600;   // a running job with an older heartbeat is taken over
  bool retry_failed = true;     // a new run gives failed/blocked jobs fresh attempts
  double refresh_s = 1.0;       // how often the ledger is re-read when work is ready locally
  std::string owner;            // "" = ThisOwner()
  // Whether a done job's kept checkpoint can still be used (Ok) or not (why). Unset:
  // the file must exist and be non-empty. The CLI reads it back (worker::VerifyCheckpointFile).
  std::function<Status(const std::string& path)> check_checkpoint;
  // Packs (step 7): 1 = never (keys are not even computed; NextPack hands out single jobs).
  int max_pack = 1;
  // The most members one pack of a key may hold, asked once per key with the key's
  // first job to become ready (>= 1; unset: only NextPack's max_members bounds a pack).
  std::function<int(const jobs::JobSpec&)> pack_cap;
};

struct PackMember {
  const protocols::PlannedJob* job = nullptr;
  int attempt = 0;
};

struct Assignment {
  enum class Kind { kJob, kWait, kDone };
  Kind kind = Kind::kWait;
  const protocols::PlannedJob* job = nullptr;  // set for kJob (the first member of a pack)
  int attempt = 0;                             // 1 for the first try
  std::vector<PackMember> members;             // kJob: every member, `job` first (size 1: alone)
};

struct SchedulerCounts {
  int total = 0;
  int skipped = 0;            // done before this scheduler started
  int done = 0, failed = 0, blocked = 0, pending = 0;
  int running_here = 0, running_elsewhere = 0;
  int finished_here = 0;      // completed by this scheduler
  int failed_here = 0, retried_here = 0, interrupted_here = 0;
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> Create(Ledger* ledger, int64_t sweep_id,
                                                   std::vector<protocols::PlannedJob> jobs,
                                                   SchedulerOptions options);

  Result<Assignment> NextReady(const std::string& worker);
  // A pack of up to max_members jobs (and the key's pack_cap) with the first one's non-empty
  // PackKey (step 7); share > 1 (the workers, busy or not) takes at most ceil((ready + running
  // here) jobs of that key / share), leaving the other workers their share of the key.
  // A job with an empty key (or max_pack 1) comes alone.
  Result<Assignment> NextPack(const std::string& worker, int max_members, int share = 1);
  // provenance: see Ledger::Complete (git revision, host, build, world size, timings).
  Status OnFinished(const std::string& id, const jobs::JobResult& result, const nlohmann::json& provenance);
  // `retried` (optional): set to whether the job went back to pending for another attempt.
  Status OnFailed(const std::string& id, const Status& error, bool* retried = nullptr);
  Status OnInterrupted(const std::string& id);
  Status Heartbeat();

  bool Done();
  SchedulerCounts Counts();
  // (id, error) of this sweep's failed and blocked jobs, in protocol order.
  std::vector<std::pair<std::string, std::string>> Failures();
  std::vector<std::string> RunningHere();
  const std::vector<protocols::PlannedJob>& jobs() const { return jobs_; }
  const std::string& owner() const { return options_.owner; }

 private:
  using Key = std::tuple<int, double, int>;  // (-dependents, -cost, order)
  // A JobState whose owner and error are pooled (jobs::PooledString: a process sees few
  // owners and few distinct errors): 40 bytes a job less than the ledger's JobState
  // (issue 15). Reads like it; assigned from one.
  struct NodeState {
    JobStatus status = JobStatus::kPending;
    int attempts = 0;
    jobs::PooledString owner;
    double heartbeat_at = 0;
    jobs::PooledString error;
    NodeState& operator=(const JobState& s) {
      status = s.status, attempts = s.attempts, owner = s.owner, heartbeat_at = s.heartbeat_at, error = s.error;
      return *this;
    }
  };
  struct Node {
    NodeState state;
    std::vector<int> dependents;
    int deps_left = 0;         // deps not yet done
    int transitive_dependents = 0;
    double cost = 0;
    bool here = false;         // running in this scheduler
    bool skipped = false;      // done when this scheduler started
    bool superseded = false;   // sent back to pending here for a lost checkpoint
    // Index into pack_ready_ (jobs with equal non-empty PackKey); -1 = alone; kNoGroupYet
    // until the job first becomes ready (keys are computed lazily).
    int pack_group = -1;
  };

  Scheduler(Ledger* ledger, int64_t sweep_id, std::vector<protocols::PlannedJob> jobs, SchedulerOptions options);
  Status Build();
  Status RefreshLocked();
  void SetStatusLocked(int i, JobStatus s);
  void UpdateReadyLocked(int i);
  void EraseReadyLocked(int i);
  void LeaveHereLocked(int i);  // job i stops running here (finished, failed or interrupted)
  // Claims ready job i (already out of the ready sets): true when it now runs here.
  Result<bool> TryClaimLocked(int i, const ClaimOptions& co);
  Status BlockDependentsLocked(int i, const std::string& reason);
  Status FailLocked(int i, const Status& error, bool* retried = nullptr);  // OnFailed's work, job i already off `here`
  // False (after superseding the producer) when a dep's checkpoint is missing or corrupt.
  Result<bool> DepCheckpointsUsableLocked(int i);
  bool LooksDeadLocked(const Node& n) const;
  void WaitNoteLocked();
  Result<int> IndexOf(const std::string& id) const;
  static constexpr int kNoGroupYet = -2;
  // Sets nodes_[i].pack_group from the job's PackKey, adding a group for a new key.
  void AssignPackGroupLocked(int i);
  Key KeyOf(int i) const { return {-nodes_[i].transitive_dependents, -nodes_[i].cost, i}; }

  std::mutex mu_;
  Ledger* ledger_;
  int64_t sweep_id_;
  std::vector<protocols::PlannedJob> jobs_;
  SchedulerOptions options_;
  // Job id -> position: open addressing over the ids in jobs_ (never resized after
  // construction), position + 1 a slot, at most half full (an unordered_map was 40 bytes
  // a job and its buckets, issue 15). Find: the position or -1.
  std::vector<uint32_t> index_;
  int Find(std::string_view id) const;
  std::vector<Node> nodes_;
  std::set<Key> ready_;
  std::unordered_map<std::string, int> pack_groups_;  // PackKey -> pack group, for the keys seen so far
  // Per pack group: its ready jobs (a subset of ready_). A deque: a group added while
  // NextPack holds a reference to another group's set leaves that reference valid.
  std::deque<std::set<Key>> pack_ready_;
  std::vector<int> pack_running_;          // per pack group: its jobs running here
  std::vector<int> pack_cap_;              // per pack group: SchedulerOptions::pack_cap of its key
  std::chrono::steady_clock::time_point last_refresh_;
  // Nothing runs here and every open job waits on other owners: said at most once a minute (WaitNoteLocked).
  std::chrono::steady_clock::time_point last_wait_note_{};
  double refresh_cost_s_ = 0;  // how long the last refresh took (spaces them out on big sweeps)
  SchedulerCounts counts_;
  // Kept up to date so a hand-out never scans every node (issue 15): jobs not done,
  // failed or blocked, and the jobs running here (ordered: Heartbeat and RunningHere).
  int64_t open_ = 0;
  std::set<int> here_;
  std::map<std::string, std::pair<int64_t, int64_t>> checked_;  // checkpoint path -> (size, mtime ns) found good
};

// Expected cost of a job for the "longest first" rule: train utterances × epochs.
double ExpectedCost(const jobs::JobSpec& spec);

}  // namespace emosweep::orchestrator
