// tests/orchestrator/ledger_gc_test.cc: `ledger gc` and `ledger vacuum` (issue 15):
// what no kept protocol references goes, everything a kept protocol references
// stays, superseded attempts lose their stale rows, and a running sweep stops it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orchestrator/runner.h"
#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeExecutor;

protocols::Protocol Named(const std::string& name, std::vector<protocols::PlannedJob> jobs) {
  protocols::Protocol p;
  p.name = name;
  p.path = name + ".toml";
  p.effective = {{"name", name}};
  p.jobs = std::move(jobs);
  return p;
}

RunOptions Quiet() {
  RunOptions o;
  o.parallel = 1;
  o.progress = false;
  o.poll_s = 0.01;
  return o;
}

// Raw SQL answers only on a read-only connection: a second one, beside the writer.
int64_t Count(Ledger* l, const std::string& sql) {
  auto ro = Ledger::Open(l->path(), {/*read_only=*/true});
  EXPECT_TRUE(ro.ok()) << ro.status().ToString();
  if (!ro.ok()) return -1;
  auto q = (*ro)->Query(sql);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() ? (*q)["rows"][0][0].get<int64_t>() : -1;
}

std::vector<std::string> Ids(const protocols::Protocol& p) {
  std::vector<std::string> ids;
  for (const auto& j : p.jobs) ids.push_back(j.spec.id);
  return ids;
}

struct Fixture {
  std::string path = testing::TestDir() + "/l.db";
  protocols::Protocol kept = Named("kept", testing::MakeGrid("now", {"good", "mid"}, {"a"}, 2));   // 4 jobs
  protocols::Protocol old = Named("old", testing::MakeGrid("then", {"base"}, {"a", "b"}, 2));     // 4 jobs
  protocols::Protocol gone = Named("gone", testing::MakeGrid("never", {"mid"}, {"c"}, 3));        // 3 jobs

  // kept and old run to the end; gone's jobs are registered and one of them failed.
  void Fill() {
    auto l = std::move(Ledger::Open(path)).value();
    FakeExecutor fake;
    Executor exec = [&fake](const jobs::JobSpec& s, const jobs::JobContext& c) { return fake(s, c); };
    ASSERT_TRUE(RunSweep(kept, l.get(), exec, Quiet()).ok());
    ASSERT_TRUE(RunSweep(old, l.get(), exec, Quiet()).ok());
    auto sweep = l->BeginSweep({"gone", "gone.toml", "h", {}, {}});
    ASSERT_TRUE(sweep.ok());
    ASSERT_TRUE(l->RegisterJobs(*sweep, gone.jobs).ok());
    ASSERT_TRUE(l->FinishSweep(*sweep, "interrupted", {}).ok());
    ClaimOptions co;
    ASSERT_TRUE(l->Claim(gone.jobs[0].spec.id, ThisOwner(), co).ok());
    ASSERT_TRUE(l->Fail(gone.jobs[0].spec.id, ThisOwner(), "boom", /*retry=*/false).ok());
  }
};

