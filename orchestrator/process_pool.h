// orchestrator/process_pool.h: `run --parallel K` as K worker processes.
//
// Why processes and not threads (docs/design/parallel-jobs.md): torch's RNG,
// its intra-op thread count and OpenMP's thread pool are process-wide, so K
// jobs on threads of one process draw from one generator in a timing-
// dependent order and are not reproducible. A job in its own process is: the
// trainer seeds torch from the job identity at the start of every job, so a
// job's numbers do not depend on which process ran it, what ran there
// before, or how many ran beside it (tests/orchestrator/process_pool_test.cc
// and tests/cli/parallel_cli_test.cc check bitwise equality).
//
// Each slot is one child process (`emosweep worker`, cli/cmd_worker.cc),
// spawned on first use (or at Start()) and kept for the whole sweep (libtorch loads once per
// process, not per job). The parent writes one request per job to the
// child's file descriptor 3 and reads one reply from its descriptor 4
// (frames: 8-byte little-endian length, then JSON; format below). A child
// that dies (crash, OOM kill) fails the job it was running with the signal
// named, and the slot is respawned for the next job. A stop request
// (JobContext::stop_requested) is forwarded as SIGTERM: the child's trainer
// checkpoints and the job comes back Aborted (pending again). A child whose
// parent was killed with -9 notices within a second and stops (its
// --parent-pid watchdog, cli/cmd_worker.cc).
//
// Request: {"spec": JobSpec JSON with "id", "threads": n, "device": "cpu",
//           "work_dir": "...", "checkpoints": {job_id: path}}
// Reply:   {"status": "ok", "result": JobResult JSON} |
//          {"status": "interrupted", "error": "..."} |
//          {"status": "failed", "code": StatusCode, "error": "..."}
// A pack (issue 16, RunPack) is one request and one reply; the child runs it
// with worker::RunPack (members[i] with its own context i; threads, device and
// work_dir are the pack's):
// Request: {"pack": [JobSpec JSON with "id", ...], "threads": n, "device": "cpu",
//           "work_dir": "...", "checkpoints": {job_id: path}}  (every member's)
// Reply:   {"results": [reply as above, one per member, in order]}
//          (a child that cannot read the request at all may answer one plain
//          failure reply; it then counts for every member)
// Before the reply, a member whose result is final (it stopped early or ran
// its last epoch) is sent on its own: {"member_done": i, "reply": reply as
// above}, and the parent hands it to contexts[i].on_finished at once.
// A child that dies mid-pack fails every member of the pack not sent that
// way, with the signal named (each is retried alone or in a later pack as its attempts allow); a
// stop is forwarded once, and members come back done or interrupted each.
// Thread-safety: Run may be called from up to `size` threads at once (each
// call takes a free slot); the destructor must not race with Run.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "jobs/job.h"

namespace emosweep::orchestrator {

struct ProcessPoolOptions {
  std::string executable;                  // the emosweep binary ("" = /proc/self/exe)
  std::vector<std::string> args;           // e.g. {"worker", "--log-level", "info"}
  int size = 1;
  // Added to every child's environment unless the variable is already set
  // (OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning).
  std::map<std::string, std::string> env;
};

class ProcessPool {
 public:
  explicit ProcessPool(ProcessPoolOptions options);
  ~ProcessPool();  // closes every child's input; waits for it (SIGKILL after 10 s)
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  // Runs one job in a free child process.
  Result<jobs::JobResult> Run(const jobs::JobSpec& spec, const jobs::JobContext& context);
  // Runs a pack in one free child process: one outcome per member, in order.
  // contexts[i] belongs to members[i]; the stop flag and settings are contexts[0]'s.
  std::vector<Result<jobs::JobResult>> RunPack(const std::vector<jobs::JobSpec>& members,
                                               const std::vector<jobs::JobContext>& contexts);

  // Starts every free slot's child now instead of at its first job (a child loads the torch
  // module as soon as it starts, cli/cmd_worker.cc), so the first job sent there does not wait
  // for its start-up. A slot that cannot start is left for Run to start (and report).
  // Safe beside Run.
  void Start();

  int spawned() const;  // child processes started so far (respawns included)
  std::vector<int> pids() const;  // the live children's process ids (IdleCoreMeter counts their CPU as ours)

 private:
  // A slot is its owner's (busy) alone, but pids() and Start() read `pid` from other threads (the idle-core
  // meter asks for the children's ids while jobs run): `pid` is written under mu_ (SetPid; helper-75, TSan).
  struct Slot {
    int pid = -1;
    int to_child = -1;    // parent writes requests
    int from_child = -1;  // parent reads replies
    bool busy = false;
  };
  Result<Slot*> Acquire();  // a free slot, marked busy, its child started
  void Release(Slot* slot);
  Status Spawn(Slot* slot);
  void Reap(Slot* slot, bool kill_first);
  void SetPid(Slot* slot, int pid);
  // Sends `request` and returns the child's reply; frames before it that carry "member_done" (a pack member's
  // result ahead of the reply, MemberDoneFor) go to `on_member_done`.
  Result<nlohmann::json> Exchange(Slot* slot, const std::string& request, const jobs::JobContext& context,
                                  const std::string& job,
                                  const std::function<void(const nlohmann::json&)>& on_member_done = nullptr);

  ProcessPoolOptions options_;
  std::string argv0_;  // the child's argv[0]
  mutable std::mutex mu_;
  std::vector<Slot> slots_;
  int spawned_ = 0;
};

// Frames on a file descriptor (also used by the child side).
Status WriteFrame(int fd, const std::string& payload);
// Ok(nullopt-like empty + *eof = true) at a clean end of stream.
Result<std::string> ReadFrame(int fd, bool* eof);

// The reply a child sends for a job outcome, and the outcome a parent reads from it.
nlohmann::json ReplyFor(const Result<jobs::JobResult>& outcome);
Result<jobs::JobResult> OutcomeOf(const nlohmann::json& reply, const std::string& where);
// A pack's reply ({"results": [...]}) and the outcomes a parent reads from it (`members` of them).
nlohmann::json PackReplyFor(const std::vector<Result<jobs::JobResult>>& outcomes);
// A pack member's result sent ahead of the pack's reply ({"member_done": index, "reply": ReplyFor}): the child
// sends it from JobContext::on_finished, the parent hands it to that member's on_finished.
nlohmann::json MemberDoneFor(size_t index, const jobs::JobResult& result);
std::vector<Result<jobs::JobResult>> PackOutcomesOf(const nlohmann::json& reply, const std::vector<std::string>& ids);

}  // namespace emosweep::orchestrator
