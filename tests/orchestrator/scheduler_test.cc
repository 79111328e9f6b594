// Scheduler: DAG order, priority policy, skipping, retries, blocking, interrupts.
#include "orchestrator/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <thread>

#include "jobs/pack.h"
#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeResult;
using testing::MakeJob;

struct Fixture {
  std::unique_ptr<Ledger> ledger;
  int64_t sweep = 0;
  std::unique_ptr<Scheduler> sched;
};

Fixture Make(const std::string& path, std::vector<protocols::PlannedJob> jobs, SchedulerOptions o = {}) {
  Fixture f;
  f.ledger = std::move(Ledger::Open(path)).value();
  f.sweep = *f.ledger->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  auto s = Scheduler::Create(f.ledger.get(), f.sweep, std::move(jobs), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (s.ok()) f.sched = std::move(s).value();
  return f;
}

// Runs the scheduler to the end single-threaded; returns ids in execution order. `edit` may change a finished
// job's result before it is reported.
std::vector<std::string> Drain(Scheduler* s, const std::function<Status(const jobs::JobSpec&)>& outcome,
                               const std::function<void(const jobs::JobSpec&, jobs::JobResult*)>& edit = {}) {
  std::vector<std::string> order;
  for (int guard = 0; guard < 1000; ++guard) {
    auto a = s->NextReady("t0");
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    if (!a.ok() || a->kind == Assignment::Kind::kDone) break;
    EXPECT_EQ(a->kind, Assignment::Kind::kJob) << "single-threaded: never waits";
    if (a->kind != Assignment::Kind::kJob) break;
    order.push_back(a->job->spec.id);
    Status st = outcome(a->job->spec);
    if (st.ok()) {
      jobs::JobResult r = FakeResult(a->job->spec);
      if (edit) edit(a->job->spec, &r);
      Status done = s->OnFinished(a->job->spec.id, r, {});
      EXPECT_TRUE(done.ok()) << done.ToString();
    } else
      EXPECT_TRUE(s->OnFailed(a->job->spec.id, st).ok());
  }
  return order;
}

TEST(Scheduler, DependenciesFirstThenMostDependentsThenLongestThenProtocolOrder) {
  auto short_job = MakeJob("e", "m", "short", 1, {}, /*train_utts=*/5);
  auto long_job = MakeJob("e", "m", "long", 1, {}, /*train_utts=*/50);
  auto pre = MakeJob("e", "m", "pretrain", 1, {}, 5, "pretrain");
  auto ft1 = MakeJob("e", "m", "ft1", 1, {pre.spec.id}, 5, "finetune");
  auto ft2 = MakeJob("e", "m", "ft2", 1, {pre.spec.id}, 5, "finetune");
  auto f = Make(testing::TestDir() + "/l.db", {short_job, long_job, pre, ft1, ft2});
  auto order = Drain(f.sched.get(), [](const jobs::JobSpec&) { return Status::Ok(); });
  std::vector<std::string> want = {pre.spec.id, long_job.spec.id, short_job.spec.id, ft1.spec.id, ft2.spec.id};
  EXPECT_EQ(order, want);
  EXPECT_TRUE(f.sched->Done());
  EXPECT_EQ(f.sched->Counts().finished_here, 5);
}

TEST(Scheduler, JobsDoneInTheLedgerAreSkipped) {
  std::string path = testing::TestDir() + "/l.db";
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x"}, 2);
  {
    auto f = Make(path, jobs);
    Drain(f.sched.get(), [](const jobs::JobSpec&) { return Status::Ok(); });
  }
  auto f = Make(path, jobs);
  EXPECT_EQ(f.sched->Counts().skipped, 4);
  auto a = f.sched->NextReady("t0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kind, Assignment::Kind::kDone);
}

TEST(Scheduler, TransientFailureIsRetriedAndCounted) {
  auto job = MakeJob("e", "m", "x", 1);
  auto f = Make(testing::TestDir() + "/l.db", {job}, SchedulerOptions{/*max_attempts=*/3});
  int calls = 0;
  auto order = Drain(f.sched.get(), [&](const jobs::JobSpec&) {
    return ++calls < 3 ? Status::Internal("flaky") : Status::Ok();
  });
  EXPECT_EQ(order.size(), 3u);
  auto c = f.sched->Counts();
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.retried_here, 2);
  EXPECT_EQ((*f.ledger->GetJob(job.spec.id))->attempts, 3);
}

TEST(Scheduler, FailureAfterMaxAttemptsBlocksDependentsTransitivelyAndTheSweepGoesOn) {
  auto pre = MakeJob("e", "m", "pre", 1, {}, 5, "pretrain");
  auto ft = MakeJob("e", "m", "ft", 1, {pre.spec.id}, 5, "finetune");
  auto ev = MakeJob("e", "m", "ev", 1, {ft.spec.id}, 5, "eval");
  auto other = MakeJob("e", "m", "other", 1);
  auto f = Make(testing::TestDir() + "/l.db", {pre, ft, ev, other}, SchedulerOptions{/*max_attempts=*/2});
  auto order = Drain(f.sched.get(), [&](const jobs::JobSpec& s) {
    return s.id == pre.spec.id ? Status::Internal("out of memory") : Status::Ok();
  });
  EXPECT_EQ(order, (std::vector<std::string>{pre.spec.id, pre.spec.id, other.spec.id}));
  auto c = f.sched->Counts();
  EXPECT_EQ(c.failed, 1);
  EXPECT_EQ(c.blocked, 2);
  EXPECT_EQ(c.done, 1);
  auto row = *f.ledger->GetJob(ev.spec.id);
  EXPECT_EQ(row->status, JobStatus::kBlocked);
  EXPECT_NE(row->error.find("out of memory"), std::string::npos) << row->error;
  auto failed = *f.ledger->GetJob(pre.spec.id);
  EXPECT_NE(failed->error.find("out of memory"), std::string::npos);
  EXPECT_EQ(f.sched->Failures().size(), 3u);
}

TEST(Scheduler, BadInputIsNotRetried) {
  auto job = MakeJob("e", "m", "x", 1);
  auto f = Make(testing::TestDir() + "/l.db", {job}, SchedulerOptions{/*max_attempts=*/5});
  auto order = Drain(f.sched.get(), [](const jobs::JobSpec&) { return Status::InvalidArgument("no such class"); });
  EXPECT_EQ(order.size(), 1u);
  EXPECT_EQ(f.sched->Counts().failed, 1);
}

// A result with a non-finite metric (an infinite eval loss) is refused by the ledger: the job fails (no retry,
// its dependents blocked) and the sweep goes on, instead of ending with the job left running.
TEST(Scheduler, ANonFiniteMetricFailsTheJobNotTheSweep) {
  auto bad = MakeJob("e", "m", "bad", 1, {}, 5, "pretrain");
  auto dep = MakeJob("e", "m", "dep", 1, {bad.spec.id}, 5, "finetune");
  auto other = MakeJob("e", "m", "other", 1);
  auto f = Make(testing::TestDir() + "/l.db", {bad, dep, other}, SchedulerOptions{/*max_attempts=*/3});
  auto order = Drain(
      f.sched.get(), [](const jobs::JobSpec&) { return Status::Ok(); },
      [&](const jobs::JobSpec& spec, jobs::JobResult* r) {
        if (spec.id == bad.spec.id) r->evals["test"].metrics["loss"] = std::numeric_limits<double>::infinity();
      });
  EXPECT_EQ(order, (std::vector<std::string>{bad.spec.id, other.spec.id}));
  auto c = f.sched->Counts();
  EXPECT_EQ(c.failed, 1);
  EXPECT_EQ(c.blocked, 1);
  EXPECT_EQ(c.done, 1);
  auto row = *f.ledger->GetJob(bad.spec.id);
  EXPECT_EQ(row->status, JobStatus::kFailed);
  EXPECT_NE(row->error.find("eval 'test': metric 'loss' is not finite"), std::string::npos) << row->error;
}

TEST(Scheduler, NewRunRetriesFailedAndBlockedJobsUnlessAskedNotTo) {
  std::string path = testing::TestDir() + "/l.db";
  auto pre = MakeJob("e", "m", "pre", 1, {}, 5, "pretrain");
  auto ft = MakeJob("e", "m", "ft", 1, {pre.spec.id}, 5, "finetune");
  {
    auto f = Make(path, {pre, ft}, SchedulerOptions{1});
    Drain(f.sched.get(), [](const jobs::JobSpec&) { return Status::Internal("bug"); });
    EXPECT_EQ(f.sched->Counts().blocked, 1);
  }
  {
    SchedulerOptions keep{1};
    keep.retry_failed = false;
    auto f = Make(path, {pre, ft}, keep);
    EXPECT_EQ(f.sched->NextReady("t0")->kind, Assignment::Kind::kDone);
    EXPECT_EQ(f.sched->Counts().failed, 1);
  }
  auto f = Make(path, {pre, ft}, SchedulerOptions{1});
  auto order = Drain(f.sched.get(), [](const jobs::JobSpec&) { return Status::Ok(); });
  EXPECT_EQ(order.size(), 2u);
  EXPECT_EQ(f.sched->Counts().done, 2);
}

TEST(Scheduler, InterruptedJobGoesBackToPendingWithoutSpendingAnAttempt) {
  auto job = MakeJob("e", "m", "x", 1);
  auto f = Make(testing::TestDir() + "/l.db", {job});
  auto a = f.sched->NextReady("t0");
  ASSERT_EQ(a->kind, Assignment::Kind::kJob);
  ASSERT_TRUE(f.sched->OnInterrupted(job.spec.id).ok());
  auto row = *f.ledger->GetJob(job.spec.id);
  EXPECT_EQ(row->status, JobStatus::kPending);
  EXPECT_EQ(row->attempts, 0);
  EXPECT_TRUE(row->owner.empty());
  EXPECT_EQ(f.sched->NextReady("t0")->kind, Assignment::Kind::kJob);
}

TEST(Scheduler, WaitsWhileAnotherSchedulerRunsTheOnlyReadyJob) {
  std::string path = testing::TestDir() + "/l.db";
  auto pre = MakeJob("e", "m", "pre", 1, {}, 5, "pretrain");
  auto ft = MakeJob("e", "m", "ft", 1, {pre.spec.id}, 5, "finetune");
  SchedulerOptions a_opts, b_opts;
  a_opts.owner = ThisOwner();
  b_opts.owner = "other-host:1:bbbbbbbb";  // a second live claimant (heartbeats fresh)
  auto a = Make(path, {pre, ft}, a_opts);
  auto b = Make(path, {pre, ft}, b_opts);
  auto got = a.sched->NextReady("a");
  ASSERT_EQ(got->kind, Assignment::Kind::kJob);
  // b has nothing to run and says why (helper-56's audit: a run waiting on a process of another node sat
  // silent for minutes), naming the job, its owner and --stale-after.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(b.sched->NextReady("b")->kind, Assignment::Kind::kWait);  // its claim lost: the owner is not read yet
  EXPECT_EQ(b.sched->NextReady("b")->kind, Assignment::Kind::kWait);  // refreshed: the owner is known
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("waiting: 1 job of this sweep runs under other owners (e.g. job " + pre.spec.id.substr(0, 12) +
                      " of " + ThisOwner()),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("--stale-after 600 s"), std::string::npos) << said;
  ASSERT_TRUE(a.sched->OnFinished(pre.spec.id, FakeResult(pre.spec), {}).ok());
  auto next = b.sched->NextReady("b");  // b sees pre done in the ledger: ft is ready for b
  ASSERT_EQ(next->kind, Assignment::Kind::kJob);
  EXPECT_EQ(next->job->spec.id, ft.spec.id);
  EXPECT_EQ(a.sched->NextReady("a")->kind, Assignment::Kind::kWait);
  ASSERT_TRUE(b.sched->OnFinished(ft.spec.id, FakeResult(ft.spec), {}).ok());
  EXPECT_EQ(a.sched->NextReady("a")->kind, Assignment::Kind::kDone);
}

