// Ledger schema v4 (issue 15): the status counts the ledger keeps (status_counts,
// sweep_status_counts, kept by triggers) equal a full recount after every kind of change,
// whoever makes it (the ledger's own writes, `ledger gc`, raw SQL), and on a v3 file
// after its migration; the queries that read and keep them search, never scan.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "orchestrator/ledger.h"
#include "orchestrator/sqlite_util.h"
#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeResult;
using testing::TestDir;

void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << "\n  in: " << sql;
  sqlite3_free(err);
  sqlite3_close(db);
}

std::unique_ptr<Ledger> OpenOk(const std::string& path, LedgerOptions o = {}) {
  auto l = Ledger::Open(path, o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(l).value() : nullptr;
}

std::vector<std::string> IdsOf(const std::vector<protocols::PlannedJob>& jobs) {
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  return ids;
}

// The kept counts against a full recount of the rows: every (kind, status) of all jobs,
// every holder's (sweep_id, kind, status) of the jobs it links, and `ledger status`'s
// answer (Ledger::StatusCounts) for every sweep against the v2 indexed count. `what`
// names the change in the failure message.
void ExpectCountsMatchRecount(const std::string& path, const std::string& what) {
  auto ro = OpenOk(path, {true});
  ASSERT_NE(ro, nullptr) << what;
  ASSERT_EQ(ro->schema_version(), kLedgerSchemaVersion) << what;
  auto rows = [&](const std::string& sql) {
    auto q = ro->Query(sql);
    EXPECT_TRUE(q.ok()) << q.status().ToString() << "\n  in: " << sql;
    return q.ok() ? (*q)["rows"] : nlohmann::json();
  };
  EXPECT_EQ(rows("SELECT kind, status, n FROM status_counts WHERE n != 0 ORDER BY 1, 2"),
            rows("SELECT kind, status, count(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2"))
      << "all jobs, after " << what;
  EXPECT_EQ(rows("SELECT sweep_id, kind, status, n FROM sweep_status_counts WHERE n != 0 ORDER BY 1, 2, 3"),
            rows("SELECT s.sweep_id, j.kind, j.status, count(*) FROM sweep_jobs s JOIN jobs j ON j.id = s.job_id "
                 "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"))
      << "links of each holder, after " << what;
  EXPECT_EQ(rows("SELECT count(*) FROM status_counts WHERE n < 0")[0][0], 0) << what;
  EXPECT_EQ(rows("SELECT count(*) FROM sweep_status_counts WHERE n < 0")[0][0], 0) << what;
  std::vector<int64_t> sweeps = {-1, 99};
  for (const auto& r : rows("SELECT id FROM sweeps ORDER BY id")) sweeps.push_back(r[0].get<int64_t>());
  for (int64_t id : sweeps) {
    auto kept = ro->StatusCounts(id);
    auto holder = ro->LinkHolder(id);
    ASSERT_TRUE(kept.ok() && holder.ok()) << what;
    EXPECT_EQ(*kept, rows(StatusCountSql(2, id < 0 ? id : *holder))) << "sweep " << id << ", after " << what;
  }
}

int64_t NewSweep(Ledger* l) {
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : -1;
}

// helper-67: a protocol's rows go in in transactions of at most 2000 jobs (one transaction held the write lock for
// minutes and another sweep failed on it). Registration over several transactions, also one cut short (rows
// without the sweep's link), gives the counts and links of one.
TEST(LedgerCounts, RegistrationInSeveralTransactionsKeepsCountsAndLinks) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a", "b", "c"}, {"x", "y", "z"}, 500);  // 4500 jobs: 3 transactions
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  const std::vector<protocols::PlannedJob> first_part(grid.begin(), grid.begin() + 2500);
  ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), first_part).ok());
  ExpectCountsMatchRecount(path, "2500 jobs registered");
  const int64_t sweep = NewSweep(l.get());
  ASSERT_TRUE(l->RegisterJobs(sweep, grid).ok());
  ExpectCountsMatchRecount(path, "4500 jobs, 2500 of them there already");
  Db db;
  ASSERT_TRUE(db.Open(path, 1 /*SQLITE_OPEN_READONLY*/, 1000).ok());
  Stmt jobs(&db, "SELECT count(*) FROM jobs");
  ASSERT_TRUE(*jobs.Step());
  EXPECT_EQ(jobs.Int(0), 4500);
  Stmt links(&db, "SELECT count(*) FROM sweep_links WHERE sweep_id = ?");
  links.Bind(1, sweep);
  ASSERT_TRUE(*links.Step());
  EXPECT_EQ(links.Int(0), 4500);
  // Every row of every transaction names id lists that are there (schema v5), and each row names its lists.
  Stmt named(&db,
             "SELECT count(*), count(DISTINCT j.id), sum(t.value IN (SELECT hash FROM id_lists)) "
             "FROM jobs j, json_tree(j.config_json) t WHERE t.key = 'ids_list'");
  ASSERT_TRUE(*named.Step());
  EXPECT_GE(named.Int(0), 4500);
  EXPECT_EQ(named.Int(1), 4500);
  EXPECT_EQ(named.Int(2), named.Int(0)) << "a row names a list that is not in id_lists";
}

