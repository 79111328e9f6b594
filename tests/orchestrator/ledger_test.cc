// Ledger: schema, migrations/rejection, claiming, atomic completion, read API.
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <filesystem>
#include <fstream>

#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeResult;
using testing::MakeJob;
using testing::TestDir;

void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// What schema v3 added (ledger_schema.cc): dropping it makes a file as v2 wrote it
// (after what v4 added: the kept status counts).
const char* const kV3ToV2 =
    "DROP TRIGGER jobs_count_insert; DROP TRIGGER jobs_count_delete; DROP TRIGGER jobs_count_update; "
    "DROP TRIGGER sweep_jobs_count_insert; DROP TRIGGER sweep_jobs_count_delete; "
    "DROP TRIGGER sweep_jobs_count_update; DROP INDEX sweep_jobs_by_job; DROP TABLE status_counts; "
    "DROP TABLE sweep_status_counts; "
    "DROP TRIGGER sweeps_keep_shared_links; DROP VIEW sweep_links; DROP INDEX sweeps_by_job_set; "
    "ALTER TABLE sweeps DROP COLUMN links_from; ALTER TABLE sweeps DROP COLUMN job_set; PRAGMA user_version = 2; ";

std::unique_ptr<Ledger> OpenOk(const std::string& path, LedgerOptions o = {}) {
  auto l = Ledger::Open(path, o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(l).value() : nullptr;
}

int64_t RegisterOne(Ledger* l, const protocols::PlannedJob& j) {
  auto sweep = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  EXPECT_TRUE(sweep.ok());
  EXPECT_TRUE(l->RegisterJobs(*sweep, {j}).ok());
  return *sweep;
}

TEST(Ledger, NewFileGetsCurrentSchemaInWalMode) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->schema_version(), kLedgerSchemaVersion);
  auto ro = OpenOk(path, {true});
  auto q = ro->Query("PRAGMA journal_mode");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ((*q)["rows"][0][0], "wal");
  q = ro->Query("SELECT value FROM meta WHERE key = 'identity_version'");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)["rows"][0][0], "1");
  // Reopening an existing file migrates nothing and keeps the data.
  auto again = OpenOk(path);
  EXPECT_EQ(again->schema_version(), kLedgerSchemaVersion);
}

// Issue 15: v2 adds the indices `ledger status` counts from. A v1 file (the v1 schema is
// v2 without them) reads as it is when opened read-only, and migrates on the first
// read-write open; the counts are the same either way.
TEST(Ledger, V1FileReadsReadOnlyAndMigratesToV2) {
  std::string path = TestDir() + "/l.db";
  {
    auto l = OpenOk(path);
    auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(l->RegisterJobs(*s, testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 20)).ok());
  }
  {  // Linking the same jobs again (a re-run) counts them once.
    auto l = OpenOk(path);
    ASSERT_TRUE(l->RegisterJobs(1, testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 20)).ok());
  }
  {
    auto ro = OpenOk(path, {true});
    auto q = ro->Query("SELECT jobs FROM sweeps WHERE id = 1");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    EXPECT_EQ((*q)["rows"][0][0], 120);  // the kept count (v2)
  }
  RawExec(path, kV3ToV2 + std::string(
          "DROP INDEX jobs_by_kind_status; DROP INDEX jobs_by_id_state; ALTER TABLE sweeps DROP COLUMN jobs; "
          "PRAGMA user_version = 1"));
  auto index_count = [&](Ledger* l) {
    auto q = l->Query("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
                      "('jobs_by_kind_status', 'jobs_by_id_state')");
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? (*q)["rows"][0][0].get<int64_t>() : -1;
  };
  nlohmann::json v1_all, v1_sweep;
  {
    auto ro = OpenOk(path, {true});
    ASSERT_NE(ro, nullptr);
    EXPECT_EQ(ro->schema_version(), 1);
    EXPECT_EQ(index_count(ro.get()), 0);  // not migrated
    auto all = ro->Query(StatusCountSql(ro->schema_version(), -1));
    auto one = ro->Query(StatusCountSql(ro->schema_version(), 1));
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    v1_all = (*all)["rows"];
    v1_sweep = (*one)["rows"];
    auto sweeps = ro->Sweeps();  // counts the links: no sweeps.jobs in v1
    ASSERT_TRUE(sweeps.ok()) << sweeps.status().ToString();
    EXPECT_EQ((*sweeps)[0]["jobs"], 120);
    ASSERT_EQ(v1_all.size(), 1u);
    EXPECT_EQ(v1_all[0][1], "pending");
    EXPECT_EQ(v1_all[0][2], 120);
    EXPECT_EQ(v1_sweep, v1_all);
  }
  {
    auto rw = OpenOk(path);  // migrates
    ASSERT_NE(rw, nullptr);
    EXPECT_EQ(rw->schema_version(), kLedgerSchemaVersion);
  }
  auto rw = OpenOk(path, {true});
  ASSERT_NE(rw, nullptr);
  EXPECT_EQ(rw->schema_version(), kLedgerSchemaVersion);
  EXPECT_EQ(index_count(rw.get()), 2);
  auto kept = rw->Query("SELECT jobs FROM sweeps WHERE id = 1");  // filled by the migration
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ((*kept)["rows"][0][0], 120);
  auto sweeps = rw->Sweeps();
  ASSERT_TRUE(sweeps.ok());
  EXPECT_EQ((*sweeps)[0]["jobs"], 120);
  auto all = rw->Query(StatusCountSql(rw->schema_version(), -1));
  auto one = rw->Query(StatusCountSql(rw->schema_version(), 1));
  auto none = rw->Query(StatusCountSql(rw->schema_version(), 99));
  ASSERT_TRUE(all.ok() && one.ok() && none.ok());
  EXPECT_EQ((*all)["rows"], v1_all);
  EXPECT_EQ((*one)["rows"], v1_sweep);
  EXPECT_TRUE((*none)["rows"].empty());
}

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