TEST(Scheduler, RejectsPlansWithUnknownDuplicateOrLaterDependencies) {
  std::string dir = testing::TestDir();
  auto ledger = std::move(Ledger::Open(dir + "/l.db")).value();
  auto a = MakeJob("e", "m", "a", 1);
  auto b = MakeJob("e", "m", "b", 1, {"unknown-id"});
  auto s = Scheduler::Create(ledger.get(), 1, {a, b}, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("not in the plan"), std::string::npos);
  EXPECT_FALSE(Scheduler::Create(ledger.get(), 1, {a, a}, {}).ok());
  auto c = MakeJob("e", "m", "c", 1, {a.spec.id});
  auto later = Scheduler::Create(ledger.get(), 1, {c, a}, {});
  ASSERT_FALSE(later.ok());
  EXPECT_NE(later.status().message().find("does not come before"), std::string::npos);
}

// Issue 13: a done job whose kept checkpoint is gone (deleted) or unusable (corrupt)
// runs again before its dependents instead of failing them for ever.
TEST(Scheduler, LostOrCorruptCheckpointOfADoneJobRunsItAgainBeforeItsDependents) {
  for (bool corrupt : {false, true}) {
    SCOPED_TRACE(corrupt ? "corrupt" : "deleted");
    const std::string dir = testing::TestDir() + (corrupt ? "/c" : "/d");
    std::filesystem::create_directories(dir);
    const std::string ckpt = dir + "/pre.ckpt";
    auto pre = MakeJob("e", "m", "pre", 1, {}, 5, "pretrain");
    pre.spec.keep_checkpoint = true;
    auto ft = MakeJob("e", "m", "ft", 1, {pre.spec.id}, 5, "finetune");
    auto ft2 = MakeJob("e", "m", "ft2", 1, {pre.spec.id}, 5, "finetune");
    SchedulerOptions o;
    o.check_checkpoint = [](const std::string& path) {
      std::ifstream in(path);
      std::string text;
      in >> text;
      return text == "model" ? Status::Ok() : Status::Corruption(path + ": checksum mismatch");
    };
    auto finish = [&](Scheduler* s, const protocols::PlannedJob* j) {
      jobs::JobResult r = FakeResult(j->spec);
      if (j->spec.id == pre.spec.id) {
        std::ofstream(ckpt) << "model";
        r.checkpoint = ckpt;
      }
      EXPECT_TRUE(s->OnFinished(j->spec.id, r, {}).ok());
    };
    {
      // First run: only the producer finishes (the process ends before its dependents run).
      auto f = Make(dir + "/l.db", {pre, ft, ft2}, o);
      auto a = f.sched->NextReady("t0");
      ASSERT_TRUE(a.ok() && a->kind == Assignment::Kind::kJob);
      ASSERT_EQ(a->job->spec.id, pre.spec.id);
      finish(f.sched.get(), a->job);
    }
    if (corrupt)
      std::ofstream(ckpt) << "garbage";
    else
      std::filesystem::remove(ckpt);
    auto f = Make(dir + "/l.db", {pre, ft, ft2}, o);
    EXPECT_EQ(f.sched->Counts().skipped, 1);
    std::vector<std::string> order;
    for (int guard = 0; guard < 20; ++guard) {
      auto a = f.sched->NextReady("t0");
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      if (a->kind == Assignment::Kind::kDone) break;
      ASSERT_EQ(a->kind, Assignment::Kind::kJob);
      order.push_back(a->job->spec.id);
      finish(f.sched.get(), a->job);
    }
    EXPECT_EQ(order, (std::vector<std::string>{pre.spec.id, ft.spec.id, ft2.spec.id}));
    auto c = f.sched->Counts();
    EXPECT_EQ(c.done, 3);
    EXPECT_EQ(c.skipped, 0) << "the producer ran again here";
    EXPECT_EQ(c.finished_here, 3);
    auto row = *f.ledger->GetJob(pre.spec.id);
    EXPECT_EQ(row->status, JobStatus::kDone);
    EXPECT_EQ(row->attempts, 1);
    EXPECT_EQ((*f.ledger->GetJob(ft.spec.id))->status, JobStatus::kDone);
  }
}

