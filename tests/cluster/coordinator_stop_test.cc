// A stop request seen by one worker rank only (issue 6): the coordinator must
// stop the whole sweep instead of handing that rank's group job after job.
// Ranks are threads (in-process transport), the ledger is real SQLite, the
// executor is a fake; the trainer's own group agreement is tested under
// mpirun by mpi_data_parallel_check.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "orchestrator/coordinator.h"

namespace emosweep::orchestrator {
namespace {

namespace fs = std::filesystem;

struct Sweep {
  fs::path dir;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<Scheduler> scheduler;

  Sweep(int n, const std::string& name) {
    dir = fs::temp_directory_path() / ("es_coord_stop_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::vector<protocols::PlannedJob> jobs;
    for (int i = 0; i < n; ++i) {
      protocols::PlannedJob j;
      j.spec.kind = "supervised";
      j.spec.model = {{"name", "concat_mlp"}};
      j.spec.seed = static_cast<uint64_t>(i);
      j.spec.id = j.spec.ComputeId();
      jobs.push_back(j);
    }
    auto l = Ledger::Open((dir / "ledger.sqlite").string());
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    ledger = std::move(*l);
    auto sweep = ledger->BeginSweep(SweepInfo{});
    EXPECT_TRUE(sweep.ok()) << sweep.status().ToString();
    auto s = Scheduler::Create(ledger.get(), *sweep, std::move(jobs), SchedulerOptions{});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    scheduler = std::move(*s);
  }
  ~Sweep() { fs::remove_all(dir); }

  int Count(JobStatus want) {
    int n = 0;
    for (const auto& j : scheduler->jobs()) n += ledger->StatusOf({j.spec.id})->at(j.spec.id) == want;
    return n;
  }
};

jobs::JobResult FakeResult() {
  jobs::JobResult r;
  r.evals["test"].metrics = {{"ua", 0.5}, {"wa", 0.5}, {"n", 1}};
  r.curve.push_back({0, 1.0, 0.9, {{"ua", 0.4}}, 1e-3, 0.01});
  r.selected_epoch = 0;
  return r;
}

// Runs ranks 1..n-1 as threads with their own stop flags; `exec(rank, ctx)` is the job.
Result<CoordinatorSummary> RunWorld(int n, const DistributedOptions& opt, Sweep& s,
                                    std::vector<std::unique_ptr<std::atomic<bool>>>& stops,
                                    const std::function<Result<jobs::JobResult>(int, const jobs::JobContext&)>& exec) {
  auto world = cluster::MakeInProcWorld(n);
  std::vector<std::unique_ptr<cluster::GradientReducer>> reducers;
  for (int r = 0; r < n; ++r) {
    reducers.push_back(cluster::MakeLocalReducer());
    stops.push_back(std::make_unique<std::atomic<bool>>(false));
  }
  std::vector<std::thread> threads;
  for (int r = 1; r < n; ++r)
    threads.emplace_back([&, r] {
      Executor e = [&, r](const jobs::JobSpec&, const jobs::JobContext& ctx) { return exec(r, ctx); };
      Status st = RunWorkerRank(*world[static_cast<size_t>(r)], *reducers[static_cast<size_t>(r)], opt, e,
                                [] { return jobs::JobContext{}; }, *stops[static_cast<size_t>(r)]);
      EXPECT_TRUE(st.ok()) << st.ToString();
    });
  std::atomic<bool> coordinator_stop{false};  // never set: the stop comes from a worker rank
  auto res = RunCoordinator(*world[0], *s.scheduler, opt, coordinator_stop, nullptr, nullptr);
  if (!res.ok()) ReleaseWorkers(*world[0]);
  for (auto& t : threads) t.join();
  return res;
}

// Group of 2 (ranks 1, 2): only rank 2, the non-leader, sees the flag. The
// group agrees (as the trainer's allreduce does) and returns Aborted on both
// ranks; the leader, whose own flag is down, must report "interrupted", and
// the coordinator must hand out nothing more.
TEST(CoordinatorStop, FlagOnANonLeaderRankInterruptsTheJobAndStopsTheSweep) {
  Sweep s(6, "group");
  DistributedOptions opt;
  opt.group_size = 2;
  opt.heartbeat_s = 0.05;
  std::vector<std::unique_ptr<std::atomic<bool>>> stops;
  std::atomic<bool> group_agreed{false};
  std::atomic<int> started{0};
  auto res = RunWorld(3, opt, s, stops, [&](int rank, const jobs::JobContext&) -> Result<jobs::JobResult> {
    ++started;
    if (rank == 2) {
      *stops[2] = true;  // e.g. the signal reached this rank only
      group_agreed = true;
    }
    while (!group_agreed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::Aborted("stopped on request after epoch 1");
  });
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->jobs_sent, 1);
  EXPECT_EQ(res->interrupted, 1);
  EXPECT_EQ(res->failed, 0);
  EXPECT_EQ(started.load(), 2);
  EXPECT_EQ(s.Count(JobStatus::kPending), 6);  // released, attempt not spent
  EXPECT_EQ(s.Count(JobStatus::kFailed), 0);
}

// Two groups of one: rank 2 sees the flag during its job; its heartbeat says
// "stopping", the coordinator stops, rank 1's long job is told to stop and
// comes back interrupted; the sweep ends instead of running every job.
TEST(CoordinatorStop, StoppingHeartbeatFromOneRankStopsEveryGroup) {
  Sweep s(8, "heartbeat");
  DistributedOptions opt;
  opt.heartbeat_s = 0.05;
  std::vector<std::unique_ptr<std::atomic<bool>>> stops;
  std::atomic<int> done{0};
  const auto t0 = std::chrono::steady_clock::now();
  auto res = RunWorld(3, opt, s, stops, [&](int rank, const jobs::JobContext& ctx) -> Result<jobs::JobResult> {
    if (rank == 2) {
      *stops[2] = true;  // its heartbeats now carry "stopping"
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ++done;
      return FakeResult();  // this job still finishes
    }
    for (int i = 0; i < 2000; ++i) {  // a long job on rank 1 that checks its flag
      if (ctx.stop_requested->load()) return Status::Aborted("stopped on request");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ++done;
    return FakeResult();
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_LT(secs, 8.0) << "rank 1's job was not stopped";
  EXPECT_EQ(res->interrupted, 1);
  EXPECT_EQ(res->finished, 1);  // nothing handed out after the stopping heartbeat
  EXPECT_GE(s.Count(JobStatus::kPending), 6);
  EXPECT_TRUE(stops[1]->load()) << "rank 1 never got the stop";
}

}  // namespace
}  // namespace emosweep::orchestrator