TEST(Ledger, RejectsNewerSchemaVersion) {
  std::string path = TestDir() + "/l.db";
  { OpenOk(path); }
  RawExec(path, "PRAGMA user_version = 7");
  auto l = Ledger::Open(path);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(l.status().message().find("v7 is newer"), std::string::npos) << l.status().message();
  EXPECT_NE(l.status().message().find(path), std::string::npos);
}

TEST(Ledger, RejectsForeignSqliteDatabase) {
  std::string path = TestDir() + "/other.db";
  RawExec(path, "CREATE TABLE customers(id INTEGER)");
  auto l = Ledger::Open(path);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(l.status().message().find("not an emosweep ledger"), std::string::npos) << l.status().message();
}

TEST(Ledger, RejectsForeignApplicationId) {
  std::string path = TestDir() + "/other.db";
  RawExec(path, "PRAGMA application_id = 1234");
  auto l = Ledger::Open(path);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("application_id 1234"), std::string::npos) << l.status().message();
}

TEST(Ledger, RejectsNonSqliteFileAsCorruption) {
  std::string path = TestDir() + "/garbage.db";
  std::ofstream(path) << std::string(4096, 'x');
  auto l = Ledger::Open(path);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kCorruption) << l.status().ToString();
  EXPECT_NE(l.status().message().find(path), std::string::npos);
}

TEST(Ledger, TruncatedLedgerIsReportedAsCorruption) {
  std::string path = TestDir() + "/l.db";
  {
    auto l = OpenOk(path);
    auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
    std::vector<protocols::PlannedJob> jobs = testing::MakeGrid("e", {"a", "b", "c"}, {"x", "y", "z"}, 20);
    ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  }
  RawExec(path, "PRAGMA wal_checkpoint(TRUNCATE)");
  auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 8192u);
  std::filesystem::resize_file(path, size / 3);
  Status st;
  auto l = Ledger::Open(path);
  if (!l.ok()) {
    st = l.status();
  } else {
    auto rows = (*l)->ListJobs();
    st = rows.status();
  }
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
}

TEST(Ledger, ReadOnlyOpenOfMissingFileIsNotFound) {
  auto l = Ledger::Open(TestDir() + "/missing.db", {true});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kNotFound);
}

TEST(Ledger, RawSqlIsReadOnlyAndSingleStatement) {
  std::string path = TestDir() + "/l.db";
  RegisterOne(OpenOk(path).get(), MakeJob("e", "m", "c", 1));
  auto ro = OpenOk(path, {true});
  auto del = ro->Query("DELETE FROM jobs");
  EXPECT_FALSE(del.ok());
  auto two = ro->Query("SELECT 1; SELECT 2");
  EXPECT_FALSE(two.ok());
  auto count = ro->Query("SELECT count(*) FROM jobs;");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ((*count)["rows"][0][0], 1);
  auto rw = OpenOk(path);
  EXPECT_FALSE(rw->Query("SELECT 1").ok()) << "raw SQL only on read-only handles";
}

TEST(Ledger, OnlyOneOfTwoConnectionsClaimsAJob) {
  std::string path = TestDir() + "/l.db";
  auto a = OpenOk(path), b = OpenOk(path);
  auto job = MakeJob("e", "m", "c", 1);
  RegisterOne(a.get(), job);
  auto ca = a->Claim(job.spec.id, "hostA:1:aa", {});
  auto cb = b->Claim(job.spec.id, "hostB:2:bb", {});
  ASSERT_TRUE(ca.ok() && cb.ok());
  EXPECT_EQ(ca->outcome, ClaimOutcome::kClaimed);
  EXPECT_EQ(ca->attempts, 1);
  EXPECT_EQ(cb->outcome, ClaimOutcome::kNotClaimable);
  auto row = b->GetJob(job.spec.id);
  EXPECT_EQ((*row)->owner, "hostA:1:aa");
  EXPECT_EQ((*row)->status, JobStatus::kRunning);
}

TEST(Ledger, JobOfDeadProcessOnThisHostIsTakenOver) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "m", "c", 1);
  RegisterOne(l.get(), job);
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // a pid that certainly existed and is gone now
  std::string me = ThisOwner();
  std::string host = me.substr(0, me.find(':'));
  std::string dead = host + ":" + std::to_string(child) + ":deadbeef";
  ASSERT_TRUE(OwnerIsDeadHere(dead));
  ASSERT_EQ(l->Claim(job.spec.id, dead, {})->outcome, ClaimOutcome::kClaimed);
  auto c = l->Claim(job.spec.id, me, {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->outcome, ClaimOutcome::kTaken);
  EXPECT_EQ(c->attempts, 1) << "the dead owner's attempt is given back";
  // Our own pid with another nonce is an earlier process that had our pid.
  EXPECT_TRUE(OwnerIsDeadHere(host + ":" + std::to_string(::getpid()) + ":00000000"));
  EXPECT_FALSE(OwnerIsDeadHere(me));
}