TEST(Scheduler, ACheckpointThatStaysUnreadableRerunsItsProducerOnlyOnce) {
  const std::string dir = testing::TestDir();
  auto pre = MakeJob("e", "m", "pre", 1, {}, 5, "pretrain");
  pre.spec.keep_checkpoint = true;
  auto ft = MakeJob("e", "m", "ft", 1, {pre.spec.id}, 5, "finetune");
  SchedulerOptions o;
  o.check_checkpoint = [](const std::string& path) { return Status::Corruption(path + ": unreadable here"); };
  auto f = Make(dir + "/l.db", {pre, ft}, o);
  std::vector<std::string> order;
  for (int guard = 0; guard < 20; ++guard) {
    auto a = f.sched->NextReady("t0");
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    if (a->kind == Assignment::Kind::kDone) break;
    ASSERT_EQ(a->kind, Assignment::Kind::kJob);
    order.push_back(a->job->spec.id);
    jobs::JobResult r = FakeResult(a->job->spec);
    if (a->job->spec.id == pre.spec.id) {
      std::ofstream(dir + "/pre.ckpt") << "model";
      r.checkpoint = dir + "/pre.ckpt";
    }
    ASSERT_TRUE(f.sched->OnFinished(a->job->spec.id, r, {}).ok());
  }
  // pre, then pre again (its checkpoint looked unusable), then ft: no endless loop.
  EXPECT_EQ(order, (std::vector<std::string>{pre.spec.id, pre.spec.id, ft.spec.id}));
}

