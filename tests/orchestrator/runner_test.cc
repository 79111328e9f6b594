// Runner with the fake executor: whole sweeps, re-runs, failures, stop requests.
#include "orchestrator/runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeExecutor;

protocols::Protocol GridProtocol() {
  protocols::Protocol p;
  p.name = "grid";
  p.path = "grid.toml";
  p.effective = {{"name", "grid"}};
  p.jobs = testing::MakeGrid("loco", {"good", "mid", "base"}, {"emodb", "ravdess"}, 3);
  return p;
}

RunOptions Quiet(int parallel = 1) {
  RunOptions o;
  o.parallel = parallel;
  o.progress = false;
  o.poll_s = 0.01;
  return o;
}

Result<RunSummary> RunFake(const protocols::Protocol& p, Ledger* l, FakeExecutor& fake, const RunOptions& o) {
  Executor exec = [&fake](const jobs::JobSpec& s, const jobs::JobContext& c) { return fake(s, c); };
  return RunSweep(p, l, exec, o);
}

TEST(Runner, RunsEveryJobOnceWithTwoWorkerThreads) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  auto s = RunFake(p, ledger.get(), fake, Quiet(2));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->counts.finished_here, 18);
  EXPECT_EQ(s->counts.done, 18);
  EXPECT_TRUE(s->failures.empty());
  auto ran = fake.ran();
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(std::unique(ran.begin(), ran.end()), ran.end()) << "a job ran twice";
  auto sweeps = ledger->Sweeps();
  EXPECT_EQ((*sweeps)[0]["status"], "done");
}

TEST(Runner, RerunOfAFinishedProtocolRunsNothingAndIsFast) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  ASSERT_TRUE(RunFake(p, ledger.get(), fake, Quiet()).ok());
  FakeExecutor second;
  auto t0 = std::chrono::steady_clock::now();
  auto s = RunFake(p, ledger.get(), second, Quiet());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->counts.skipped, 18);
  EXPECT_EQ(s->counts.finished_here, 0);
  EXPECT_TRUE(second.ran().empty());
  EXPECT_LT(secs, 2.0);
}

TEST(Runner, DeletingOneJobsRowsRerunsOnlyThatJob) {
  std::string path = testing::TestDir() + "/l.db";
  auto ledger = std::move(Ledger::Open(path)).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  ASSERT_TRUE(RunFake(p, ledger.get(), fake, Quiet()).ok());
  std::string victim = p.jobs[4].spec.id;
  {
    // What a user does by hand with the sqlite3 shell (foreign keys off there).
    Db db;
    ASSERT_TRUE(db.Open(path, 2 /*SQLITE_OPEN_READWRITE*/, 1000).ok());
    ASSERT_TRUE(db.Exec("DELETE FROM jobs WHERE id = '" + victim + "'").ok());
  }
  FakeExecutor second;
  auto s = RunFake(p, ledger.get(), second, Quiet());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(second.ran(), std::vector<std::string>{victim});
  EXPECT_EQ(s->counts.done, 18);
  auto m = ledger->Metrics({victim});
  EXPECT_EQ((*m)[victim]["test"].size(), 5u) << "orphaned metric rows replaced, not duplicated";
}

TEST(Runner, AFailingJobIsRecordedAndTheSweepGoesOn) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  fake.fail_always.insert(p.jobs[0].spec.id);
  auto s = RunFake(p, ledger.get(), fake, Quiet());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->counts.done, 17);
  EXPECT_EQ(s->counts.failed, 1);
  ASSERT_EQ(s->failures.size(), 1u);
  EXPECT_NE(s->failures[0].second.find("simulated crash"), std::string::npos);
  EXPECT_EQ(fake.calls(p.jobs[0].spec.id), 2) << "default max_attempts is 2";
  EXPECT_EQ((*ledger->Sweeps())[0]["status"], "failed");
}

TEST(Runner, ExceptionFromTheExecutorBecomesAFailedJob) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  protocols::Protocol p = GridProtocol();
  p.jobs.resize(2);
  Executor exec = [&](const jobs::JobSpec& s, const jobs::JobContext&) -> Result<jobs::JobResult> {
    if (s.id == p.jobs[0].spec.id) throw std::runtime_error("c10::Error: shape mismatch");
    return testing::FakeResult(s);
  };
  RunOptions o = Quiet();
  o.scheduler.max_attempts = 1;
  auto s = RunSweep(p, ledger.get(), exec, o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->counts.failed, 1);
  EXPECT_NE((*ledger->GetJob(p.jobs[0].spec.id))->error.find("shape mismatch"), std::string::npos);
}