TEST(Ledger, SilentOwnerElsewhereIsTakenOverAfterStaleTimeoutWithoutSpendingAttempts) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "m", "c", 1);
  RegisterOne(l.get(), job);
  ClaimOptions fresh{/*stale_after_s=*/600, /*max_attempts=*/2, "w"};
  ClaimOptions stale{/*stale_after_s=*/-1, /*max_attempts=*/2, "w"};
  ASSERT_EQ(l->Claim(job.spec.id, "far-away:1:aa", fresh)->outcome, ClaimOutcome::kClaimed);
  EXPECT_EQ(l->Claim(job.spec.id, "here:2:bb", fresh)->outcome, ClaimOutcome::kNotClaimable);
  // A dead or silent owner (kill -9, lost node) says nothing about the job: every
  // takeover gives the lost attempt back, so max_attempts is never used up by kills.
  for (const char* owner : {"here:2:bb", "here:3:cc", "here:4:dd"}) {
    auto c = l->Claim(job.spec.id, owner, stale);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->outcome, ClaimOutcome::kTaken) << owner;
    EXPECT_EQ(c->attempts, 1) << owner;
  }
  auto row = l->GetJob(job.spec.id);
  EXPECT_EQ((*row)->status, JobStatus::kRunning);
  EXPECT_EQ((*row)->attempts, 1);
  EXPECT_EQ((*row)->owner, "here:4:dd");
}

TEST(Ledger, CompleteRecordsEverythingInOneTransaction) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "good", "c", 1);
  RegisterOne(l.get(), job);
  std::string me = ThisOwner();
  ASSERT_EQ(l->Claim(job.spec.id, me, {})->outcome, ClaimOutcome::kClaimed);
  auto ok = l->Complete(job.spec.id, me, FakeResult(job.spec),
                        {{"git_revision", "abc"}, {"world_size", 3}, {"group_size", 2}, {"worker_rank", 1},
                         {"extra", {{"attempt", 1}}}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(*ok);
  auto m = l->Metrics({job.spec.id});
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR((*m)[job.spec.id]["test"]["ua"], 36.0 / 40, 1e-12);
  EXPECT_EQ((*m)[job.spec.id]["test"].count("confusion"), 0u) << "non-scalars go to eval_details";
  auto d = l->EvalDetails({job.spec.id});
  EXPECT_EQ((*d)[job.spec.id]["test"]["confusion"].size(), 4u);
  EXPECT_EQ(l->Curve(job.spec.id)->size(), 3u);
  auto p = l->Predictions(job.spec.id, "test");
  EXPECT_EQ(p->labels.size(), 40u);
  auto row = l->GetJob(job.spec.id);
  EXPECT_EQ((*row)->status, JobStatus::kDone);
  EXPECT_TRUE((*row)->owner.empty());
  auto ro = OpenOk(path, {true});
  auto prov = (*ro->Query("SELECT git_revision, world_size, extra_json FROM provenance"))["rows"][0];
  EXPECT_EQ(prov[0], "abc");
  EXPECT_EQ(prov[1], 3);
  // Keys without a column (the coordinator's group and rank) are kept in extra_json, not dropped.
  auto extra = nlohmann::json::parse(prov[2].get<std::string>());
  EXPECT_EQ(extra, (nlohmann::json{{"attempt", 1}, {"group_size", 2}, {"worker_rank", 1}})) << extra.dump();
}

// Issue 15: `table` reads only its metrics on its eval sets; names are user text
// (a quote in one is a literal, not SQL).
TEST(Ledger, MetricsOfChosenEvalsAndNamesOnly) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "good", "c", 1);
  RegisterOne(l.get(), job);
  ASSERT_EQ(l->Claim(job.spec.id, ThisOwner(), {})->outcome, ClaimOutcome::kClaimed);
  jobs::JobResult r = FakeResult(job.spec);
  r.evals["val"].metrics = {{"ua", 0.5}, {"wa", 0.25}};
  r.evals["test"].metrics["it's"] = 0.75;
  ASSERT_TRUE(l->Complete(job.spec.id, ThisOwner(), r, {}).ok());
  auto all = l->Metrics({job.spec.id});
  ASSERT_TRUE(all.ok());
  auto some = l->Metrics({job.spec.id, "no-such-job"}, {"test", "val"}, {"ua", "it's"});
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  ASSERT_EQ(some->size(), 1u);
  const auto& m = some->at(job.spec.id);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at("test").size(), 2u);
  EXPECT_EQ(m.at("test").at("ua"), (*all)[job.spec.id]["test"]["ua"]);
  EXPECT_EQ(m.at("test").at("it's"), 0.75);
  EXPECT_EQ(m.at("val").size(), 1u);
  EXPECT_EQ(m.at("val").at("ua"), 0.5);
  EXPECT_GT((*all)[job.spec.id]["test"].size(), 2u);  // the rest is there, just not read
  auto none = l->Metrics({job.spec.id}, {"val"}, {"x') OR ('1'='1"});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  EXPECT_TRUE(l->Metrics({job.spec.id}, {}, {"ua"})->empty());
}

