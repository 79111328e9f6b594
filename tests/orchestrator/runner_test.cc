// Runner with the fake executor: whole sweeps, re-runs, failures, stop requests.
#include "orchestrator/runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/hash.h"
#include "jobs/pack.h"
#include "orchestrator/sqlite_util.h"

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

// Issue 15: RunSweep(&protocol) moves the jobs into the scheduler (one copy of a
// 10^6-job list, not two): the same sweep, the protocol's other fields kept.
TEST(Runner, RunSweepTakingTheProtocolMovesItsJobsAndRunsTheSame) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  const size_t n = p.jobs.size();
  Executor exec = [&fake](const jobs::JobSpec& s, const jobs::JobContext& c) { return fake(s, c); };
  auto s = RunSweep(&p, ledger.get(), exec, Quiet(2));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(p.jobs.empty());
  EXPECT_EQ(p.name, "grid");
  EXPECT_EQ(static_cast<size_t>(s->counts.finished_here), n);
  EXPECT_EQ(static_cast<size_t>(s->counts.done), n);
  auto again = GridProtocol();
  auto rerun = RunFake(again, ledger.get(), fake, Quiet());
  ASSERT_TRUE(rerun.ok());
  EXPECT_EQ(static_cast<size_t>(rerun->counts.skipped), n);  // the same identities were recorded
  EXPECT_EQ(again.jobs.size(), n);                             // the const overload copies
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

// How many link rows the ledger holds (sweep_jobs), read beside the writer.
int64_t LinkRows(const std::string& path) {
  auto ro = Ledger::Open(path, {/*read_only=*/true});
  EXPECT_TRUE(ro.ok()) << ro.status().ToString();
  if (!ro.ok()) return -1;
  auto q = (*ro)->Query("SELECT count(*) FROM sweep_jobs");
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() ? (*q)["rows"][0][0].get<int64_t>() : -1;
}

// id -> status name of a sweep's jobs, as the scheduler reads them.
std::map<std::string, std::string> StatesOf(Ledger* l, int64_t sweep) {
  auto states = l->SweepStates(sweep);
  EXPECT_TRUE(states.ok()) << states.status().ToString();
  std::map<std::string, std::string> out;
  if (states.ok())
    for (const auto& [id, st] : *states) out[id] = JobStatusName(st.status);
  return out;
}

std::map<std::string, std::string> AllDone(const protocols::Protocol& p) {
  std::map<std::string, std::string> out;
  for (const auto& j : p.jobs) out[j.spec.id] = "done";
  return out;
}

// Issue 15 (sixth pass): a re-run of an unchanged protocol, from cached ids or expanded,
// shares the links of the sweep that holds its job list: no sweep_jobs rows are added
// (a 10^6-job protocol added 10^6 a run), and every answer about the new sweep (its job
// count, its jobs' states, `ledger status --sweep`'s counts) is the first sweep's.
TEST(Runner, RerunOfAnUnchangedProtocolAddsNoLinkRows) {
  const std::string path = testing::TestDir() + "/l.db";
  auto ledger = std::move(Ledger::Open(path)).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  auto first = RunFake(p, ledger.get(), fake, Quiet());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const int64_t links = LinkRows(path);
  ASSERT_EQ(links, 18);
  std::vector<std::string> ids;
  for (const auto& j : p.jobs) ids.push_back(j.spec.id);
  auto gc_before = ledger->CollectGarbage({ids.begin(), ids.begin() + 6}, /*apply=*/false);
  ASSERT_TRUE(gc_before.ok()) << gc_before.status().ToString();
  protocols::Protocol shallow = p;
  shallow.jobs.clear();
  auto cached = RecordFinishedRerun(shallow, ids, ledger.get(), Quiet());
  ASSERT_TRUE(cached.ok()) << cached.status().ToString();
  ASSERT_TRUE(cached->has_value());
  EXPECT_EQ(LinkRows(path), links) << "a re-run from cached ids wrote link rows";
  FakeExecutor again;
  auto full = RunFake(p, ledger.get(), again, Quiet());  // the expanding path (Scheduler, RegisterJobs)
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_TRUE(again.ran().empty());
  EXPECT_EQ(full->counts.skipped, 18);
  EXPECT_EQ(LinkRows(path), links) << "an expanding re-run wrote link rows";
  auto counts1 = ledger->StatusCounts(first->sweep_id);
  ASSERT_TRUE(counts1.ok());
  auto sweeps = ledger->Sweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 3u);
  for (int64_t sweep : {first->sweep_id, (*cached)->sweep_id, full->sweep_id}) {
    EXPECT_EQ(StatesOf(ledger.get(), sweep), AllDone(p)) << "sweep " << sweep;
    auto counts = ledger->StatusCounts(sweep);
    ASSERT_TRUE(counts.ok()) << counts.status().ToString();
    EXPECT_EQ(*counts, *counts1) << "sweep " << sweep;
    EXPECT_EQ((*sweeps)[sweep - 1]["jobs"], 18) << sweeps->dump();
    EXPECT_EQ((*sweeps)[sweep - 1]["status"], "done");
  }
  // `ledger gc` answers as before the re-runs, and applied (the other 12 jobs' predictions
  // go, no job: all are done) leaves every sweep its jobs.
  auto gc_after = ledger->CollectGarbage({ids.begin(), ids.begin() + 6}, /*apply=*/false);
  ASSERT_TRUE(gc_after.ok());
  EXPECT_EQ(gc_after->unreferenced_jobs, gc_before->unreferenced_jobs);
  EXPECT_EQ(gc_after->dropped_jobs, 0);
  EXPECT_EQ(gc_after->dropped_prediction_jobs, gc_before->dropped_prediction_jobs);
  EXPECT_EQ(gc_after->prediction_rows, gc_before->prediction_rows);
  auto applied = ledger->CollectGarbage({ids.begin(), ids.begin() + 6}, /*apply=*/true);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->dropped_prediction_jobs, 12);
  EXPECT_EQ(LinkRows(path), links);
  for (int64_t sweep : {first->sweep_id, (*cached)->sweep_id, full->sweep_id}) {
    EXPECT_EQ(StatesOf(ledger.get(), sweep), AllDone(p)) << "sweep " << sweep;
    EXPECT_EQ(*ledger->StatusCounts(sweep), *counts1) << "sweep " << sweep;
  }
  EXPECT_EQ(*ledger->Sweeps(), *sweeps);
}

