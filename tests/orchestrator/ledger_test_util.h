// tests/orchestrator/ledger_test_util.h: what the ledger tests (ledger_*_test.cc) share: raw SQL on a
// ledger file, a file as schema v2 wrote it, an open that must succeed, one job registered in a sweep.
// Thread-safety: test-only, single-threaded.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

#include "orchestrator/ledger.h"
#include "protocols/expand.h"

namespace emosweep::testing {

inline void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// What schema v5 added (ledger_schema.cc): dropping it makes a file as v4 wrote it, but for the rows already
// registered, which name their lists (a v4 file kept them inline).
inline const char* const kV5ToV4 = "DROP TABLE id_lists; PRAGMA user_version = 4; ";

// What schema v3 added (ledger_schema.cc): dropping it makes a file as v2 wrote it
// (after what v4 and v5 added: the kept status counts, the id lists).
inline const char* const kV3ToV2 =
    "DROP TABLE id_lists; DROP TRIGGER jobs_count_insert; DROP TRIGGER jobs_count_delete; DROP TRIGGER jobs_count_update; "
    "DROP TRIGGER sweep_jobs_count_insert; DROP TRIGGER sweep_jobs_count_delete; "
    "DROP TRIGGER sweep_jobs_count_update; DROP INDEX sweep_jobs_by_job; DROP TABLE status_counts; "
    "DROP TABLE sweep_status_counts; "
    "DROP TRIGGER sweeps_keep_shared_links; DROP VIEW sweep_links; DROP INDEX sweeps_by_job_set; "
    "ALTER TABLE sweeps DROP COLUMN links_from; ALTER TABLE sweeps DROP COLUMN job_set; PRAGMA user_version = 2; ";

inline std::unique_ptr<orchestrator::Ledger> OpenOk(const std::string& path, orchestrator::LedgerOptions o = {}) {
  auto l = orchestrator::Ledger::Open(path, o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(l).value() : nullptr;
}

inline int64_t RegisterOne(orchestrator::Ledger* l, const protocols::PlannedJob& j) {
  auto sweep = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  EXPECT_TRUE(sweep.ok());
  EXPECT_TRUE(l->RegisterJobs(*sweep, {j}).ok());
  return *sweep;
}

}  // namespace emosweep::testing