TEST(Ledger, CompleteWithNaNMetricWritesNothing) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "good", "c", 1);
  RegisterOne(l.get(), job);
  std::string me = ThisOwner();
  ASSERT_EQ(l->Claim(job.spec.id, me, {})->outcome, ClaimOutcome::kClaimed);
  jobs::JobResult r = FakeResult(job.spec);
  r.evals["val"] = r.evals["test"];
  r.evals["val"].metrics["ua"] = std::nan("");
  auto c = l->Complete(job.spec.id, me, r, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not finite"), std::string::npos);
  EXPECT_TRUE(l->Metrics({job.spec.id})->empty()) << "the test eval written before the NaN was rolled back";
  EXPECT_TRUE(l->Predictions(job.spec.id, "test")->labels.empty());
  EXPECT_EQ((*l->GetJob(job.spec.id))->status, JobStatus::kRunning);
}

TEST(Ledger, CompleteByAnOwnerWhoLostTheJobIsIgnored) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "good", "c", 1);
  RegisterOne(l.get(), job);
  ASSERT_EQ(l->Claim(job.spec.id, "a:1:x", {})->outcome, ClaimOutcome::kClaimed);
  auto c = l->Complete(job.spec.id, "b:2:y", FakeResult(job.spec), {});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(*c);
  EXPECT_TRUE(l->Metrics({job.spec.id})->empty());
}

TEST(Ledger, StatusOfManyIdsCrossesChunkBoundaries) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);  // 1200 jobs > 500 per chunk
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  ids.push_back("no-such-job");
  auto st = l->StatusOf(ids);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size(), 1200u);
  EXPECT_EQ(st->count("no-such-job"), 0u);
}

// Issue 15: from 1000 ids on StatusOf reads indices only; it must agree with the row reads.
TEST(Ledger, StatusOfManyIdsAgreesWithFewIdsForEveryStatus) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  ClaimOptions co;
  ASSERT_TRUE(l->Claim(jobs[3].spec.id, "h:1:x", co).ok());              // running
  ASSERT_TRUE(l->Claim(jobs[700].spec.id, ThisOwner(), co).ok());
  ASSERT_TRUE(l->Fail(jobs[700].spec.id, ThisOwner(), "boom", false).ok());  // failed
  ASSERT_TRUE(l->Block(jobs[1100].spec.id, "dep failed").ok());            // blocked
  ASSERT_TRUE(l->Claim(jobs[5].spec.id, ThisOwner(), co).ok());
  ASSERT_TRUE(l->Complete(jobs[5].spec.id, ThisOwner(), testing::FakeResult(jobs[5].spec), {}).ok());  // done
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  auto many = l->StatusOf(ids);
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(many->size(), ids.size());
  for (size_t i = 0; i < ids.size(); i += 100) {
    std::vector<std::string> few(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 100));
    auto f = l->StatusOf(few);
    ASSERT_TRUE(f.ok());
    for (const auto& [id, st] : *f) EXPECT_EQ(many->at(id), st) << id;
  }
  EXPECT_EQ(many->at(jobs[3].spec.id), JobStatus::kRunning);
  EXPECT_EQ(many->at(jobs[700].spec.id), JobStatus::kFailed);
  EXPECT_EQ(many->at(jobs[1100].spec.id), JobStatus::kBlocked);
  EXPECT_EQ(many->at(jobs[5].spec.id), JobStatus::kDone);
  EXPECT_EQ(many->at(jobs[6].spec.id), JobStatus::kPending);
}