// A changed protocol's sweep links exactly its own job set, whichever sweeps came
// before; a re-run of either protocol afterwards finds its own.
TEST(Runner, RerunAfterAProtocolChangeLinksTheNewJobSet) {
  const std::string path = testing::TestDir() + "/l.db";
  auto ledger = std::move(Ledger::Open(path)).value();
  FakeExecutor fake;
  auto p = GridProtocol();
  auto changed = p;  // one model fewer, one seed more
  changed.jobs = testing::MakeGrid("loco", {"good", "mid"}, {"emodb", "ravdess"}, 4);
  auto reordered = p;  // the same jobs in another order: another list, its own links
  std::reverse(reordered.jobs.begin(), reordered.jobs.end());
  auto s1 = RunFake(p, ledger.get(), fake, Quiet());
  ASSERT_TRUE(s1.ok());
  auto s2 = RunFake(changed, ledger.get(), fake, Quiet());
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->counts.finished_here, 4);  // the new seed's jobs
  EXPECT_EQ(StatesOf(ledger.get(), s2->sweep_id), AllDone(changed));
  EXPECT_EQ(LinkRows(path), 18 + 16);
  auto s3 = RunFake(reordered, ledger.get(), fake, Quiet());
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(StatesOf(ledger.get(), s3->sweep_id), AllDone(p));
  EXPECT_EQ(LinkRows(path), 18 + 16 + 18);
  auto s4 = RunFake(p, ledger.get(), fake, Quiet());
  ASSERT_TRUE(s4.ok());
  std::vector<std::string> changed_ids;
  for (const auto& j : changed.jobs) changed_ids.push_back(j.spec.id);
  auto s5 = RecordFinishedRerun(changed, changed_ids, ledger.get(), Quiet());
  ASSERT_TRUE(s5.ok() && s5->has_value());
  EXPECT_EQ(LinkRows(path), 18 + 16 + 18);
  EXPECT_EQ(StatesOf(ledger.get(), s4->sweep_id), AllDone(p));
  EXPECT_EQ(StatesOf(ledger.get(), (*s5)->sweep_id), AllDone(changed));
  auto sweeps = ledger->Sweeps();
  ASSERT_TRUE(sweeps.ok());
  std::vector<int64_t> jobs;
  for (const auto& s : *sweeps) jobs.push_back(s["jobs"].get<int64_t>());
  EXPECT_EQ(jobs, (std::vector<int64_t>{18, 16, 18, 18, 16}));
}

// --- Packs (issue 16) ---

