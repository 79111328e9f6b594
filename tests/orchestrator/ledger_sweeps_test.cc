// tests/orchestrator/ledger_sweeps_test.cc: sweeps and their links: registering jobs, status counts of a
// sweep, links shared between sweeps (the v2 -> v3 migration), SweepStates, dead sweeps.
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::OpenOk;
using testing::RawExec;
using testing::TestDir;
using testing::kV3ToV2;

// Issue 15: `ledger status --sweep` counts a sweep that links most of the ledger by
// merging two id-ordered index scans, one that links few by lookups; both give the
// rows of StatusCountSql (kinds, statuses and links that skip jobs of other sweeps).
// RegisterJobs over more than one chunk of lookups (500 ids): jobs already in the ledger keep
// their rows (a blocked one stays blocked), the others are inserted, every one is linked.
TEST(Ledger, RegisterJobsInsertsOnlyTheMissingOnesAcrossChunks) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  auto all = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);  // 1200 jobs
  ASSERT_EQ(all.size(), 1200u);
  std::vector<protocols::PlannedJob> some;
  for (size_t k = 0; k < all.size(); k += 3) some.push_back(all[k]);
  auto first = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(l->RegisterJobs(*first, some).ok());
  ASSERT_TRUE(l->Block(all[600].spec.id, "kept").ok());
  auto second = l->BeginSweep({"p", "p.toml", "h2", nlohmann::json::object(), {}});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(l->RegisterJobs(*second, all).ok());
  for (size_t k = 0; k < all.size(); ++k) {
    auto row = l->GetJob(all[k].spec.id);
    ASSERT_TRUE(row.ok());
    ASSERT_TRUE(row->has_value()) << "job " << k << " not registered";
    EXPECT_EQ((*row)->status, k == 600 ? JobStatus::kBlocked : JobStatus::kPending) << k;
  }
  EXPECT_EQ((*l->GetJob(all[600].spec.id))->error, "kept");
  auto states = l->SweepStates(*second);
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(states->size(), all.size());
  // ForEachSweepState hands out the same states, each job once (the scheduler's path).
  std::map<std::string, std::pair<JobStatus, std::string>> seen;
  ASSERT_TRUE(l->ForEachSweepState(*second, [&](std::string_view id, JobState&& st) {
                 EXPECT_TRUE(seen.emplace(std::string(id), std::make_pair(st.status, st.error)).second) << id;
               }).ok());
  ASSERT_EQ(seen.size(), states->size());
  for (const auto& [id, st] : *states) {
    ASSERT_EQ(seen.count(id), 1u) << id;
    EXPECT_EQ(seen[id].first, st.status) << id;
    EXPECT_EQ(seen[id].second, st.error) << id;
  }
  EXPECT_EQ(seen[all[600].spec.id], std::make_pair(JobStatus::kBlocked, std::string("kept")));
}