// Issue 15: `table --all` asks for (nearly) every job of the ledger, in id order. Then
// StatusList reads one ordered scan of the covering index, merged with the ids, and
// ForEachMetric one pass over the metrics table, instead of an IN list of 500 ids a chunk
// (a statement each, and a seek a job); the answers must be those of the chunked reads
// (ids out of order).
TEST(Ledger, SortedManyIdsAreReadByOneScanWithTheChunkedAnswers) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);  // 1200 jobs
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  ClaimOptions co;
  ASSERT_TRUE(l->Claim(jobs[3].spec.id, "h:1:x", co).ok());  // running
  ASSERT_TRUE(l->Block(jobs[1100].spec.id, "dep failed").ok());
  for (size_t k = 0; k < jobs.size(); k += 7) {  // done, spread over the rowids
    if (k == 3 || k == 1100) continue;
    ASSERT_TRUE(l->Claim(jobs[k].spec.id, ThisOwner(), co).ok());
    ASSERT_TRUE(l->Complete(jobs[k].spec.id, ThisOwner(), testing::FakeResult(jobs[k].spec), {}).ok());
  }
  std::vector<std::string> sorted;
  for (const auto& j : jobs) sorted.push_back(j.spec.id);
  sorted.push_back(jobs[14].spec.id);  // repeated: both positions get the answers
  sorted.push_back("0-no-such-job");
  sorted.push_back("zz-no-such-job");
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> shuffled = sorted;  // not in id order: the chunked reads
  std::reverse(shuffled.begin(), shuffled.end());
  std::swap(shuffled[0], shuffled[shuffled.size() / 2]);
  const std::vector<std::string_view> fast(sorted.begin(), sorted.end()), slow(shuffled.begin(), shuffled.end());
  int64_t before = l->statements_prepared();
  auto merged = l->StatusList(fast);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_LE(l->statements_prepared() - before, 2) << "max(rowid), then one scan (3 chunks: 3 statements)";
  auto chunked = l->StatusList(slow);
  ASSERT_TRUE(chunked.ok());
  std::map<std::string, std::optional<JobStatus>> want;
  for (size_t i = 0; i < slow.size(); ++i) want[shuffled[i]] = (*chunked)[i];
  ASSERT_EQ(merged->size(), sorted.size());
  int done = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    EXPECT_EQ((*merged)[i], want.at(sorted[i])) << sorted[i];
    done += (*merged)[i] == JobStatus::kDone;
  }
  EXPECT_EQ(done, 172 + 1) << "every 7th job (172), the repeated one twice";
  EXPECT_FALSE(merged->front().has_value());
  EXPECT_FALSE(merged->back().has_value());
  EXPECT_EQ(want.at(jobs[3].spec.id), JobStatus::kRunning);
  EXPECT_EQ(want.at(jobs[1100].spec.id), JobStatus::kBlocked);
  // Metrics: a subset of evals and names, so the value read steps over and seeks past rows.
  for (const auto& [evals, names] : std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"test"}, {"ua"}}, {{"test", "val"}, {"wa", "ua", "macro_f1"}}, {{"nope"}, {"ua"}}}) {
    std::map<std::string, std::map<std::string, double>> got_fast, got_slow;
    std::map<std::string, int> seen_fast;
    before = l->statements_prepared();
    ASSERT_TRUE(l->ForEachMetric(fast, evals, names, [&](size_t i, size_t e, size_t m, double v) {
                   got_fast[sorted[i]][evals[e] + "/" + names[m]] = v;
                   seen_fast[sorted[i] + evals[e] + names[m]]++;
                 }).ok());
    EXPECT_LE(l->statements_prepared() - before, 2) << "max(rowid), the table scan";
    ASSERT_TRUE(l->ForEachMetric(slow, evals, names, [&](size_t i, size_t e, size_t m, double v) {
                   got_slow[shuffled[i]][evals[e] + "/" + names[m]] = v;
                 }).ok());
    EXPECT_EQ(got_fast, got_slow) << evals[0];
    EXPECT_EQ(seen_fast[jobs[14].spec.id + evals[0] + names[0]], evals[0] == "nope" ? 0 : 2) << "repeated id";
    if (evals[0] == "test") EXPECT_EQ(got_fast.size(), 172u) << evals.size();
  }
  // Every full chunk of an IN-list read reuses one prepared statement.
  before = l->statements_prepared();
  ASSERT_TRUE(l->Infos(shuffled).ok());
  EXPECT_EQ(l->statements_prepared() - before, 2) << "1203 ids: two full chunks share a statement, the rest has one";
}

// Issue 15: `table` reads adaptation jobs' infos for their warnings; most are "{}", behind
// kilobytes of config in overflow pages. Infos(ids, min_bytes) reads only infos of at
// least min_bytes bytes (sized from the row's header) and must give exactly those of the
// full read, whatever the info: NULL, short, exactly at the bound, long, or missing row.
TEST(Ledger, InfosOfAMinimumSizeAreTheLongEnoughInfosOfTheFullRead) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 100);  // 600 jobs: two IN chunks
  jobs.push_back(testing::MakeJob("e", "big", "x", 1, {}, /*train_utts=*/3000));  // config over several pages
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  l.reset();
  const std::string big = jobs.back().spec.id;
  RawExec(path, "UPDATE jobs SET info_json = CASE rowid % 5 WHEN 0 THEN NULL WHEN 1 THEN '{}' "
                "WHEN 2 THEN '{\"warnings\":[1]}' WHEN 3 THEN '{\"warnings\":[]}' "
                "ELSE '{\"warnings\":[{\"code\":\"target_collapse\"}],\"x\":1}' END");
  RawExec(path, "UPDATE jobs SET info_json = '{\"warnings\":[{\"code\":\"short_schedule\"}]}' WHERE id = '" + big + "'");
  l = OpenOk(path, {true});
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  ids.push_back("no-such-job");
  auto all = l->Infos(ids);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  for (size_t min : {size_t{1}, size_t{15}, size_t{16}, size_t{40}}) {
    auto some = l->Infos(ids, min);
    ASSERT_TRUE(some.ok()) << some.status().ToString();
    std::map<std::string, nlohmann::json> want;
    for (const auto& [id, info] : *all)
      if (info.dump().size() >= min) want.emplace(id, info);
    EXPECT_EQ(*some, want) << "min_bytes " << min;
    if (min <= 15) EXPECT_EQ(some->count(big), 1u);
  }
  EXPECT_GT(all->size(), 400u);
  EXPECT_EQ(l->Infos(ids, 15)->size(), all->size() - all->size() / 4) << "the '{}' rows are left out";
}

// --- issue 13: foreign files untouched, read-only places, raw SQL limits, checkpoints, dead sweeps ---

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(Ledger, ForeignRollbackJournalDatabaseIsRefusedUntouched) {
  std::string path = TestDir() + "/other.db";
  RawExec(path, "PRAGMA journal_mode = DELETE; CREATE TABLE customers(id INTEGER); INSERT INTO customers VALUES (1)");
  const std::string before = FileBytes(path);
  auto l = Ledger::Open(path);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(ExitCodeFor(l.status()), 2);
  EXPECT_NE(l.status().message().find("not an emosweep ledger"), std::string::npos) << l.status().message();
  EXPECT_EQ(FileBytes(path), before) << "the foreign file was modified (switched to WAL?)";
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "delete");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(Ledger, DirectoryGivenAsLedgerIsBadInput) {
  const std::string dir = TestDir();
  for (bool ro : {false, true}) {
    auto l = Ledger::Open(dir, {ro});
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument) << l.status().ToString();
    EXPECT_NE(l.status().message().find("is a directory"), std::string::npos) << l.status().message();
  }
}