TEST(LedgerCounts, KeptCountsEqualARecountAfterEveryKindOfChange) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a", "b"}, {"x", "y"}, 5);  // 20 jobs
  const auto other = testing::MakeGrid("f", {"a"}, {"x", "y"}, 3);      // 6 jobs
  const std::vector<std::string> ids = IdsOf(grid), other_ids = IdsOf(other);
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  const std::string me = ThisOwner();
  auto check = [&](const std::string& what) { ExpectCountsMatchRecount(path, what); };

  // Inserts and links: sweep 1 holds grid's links, 2 shares them, 3 holds other's.
  ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), grid).ok());
  check("inserting jobs and their links");
  ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), grid).ok());
  ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), other).ok());
  ASSERT_EQ((*l->LinkHolder(2)), 1);
  check("a sweep sharing links, another holding its own");
  // Sweep 4 links part of grid and part of other in one list: a holder whose jobs others link too.
  ASSERT_TRUE(l->LinkJobs(NewSweep(l.get()), {ids[0], ids[1], other_ids[0]}).ok());
  check("links overlapping other holders'");

  // Every status change the scheduler makes.
  ASSERT_EQ(l->Claim(ids[0], me, {})->outcome, ClaimOutcome::kClaimed);
  ASSERT_EQ(l->Claim(ids[1], me, {})->outcome, ClaimOutcome::kClaimed);
  ASSERT_EQ(l->Claim(ids[2], me, {})->outcome, ClaimOutcome::kClaimed);
  ASSERT_EQ(l->Claim(other_ids[0], me, {})->outcome, ClaimOutcome::kClaimed);
  check("claims");
  ASSERT_TRUE(l->Heartbeat({ids[0]}, me).ok());
  ASSERT_TRUE(*l->Complete(ids[0], me, FakeResult(grid[0].spec), {{"git_revision", "x"}}));
  ASSERT_TRUE(*l->Complete(other_ids[0], me, FakeResult(other[0].spec), {{"git_revision", "x"}}));
  check("completions");
  ASSERT_TRUE(l->Fail(ids[1], me, "boom", /*retry=*/false).ok());
  ASSERT_TRUE(l->Release(ids[2], me).ok());
  ASSERT_TRUE(l->Block(ids[3], "dependency failed").ok());
  ASSERT_EQ(l->Claim(ids[4], me, {})->outcome, ClaimOutcome::kClaimed);
  ASSERT_TRUE(l->Fail(ids[4], me, "again", /*retry=*/true).ok());
  check("a failure, a release, a block, a retried attempt");
  ASSERT_TRUE(l->Supersede(ids[0], "checkpoint lost").ok());
  ASSERT_TRUE(l->ResetFailed(std::vector<std::string>{ids[1], ids[3]}).ok());
  check("a superseded job, failed and blocked jobs reset");

  // More links for a sharer (it copies the shared links first) and for a holder others
  // share (each sharer takes a copy first).
  ASSERT_TRUE(l->LinkJobs(2, {other_ids[1]}).ok());
  check("a sharer given more links");
  const int64_t sharer = NewSweep(l.get());
  ASSERT_TRUE(l->LinkJobs(sharer, {ids[0], ids[1], other_ids[0]}).ok());
  ASSERT_EQ(*l->LinkHolder(sharer), 4);
  ASSERT_TRUE(l->LinkJobs(4, {other_ids[2]}).ok());
  check("a holder others share given more links");
  l.reset();

  // Hand edits through raw SQL (the triggers see them too).
  RawExec(path, "UPDATE jobs SET status = 'done' WHERE rowid % 3 = 0; UPDATE jobs SET kind = 'eval' WHERE rowid % 4 = 0");
  check("raw status and kind updates");
  RawExec(path, "DELETE FROM jobs WHERE id = '" + ids[1] + "'");
  check("a job row deleted by hand (linked by several holders)");
  RawExec(path, "UPDATE jobs SET id = 'renamed' WHERE id = '" + ids[5] + "'");
  check("a job id changed by hand");
  RawExec(path, "DELETE FROM sweep_jobs WHERE sweep_id = 3 AND job_id = '" + other_ids[3] +
                    "'; INSERT INTO sweep_jobs(sweep_id, job_id, ord) VALUES (3, '" + ids[7] +
                    "', 99), (3, 'no-such-job', 100); UPDATE sweep_jobs SET sweep_id = 4 WHERE sweep_id = 3 AND job_id = '" +
                    other_ids[4] + "'; UPDATE sweep_jobs SET job_id = '" + ids[8] + "' WHERE sweep_id = 3 AND job_id = '" +
                    other_ids[5] + "'");
  check("links deleted, inserted (one of no job), moved and re-pointed by hand");
  RawExec(path,
          "INSERT INTO jobs(id, kind, config_json, created_at) VALUES ('no-such-job', 'eval', '{}', 0); "
          "INSERT INTO jobs(id, kind, config_json, status, created_at) VALUES ('unlinked', 'adapt', '{}', 'failed', 0)");
  check("job rows inserted by hand (one a link already named)");

  // The job deleted by hand comes back through RegisterJobs while links to it remain.
  l = OpenOk(path);
  ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), grid).ok());
  check("a deleted job registered again");
  l.reset();

  // Deleting sweeps: one whose links others share (the v3 trigger moves them), one whose
  // links go with it (foreign-key cascade), one without foreign keys (its links stay).
  RawExec(path, "PRAGMA foreign_keys = ON; DELETE FROM sweeps WHERE id = 1");
  check("a holder deleted, its links moved to a sharer");
  RawExec(path, "PRAGMA foreign_keys = ON; DELETE FROM sweeps WHERE id = 3");
  check("a holder deleted, its links cascaded");
  RawExec(path, "DELETE FROM sweeps WHERE id = 4");
  check("a holder deleted without foreign keys");

  // `ledger gc` drops the jobs of no kept protocol that are not done, and their links.
  l = OpenOk(path);
  RawExec(path, "UPDATE sweeps SET status = 'done'; UPDATE jobs SET status = 'pending' WHERE id IN ('" + ids[10] + "', '" + ids[11] + "')");
  std::vector<std::string> keep(ids.begin() + 12, ids.end());
  auto gc = l->CollectGarbage(keep, /*apply=*/true);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  ASSERT_GT(gc->dropped_jobs, 0);
  check("ledger gc");
  auto vac = l->Vacuum();
  ASSERT_TRUE(vac.ok()) << vac.status().ToString();
  check("ledger vacuum");
}