TEST(Ledger, StatusCountsOfASweepMatchTheSql) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  auto big = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(big.ok());
  ASSERT_TRUE(l->RegisterJobs(*big, testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 20)).ok());
  auto other = l->BeginSweep({"q", "q.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(l->RegisterJobs(*other, testing::MakeGrid("f", {"a"}, {"x"}, 10)).ok());  // 10 of 130: lookups
  l.reset();
  RawExec(path,
          "UPDATE jobs SET status = 'done' WHERE rowid % 3 = 0; UPDATE jobs SET status = 'failed' WHERE rowid % 5 = 0; "
          "UPDATE jobs SET kind = 'eval' WHERE rowid % 7 = 0; "
          // the big sweep also links one job of the other sweep
          "INSERT INTO sweep_jobs(sweep_id, job_id, ord) SELECT 1, max(id), 1000 FROM jobs WHERE id NOT IN "
          "(SELECT job_id FROM sweep_jobs WHERE sweep_id = 1); UPDATE sweeps SET jobs = jobs + 1 WHERE id = 1");
  auto ro = OpenOk(path, {true});
  ASSERT_NE(ro, nullptr);
  ASSERT_EQ(ro->schema_version(), kLedgerSchemaVersion);
  for (int64_t sweep : {int64_t{-1}, *big, *other, int64_t{99}}) {
    auto sql = ro->Query(StatusCountSql(ro->schema_version(), sweep));
    auto counts = ro->StatusCounts(sweep);
    ASSERT_TRUE(sql.ok()) << sql.status().ToString();
    ASSERT_TRUE(counts.ok()) << counts.status().ToString();
    EXPECT_EQ(*counts, (*sql)["rows"]) << "sweep " << sweep;
    if (sweep == *big) {
      int64_t n = 0;
      for (const auto& r : *counts) n += r[2].get<int64_t>();
      EXPECT_EQ(n, 121);
      EXPECT_GT(counts->size(), 3u);  // several kinds and statuses
    }
  }
}

std::vector<std::string> IdsOf(const std::vector<protocols::PlannedJob>& jobs) {
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  return ids;
}

int64_t CountOf(const std::string& path, const std::string& sql) {
  auto ro = OpenOk(path, {true});
  if (!ro) return -1;
  auto q = ro->Query(sql);
  EXPECT_TRUE(q.ok()) << q.status().ToString() << ": " << sql;
  return q.ok() ? (*q)["rows"][0][0].get<int64_t>() : -1;
}

// What `ledger sweeps` and `ledger status --sweep S` answer about every sweep of the file
// (and a sweep that does not exist): the sweep list, the counts by kind and status (the
// merge or the indexed join, and the SQL the lookups run), the failed and blocked jobs
// (cmd_ledger's filter on the links), and the jobs' states as the scheduler reads them.
nlohmann::json SweepAnswers(const std::string& path) {
  nlohmann::json out;
  auto ro = OpenOk(path, {true});
  if (!ro) return out;
  Ledger* l = ro.get();
  auto sweeps = l->Sweeps();
  EXPECT_TRUE(sweeps.ok()) << sweeps.status().ToString();
  if (!sweeps.ok()) return out;
  out["sweeps"] = *sweeps;
  std::vector<int64_t> ids = {99};
  for (const auto& s : *sweeps) ids.push_back(s["id"].get<int64_t>());
  for (int64_t id : ids) {
    const std::string k = std::to_string(id);
    auto counts = l->StatusCounts(id);
    auto holder = l->LinkHolder(id);
    EXPECT_TRUE(counts.ok() && holder.ok());
    if (!counts.ok() || !holder.ok()) continue;
    out["counts"][k] = *counts;
    auto sql = l->Query(StatusCountSql(l->schema_version(), *holder));
    auto failed = l->Query("SELECT j.id, j.status FROM jobs j WHERE j.status IN ('failed','blocked') AND j.id IN "
                           "(SELECT job_id FROM sweep_jobs WHERE sweep_id = " + std::to_string(*holder) +
                           ") ORDER BY j.status, j.id");
    EXPECT_TRUE(sql.ok() && failed.ok());
    if (!sql.ok() || !failed.ok()) continue;
    EXPECT_EQ((*sql)["rows"], *counts) << "sweep " << id;
    out["failed"][k] = (*failed)["rows"];
    auto states = l->SweepStates(id);
    EXPECT_TRUE(states.ok()) << states.status().ToString();
    if (!states.ok()) continue;
    for (const auto& [job, st] : *states) out["states"][k][job] = JobStatusName(st.status);
  }
  return out;
}

// Issue 15 (sixth pass): v3 lets a sweep share the links of an earlier sweep with the
// same job list. A v2 file (every sweep holds its own links, two of them the same list)
// reads as it is when opened read-only and migrates on the first read-write open: every
// `ledger sweeps` / `ledger status --sweep` answer stays. Its sweeps keep their own links
// and get no job set (the migration hashes nothing), so the first run of that list after
// migrating links it once more, and the next one shares those links.
TEST(Ledger, V2FileReadsReadOnlyAndMigratesToV3) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 20);  // 120 jobs
  const auto other = testing::MakeGrid("f", {"a"}, {"x"}, 10);
  {
    auto l = OpenOk(path);
    ASSERT_NE(l, nullptr);
    for (const auto* jobs : {&grid, &other, &grid}) {
      auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
      ASSERT_TRUE(s.ok());
      ASSERT_TRUE(l->RegisterJobs(*s, *jobs).ok());
      ASSERT_TRUE(l->FinishSweep(*s, "done", {}).ok());
    }
  }
  ASSERT_EQ(CountOf(path, "SELECT count(*) FROM sweeps WHERE links_from = 1"), 1) << "sweep 3 shares sweep 1's";
  // As v2 wrote it: every sweep links its own jobs.
  RawExec(path,
          "INSERT INTO sweep_jobs(sweep_id, job_id, ord) SELECT s.id, l.job_id, l.ord FROM sweeps s "
          "JOIN sweep_jobs l ON l.sweep_id = s.links_from; " + std::string(kV3ToV2) +
          "UPDATE jobs SET status = 'done' WHERE rowid % 3 = 0; UPDATE jobs SET status = 'failed' WHERE rowid % 5 = 0; "
          "UPDATE jobs SET status = 'blocked' WHERE rowid % 7 = 0; UPDATE jobs SET kind = 'eval' WHERE rowid % 4 = 0;");
  nlohmann::json v2;
  {
    auto ro = OpenOk(path, {true});
    ASSERT_NE(ro, nullptr);
    ASSERT_EQ(ro->schema_version(), 2);
    v2 = SweepAnswers(path);
    ASSERT_EQ(v2["sweeps"].size(), 3u);
    EXPECT_EQ(v2["sweeps"][2]["jobs"], 120);
    EXPECT_EQ(v2["counts"]["3"], v2["counts"]["1"]);
    EXPECT_GT(v2["failed"]["1"].size(), 10u);
    EXPECT_TRUE(v2["counts"]["99"].empty());
  }
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 250);
  {
    auto rw = OpenOk(path);  // migrates (through v3 to the current schema)
    ASSERT_NE(rw, nullptr);
    EXPECT_EQ(rw->schema_version(), kLedgerSchemaVersion);
    EXPECT_EQ(SweepAnswers(path), v2);
  }
  {
    auto ro = OpenOk(path, {true});
    ASSERT_NE(ro, nullptr);
    EXPECT_EQ(ro->schema_version(), kLedgerSchemaVersion);
    EXPECT_EQ(SweepAnswers(path), v2);
  }
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweeps WHERE links_from IS NOT NULL OR job_set IS NOT NULL"), 0);
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 250);
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_links WHERE sweep_id = 3"), 120);
  auto rw = OpenOk(path);
  ASSERT_NE(rw, nullptr);
  for (int i = 0; i < 2; ++i) {
    auto s = rw->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(rw->LinkJobs(*s, IdsOf(grid)).ok());
    EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 370) << "sweep " << *s;
  }
  auto after = SweepAnswers(path);
  for (const char* k : {"4", "5"}) {
    EXPECT_EQ(after["counts"][k], v2["counts"]["1"]) << k;
    EXPECT_EQ(after["failed"][k], v2["failed"]["1"]) << k;
    EXPECT_EQ(after["states"][k], after["states"]["1"]) << k;
    EXPECT_EQ(after["states"][k].size(), 120u) << k;
  }
  EXPECT_EQ(after["sweeps"][4]["jobs"], 120);
  EXPECT_EQ(CountOf(path, "SELECT links_from FROM sweeps WHERE id = 5"), 4);
}