TEST(Ledger, RawSqlThatCouldWriteIsRefusedBeforeItRunsAndCreatesNothing) {
  std::string path = TestDir() + "/l.db";
  RegisterOne(OpenOk(path).get(), MakeJob("e", "m", "c", 1));
  auto ro = OpenOk(path, {true});
  const std::string copy = TestDir() + "/copy.db", attached = TestDir() + "/att.db";
  for (const std::string& sql : {"VACUUM INTO '" + copy + "'", "ATTACH '" + attached + "' AS a",
                                 std::string("PRAGMA query_only = OFF"), std::string("PRAGMA wal_checkpoint"),
                                 std::string("VACUUM"), std::string("BEGIN IMMEDIATE")}) {
    auto q = ro->Query(sql);
    EXPECT_FALSE(q.ok()) << sql;
    EXPECT_EQ(ExitCodeFor(q.status()), 2) << sql << ": " << q.status().ToString();
  }
  EXPECT_FALSE(std::filesystem::exists(copy)) << "VACUUM INTO created its file";
  EXPECT_FALSE(std::filesystem::exists(attached)) << "ATTACH created its file";
  // Reading still works, pragmas that read included.
  EXPECT_TRUE(ro->Query("SELECT id FROM jobs").ok());
  EXPECT_TRUE(ro->Query("PRAGMA table_info(jobs)").ok());
  EXPECT_TRUE(ro->Query("SELECT name FROM pragma_table_info('jobs')").ok());
}

TEST(Ledger, RawSqlStopsAtItsTimeout) {
  std::string path = TestDir() + "/l.db";
  { OpenOk(path); }
  auto ro = OpenOk(path, {true});
  const auto t0 = std::chrono::steady_clock::now();
  auto q = ro->Query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", 0.3);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("--timeout of 0.3 s"), std::string::npos) << q.status().ToString();
  EXPECT_LT(secs, 5.0);
  // The connection is usable afterwards, and without a limit a short query runs.
  EXPECT_TRUE(ro->Query("SELECT 1", 0).ok());
}

// Completes `job` with a kept checkpoint at `checkpoint`.
void CompleteWithCheckpoint(Ledger* l, const protocols::PlannedJob& job, const std::string& checkpoint) {
  RegisterOne(l, job);
  ASSERT_EQ(l->Claim(job.spec.id, ThisOwner(), {})->outcome, ClaimOutcome::kClaimed);
  jobs::JobResult r = FakeResult(job.spec);
  r.checkpoint = checkpoint;
  auto done = l->Complete(job.spec.id, ThisOwner(), r, {});
  ASSERT_TRUE(done.ok() && *done) << done.status().ToString();
}

struct CwdGuard {
  std::filesystem::path old = std::filesystem::current_path();
  ~CwdGuard() { std::filesystem::current_path(old); }
};

TEST(Ledger, CheckpointPathsResolveAgainstTheLedgerFromAnyWorkingDirectory) {
  CwdGuard guard;
  const std::filesystem::path root = TestDir();
  std::filesystem::create_directories(root / "proj" / "l.db.work" / "j");
  std::filesystem::create_directories(root / "elsewhere");
  std::ofstream(root / "proj" / "l.db.work" / "j" / "model.ckpt") << "x";
  auto job = MakeJob("e", "m", "c", 1);
  {
    // First run from proj/: the trainer reports the path relative to the working directory.
    std::filesystem::current_path(root / "proj");
    auto l = OpenOk("l.db");
    CompleteWithCheckpoint(l.get(), job, "l.db.work/j/model.ckpt");
  }
  // Resumed from another directory, the same ledger finds the same file.
  std::filesystem::current_path(root / "elsewhere");
  auto l = OpenOk("../proj/l.db");
  auto c = l->CheckpointOf(job.spec.id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(*c)) << *c;
  EXPECT_EQ(std::filesystem::canonical(*c), std::filesystem::canonical(root / "proj/l.db.work/j/model.ckpt"));
  auto raw = l->GetJob(job.spec.id);
  EXPECT_EQ((*raw)->checkpoint, "l.db.work/j/model.ckpt") << "stored relative to the ledger's directory";
  // A work dir outside the ledger's directory is stored absolute.
  auto other = MakeJob("e", "m", "d", 1);
  CompleteWithCheckpoint(l.get(), other, (root / "elsewhere" / "m.ckpt").string());
  EXPECT_EQ((*l->GetJob(other.spec.id))->checkpoint, (root / "elsewhere" / "m.ckpt").string());
}

TEST(Ledger, OldLedgersWithWorkingDirectoryRelativeCheckpointsStayReadable) {
  CwdGuard guard;
  const std::filesystem::path root = TestDir();
  std::filesystem::create_directories(root / "db");
  std::filesystem::create_directories(root / "run" / "w" / "j");
  std::ofstream(root / "run" / "w" / "j" / "model.ckpt") << "x";
  const std::string path = (root / "db" / "l.db").string();
  auto job = MakeJob("e", "m", "c", 1);
  {
    auto l = OpenOk(path);
    CompleteWithCheckpoint(l.get(), job, "ignored");
  }
  RawExec(path, "UPDATE jobs SET checkpoint = 'w/j/model.ckpt'");  // as an older emosweep wrote it
  std::filesystem::current_path(root / "run");
  auto l = OpenOk(path);
  auto c = l->CheckpointOf(job.spec.id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, "w/j/model.ckpt");
}

