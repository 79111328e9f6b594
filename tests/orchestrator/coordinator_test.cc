// The MPI coordinator's algorithm over the in-process transport: ranks are
// threads, the ledger is a real SQLite file, the executor is a fake that
// returns a result (the real trainer is exercised by the mpirun tests).
#include "orchestrator/coordinator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

namespace emosweep::orchestrator {
namespace {

std::vector<protocols::PlannedJob> MakeJobs(int n, bool with_pretrain) {
  std::vector<protocols::PlannedJob> jobs;
  std::string pre_id;
  if (with_pretrain) {
    protocols::PlannedJob p;
    p.spec.kind = "pretrain";
    p.spec.model = {{"name", "concat_mlp"}};
    p.spec.seed = 999;
    p.spec.id = p.spec.ComputeId();
    p.reportable = false;
    pre_id = p.spec.id;
    jobs.push_back(p);
  }
  for (int i = 0; i < n; ++i) {
    protocols::PlannedJob j;
    j.spec.kind = with_pretrain ? "finetune" : "supervised";
    j.spec.model = {{"name", "concat_mlp"}};
    j.spec.seed = static_cast<uint64_t>(i);
    j.spec.init_from = pre_id;
    j.spec.id = j.spec.ComputeId();
    if (with_pretrain) j.deps = {pre_id};
    j.attrs = {{"seed", std::to_string(i)}};
    jobs.push_back(j);
  }
  return jobs;
}

struct Fixture {
  std::string dir;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<Scheduler> scheduler;

