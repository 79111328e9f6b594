// tests/orchestrator/fake_jobs.h: small plans and a deterministic fake executor.
//
// The fake executor stands in for worker::RunJob where a test is about the
// orchestration (ledger, scheduler, runner), not about training: it returns
// metrics, a learning curve and per-utterance predictions that depend only on
// the job's model name and seed, so tables computed from them are known.
// Thread-safety: FakeExecutor may be called from several threads.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "protocols/expand.h"
#include "worker/job.h"

namespace emosweep::testing {

// A job with the given coordinates; its id is the real JobSpec identity.
protocols::PlannedJob MakeJob(const std::string& experiment, const std::string& model, const std::string& column,
                              uint64_t seed, std::vector<std::string> deps = {}, int train_utts = 10,
                              const std::string& kind = "supervised");

// models × columns × seeds supervised jobs (attrs experiment/model/target/seed).
std::vector<protocols::PlannedJob> MakeGrid(const std::string& experiment, const std::vector<std::string>& models,
                                            const std::vector<std::string>& columns, int seeds);

// Accuracy the fake gives a model: "good" 0.9, "mid" 0.7, anything else 0.5
// (plus a seed-dependent wiggle), on 40 utterances of 4 classes.
jobs::JobResult FakeResult(const jobs::JobSpec& spec);

class FakeExecutor {
 public:
  Result<jobs::JobResult> operator()(const jobs::JobSpec& spec, const jobs::JobContext& ctx);
  std::set<std::string> fail_always;              // ids that always fail (Internal)
  std::map<std::string, int> fail_times;          // id -> fail this many times first
  std::set<std::string> bad_input;                // ids that fail with InvalidArgument
  std::string block_until_stop;                   // id that waits for ctx.stop_requested
  std::atomic<bool> blocking_started{false};
  std::vector<std::string> ran();                 // ids in completion order (successes)
  int calls(const std::string& id);

 private:
  std::mutex mu_;
  std::vector<std::string> ran_;
  std::map<std::string, int> calls_;
};

// The plan of the fake_sweep driver (process tests): one pre-training job and
// n - 1 jobs, every 4th depending on it. Same ids in every process.
std::vector<protocols::PlannedJob> FakeSweepPlan(int n);

// A fresh directory under the gtest temp dir, named after the running test.
std::string TestDir();

}  // namespace emosweep::testing