TEST(Ledger, SupersedeSendsADoneJobBackToPending) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "m", "c", 1);
  CompleteWithCheckpoint(l.get(), job, TestDir() + "/gone.ckpt");
  ASSERT_TRUE(l->Supersede(job.spec.id, "checkpoint lost").ok());
  auto row = *l->GetJob(job.spec.id);
  EXPECT_EQ(row->status, JobStatus::kPending);
  EXPECT_EQ(row->attempts, 0);
  EXPECT_TRUE(row->checkpoint.empty());
  EXPECT_EQ(row->error, "checkpoint lost");
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

namespace emosweep::orchestrator {
namespace {

// Every query the scheduler, `table` and `ledger` issue per job or per id must be
// answered by an index (issue 15): no full scan of jobs, sweep_jobs, metrics,
// eval_details, curves or predictions. The statements are copied from
// ledger.cc / ledger_results.cc; a new hot query belongs here too.
TEST(LedgerIndices, HotQueriesNeverScanATable) {
  const std::string path = testing::TestDir() + "/l.db";
  { ASSERT_NE(OpenOk(path), nullptr); }
  const std::string find_job_set = Ledger::FindJobSetSql();
  const char* kHot[] = {
      "SELECT id FROM jobs WHERE id IN (?,?,?)",
      "SELECT id, status FROM jobs WHERE id IN (?,?,?)",
      "SELECT status, owner, heartbeat_at, attempts FROM jobs WHERE id = ?",
      "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND owner = ? AND status = 'running'",
      "UPDATE jobs SET status = 'pending', attempts = 0, owner = NULL WHERE status IN ('failed','blocked') AND id "
      "IN (?,?)",
      "SELECT count(*) FROM jobs WHERE status = 'running' AND owner LIKE ? AND heartbeat_at > ?",
      "SELECT j.id, j.status, j.attempts, j.owner, j.heartbeat_at, j.error FROM sweep_jobs s "
      "JOIN jobs j ON j.id = s.job_id WHERE s.sweep_id = ?",
      "INSERT OR IGNORE INTO sweep_jobs(sweep_id, job_id, ord) VALUES (?,?,?)",
      "SELECT job_id, eval, name, value FROM metrics WHERE job_id IN (?,?,?)",
      "SELECT job_id, eval, details_json FROM eval_details WHERE job_id IN (?,?,?)",
      "DELETE FROM metrics WHERE job_id = ?",
      "DELETE FROM predictions WHERE job_id = ?",
      "DELETE FROM curves WHERE job_id = ?",
      "SELECT epoch, train_loss, val_loss, val_metrics_json, lr, seconds FROM curves WHERE job_id = ? ORDER BY epoch",
      "SELECT utt_id, label, pred FROM predictions WHERE job_id = ? AND eval = ? ORDER BY idx",
      "SELECT (SELECT count(*) FROM sweep_jobs sj WHERE sj.sweep_id = s.id) FROM sweeps s ORDER BY s.id",
      // Ledger::Sweeps from v2 (`ledger status`): the kept count, the links only for a sweep without one.
      "SELECT coalesce(s.jobs, (SELECT count(*) FROM sweep_jobs sj WHERE sj.sweep_id = s.id)) FROM sweeps s "
      "ORDER BY s.id",
      // Schema v3, shared job sets (Ledger::LinkLocked, FindJobSet, LinkHolder, the view
      // sweep_links, RecountSweepJobs): a sweep found by its job set's hash, never a scan.
      find_job_set.c_str(),
      "SELECT links_from FROM sweeps WHERE id = ?",
      "SELECT links_from, EXISTS (SELECT 1 FROM sweep_jobs WHERE sweep_id = ?1), job_set FROM sweeps WHERE id = ?1",
      "INSERT OR IGNORE INTO sweep_jobs(sweep_id, job_id, ord) SELECT ?1, job_id, ord FROM sweep_jobs WHERE "
      "sweep_id = ?2",
      "UPDATE sweeps SET jobs = (SELECT count(*) FROM sweep_jobs WHERE sweep_id = coalesce(sweeps.links_from, "
      "sweeps.id)) WHERE id = ?1",
      "SELECT job_id, ord FROM sweep_links WHERE sweep_id = ?",
      "SELECT id, status, attempts, owner, heartbeat_at, error FROM jobs WHERE id IN (?,?,?)",
      // Ledger::CountDone (a re-run of a finished protocol): both index-only.
      "SELECT rowid FROM jobs WHERE status = 'done'",
      "SELECT rowid FROM jobs WHERE id IN (?,?,?)",
      // Ledger::StatusOf with many ids, Ledger::Infos (`table`).
      "SELECT rowid FROM jobs WHERE status = ?",
      "SELECT id, rowid FROM jobs WHERE id IN (?,?,?)",
      "SELECT id, info_json FROM jobs WHERE id IN (?,?,?)",
      // Ledger::StatusList and ForEachMetric (`table`, once per command).
      "SELECT id, status FROM jobs INDEXED BY jobs_by_id_state WHERE id IN (?,?,?)",
      "SELECT job_id, eval, name, rowid FROM metrics WHERE job_id IN (?,?,?) AND +eval IN ('test') AND "
      "+name IN ('ua','wa')",
      "SELECT rowid, value FROM metrics WHERE rowid IN (?,?,?) ORDER BY rowid",
      "SELECT rowid, value FROM metrics WHERE rowid >= ? ORDER BY rowid",
      // `ledger status`: failed/blocked and running jobs (all, and of one sweep);
      // `ledger query --kind K [--status S]`.
      "SELECT j.id, j.kind, j.status, j.attempts, j.error, j.attrs_json AS attrs FROM jobs j WHERE "
      "j.status IN ('failed','blocked') ORDER BY j.status, j.id",
      "SELECT j.id, j.kind, j.status, j.attempts, j.error, j.attrs_json AS attrs FROM jobs j WHERE "
      "j.status IN ('failed','blocked') AND j.id IN (SELECT job_id FROM sweep_jobs WHERE sweep_id = 3) "
      "ORDER BY j.status, j.id",
      "SELECT j.id, j.kind, j.owner FROM jobs j WHERE j.status = 'running' ORDER BY j.id",
      "SELECT j.id, j.kind, j.status FROM jobs j WHERE 1 AND j.kind = 'eval' ORDER BY j.created_at, j.id",
      "SELECT j.id, j.kind, j.status FROM jobs j WHERE 1 AND j.status = 'done' AND j.kind = 'eval' "
      "ORDER BY j.created_at, j.id",
  };
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  for (const char* sql : kHot) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, (std::string("EXPLAIN QUERY PLAN ") + sql).c_str(), -1, &st, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db) << ": " << sql;
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      ++rows;
      std::string detail = reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      // "SCAN s" over sweeps (one row per run) is fine; a scan of a per-job table is not.
      bool scan = detail.rfind("SCAN ", 0) == 0 && detail.find("INDEX") == std::string::npos &&
                  detail != "SCAN s" && detail.find("CONSTANT ROW") == std::string::npos;
      EXPECT_FALSE(scan) << "full scan: " << detail << "\n  in: " << sql;
    }
    sqlite3_finalize(st);
    if (std::string(sql).rfind("INSERT", 0) != 0) EXPECT_GT(rows, 0) << sql;
  }
  sqlite3_close(db);
}