// A change that fails half way undoes its counts with its rows (same transaction).
TEST(LedgerCounts, AStatementUndoneHalfWayUndoesItsCounts) {
  const std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), testing::MakeGrid("e", {"a"}, {"x", "y"}, 4)).ok());
  l.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  // The second statement changes rows 1..3 (their triggers run), then violates the CHECK
  // on status at row 4: it is undone as a whole, the first statement's changes are kept.
  EXPECT_EQ(sqlite3_exec(db, "BEGIN; UPDATE jobs SET status = 'done' WHERE rowid % 2 = 0;", nullptr, nullptr, &err),
            SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE jobs SET status = CASE WHEN rowid < 4 THEN 'failed' ELSE 'bogus' END",
                         nullptr, nullptr, &err),
            SQLITE_OK);
  sqlite3_free(err);
  EXPECT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  ExpectCountsMatchRecount(path, "a statement undone half way");
  auto ro = OpenOk(path, {true});
  EXPECT_EQ(*ro->StatusCounts(-1), nlohmann::json::parse(R"([["supervised", "done", 4], ["supervised", "pending", 4]])"));
}

// The per-job writes (Claim, Complete, Fail, Release, Block, Supersede) prepare their
// statements once per connection (Stmt::kKeep): from schema v4 preparing an UPDATE of
// jobs.status compiles the count triggers into it, which cost ~30 % of the scheduler's
// time per job at 10^4 jobs. The second job's writes prepare none, and the kept
// statements, reused with other bindings, leave the rows and counts right.
TEST(LedgerCounts, StatusWritesPrepareTheirUpdateOncePerConnection) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a"}, {"x", "y"}, 3);  // 6 jobs
  const std::vector<std::string> ids = IdsOf(grid);
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), grid).ok());
  const std::string me = ThisOwner();
  auto prepared = [&](const std::function<void()>& fn) {
    const int64_t before = l->statements_prepared();
    fn();
    return l->statements_prepared() - before;
  };
  std::vector<int64_t> claim, complete, fail, release, block, supersede;
  for (size_t k = 0; k < 2; ++k) {
    claim.push_back(prepared([&] { ASSERT_EQ(l->Claim(ids[k], me, {})->outcome, ClaimOutcome::kClaimed); }));
    complete.push_back(prepared([&] { ASSERT_TRUE(*l->Complete(ids[k], me, FakeResult(grid[k].spec), {})); }));
    supersede.push_back(prepared([&] { ASSERT_TRUE(l->Supersede(ids[k], "lost").ok()); }));
    ASSERT_EQ(l->Claim(ids[2 + k], me, {})->outcome, ClaimOutcome::kClaimed);
    fail.push_back(prepared([&] { ASSERT_TRUE(l->Fail(ids[2 + k], me, "boom", /*retry=*/false).ok()); }));
    ASSERT_EQ(l->Claim(ids[4 + k], me, {})->outcome, ClaimOutcome::kClaimed);
    release.push_back(prepared([&] { ASSERT_TRUE(l->Release(ids[4 + k], me).ok()); }));
    block.push_back(prepared([&] { ASSERT_TRUE(l->Block(ids[4 + k], "dep").ok()); }));
  }
  EXPECT_GE(complete[0], 12);  // the read, 5 deletes, 4 inserts, provenance, the update
  for (const auto* v : {&claim, &complete, &fail, &release, &block, &supersede}) {
    EXPECT_GE((*v)[0], 1);
    EXPECT_EQ((*v)[1], 0);
  }
  for (size_t k = 0; k < ids.size(); ++k) {
    auto row = l->GetJob(ids[k]);
    ASSERT_TRUE(row.ok() && row->has_value());
    const JobStatus want = k < 2 ? JobStatus::kPending : k < 4 ? JobStatus::kFailed : JobStatus::kBlocked;
    EXPECT_EQ((*row)->status, want) << k;
    EXPECT_EQ((*row)->attempts, k < 2 ? 0 : k < 4 ? 1 : 0) << k;
  }
  ExpectCountsMatchRecount(path, "writes through kept statements");
  // Kept statements are reset, not active: VACUUM on the same connection still runs.
  ASSERT_TRUE(l->FinishSweep(1, "done", {}).ok());
  auto vac = l->Vacuum();
  EXPECT_TRUE(vac.ok()) << vac.status().ToString();
  EXPECT_EQ(l->Claim(ids[0], me, {})->outcome, ClaimOutcome::kClaimed);  // and after it, reused again
  ExpectCountsMatchRecount(path, "a vacuum and a claim through a kept statement");
}