// Issue 15: asking for work while nothing is ready and a job runs here (an MPI
// coordinator whose idle rank asks after every message) costs no scan of the
// sweep: no ledger refresh before the spacing, no walk over every node. Before,
// each such question re-read all 20 000 jobs' states (tens of ms each).
TEST(Scheduler, WaitingForARunningJobDoesNotRereadTheSweep) {
  auto pre = MakeJob("e", "m", "pretrain", 1, {}, 5, "pretrain");
  std::vector<protocols::PlannedJob> jobs = {pre};
  for (int k = 0; k < 20000; ++k)
    jobs.push_back(MakeJob("e", "m", "ft" + std::to_string(k), 1, {pre.spec.id}, 5, "finetune"));
  SchedulerOptions o;
  o.refresh_s = 3600;  // spacing out of the way: only "nothing ready" could trigger a refresh
  auto f = Make(testing::TestDir() + "/l.db", jobs, o);
  ASSERT_TRUE(f.sched);
  auto a = f.sched->NextReady("t0");
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->kind, Assignment::Kind::kJob);
  ASSERT_EQ(a->job->spec.id, pre.spec.id);
  auto t0 = std::chrono::steady_clock::now();
  for (int q = 0; q < 200; ++q) {
    auto w = f.sched->NextReady("t1");
    ASSERT_TRUE(w.ok());
    ASSERT_EQ(w->kind, Assignment::Kind::kWait);
    ASSERT_FALSE(f.sched->Done());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 0.5) << "200 questions while a job runs here took " << secs << " s";
  EXPECT_EQ(f.sched->RunningHere(), std::vector<std::string>{pre.spec.id});
  // The local completion makes the dependents ready at once, without a refresh.
  ASSERT_TRUE(f.sched->OnFinished(pre.spec.id, FakeResult(pre.spec), {}).ok());
  auto next = f.sched->NextReady("t1");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->kind, Assignment::Kind::kJob);
  EXPECT_FALSE(f.sched->Done());
}

