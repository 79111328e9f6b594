// tests/orchestrator/ledger_indices_test.cc: the query plans of the hot queries: every per-job read
// searches an index, and the status and metric scans read what they should, without a sort.
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::OpenOk;

// Every query the scheduler, `table` and `ledger` issue per job or per id must be
// answered by an index (issue 15): no full scan of jobs, sweep_jobs, metrics,
// eval_details, curves or predictions. The statements are copied from
// ledger.cc and ledger_{results,status,metrics,jobs}.cc; a new hot query belongs here too.
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