// What schema v4 (and v5) added (ledger_schema.cc): dropping it makes a file as v3 wrote it.
const char* const kV4ToV3 =
    "DROP TABLE id_lists; DROP TRIGGER jobs_count_insert; DROP TRIGGER jobs_count_delete; DROP TRIGGER jobs_count_update; "
    "DROP TRIGGER sweep_jobs_count_insert; DROP TRIGGER sweep_jobs_count_delete; DROP TRIGGER sweep_jobs_count_update; "
    "DROP INDEX sweep_jobs_by_job; DROP TABLE status_counts; DROP TABLE sweep_status_counts; PRAGMA user_version = 3; ";

// A v3 file reads as it is when opened read-only (counted from its indices) and migrates
// on the first read-write open: the migration fills the counts, and `ledger status`
// answers the same before and after.
TEST(LedgerCounts, V3FileReadsReadOnlyAndMigratesToV4WithFilledCounts) {
  const std::string path = TestDir() + "/l.db";
  const auto grid = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 10);  // 60 jobs
  {
    auto l = OpenOk(path);
    ASSERT_NE(l, nullptr);
    ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), grid).ok());
    ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), grid).ok());  // shares sweep 1's
    ASSERT_TRUE(l->RegisterJobs(NewSweep(l.get()), testing::MakeGrid("f", {"a"}, {"x"}, 4)).ok());
  }
  RawExec(path, std::string(kV4ToV3) +
                    "UPDATE jobs SET status = 'done' WHERE rowid % 3 = 0; UPDATE jobs SET status = 'failed' "
                    "WHERE rowid % 5 = 0; UPDATE jobs SET kind = 'eval' WHERE rowid % 7 = 0;");
  std::vector<nlohmann::json> v3;
  {
    auto ro = OpenOk(path, {true});
    ASSERT_NE(ro, nullptr);
    ASSERT_EQ(ro->schema_version(), 3);
    for (int64_t id : {-1, 1, 2, 3, 99}) {
      auto c = ro->StatusCounts(id);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      v3.push_back(*c);
    }
    EXPECT_EQ(v3[1], v3[2]);
    EXPECT_GT(v3[1].size(), 3u);
  }
  { ASSERT_NE(OpenOk(path), nullptr); }  // migrates
  ExpectCountsMatchRecount(path, "the migration of a v3 file");
  auto ro = OpenOk(path, {true});
  ASSERT_NE(ro, nullptr);
  size_t k = 0;
  for (int64_t id : {-1, 1, 2, 3, 99}) EXPECT_EQ(*ro->StatusCounts(id), v3[k++]) << "sweep " << id;
}

