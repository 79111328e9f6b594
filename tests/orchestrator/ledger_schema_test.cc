// tests/orchestrator/ledger_schema_test.cc: the ledger file: schema, WAL mode, the v1 -> v2 migration, and
// the files it refuses (newer schema, foreign or non-SQLite files, truncated files, a directory).
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::OpenOk;
using testing::RawExec;
using testing::TestDir;
using testing::kV3ToV2;

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

// helper-66: a ledger deleted (or replaced) during a sweep went unnoticed: SQLite wrote on to the deleted file and
// the run exited 0 with no ledger left. The sweep's end says so.
TEST(Ledger, ALedgerDeletedOrReplacedDuringASweepIsNamedAtItsEnd) {
  for (const bool replace : {false, true}) {
    SCOPED_TRACE(replace ? "replaced" : "deleted");
    const std::string path = TestDir() + (replace ? "/replaced.db" : "/deleted.db");
    auto l = Ledger::Open(path);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    auto sweep = (*l)->BeginSweep({"p", "p.toml", "h", {}, {}});
    ASSERT_TRUE(sweep.ok());
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
    if (replace) std::ofstream(path) << "";
    const Status st = (*l)->FinishSweep(*sweep, "done", {});
    EXPECT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
    EXPECT_NE(st.message().find("the ledger file was deleted or replaced while this sweep wrote to it"),
              std::string::npos)
        << st.ToString();
  }
  auto kept = Ledger::Open(TestDir() + "/kept.db");
  ASSERT_TRUE(kept.ok());
  auto sweep = (*kept)->BeginSweep({"p", "p.toml", "h", {}, {}});
  EXPECT_TRUE((*kept)->FinishSweep(*sweep, "done", {}).ok());
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

}  // namespace
}  // namespace emosweep::orchestrator