// --- Packs (issue 16) ---

// A supervised MLP job that packs (jobs::PackKey non-empty); `hidden` shapes the
// model, so jobs with different `hidden` never share a pack.
protocols::PlannedJob Packable(const std::string& column, uint64_t seed, int hidden,
                               std::vector<std::string> deps = {}) {
  auto j = MakeJob("e", "concat_mlp", column, seed, std::move(deps));
  j.spec.model = {{"name", "concat_mlp"}, {"hidden", {hidden}}};
  j.spec.id = j.spec.ComputeId();
  return j;
}

std::vector<std::string> Ids(const Assignment& a) {
  std::vector<std::string> ids;
  for (const auto& m : a.members) ids.push_back(m.job->spec.id);
  return ids;
}

SchedulerOptions Packing(int k) {
  SchedulerOptions o;
  o.max_pack = k;
  return o;
}

// Hands out packs of up to `k` until the sweep is done, finishing every member: the sizes
// of the packs in hand-out order.
std::vector<size_t> DrainPackSizes(Scheduler* sched, int k) {
  std::vector<size_t> sizes;
  for (;;) {
    auto a = sched->NextPack("t0", k);
    EXPECT_TRUE(a.ok());
    if (!a.ok() || a->kind == Assignment::Kind::kDone) break;
    sizes.push_back(a->members.size());
    for (const auto& m : a->members) EXPECT_TRUE(sched->OnFinished(m.job->spec.id, FakeResult(m.job->spec), {}).ok());
  }
  return sizes;
}

TEST(SchedulerPacks, FormOnlyFromEqualKeysUpToKInTheUsualOrder) {
  auto a0 = Packable("a0", 1, 8), a1 = Packable("a1", 1, 8), a2 = Packable("a2", 1, 8), a3 = Packable("a3", 1, 8),
       a4 = Packable("a4", 1, 8);
  auto b0 = Packable("b0", 1, 16), b1 = Packable("b1", 1, 16), b2 = Packable("b2", 1, 16);
  auto m0 = MakeJob("e", "m", "m0", 1), m1 = MakeJob("e", "m", "m1", 1);
  ASSERT_FALSE(jobs::PackKey(a0.spec).empty());
  ASSERT_EQ(jobs::PackKey(a0.spec), jobs::PackKey(a4.spec));
  ASSERT_NE(jobs::PackKey(a0.spec), jobs::PackKey(b0.spec));
  ASSERT_TRUE(jobs::PackKey(m0.spec).empty());
  auto f = Make(testing::TestDir() + "/l.db", {a0, b0, m0, a1, a2, a3, a4, b1, b2, m1}, Packing(4));
  ASSERT_TRUE(f.sched);
  std::vector<std::vector<std::string>> packs;
  for (;;) {
    auto a = f.sched->NextPack("t0", 4);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    if (a->kind == Assignment::Kind::kDone) break;
    ASSERT_EQ(a->kind, Assignment::Kind::kJob);
    ASSERT_FALSE(a->members.empty());
    EXPECT_EQ(a->members[0].job, a->job);
    for (const auto& m : a->members) EXPECT_EQ(m.attempt, 1);
    packs.push_back(Ids(*a));
    for (const auto& m : a->members) ASSERT_TRUE(f.sched->OnFinished(m.job->spec.id, FakeResult(m.job->spec), {}).ok());
  }
  using V = std::vector<std::string>;
  std::vector<V> want = {V{a0.spec.id, a1.spec.id, a2.spec.id, a3.spec.id}, V{b0.spec.id, b1.spec.id, b2.spec.id},
                         V{m0.spec.id}, V{a4.spec.id}, V{m1.spec.id}};
  EXPECT_EQ(packs, want);
  EXPECT_EQ(f.sched->Counts().finished_here, 10);
}