// EXPLAIN QUERY PLAN of `sql` on `db`: the detail column of each row.
std::vector<std::string> PlanOf(sqlite3* db, const std::string& sql) {
  std::vector<std::string> out;
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &st, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db) << ": " << sql;
  while (st && sqlite3_step(st) == SQLITE_ROW) out.push_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 3)));
  sqlite3_finalize(st);
  return out;
}

// The reads of the kept counts and every statement of the triggers that keep them (taken
// from the file's schema, OLD./NEW. columns replaced by values) search an index: no scan
// of jobs or sweep_jobs, no job row read (a job row keeps `status` after kilobytes of
// config_json), so a status change costs a few index probes however large the ledger.
TEST(LedgerIndices, KeptStatusCountsAndTheirTriggersSearchIndicesOnly) {
  const std::string path = TestDir() + "/l.db";
  { ASSERT_NE(OpenOk(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  // The read of all jobs' counts scans status_counts: one row per kind and status, in order.
  EXPECT_EQ(PlanOf(db, Ledger::KeptStatusCountSql(-1)), std::vector<std::string>{"SCAN status_counts"});
  std::vector<std::string> statements = {Ledger::KeptStatusCountSql(3)};
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%count%'",
                               -1, &st, nullptr),
            SQLITE_OK);
  int triggers = 0;
  const std::regex body(R"(BEGIN([\s\S]*)END)"), column(R"((NEW|OLD)\.(\w+))");
  while (sqlite3_step(st) == SQLITE_ROW) {
    ++triggers;
    std::string sql = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(sql, m, body)) << sql;
    std::string text = std::regex_replace(m[1].str(), column, "'x'");
    size_t from = 0;
    for (size_t semi; (semi = text.find(';', from)) != std::string::npos; from = semi + 1)
      statements.push_back(text.substr(from, semi - from));
  }
  sqlite3_finalize(st);
  EXPECT_EQ(triggers, 6);
  EXPECT_GE(statements.size(), 13u);
  for (const std::string& sql : statements) {
    for (const std::string& detail : PlanOf(db, sql)) {
      EXPECT_EQ(detail.rfind("SCAN", 0), std::string::npos) << "scans: " << detail << "\n  in: " << sql;
      EXPECT_EQ(detail.find("TEMP B-TREE"), std::string::npos) << "sorts: " << detail << "\n  in: " << sql;
      if (detail.find(" jobs ") != std::string::npos || detail.find(" sweep_jobs ") != std::string::npos)
        EXPECT_NE(detail.find("COVERING INDEX"), std::string::npos) << "reads rows: " << detail << "\n  in: " << sql;
    }
  }
  sqlite3_close(db);
}