// A sweep row deleted by hand whose links other sweeps share: they move to the earliest
// of those (the trigger of v3), so every other sweep keeps its answers (before v3 each
// sweep held a copy, and deleting one row took only that copy).
TEST(Ledger, DeletingASweepWhoseLinksOthersShareKeepsThemForTheOthers) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a", "b"}, {"x", "y"}, 5);  // 20 jobs
  const auto other = testing::MakeGrid("f", {"a"}, {"x"}, 3);
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  for (const auto* jobs : {&grid, &grid, &other, &grid}) {  // sweeps 2 and 4 share 1's links
    auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(l->RegisterJobs(*s, *jobs).ok());
  }
  RawExec(path, "UPDATE jobs SET status = 'done' WHERE rowid % 2 = 0");
  ASSERT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 23);
  ASSERT_EQ(CountOf(path, "SELECT count(*) FROM sweeps WHERE links_from = 1"), 2);
  const nlohmann::json before = SweepAnswers(path);
  ASSERT_EQ(before["states"]["4"].size(), 20u);
  RawExec(path, "PRAGMA foreign_keys = ON; DELETE FROM sweeps WHERE id = 1");
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 23) << "the shared links went with the row";
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweeps WHERE id = 2 AND links_from IS NULL AND job_set IS NOT NULL"),
            1);
  EXPECT_EQ(CountOf(path, "SELECT links_from FROM sweeps WHERE id = 4"), 2);
  nlohmann::json after = SweepAnswers(path);
  for (const char* k : {"2", "3", "4"}) {
    EXPECT_EQ(after["counts"][k], before["counts"][k]) << k;
    EXPECT_EQ(after["states"][k], before["states"][k]) << k;
  }
  RawExec(path, "PRAGMA foreign_keys = ON; DELETE FROM sweeps WHERE id = 2");
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweeps WHERE id = 4 AND links_from IS NULL AND job_set IS NOT NULL"),
            1);
  after = SweepAnswers(path);
  EXPECT_EQ(after["states"]["4"], before["states"]["4"]);
  EXPECT_EQ(after["counts"]["3"], before["counts"]["3"]);
  // A sweep that shares nothing goes alone, with its own links.
  RawExec(path, "PRAGMA foreign_keys = ON; DELETE FROM sweeps WHERE id = 3");
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 20);
  // The moved links are shared again by the next run of that list.
  auto s5 = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(s5.ok());
  ASSERT_TRUE(l->LinkJobs(*s5, IdsOf(grid)).ok());
  EXPECT_EQ(CountOf(path, "SELECT links_from FROM sweeps WHERE id = 5"), 4);
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 20);
}