TEST(SchedulerPacks, MaxPackOneOrKOneHandsOutSingleJobs) {
  std::vector<protocols::PlannedJob> jobs = {Packable("a0", 1, 8), Packable("a1", 1, 8), Packable("a2", 1, 8)};
  auto off = Make(testing::TestDir() + "/off.db", jobs);  // max_pack 1 (the default)
  auto a = off.sched->NextPack("t0", 8);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->members.size(), 1u);
  auto on = Make(testing::TestDir() + "/on.db", jobs, Packing(8));
  auto b = on.sched->NextPack("t0", 1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->members.size(), 1u);
  auto c = on.sched->NextReady("t0");  // NextReady never packs
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->members.size(), 1u);
}

TEST(SchedulerPacks, ShareLeavesReadyJobsForOtherIdleWorkers) {
  std::vector<protocols::PlannedJob> jobs;
  for (int k = 0; k < 9; ++k) jobs.push_back(Packable("a" + std::to_string(k), 1, 8));
  auto f = Make(testing::TestDir() + "/l.db", jobs, Packing(32));
  auto a = f.sched->NextPack("t0", 32, /*share=*/2);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->members.size(), 5u);  // ceil(9 / 2)
  auto b = f.sched->NextPack("t1", 32, /*share=*/1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->members.size(), 4u);
  EXPECT_EQ(f.sched->RunningHere().size(), 9u);
}

// Issue 16 scheduling: `share` counts every worker, busy or not, and a key's jobs already
// running here: 12 ready jobs on 2 workers are two packs of 6, whichever worker asks first
// and whatever the other one runs. (The old rule, ceil(ready / idle workers), gave the second
// worker ceil(6 / 2) = 3, and a worker asking while the other ran a single job took all 12.)
TEST(SchedulerPacks, ShareCountsTheKeysRunningJobsSoTwoWorkersGetEqualPacks) {
  std::vector<protocols::PlannedJob> jobs;
  for (int k = 0; k < 12; ++k) jobs.push_back(Packable("a" + std::to_string(k), 1, 8));
  auto f = Make(testing::TestDir() + "/l.db", jobs, Packing(32));
  auto a = f.sched->NextPack("t0", 32, /*share=*/2);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->members.size(), 6u);
  auto b = f.sched->NextPack("t1", 32, /*share=*/2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->members.size(), 6u);
  EXPECT_EQ(f.sched->RunningHere().size(), 12u);
  // Finished members no longer count: a key's late jobs are shared among the workers again.
  for (const auto& m : a->members) ASSERT_TRUE(f.sched->OnFinished(m.job->spec.id, FakeResult(m.job->spec), {}).ok());
  for (const auto& m : b->members) ASSERT_TRUE(f.sched->OnFinished(m.job->spec.id, FakeResult(m.job->spec), {}).ok());
  auto done = f.sched->NextPack("t0", 32, 2);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->kind, Assignment::Kind::kDone);
}

// The cap per key (SchedulerOptions::pack_cap), asked once per key: a key with
// big members packs fewer at once, another key keeps its own cap.
TEST(SchedulerPacks, PackCapIsPerKeyAndAskedOncePerKey) {
  std::vector<protocols::PlannedJob> jobs;
  for (int k = 0; k < 7; ++k) jobs.push_back(Packable("big" + std::to_string(k), 1, 512));
  for (int k = 0; k < 7; ++k) jobs.push_back(Packable("small" + std::to_string(k), 1, 8));
  SchedulerOptions o = Packing(32);
  int asked = 0;
  o.pack_cap = [&asked](const jobs::JobSpec& spec) {
    ++asked;
    return spec.model["hidden"][0].get<int>() == 512 ? 3 : 5;
  };
  auto f = Make(testing::TestDir() + "/l.db", jobs, o);
  ASSERT_TRUE(f.sched);
  EXPECT_EQ(asked, 2);
  std::vector<size_t> sizes = DrainPackSizes(f.sched.get(), 32);
  // Protocol order: the big key first (3 + 3 + 1), then the small one (5 + 2).
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 1, 5, 2}));
  EXPECT_EQ(asked, 2);
}