// `ledger status --sweep`'s lists of failed/blocked and running jobs start from
// jobs_by_status (a few jobs) and probe the sweep's links once for each: no list of every
// link of the sweep first (a LIST SUBQUERY reads all 10^6 links of a 10^6-job sweep as
// soon as one job has failed), no job row read beyond the ones listed.
TEST(LedgerIndices, StatusListsOfASweepProbeItsLinks) {
  const std::string path = TestDir() + "/l.db";
  { ASSERT_NE(OpenOk(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  for (int64_t holder : {int64_t{-1}, int64_t{3}}) {
    for (const std::string& sql : {Ledger::FailedJobsSql(holder), Ledger::RunningJobsSql(holder)}) {
      const std::vector<std::string> plan = PlanOf(db, sql);
      ASSERT_FALSE(plan.empty()) << sql;
      EXPECT_EQ(plan[0].rfind("SEARCH j USING INDEX jobs_by_status (status=?)", 0), 0u) << plan[0] << "\n  in: " << sql;
      bool probes = false;
      for (const std::string& detail : plan) {
        EXPECT_EQ(detail.find("LIST SUBQUERY"), std::string::npos) << detail << "\n  in: " << sql;
        EXPECT_EQ(detail.rfind("SCAN", 0), std::string::npos) << detail << "\n  in: " << sql;
        probes |= detail.find("(sweep_id=? AND job_id=?)") != std::string::npos;
      }
      EXPECT_EQ(probes, holder >= 0) << sql;
    }
  }
  sqlite3_close(db);
}

}  // namespace
}  // namespace emosweep::orchestrator