TEST(Runner, StopRequestInterruptsTheRunningJobAndLeavesItPending) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  fake.block_until_stop = p.jobs[0].spec.id;
  std::atomic<bool> stop{false};
  RunOptions o = Quiet();
  o.stop = &stop;
  std::thread stopper([&] {
    while (!fake.blocking_started) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    stop = true;
  });
  auto s = RunFake(p, ledger.get(), fake, o);
  stopper.join();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->stopped);
  EXPECT_EQ(s->counts.interrupted_here, 1);
  auto row = *ledger->GetJob(p.jobs[0].spec.id);
  EXPECT_EQ(row->status, JobStatus::kPending);
  EXPECT_EQ(row->attempts, 0);
  EXPECT_EQ((*ledger->Sweeps())[0]["status"], "interrupted");
  // Everything else is still there to do (the blocking job was the first claimed).
  EXPECT_LT(s->counts.done, 18);
}

TEST(Runner, RefusesWhenStoresAreMissingAndNamesThem) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  p.missing_inputs = {"stores/emodb.h5", "stores/tess.h5"};
  auto s = RunFake(p, ledger.get(), fake, Quiet());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("stores/tess.h5"), std::string::npos);
  EXPECT_TRUE(fake.ran().empty());
}

// Issue 15: a re-run of a finished protocol from its cached job ids records a
// sweep with every job linked and skipped, runs and expands nothing.
TEST(Runner, FinishedRerunFromIdsRecordsTheSweepWithoutRunning) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  ASSERT_TRUE(RunFake(p, ledger.get(), fake, Quiet()).ok());
  std::vector<std::string> ids;
  for (const auto& j : p.jobs) ids.push_back(j.spec.id);
  protocols::Protocol shallow = p;
  shallow.jobs.clear();  // what a parse without expansion gives
  auto r = RecordFinishedRerun(shallow, ids, ledger.get(), Quiet());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->has_value());
  const RunSummary& s = **r;
  EXPECT_EQ(s.counts.total, 18);
  EXPECT_EQ(s.counts.skipped, 18);
  EXPECT_EQ(s.counts.finished_here, 0);
  auto sweeps = ledger->Sweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 2u);
  EXPECT_EQ((*sweeps)[1]["status"], "done");
  EXPECT_EQ((*sweeps)[1]["id"], s.sweep_id);
  EXPECT_EQ((*sweeps)[1]["jobs"], 18) << sweeps->dump();
  // The sweep's jobs are the same as a full re-run would link: the scheduler sees them all.
  auto states = ledger->SweepStates(s.sweep_id);
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(states->size(), 18u);
}

TEST(Runner, FinishedRerunDeclinesWhenAnyJobIsNotDoneAndWritesNothing) {
  std::string path = testing::TestDir() + "/l.db";
  auto ledger = std::move(Ledger::Open(path)).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  ASSERT_TRUE(RunFake(p, ledger.get(), fake, Quiet()).ok());
  std::vector<std::string> ids;
  for (const auto& j : p.jobs) ids.push_back(j.spec.id);
  {
    Db db;
    ASSERT_TRUE(db.Open(path, 2 /*SQLITE_OPEN_READWRITE*/, 1000).ok());
    ASSERT_TRUE(db.Exec("UPDATE jobs SET status = 'failed' WHERE id = '" + ids[7] + "'").ok());
  }
  auto r = RecordFinishedRerun(p, ids, ledger.get(), Quiet());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->has_value());
  // An id the ledger has never seen (the protocol changed since) declines too.
  std::vector<std::string> other = {ids[0], std::string(64, 'f')};
  auto r2 = RecordFinishedRerun(p, other, ledger.get(), Quiet());
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->has_value());
  auto sweeps = ledger->Sweeps();
  EXPECT_EQ(sweeps->size(), 1u) << "a declined fast path records no sweep";
  // The full path then retries the failed job.
  FakeExecutor second;
  auto s = RunFake(p, ledger.get(), second, Quiet());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(second.ran(), std::vector<std::string>{ids[7]});
}

}  // namespace
}  // namespace emosweep::orchestrator