// Nine packable jobs of one key (concat_mlp, same shapes) and three that never pack (a model name no pack key knows).
protocols::Protocol PackProtocol() {
  protocols::Protocol p;
  p.name = "packs";
  p.path = "packs.toml";
  p.effective = {{"name", "packs"}};
  for (int k = 0; k < 9; ++k) {
    auto j = testing::MakeJob("e", "concat_mlp", "c" + std::to_string(k), 1);
    j.spec.model = {{"name", "concat_mlp"}, {"hidden", {8}}};
    j.spec.id = j.spec.ComputeId();
    p.jobs.push_back(j);
  }
  auto alone = testing::MakeGrid("e", {"base"}, {"x", "y", "z"}, 1);
  p.jobs.insert(p.jobs.end(), alone.begin(), alone.end());
  return p;
}

// Provenance extra_json of a job ("" when none).
std::string ExtraOf(const std::string& path, const std::string& id) {
  Db db;
  if (!db.Open(path, 1 /*SQLITE_OPEN_READONLY*/, 1000).ok()) return "";
  Stmt st(&db, "SELECT extra_json FROM provenance WHERE job_id = ?");
  st.Bind(1, id);
  auto row = st.Step();
  return row.ok() && *row ? st.Text(0) : "";
}

struct PackRecorder {
  std::mutex mu;
  std::vector<std::vector<std::string>> packs;  // member ids per pack call
  std::set<std::string> fail;                   // members that fail (the others do not)
  PackExecutor Executor() {
    return [this](const std::vector<jobs::JobSpec>& specs, const std::vector<jobs::JobContext>& ctxs) {
      std::vector<Result<jobs::JobResult>> out;
      std::vector<std::string> ids;
      for (size_t i = 0; i < specs.size(); ++i) {
        ids.push_back(specs[i].id);
        EXPECT_EQ(ctxs[i].threads, ctxs[0].threads);
        if (fail.count(specs[i].id)) {
          out.emplace_back(Status::Internal("member diverged"));
        } else {
          out.emplace_back(testing::FakeResult(specs[i]));
          out.back()->info["pack"] = {{"size", specs.size()}, {"index", i}};  // as the batched trainer records
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      packs.push_back(ids);
      return out;
    };
  }
};

TEST(RunnerPacks, PacksRunAsOneCallAndEachMemberIsRecordedUnderItsOwnIdNamingThePack) {
  const std::string path = testing::TestDir() + "/l.db";
  auto ledger = std::move(Ledger::Open(path)).value();
  FakeExecutor fake;  // single jobs
  PackRecorder rec;
  auto p = PackProtocol();
  rec.fail.insert(p.jobs[2].spec.id);
  RunOptions o = Quiet();
  o.pack = 4;
  o.pack_executor = rec.Executor();
  o.scheduler.max_attempts = 1;
  auto s = RunFake(p, ledger.get(), fake, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // 9 packable jobs in packs of at most 4 (4 + 4 + 1: the last one runs alone, through the
  // single-job executor), 3 jobs that never pack.
  ASSERT_EQ(rec.packs.size(), 2u);
  EXPECT_EQ(rec.packs[0].size(), 4u);
  EXPECT_EQ(rec.packs[1].size(), 4u);
  EXPECT_EQ(fake.ran().size(), 4u);
  EXPECT_EQ(s->packs, (std::map<int, int>{{1, 4}, {4, 2}}));
  EXPECT_EQ(s->ToJson()["packs"]["sizes"]["4"], 2);
  EXPECT_EQ(s->PacksText(), "packs of up to 4: 2 x 4, 4 x 1");
  // The failing member fails alone; its pack mates are done.
  EXPECT_EQ(s->counts.failed, 1);
  EXPECT_EQ(s->counts.done, 11);
  EXPECT_EQ((*ledger->GetJob(p.jobs[2].spec.id))->status, JobStatus::kFailed);
  const std::string error = (*ledger->GetJob(p.jobs[2].spec.id))->error;
  EXPECT_NE(error.find("member diverged"), std::string::npos);
  {  // and names its pack (the sorted member ids' hash) and its place in it
    std::vector<std::string> sorted = rec.packs[0];
    std::sort(sorted.begin(), sorted.end());
    const size_t at = std::find(rec.packs[0].begin(), rec.packs[0].end(), p.jobs[2].spec.id) - rec.packs[0].begin();
    EXPECT_NE(error.find("(in pack " + HashJson(nlohmann::json(sorted)).substr(0, 12) + ", member " +
                         std::to_string(at + 1) + " of 4)"),
              std::string::npos)
        << error;
  }
  for (size_t i = 0; i < rec.packs[0].size(); ++i) {
    const std::string& id = rec.packs[0][i];
    if (id == p.jobs[2].spec.id) continue;
    EXPECT_EQ((*ledger->GetJob(id))->status, JobStatus::kDone);
    auto extra = nlohmann::json::parse(ExtraOf(path, id));
    ASSERT_TRUE(extra.contains("pack")) << extra.dump();
    EXPECT_EQ(extra["pack"]["size"], 4);
    EXPECT_EQ(extra["pack"]["index"], i);
    std::vector<std::string> sorted = rec.packs[0];  // the pack's id: its member ids sorted, as info.pack.id
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(extra["pack"]["id"], HashJson(nlohmann::json(sorted)));
    auto m = ledger->Metrics({id});
    EXPECT_EQ((*m)[id]["test"].size(), 5u);
  }
  // A job that ran alone names no pack.
  auto alone = nlohmann::json::parse(ExtraOf(path, p.jobs[9].spec.id));
  EXPECT_FALSE(alone.contains("pack")) << alone.dump();
  // The sweep's settings record the pack limit.
  Db db;
  ASSERT_TRUE(db.Open(path, 1 /*SQLITE_OPEN_READONLY*/, 1000).ok());
  Stmt st(&db, "SELECT options_json FROM sweeps");
  ASSERT_TRUE(*st.Step());
  EXPECT_EQ(nlohmann::json::parse(st.Text(0)).value("pack", 0), 4) << st.Text(0);
}

TEST(RunnerPacks, PackOffRunsEverythingAsSingleJobs) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  PackRecorder rec;
  RunOptions o = Quiet();
  o.pack_executor = rec.Executor();  // never called with pack = 1
  auto s = RunFake(PackProtocol(), ledger.get(), fake, o);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(rec.packs.empty());
  EXPECT_EQ(fake.ran().size(), 12u);
  EXPECT_FALSE(s->ToJson().contains("packs"));
  EXPECT_EQ(s->PacksText(), "");
}

TEST(RunnerPacks, StopSendsTheUnfinishedMembersBackToPending) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = PackProtocol();
  std::atomic<bool> stop{false};
  RunOptions o = Quiet();
  o.pack = 32;
  o.stop = &stop;
  o.pack_executor = [&](const std::vector<jobs::JobSpec>& specs, const std::vector<jobs::JobContext>& ctxs) {
    // The first member finishes; the others see the stop (SIGTERM) and come back Aborted.
    stop = true;
    while (!ctxs[0].stop_requested->load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::vector<Result<jobs::JobResult>> out;
    out.emplace_back(testing::FakeResult(specs[0]));
    for (size_t i = 1; i < specs.size(); ++i) out.emplace_back(Status::Aborted("stopped"));
    return out;
  };
  auto s = RunFake(p, ledger.get(), fake, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->stopped);
  EXPECT_EQ(s->counts.done, 1);
  EXPECT_EQ(s->counts.interrupted_here, 8);
  EXPECT_EQ((*ledger->GetJob(p.jobs[0].spec.id))->status, JobStatus::kDone);
  for (int k = 1; k < 9; ++k) {
    auto row = *ledger->GetJob(p.jobs[k].spec.id);
    EXPECT_EQ(row->status, JobStatus::kPending);
    EXPECT_EQ(row->attempts, 0);
  }
}

// helper-58: a pack the batched trainer could not build runs its members one after another (their results name no
// pack); their provenance names no pack either, and the summary counts them as jobs that ran alone.
TEST(RunnerPacks, MembersThatRanOneAfterAnotherNameNoPack) {
  const std::string path = testing::TestDir() + "/l.db";
  auto ledger = std::move(Ledger::Open(path)).value();
  FakeExecutor fake;
  auto p = PackProtocol();
  RunOptions o = Quiet();
  o.pack = 32;
  std::vector<std::string> members;
  o.pack_executor = [&](const std::vector<jobs::JobSpec>& specs, const std::vector<jobs::JobContext>&) {
    std::vector<Result<jobs::JobResult>> out;
    for (const auto& sp : specs) {
      members.push_back(sp.id);
      out.emplace_back(testing::FakeResult(sp));  // no info.pack: what RunJob gives
    }
    return out;
  };
  auto s = RunFake(p, ledger.get(), fake, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(members.size(), 9u);
  EXPECT_EQ(s->packs, (std::map<int, int>{{1, 12}}));
  for (const auto& id : members) {
    auto extra = nlohmann::json::parse(ExtraOf(path, id));
    EXPECT_FALSE(extra.contains("pack")) << extra.dump();
  }
}

// helper-58: a member that finished inside a pack is recorded at once (JobContext::on_finished), so the pack's
// crash (its worker process killed: every member's outcome an error) keeps it; the others fail as before.
TEST(RunnerPacks, AMemberDeliveredBeforeThePackDiedIsKept) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  auto p = PackProtocol();
  RunOptions o = Quiet();
  o.pack = 32;
  o.scheduler.max_attempts = 1;
  bool seen_done_early = false;
  std::vector<std::string> members;
  o.pack_executor = [&](const std::vector<jobs::JobSpec>& specs, const std::vector<jobs::JobContext>& ctxs) {
    for (const auto& sp : specs) members.push_back(sp.id);
    ctxs[0].on_finished(testing::FakeResult(specs[0]));
    // Recorded before the pack returns.
    seen_done_early = (*ledger->GetJob(specs[0].id))->status == JobStatus::kDone;
    return std::vector<Result<jobs::JobResult>>(
        specs.size(), Status::Internal("the worker process running job x (in a pack) was killed by signal 9"));
  };
  (void)RunFake(p, ledger.get(), fake, o);
  ASSERT_EQ(members.size(), 9u);
  EXPECT_TRUE(seen_done_early);
  EXPECT_EQ((*ledger->GetJob(members[0]))->status, JobStatus::kDone);
  for (size_t k = 1; k < members.size(); ++k)
    EXPECT_EQ((*ledger->GetJob(members[k]))->status, JobStatus::kFailed) << k;
}

TEST(RunnerPacks, AutoSharesAKeysReadyJobsAmongIdleWorkers) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  FakeExecutor fake;
  PackRecorder rec;
  auto p = PackProtocol();
  p.jobs.resize(9);
  RunOptions o = Quiet(1);
  o.pack = 32;
  o.pack_share = true;
  o.pack_executor = rec.Executor();
  auto s = RunFake(p, ledger.get(), fake, o);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(rec.packs.size(), 1u);  // one worker: it takes them all
  EXPECT_EQ(rec.packs[0].size(), 9u);
}

// Issue 16 scheduling: with two workers, one busy with a long single job, the other does not
// take all 12 ready jobs of a key (the old rule shared them among *idle* workers only: 1, so
// one pack of 12 became the sweep's tail); it takes its share, 6, and the other worker takes
// the other 6 when its job is done.
TEST(RunnerPacks, AutoSharesAKeysJobsAmongAllWorkersBusyOnesIncluded) {
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  protocols::Protocol p = PackProtocol();
  p.jobs.resize(9);
  for (int k = 9; k < 12; ++k) {
    auto j = testing::MakeJob("e", "concat_mlp", "c" + std::to_string(k), 1);
    j.spec.model = {{"name", "concat_mlp"}, {"hidden", {8}}};
    j.spec.id = j.spec.ComputeId();
    p.jobs.push_back(j);
  }
  // The longest job (first in the order) packs with nothing; it runs until a pack has started,
  // and the first pack runs until a second one has started (or 2 s have passed).
  auto single = testing::MakeJob("e", "base", "long", 1, {}, /*train_utts=*/500);
  p.jobs.insert(p.jobs.begin(), single);
  ASSERT_TRUE(jobs::PackKey(single.spec).empty());
  std::mutex mu;
  std::vector<size_t> sizes;  // members per pack call, in the order the calls started
  auto wait_for = [&](size_t calls) {
    for (int i = 0; i < 400; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (sizes.size() >= calls) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  Executor exec = [&](const jobs::JobSpec& s, const jobs::JobContext&) -> Result<jobs::JobResult> {
    wait_for(1);
    return testing::FakeResult(s);
  };
  RunOptions o = Quiet(2);
  o.pack = 32;
  o.pack_share = true;
  o.pack_executor = [&](const std::vector<jobs::JobSpec>& specs, const std::vector<jobs::JobContext>&) {
    size_t call;
    {
      std::lock_guard<std::mutex> lock(mu);
      sizes.push_back(specs.size());
      call = sizes.size();
    }
    if (call == 1) wait_for(2);
    std::vector<Result<jobs::JobResult>> out;
    for (const auto& spec : specs) out.emplace_back(testing::FakeResult(spec));
    return out;
  };
  auto s = RunSweep(p, ledger.get(), exec, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->counts.done, 13);
  EXPECT_EQ(sizes, (std::vector<size_t>{6, 6}));
}

}  // namespace
}  // namespace emosweep::orchestrator
