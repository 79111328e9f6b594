// orchestrator/coordinator.h: the sweep across MPI ranks (issue 6).
//
// `mpirun -n N emosweep run ...` with N > 1: rank 0 coordinates, ranks 1..N-1
// form worker groups of G consecutive ranks (group g = ranks 1+gG .. gG+G; its
// lowest rank is the leader). N = 1 never comes here: the single-process
// runner (orchestrator/runner.h) runs the sweep. Both drive the SAME
// Scheduler; the coordinator only adds the transport.
//
// The algorithm, step by step (rank 0):
//  1. Every group starts idle; every rank counts as heard from now.
//  2. Unless stopping, each idle group's leader gets the next ready job from
//     Scheduler::NextReady (dependents-first, longest-first; see scheduler.h)
//     as a JOB message (the JobSpec JSON). The leader forwards it to its group
//     members; the group trains it data-parallel through its GradientReducer.
//     Then (prefetch, issue 15) a group of one rank whose last job was short
//     (< prefetch_below_s) gets one more job, queued behind the running one: it
//     starts it the moment it sends the result, without waiting for rank 0 to
//     see the result, claim and send (the round trip cost ~3-4 ms a job). Long
//     jobs are not queued (a queued job could not move to a group idle first).
//     Results come back in send order and name their job.
//  3. Rank 0 waits for messages with a short timeout (it never spins):
//     HEARTBEAT (every rank, every heartbeat_s, from a side thread, so long
//     epochs do not look like stalls) and RESULT (the leader: done, failed
//     with the error, or interrupted by preemption). The group becomes idle
//     and gets its next job first; then the Scheduler records the result in
//     the ledger (rank 0 is the only writer), so the ledger write overlaps the
//     group's next job; jobs the result made ready are handed out at once.
//  4. Stall inspector: a rank not heard from for stall_timeout_s is named
//     (rank, host, the job its group was running, seconds silent); its jobs
//     are released in the ledger (pending again) and the run ends with
//     Status::Unavailable. The caller then aborts the MPI world: nothing may
//     hang waiting for a dead peer. A rank that dies outright is caught by
//     mpirun/srun, which ends the job; the ledger shows the job as running
//     under a dead owner and the next run takes it over.
//  5. Preemption (SIGUSR1/SIGTERM reach every rank; `stop` is set): no more
//     jobs are handed out; running jobs checkpoint and come back as
//     interrupted (pending again, attempt not counted), a queued job comes
//     back interrupted without starting once its rank has seen the stop; then EXIT. A stop
//     seen by any worker rank alone (its heartbeat says "stopping", or its
//     group comes back interrupted) stops the sweep the same way. Inside a
//     group the trainer agrees on the stop epoch by an allreduce, so every
//     rank of the group stops after the same epoch (worker/trainer.cc).
//  6. When the Scheduler says Done (or, stopping, no group is busy), rank 0
//     sends EXIT to every rank and returns. Re-running resumes from the ledger
//     and from the job checkpoints.
// Thread-safety: RunCoordinator / RunWorkerRank each own their rank's loop;
// the heartbeat side thread only sends.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "cluster/reducer.h"
#include "cluster/world.h"
#include "orchestrator/runner.h"
#include "orchestrator/scheduler.h"
#include "jobs/job.h"

namespace emosweep::orchestrator {

struct DistributedOptions {
  int group_size = 1;
  double heartbeat_s = 2.0;
  double stall_timeout_s = 120.0;
  // Fault injection for the failure tests (docs/design/distributed.md): "stall:R"
  // makes rank R stop heartbeating and hang when it gets a job; "die:R" makes
  // rank R exit abruptly when it gets a job. Empty in normal runs.
  std::string inject_fault;
  // Prefetch (issue 15): a group of one rank whose last job took less than this gets
  // its next job queued behind the running one, so it starts it without a round trip
  // to rank 0. 0 turns it off.
  double prefetch_below_s = 10.0;
};

using ContextFactory = std::function<jobs::JobContext()>;
using ProvenanceFn = std::function<nlohmann::json(const protocols::PlannedJob&, const jobs::JobResult&)>;
// Path of a finished job's checkpoint (rank 0 reads it from the ledger and
// ships it with the job, so worker ranks never open the ledger).
using CheckpointLookup = std::function<std::string(const std::string& job_id)>;

// Which group a world rank belongs to: rank 0 -> 0 (the coordinator, alone),
// rank r >= 1 -> 1 + (r - 1) / group_size. Also the color for MakeGroupReducer.
int GroupColor(int rank, int group_size);
bool IsGroupLeader(int rank, int group_size);
Status CheckLayout(int world_size, int group_size);
// Whether every rank was started with the options the ranks must share (--group-size) and from the same build
// (`revision`): each worker rank sends them to rank 0, which compares. helper-59: ranks given different
// --group-size (an MPMD command line) hung, a worker waiting forever on a leader rank 0 never assigned. Rank 0
// gets InvalidArgument naming the first rank that differs, or Unavailable when a rank says nothing within
// `timeout_s`; the other ranks get Ok once they have sent. Call it on every rank before the group split.
Status CheckRanksAgree(cluster::Communicator& comm, const DistributedOptions& options, const std::string& revision,
                       double timeout_s);

struct CoordinatorSummary {
  int jobs_sent = 0, finished = 0, failed = 0, interrupted = 0;
  double wall_s = 0, busy_s = 0;  // busy = sum over groups of job seconds × group size
  // The sweep stopped before its end: a stop signal to this rank, to another rank (its heartbeat says so) or
  // to a group's job (it came back interrupted). The caller records the sweep interrupted, not done.
  bool stopped = false;
};

Result<CoordinatorSummary> RunCoordinator(cluster::Communicator& comm, Scheduler& scheduler,
                                          const DistributedOptions& options, const std::atomic<bool>& stop,
                                          const ProvenanceFn& provenance, const CheckpointLookup& checkpoint_of);

// Sends EXIT to every worker rank (RunCoordinator does this itself on success;
// an in-process caller uses it after a failure, an MPI caller aborts instead).
void ReleaseWorkers(cluster::Communicator& comm);

Status RunWorkerRank(cluster::Communicator& comm, cluster::GradientReducer& reducer,
                     const DistributedOptions& options, const Executor& execute,
                     const ContextFactory& make_context, std::atomic<bool>& stop);

}  // namespace emosweep::orchestrator