  explicit Fixture(std::vector<protocols::PlannedJob> jobs, const std::string& name) {
    dir = (std::filesystem::temp_directory_path() / ("es_coord_" + name + "_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto l = Ledger::Open(dir + "/ledger.sqlite");
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    ledger = std::move(*l);
    SweepInfo info;
    info.protocol_name = "coordinator-test";
    auto sweep = ledger->BeginSweep(info);
    EXPECT_TRUE(sweep.ok()) << sweep.status().ToString();
    auto s = Scheduler::Create(ledger.get(), *sweep, std::move(jobs), SchedulerOptions{});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    scheduler = std::move(*s);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

jobs::JobResult FakeResult(const jobs::JobSpec& spec) {
  jobs::JobResult r;
  r.evals["test"].metrics = {{"ua", 0.5 + 0.01 * static_cast<double>(spec.seed % 10)}, {"wa", 0.5}, {"n", 10}};
  r.evals["test"].predictions.push_back({"u1", 0, 0, {0.9f, 0.1f}});
  r.curve.push_back({0, 1.0, 0.9, {{"ua", 0.4}}, 1e-3, 0.01});
  r.selected_epoch = 0;
  return r;
}

TEST(Coordinator, LayoutChecksGroupSizes) {
  EXPECT_TRUE(CheckLayout(5, 2).ok());
  EXPECT_FALSE(CheckLayout(4, 2).ok());
  EXPECT_EQ(GroupColor(0, 2), 0);
  EXPECT_EQ(GroupColor(1, 2), 1);
  EXPECT_EQ(GroupColor(2, 2), 1);
  EXPECT_EQ(GroupColor(3, 2), 2);
  EXPECT_TRUE(IsGroupLeader(3, 2));
  EXPECT_FALSE(IsGroupLeader(4, 2));
}

// helper-59: ranks started with different --group-size (an MPMD mpirun line) hung; rank 0 now compares every
// rank's options and build before the group split, and names the first that differs.
TEST(Coordinator, RanksStartedWithOtherOptionsOrAnotherBuildAreNamed) {
  auto agree = [](std::vector<int> group_sizes, std::vector<std::string> revisions, int silent = -1) {
    const int n = static_cast<int>(group_sizes.size());
    auto world = cluster::MakeInProcWorld(n);
    std::vector<std::thread> threads;
    for (int r = 1; r < n; ++r)
      if (r != silent)
        threads.emplace_back([&, r] {
          DistributedOptions o;
          o.group_size = group_sizes[size_t(r)];
          EXPECT_TRUE(CheckRanksAgree(*world[size_t(r)], o, revisions[size_t(r)], 5).ok());
        });
    DistributedOptions o;
    o.group_size = group_sizes[0];
    Status s = CheckRanksAgree(*world[0], o, revisions[0], 0.5);
    for (auto& t : threads) t.join();
    return s;
  };
  EXPECT_TRUE(agree({2, 2, 2}, {"a", "a", "a"}).ok());
  Status mixed = agree({1, 1, 2}, {"a", "a", "a"});
  EXPECT_EQ(mixed.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mixed.message().find("rank 2 (") , std::string::npos) << mixed.ToString();
  EXPECT_NE(mixed.message().find("was started with --group-size 2 and rank 0 with 1"), std::string::npos)
      << mixed.ToString();
  Status build = agree({1, 1}, {"a", "b"});
  EXPECT_NE(build.message().find("runs emosweep b and rank 0 runs a"), std::string::npos) << build.ToString();
  Status quiet = agree({1, 1, 1}, {"a", "a", "a"}, /*silent=*/1);
  EXPECT_EQ(quiet.code(), StatusCode::kUnavailable) << quiet.ToString();
  EXPECT_NE(quiet.message().find("rank 1 did not report its options"), std::string::npos) << quiet.ToString();
}

// Runs a world of `n` thread-ranks; returns the coordinator's result.
Result<CoordinatorSummary> RunWorld(int n, int group, Fixture& f, const DistributedOptions& opt,
                                    std::function<Result<jobs::JobResult>(const jobs::JobSpec&)> exec,
                                    std::multiset<std::string>* executed) {
  auto world = cluster::MakeInProcWorld(n);
  std::mutex mu;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<cluster::GradientReducer>> reducers;
  std::atomic<bool> stop_coord{false};
  std::vector<std::unique_ptr<std::atomic<bool>>> stops;
  for (int r = 1; r < n; ++r) {
    reducers.push_back(cluster::MakeLocalReducer());
    stops.push_back(std::make_unique<std::atomic<bool>>(false));
  }
  for (int r = 1; r < n; ++r) {
    threads.emplace_back([&, r] {
      Executor e = [&](const jobs::JobSpec& s, const jobs::JobContext& ctx) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (IsGroupLeader(r, group)) executed->insert(s.id);
          // Dependents receive their dependency's checkpoint path with the job.
          if (!s.init_from.empty()) EXPECT_EQ(ctx.checkpoint_of(s.init_from), "/ckpt/" + s.init_from);
        }
        return exec(s);
      };
      Status st = RunWorkerRank(*world[static_cast<size_t>(r)], *reducers[static_cast<size_t>(r - 1)], opt, e,
                                [] { return jobs::JobContext{}; }, *stops[static_cast<size_t>(r - 1)]);
      EXPECT_TRUE(st.ok()) << st.ToString();
    });
  }
  auto res = RunCoordinator(*world[0], *f.scheduler, opt, stop_coord, nullptr,
                            [](const std::string& id) { return "/ckpt/" + id; });
  if (!res.ok()) ReleaseWorkers(*world[0]);
  for (auto& t : threads) t.join();
  return res;
}

TEST(Coordinator, EveryJobRunsExactlyOnceAndDependenciesComeFirst) {
  Fixture f(MakeJobs(6, /*with_pretrain=*/true), "once");
  DistributedOptions opt;
  opt.heartbeat_s = 0.05;
  std::multiset<std::string> executed;
  std::atomic<int> pretrain_done{0};
  std::atomic<bool> order_ok{true};
  auto res = RunWorld(3, 1, f, opt,
                      [&](const jobs::JobSpec& s) -> Result<jobs::JobResult> {
                        if (s.kind == "pretrain") {
                          std::this_thread::sleep_for(std::chrono::milliseconds(30));
                          pretrain_done = 1;
                        } else if (!pretrain_done.load()) {
                          order_ok = false;
                        }
                        return FakeResult(s);
                      },
                      &executed);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_TRUE(order_ok.load()) << "a fine-tune job ran before its pre-training job";
  EXPECT_EQ(executed.size(), 7u);
  for (const auto& j : f.scheduler->jobs()) EXPECT_EQ(executed.count(j.spec.id), 1u) << j.spec.id;
  auto states = f.ledger->StatusOf([&] {
    std::vector<std::string> ids;
    for (const auto& j : f.scheduler->jobs()) ids.push_back(j.spec.id);
    return ids;
  }());
  ASSERT_TRUE(states.ok());
  for (const auto& [id, st] : *states) EXPECT_EQ(st, JobStatus::kDone) << id;
  EXPECT_EQ(res->finished, 7);
}

TEST(Coordinator, AFailingJobIsRecordedAndTheSweepGoesOn) {
  Fixture f(MakeJobs(4, false), "fail");
  DistributedOptions opt;
  opt.heartbeat_s = 0.05;
  std::multiset<std::string> executed;
  const std::string bad = f.scheduler->jobs()[1].spec.id;
  auto res = RunWorld(3, 1, f, opt,
                      [&](const jobs::JobSpec& s) -> Result<jobs::JobResult> {
                        if (s.id == bad) return Status::InvalidArgument("label 'joy' outside the map");
                        return FakeResult(s);
                      },
                      &executed);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  auto st = f.ledger->StatusOf({bad});
  EXPECT_EQ(st->at(bad), JobStatus::kFailed);
  auto row = f.ledger->GetJob(bad);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_NE((*row)->error.find("outside the map"), std::string::npos) << (*row)->error;
  EXPECT_EQ(res->finished, 3);
}

TEST(Coordinator, StallInspectorNamesTheSilentRankInsteadOfHanging) {
  Fixture f(MakeJobs(4, false), "stall");
  DistributedOptions opt;
  opt.heartbeat_s = 0.05;
  opt.stall_timeout_s = 1.0;
  opt.inject_fault = "stall:2";
  std::multiset<std::string> executed;
  auto t0 = std::chrono::steady_clock::now();
  auto res = RunWorld(3, 1, f, opt, [&](const jobs::JobSpec& s) -> Result<jobs::JobResult> {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return FakeResult(s);
  }, &executed);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("rank 2"), std::string::npos) << res.status().message();
  EXPECT_LT(secs, 20.0);
  // The stalled rank's job went back to pending for the next run.
  int pending = 0;
  for (const auto& j : f.scheduler->jobs()) {
    auto st = f.ledger->StatusOf({j.spec.id});
    pending += st->at(j.spec.id) == JobStatus::kPending;
  }
  EXPECT_GE(pending, 1);
}

// Issue 15: a rank running short jobs has its next job before it asks (queued behind
// the running one, claimed in the ledger), so it never waits for the round trip to
// rank 0 between jobs; with prefetch off it only ever holds one. Every job still runs
// exactly once and is recorded.
TEST(Coordinator, ShortJobsAreQueuedSoTheRankNeverWaitsForRankZero) {
  for (double below : {10.0, 0.0}) {
    Fixture f(MakeJobs(8, false), below > 0 ? "prefetch" : "noprefetch");
    DistributedOptions opt;
    opt.heartbeat_s = 0.05;
    opt.prefetch_below_s = below;
    std::multiset<std::string> executed;
    std::atomic<size_t> most_claimed{0};  // jobs claimed by this sweep while one of them runs
    auto res = RunWorld(2, 1, f, opt,
                        [&](const jobs::JobSpec& s) -> Result<jobs::JobResult> {
                          std::this_thread::sleep_for(std::chrono::milliseconds(30));
                          size_t n = f.scheduler->RunningHere().size();
                          if (n > most_claimed.load()) most_claimed = n;
                          return FakeResult(s);
                        },
                        &executed);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(most_claimed.load(), below > 0 ? 2u : 1u) << "prefetch_below_s " << below;
    EXPECT_EQ(executed.size(), 8u);
    for (const auto& j : f.scheduler->jobs()) EXPECT_EQ(executed.count(j.spec.id), 1u) << j.spec.id;
    EXPECT_EQ(res->finished, 8);
    EXPECT_EQ(res->jobs_sent, 8);
    EXPECT_TRUE(f.scheduler->Done());
  }
}

// A stop while a job is queued: the running job and the queued one both go back to
// pending (the queued one without starting), nothing is lost or recorded twice.
TEST(Coordinator, AStopReleasesTheQueuedJobToo) {
  Fixture f(MakeJobs(6, false), "prefetch_stop");
  DistributedOptions opt;
  opt.heartbeat_s = 0.02;
  auto world = cluster::MakeInProcWorld(2);
  auto reducer = cluster::MakeLocalReducer();
  std::atomic<bool> stop_coord{false}, stop_worker{false};
  std::atomic<int> started{0};
  std::thread worker([&] {
    Executor e = [&](const jobs::JobSpec& s, const jobs::JobContext& ctx) -> Result<jobs::JobResult> {
      if (++started == 3) {  // the third job (queued behind the second): stop once the fourth is queued
        // (Rank 0 queues the next job before it records the result that came back.)
        for (int i = 0; i < 500 && (f.scheduler->Counts().finished_here < 2 || f.scheduler->RunningHere().size() < 2);
             ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        stop_coord = true;
        while (!ctx.stop_requested->load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return Status::Aborted("stopped");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return FakeResult(s);
    };
    Status st = RunWorkerRank(*world[1], *reducer, opt, e, [] { return jobs::JobContext{}; }, stop_worker);
    EXPECT_TRUE(st.ok()) << st.ToString();
  });
  auto res = RunCoordinator(*world[0], *f.scheduler, opt, stop_coord, nullptr, nullptr);
  if (!res.ok()) ReleaseWorkers(*world[0]);
  worker.join();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(started.load(), 3) << "the queued job must not start after the stop";
  EXPECT_EQ(res->finished, 2);
  EXPECT_EQ(res->interrupted, 2);  // the running one and the queued one
  EXPECT_EQ(res->jobs_sent, 4);
  EXPECT_TRUE(f.scheduler->RunningHere().empty());
  int done = 0, pending = 0;
  for (const auto& j : f.scheduler->jobs()) {
    auto st = f.ledger->StatusOf({j.spec.id});
    done += st->at(j.spec.id) == JobStatus::kDone;
    pending += st->at(j.spec.id) == JobStatus::kPending;
  }
  EXPECT_EQ(done, 2);
  EXPECT_EQ(pending, 4);
}

}  // namespace
}  // namespace emosweep::orchestrator