// More links for a sweep that shares another's (it takes a copy first) or whose links
// others share (each of them takes a copy first): every sweep keeps exactly its jobs,
// and the copies hold the job set they were, so the list is shared again.
TEST(Ledger, MoreLinksForASharingOrSharedSweepKeepEverySweepsJobs) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a", "b"}, {"x", "y"}, 5);  // 20 jobs
  const auto other = testing::MakeGrid("f", {"a"}, {"x"}, 3);
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  auto sweep = [&]() {
    auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : -1;
  };
  auto ids_of = [&](int64_t s) {
    std::set<std::string> ids;
    auto st = l->SweepStates(s);
    EXPECT_TRUE(st.ok());
    if (st.ok())
      for (const auto& kv : *st) ids.insert(kv.first);
    return ids;
  };
  const auto g = IdsOf(grid), o = IdsOf(other);
  std::set<std::string> both(g.begin(), g.end());
  both.insert(o.begin(), o.end());
  const std::set<std::string> just_g(g.begin(), g.end());
  const int64_t s1 = sweep(), s2 = sweep();
  ASSERT_TRUE(l->RegisterJobs(s1, grid).ok());
  ASSERT_TRUE(l->RegisterJobs(s2, other).ok());  // jobs of `other` exist; s2 holds them
  const int64_t s3 = sweep();
  ASSERT_TRUE(l->LinkJobs(s3, g).ok());  // shares s1
  ASSERT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), 23);
  ASSERT_TRUE(l->LinkJobs(s3, o).ok());  // s3 gets more: a copy of s1's first
  EXPECT_EQ(ids_of(s3), both);
  EXPECT_EQ(ids_of(s1), just_g);
  const int64_t s4 = sweep();
  ASSERT_TRUE(l->LinkJobs(s4, g).ok());  // shares s1
  ASSERT_TRUE(l->LinkJobs(s1, o).ok());  // s1 gets more: s4 takes a copy first
  EXPECT_EQ(ids_of(s1), both);
  EXPECT_EQ(ids_of(s4), just_g);
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweeps WHERE links_from IS NOT NULL"), 0);
  const int64_t s5 = sweep();
  ASSERT_TRUE(l->LinkJobs(s5, g).ok());  // shares s4, the copy that holds exactly g
  EXPECT_EQ(CountOf(path, "SELECT links_from FROM sweeps WHERE id = " + std::to_string(s5)), s4);
  EXPECT_EQ(ids_of(s5), just_g);
  // Linking a sweep's own list again changes nothing.
  const int64_t rows = CountOf(path, "SELECT count(*) FROM sweep_jobs");
  ASSERT_TRUE(l->LinkJobs(s4, g).ok());
  EXPECT_EQ(CountOf(path, "SELECT count(*) FROM sweep_jobs"), rows);
  auto sweeps = l->Sweeps();
  ASSERT_TRUE(sweeps.ok());
  std::vector<int64_t> jobs;
  for (const auto& s : *sweeps) jobs.push_back(s["jobs"].get<int64_t>());
  EXPECT_EQ(jobs, (std::vector<int64_t>{23, 3, 23, 20, 20}));
}