// Issue 15: pack keys (and pack_cap) are computed for jobs as they become ready, not for
// every job at Create: a finished protocol computes none, and jobs waiting for a dependency
// get theirs once it is done, packing as before.
TEST(SchedulerPacks, PackKeysAreComputedOnlyForJobsThatBecomeReady) {
  std::string path = testing::TestDir() + "/l.db";
  auto pre = MakeJob("e", "m", "pre", 1, {}, 5, "pretrain");
  std::vector<protocols::PlannedJob> jobs = {pre, Packable("small", 1, 8)};
  for (int k = 0; k < 3; ++k) jobs.push_back(Packable("big" + std::to_string(k), 1, 512, {pre.spec.id}));
  SchedulerOptions o = Packing(32);
  std::vector<int> asked;  // hidden size of the job each pack_cap question was about
  o.pack_cap = [&asked](const jobs::JobSpec& spec) {
    asked.push_back(spec.model["hidden"][0].get<int>());
    return 32;
  };
  {
    auto f = Make(path, jobs, o);
    ASSERT_TRUE(f.sched);
    EXPECT_EQ(asked, std::vector<int>{8});  // the big jobs wait for `pre`: no key yet
    auto first = f.sched->NextPack("t0", 32);  // `pre` first (most dependents)
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(first->kind, Assignment::Kind::kJob);
    ASSERT_EQ(first->job->spec.id, pre.spec.id);
    ASSERT_TRUE(f.sched->OnFinished(pre.spec.id, FakeResult(pre.spec), {}).ok());
    EXPECT_EQ(asked, (std::vector<int>{8, 512}));
    std::vector<size_t> sizes = DrainPackSizes(f.sched.get(), 32);
    std::sort(sizes.begin(), sizes.end());
    EXPECT_EQ(sizes, (std::vector<size_t>{1, 3}));  // the three big jobs in one pack, `small` alone
  }
  asked.clear();
  auto again = Make(path, jobs, o);  // every job done: nothing becomes ready
  ASSERT_TRUE(again.sched);
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(again.sched->Counts().skipped, 5);
  auto d = again.sched->NextPack("t0", 32);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind, Assignment::Kind::kDone);
}

TEST(SchedulerPacks, NeverIncludeBlockedWaitingOrRunningElsewhereJobs) {
  std::string path = testing::TestDir() + "/l.db";
  auto pre = MakeJob("e", "m", "pre", 1, {}, 5, "pretrain");
  auto bad = MakeJob("e", "m", "bad", 1, {}, 5, "pretrain");
  auto a0 = Packable("a0", 1, 8), a1 = Packable("a1", 1, 8), a4 = Packable("a4", 1, 8);
  auto waiting = Packable("a2", 1, 8, {pre.spec.id});   // its dependency is not done
  auto blocked = Packable("a3", 1, 8, {bad.spec.id});   // its dependency failed
  std::vector<protocols::PlannedJob> jobs = {pre, bad, a0, a1, waiting, blocked, a4};
  SchedulerOptions other_opts = Packing(8);
  other_opts.owner = "other-host:1:bbbbbbbb";  // a second live claimant
  auto other = Make(path, jobs, other_opts);
  ClaimOptions co;
  ASSERT_EQ(other.ledger->Claim(a1.spec.id, other_opts.owner, co)->outcome, ClaimOutcome::kClaimed);
  ASSERT_EQ(other.ledger->Claim(bad.spec.id, other_opts.owner, co)->outcome, ClaimOutcome::kClaimed);
  ASSERT_TRUE(other.ledger->Fail(bad.spec.id, other_opts.owner, "broken", /*retry=*/false).ok());
  SchedulerOptions o = Packing(8);
  o.owner = ThisOwner();
  o.retry_failed = false;
  auto f = Make(path, jobs, o);
  ASSERT_TRUE(f.sched);
  EXPECT_EQ((*f.ledger->GetJob(blocked.spec.id))->status, JobStatus::kBlocked);
  auto first = f.sched->NextPack("t0", 8);  // pre (most dependents) comes alone
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(Ids(*first), std::vector<std::string>{pre.spec.id});
  auto pack = f.sched->NextPack("t0", 8);
  ASSERT_TRUE(pack.ok());
  EXPECT_EQ(Ids(*pack), (std::vector<std::string>{a0.spec.id, a4.spec.id}));
  // Once pre is done its dependent is ready and comes in a pack of its own: no waiting for members.
  ASSERT_TRUE(f.sched->OnFinished(pre.spec.id, FakeResult(pre.spec), {}).ok());
  auto later = f.sched->NextPack("t0", 8);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(Ids(*later), std::vector<std::string>{waiting.spec.id});
  EXPECT_EQ((*f.ledger->GetJob(a1.spec.id))->owner, other_opts.owner);
}