TEST(LedgerGc, DryRunCountsAndChangesNothingThenYesDropsExactlyThat) {
  Fixture f;
  f.Fill();
  auto l = std::move(Ledger::Open(f.path)).value();
  const int64_t preds_before = Count(l.get(), "SELECT count(*) FROM predictions");
  ASSERT_GT(preds_before, 0) << "the fake executor writes predictions";
  auto dry = l->CollectGarbage(Ids(f.kept), /*apply=*/false);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_FALSE(dry->applied);
  EXPECT_EQ(dry->unreferenced_jobs, 7);         // old's 4 + gone's 3
  EXPECT_EQ(dry->dropped_jobs, 3);              // gone's: pending, pending, failed
  EXPECT_EQ(dry->dropped_prediction_jobs, 4);   // old's, all done
  EXPECT_GT(dry->prediction_rows, 0);
  EXPECT_GT(dry->bytes, 0);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM jobs"), 11) << "a dry run drops nothing";
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM predictions"), preds_before);

  auto r = l->CollectGarbage(Ids(f.kept), /*apply=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->applied);
  EXPECT_EQ(r->dropped_jobs, 3);
  EXPECT_EQ(r->prediction_rows, dry->prediction_rows);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM jobs"), 8);
  for (const auto& j : f.gone.jobs)
    EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM jobs WHERE id = '" + j.spec.id + "'"), 0);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM sweep_jobs WHERE job_id NOT IN (SELECT id FROM jobs)"), 0);
  // Each sweep's kept job count (schema v2, `ledger status`) follows its dropped links.
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM sweeps s WHERE s.jobs IS NOT (SELECT count(*) FROM sweep_jobs sj "
                           "WHERE sj.sweep_id = s.id)"), 0);
  for (const auto& j : f.old.jobs) {
    const std::string w = " WHERE job_id = '" + j.spec.id + "'";
    EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM predictions" + w), 0);
    EXPECT_GT(Count(l.get(), "SELECT count(*) FROM metrics" + w), 0) << "a done job's metrics stay";
  }
  for (const auto& j : f.kept.jobs)
    EXPECT_GT(Count(l.get(), "SELECT count(*) FROM predictions WHERE job_id = '" + j.spec.id + "'"), 0);
  EXPECT_EQ(r->file_bytes_after, r->file_bytes_before - r->bytes);
  // Nothing left to drop the second time.
  auto again = l->CollectGarbage(Ids(f.kept), false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->dropped_jobs, 0);
  EXPECT_EQ(again->prediction_rows, 0);
  EXPECT_EQ(again->stale_result_rows, 0);
}

TEST(LedgerGc, KeepingEveryProtocolDropsNothingButSupersededRows) {
  Fixture f;
  f.Fill();
  auto l = std::move(Ledger::Open(f.path)).value();
  // A done job whose checkpoint was lost goes back to pending, its old rows still there.
  const std::string victim = f.kept.jobs[1].spec.id;
  ASSERT_TRUE(l->Supersede(victim, "checkpoint lost").ok());
  const int64_t victim_rows = Count(l.get(), "SELECT count(*) FROM metrics WHERE job_id = '" + victim + "'");
  ASSERT_GT(victim_rows, 0);
  std::vector<std::string> all = Ids(f.kept), o = Ids(f.old), g = Ids(f.gone);
  all.insert(all.end(), o.begin(), o.end());
  all.insert(all.end(), g.begin(), g.end());
  auto r = l->CollectGarbage(all, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->unreferenced_jobs, 0);
  EXPECT_EQ(r->dropped_jobs, 0);
  EXPECT_EQ(r->prediction_rows, 0);
  EXPECT_GT(r->stale_result_rows, victim_rows - 1);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM jobs"), 11);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM metrics WHERE job_id = '" + victim + "'"), 0);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM jobs WHERE id = '" + victim + "' AND status = 'pending'"), 1);
}

// Schema v3: gc drops the links of dropped jobs from the sweep that holds them, so
// every sweep sharing those links (a re-run of the same list) loses them as its own copy
// would have; the holder no longer holds the list its job set hash names, so a later run
// of that list links it afresh instead of sharing what is left.
TEST(LedgerGc, SweepsSharingLinksLoseTheDroppedJobsAndTheJobSetIsNotReused) {
  Fixture f;
  f.Fill();  // sweeps 1 (kept), 2 (old), 3 (gone: holds its links)
  auto l = std::move(Ledger::Open(f.path)).value();
  auto sweep = l->BeginSweep({"gone", "gone.toml", "h", {}, {}});
  ASSERT_TRUE(sweep.ok());
  ASSERT_TRUE(l->LinkJobs(*sweep, Ids(f.gone)).ok());  // sweep 4 shares sweep 3's links
  ASSERT_TRUE(l->FinishSweep(*sweep, "interrupted", {}).ok());
  ASSERT_EQ(Count(l.get(), "SELECT links_from FROM sweeps WHERE id = 4"), 3);
  const int64_t rows = Count(l.get(), "SELECT count(*) FROM sweep_jobs");
  auto r = l->CollectGarbage(Ids(f.kept), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dropped_jobs, 3);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM sweep_jobs"), rows - 3);
  // Every sweep's kept count is what its links (its own or the ones it shares) say.
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM sweeps s WHERE s.jobs IS NOT (SELECT count(*) FROM sweep_links sl "
                           "WHERE sl.sweep_id = s.id)"), 0);
  auto sweeps = l->Sweeps();
  ASSERT_TRUE(sweeps.ok());
  std::vector<int64_t> jobs;
  for (const auto& s : *sweeps) jobs.push_back(s["jobs"].get<int64_t>());
  EXPECT_EQ(jobs, (std::vector<int64_t>{4, 4, 0, 0}));
  for (int64_t s : {3, 4}) EXPECT_TRUE(l->SweepStates(s)->empty()) << s;
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM sweeps WHERE id = 3 AND job_set IS NULL"), 1);
  // gone's list again (its jobs registered anew): its own links, all three.
  auto again = l->BeginSweep({"gone", "gone.toml", "h", {}, {}});
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(l->RegisterJobs(*again, f.gone.jobs).ok());
  EXPECT_EQ(l->SweepStates(*again)->size(), 3u);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM sweeps WHERE id = 5 AND links_from IS NULL"), 1);
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM sweep_jobs"), rows);
}

TEST(LedgerGc, RefusesWhileAJobIsRunningAndDropsNothing) {
  Fixture f;
  f.Fill();
  auto l = std::move(Ledger::Open(f.path)).value();
  ClaimOptions co;
  auto c = l->Claim(f.gone.jobs[1].spec.id, ThisOwner(), co);  // a live sweep (this process) runs it
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->outcome, ClaimOutcome::kClaimed);
  auto r = l->CollectGarbage(Ids(f.kept), true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("running"), std::string::npos) << r.status().message();
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM jobs"), 11);
  auto v = l->Vacuum();
  EXPECT_FALSE(v.ok());
  // Dry run still answers (read-only; nothing is dropped).
  auto dry = l->CollectGarbage(Ids(f.kept), false);
  EXPECT_TRUE(dry.ok());
  ASSERT_TRUE(l->Release(f.gone.jobs[1].spec.id, ThisOwner()).ok());
  auto v2 = l->Vacuum();
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_GT(v2->second, 0);
}

// helper-69: after a kill -9 (a job left 'running' under a dead process) gc --yes and vacuum refused until a run
// took the job over. The job goes back to pending, its attempt not counted, and both proceed; a dry run lists
// every dropped id (the JSON report was cut at 10).
TEST(LedgerGc, AJobOfADeadProcessDoesNotStopGcOrVacuum) {
  Fixture f;
  f.Fill();
  auto l = std::move(Ledger::Open(f.path)).value();
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::string host = ThisOwner().substr(0, ThisOwner().find(':'));
  const std::string dead_owner = host + ":" + std::to_string(child) + ":deadbeef";
  const std::string id = f.gone.jobs[1].spec.id;
  auto c = l->Claim(id, dead_owner, ClaimOptions{});
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->outcome, ClaimOutcome::kClaimed);
  const int64_t attempts = Count(l.get(), "SELECT attempts FROM jobs WHERE id = '" + id + "'");
  auto dry = l->CollectGarbage(Ids(f.kept), false);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->dropped_job_ids.size(), static_cast<size_t>(dry->dropped_jobs));
  auto v = l->Vacuum();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(Count(l.get(), "SELECT count(*) FROM jobs WHERE status = 'running'"), 0);
  EXPECT_EQ(Count(l.get(), "SELECT attempts FROM jobs WHERE id = '" + id + "'"), attempts - 1);
  auto r = l->CollectGarbage(Ids(f.kept), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->applied);
}

}  // namespace
}  // namespace emosweep::orchestrator