// The scheduler's view of a sweep (SweepStates): statuses from an index, the rows of
// jobs not done read in full; every field it reads of an open job is the row's.
TEST(Ledger, SweepStatesAreTheRowsOfOpenJobsAndTheStatusOfDoneOnes) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);  // 1 200 jobs: several chunks
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(l->RegisterJobs(*s, grid).ok());
  RawExec(path,
          "UPDATE jobs SET status = 'done', attempts = 2 WHERE rowid % 2 = 0; "
          "UPDATE jobs SET status = 'failed', attempts = 3, error = 'boom ' || rowid WHERE rowid % 5 = 1; "
          "UPDATE jobs SET status = 'running', attempts = 1, owner = 'h:1:x' || rowid, heartbeat_at = rowid "
          "WHERE rowid % 7 = 3; UPDATE jobs SET status = 'blocked', error = 'dep' WHERE rowid % 11 = 5; "
          "UPDATE jobs SET attempts = 1, error = 'retry' WHERE status = 'pending' AND rowid % 3 = 0");
  auto states = l->SweepStates(*s);
  ASSERT_TRUE(states.ok()) << states.status().ToString();
  ASSERT_EQ(states->size(), grid.size());
  auto ro = OpenOk(path, {true});
  auto rows = ro->Query("SELECT id, status, attempts, ifnull(owner, ''), ifnull(heartbeat_at, 0), ifnull(error, '') "
                        "FROM jobs");
  ASSERT_TRUE(rows.ok());
  std::map<std::string, int> seen;
  for (const auto& r : (*rows)["rows"]) {
    const JobState& st = states->at(r[0].get<std::string>());
    const std::string status = r[1];
    seen[status]++;
    EXPECT_EQ(JobStatusName(st.status), status);
    if (status == "done") continue;
    EXPECT_EQ(st.attempts, r[2].get<int>());
    EXPECT_EQ(st.owner, r[3].get<std::string>());
    EXPECT_EQ(st.heartbeat_at, r[4].get<double>());
    EXPECT_EQ(st.error, r[5].get<std::string>());
  }
  EXPECT_EQ(seen.size(), 5u);  // every status
}

TEST(Ledger, SweepsOfDeadProcessesAreMarkedInterrupted) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  auto s = [&] { return *l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}}); };
  const int64_t dead = s(), alive = s(), ours = s(), far_old = s(), far_new = s();
  const std::string me = ThisOwner(), host = me.substr(0, me.find(':'));
  RawExec(path, "UPDATE sweeps SET pid = " + std::to_string(child) + " WHERE id = " + std::to_string(dead));
  RawExec(path, "UPDATE sweeps SET pid = 1 WHERE id = " + std::to_string(alive));
  RawExec(path, "UPDATE sweeps SET host = 'far-away', started_at = started_at - 7200 WHERE id = " +
                    std::to_string(far_old));
  RawExec(path, "UPDATE sweeps SET host = 'far-away' WHERE id = " + std::to_string(far_new));
  auto n = l->MarkDeadSweeps(600);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2);
  auto ro = OpenOk(path, {true});
  auto q = ro->Query("SELECT id, status FROM sweeps ORDER BY id");
  ASSERT_TRUE(q.ok());
  std::map<int64_t, std::string> st;
  for (const auto& r : (*q)["rows"]) st[r[0].get<int64_t>()] = r[1].get<std::string>();
  EXPECT_EQ(st[dead], "interrupted");
  EXPECT_EQ(st[alive], "running");
  EXPECT_EQ(st[ours], "running");
  EXPECT_EQ(st[far_old], "interrupted");
  EXPECT_EQ(st[far_new], "running");
  (void)host;
}

}  // namespace
}  // namespace emosweep::orchestrator