TEST(SchedulerPacks, EachMemberIsRecordedSeparatelyAndAFailingMemberFailsAlone) {
  auto a0 = Packable("a0", 1, 8), a1 = Packable("a1", 1, 8), a2 = Packable("a2", 1, 8);
  auto dep = MakeJob("e", "m", "dep", 1, {a1.spec.id}, 5, "eval");  // blocked when a1 fails for good
  auto f = Make(testing::TestDir() + "/l.db", {a0, a1, a2, dep}, Packing(8));
  auto pack = f.sched->NextPack("t0", 8);
  ASSERT_TRUE(pack.ok());
  ASSERT_EQ(Ids(*pack), (std::vector<std::string>{a1.spec.id, a0.spec.id, a2.spec.id}));  // a1 has a dependent
  ASSERT_TRUE(f.sched->OnFinished(a0.spec.id, FakeResult(a0.spec), {}).ok());
  ASSERT_TRUE(f.sched->OnFailed(a1.spec.id, Status::Internal("diverged")).ok());
  ASSERT_TRUE(f.sched->OnFinished(a2.spec.id, FakeResult(a2.spec), {}).ok());
  EXPECT_EQ((*f.ledger->GetJob(a0.spec.id))->status, JobStatus::kDone);
  EXPECT_EQ((*f.ledger->GetJob(a2.spec.id))->status, JobStatus::kDone);
  auto row1 = *f.ledger->GetJob(a1.spec.id);
  EXPECT_EQ(row1->status, JobStatus::kPending);  // its own retry, the others are untouched
  EXPECT_EQ(row1->attempts, 1);
  EXPECT_EQ(f.sched->Counts().retried_here, 1);
  // The retry comes alone (nothing else of its key is ready) and fails for good.
  auto again = f.sched->NextPack("t0", 8);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(Ids(*again), std::vector<std::string>{a1.spec.id});
  EXPECT_EQ(again->members[0].attempt, 2);
  ASSERT_TRUE(f.sched->OnFailed(a1.spec.id, Status::Internal("diverged")).ok());
  EXPECT_EQ((*f.ledger->GetJob(a1.spec.id))->status, JobStatus::kFailed);
  EXPECT_EQ((*f.ledger->GetJob(dep.spec.id))->status, JobStatus::kBlocked);
  EXPECT_EQ((*f.ledger->GetJob(a0.spec.id))->status, JobStatus::kDone);
  EXPECT_EQ((*f.ledger->GetJob(a2.spec.id))->status, JobStatus::kDone);
  EXPECT_TRUE(f.sched->Done());
}

TEST(SchedulerPacks, InterruptedMembersGoBackToPendingWithoutSpendingAnAttempt) {
  auto a0 = Packable("a0", 1, 8), a1 = Packable("a1", 1, 8), a2 = Packable("a2", 1, 8);
  auto f = Make(testing::TestDir() + "/l.db", {a0, a1, a2}, Packing(8));
  auto pack = f.sched->NextPack("t0", 8);
  ASSERT_TRUE(pack.ok());
  ASSERT_EQ(pack->members.size(), 3u);
  std::map<std::string, double> claimed_beat;
  for (const auto* j : {&a0, &a1, &a2}) claimed_beat[j->spec.id] = (*f.ledger->GetJob(j->spec.id))->heartbeat_at;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(f.sched->Heartbeat().ok());  // stamps every member
  for (const auto* j : {&a0, &a1, &a2})
    EXPECT_GT((*f.ledger->GetJob(j->spec.id))->heartbeat_at, claimed_beat[j->spec.id]) << "member not heartbeaten";
  ASSERT_TRUE(f.sched->OnFinished(a0.spec.id, FakeResult(a0.spec), {}).ok());
  ASSERT_TRUE(f.sched->OnInterrupted(a1.spec.id).ok());
  ASSERT_TRUE(f.sched->OnInterrupted(a2.spec.id).ok());
  for (const auto* j : {&a1, &a2}) {
    auto row = *f.ledger->GetJob(j->spec.id);
    EXPECT_EQ(row->status, JobStatus::kPending);
    EXPECT_EQ(row->attempts, 0);
    EXPECT_TRUE(row->owner.empty());
  }
  EXPECT_EQ((*f.ledger->GetJob(a0.spec.id))->status, JobStatus::kDone);
  auto again = f.sched->NextPack("t0", 8);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Ids(*again), (std::vector<std::string>{a1.spec.id, a2.spec.id}));
  for (const auto& m : again->members) EXPECT_EQ(m.attempt, 1);
}

}  // namespace
}  // namespace emosweep::orchestrator