// `ledger status` (and the state commands' counts) must not read job rows at all: a
// row keeps `status` after kilobytes of config_json, so counting from rows walks the
// whole file (0.94 s CPU at 10^5 jobs). Every step that touches jobs or sweep_jobs
// must be a covering index (issue 15).
// The two scans `ledger status --sweep` merges read covering indices in id order: no
// job row, no sort (issue 15).
TEST(LedgerIndices, SweepStatusMergeScansAreOrderedIndexScans) {
  const std::string path = testing::TestDir() + "/l.db";
  { ASSERT_NE(OpenOk(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  for (const std::string& sql : {Ledger::SweepLinksByIdSql(), Ledger::JobStatesByIdSql(), Ledger::JobStatusByIdSql()}) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db) << ": " << sql;
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      ++rows;
      std::string detail = reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      EXPECT_EQ(detail.find("TEMP B-TREE"), std::string::npos) << "sorts: " << detail << "\n  in: " << sql;
      EXPECT_NE(detail.find("COVERING INDEX"), std::string::npos) << "reads job rows: " << detail << "\n  in: " << sql;
    }
    sqlite3_finalize(st);
    EXPECT_GT(rows, 0) << sql;
  }
  sqlite3_close(db);
}

// The metric read of a `table` over most of the ledger is one pass over the metrics table
// in rowid order: no index, no sort (issue 15).
TEST(LedgerIndices, MetricRowsScanIsOneTablePassWithoutASort) {
  const std::string path = testing::TestDir() + "/l.db";
  { ASSERT_NE(OpenOk(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  const std::string sql = Ledger::MetricRowsSql("('test','val')", "('ua','wa')");
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &st, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db) << ": " << sql;
  std::vector<std::string> details;
  while (sqlite3_step(st) == SQLITE_ROW) details.push_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 3)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_EQ(details, std::vector<std::string>{"SCAN metrics"}) << sql;
}

TEST(LedgerIndices, StatusCountsReadIndicesOnly) {
  const std::string path = testing::TestDir() + "/l.db";
  { ASSERT_NE(OpenOk(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  // With the status read of `table` (Ledger::StatusList, issue 15).
  for (const std::string& sql : {StatusCountSql(kLedgerSchemaVersion, -1), StatusCountSql(kLedgerSchemaVersion, 3),
                                 // the scheduler's read of a sweep's states (the rows of open jobs follow)
                                 Ledger::SweepStatusSql(),
                                 std::string("SELECT id, status FROM jobs INDEXED BY jobs_by_id_state WHERE id IN "
                                             "(?,?,?)"),
                                 // and the first pass of its metric read (which rows, whose: the key's index).
                                 std::string("SELECT job_id, eval, name, rowid FROM metrics WHERE job_id IN (?,?,?) "
                                             "AND +eval IN ('test') AND +name IN ('ua','wa')")}) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db) << ": " << sql;
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      ++rows;
      std::string detail = reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      if (detail.find("TEMP B-TREE") != std::string::npos) continue;
      EXPECT_NE(detail.find("COVERING INDEX"), std::string::npos) << "reads job rows: " << detail << "\n  in: " << sql;
    }
    sqlite3_finalize(st);
    EXPECT_GT(rows, 0) << sql;
  }
  sqlite3_close(db);
}

}  // namespace
}  // namespace emosweep::orchestrator
