// tests/orchestrator/ledger_query_test.cc: raw SQL (`ledger query --sql`): read-only, one statement,
// refused before it runs or creates anything, stopped at its timeout.
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::MakeJob;
using testing::OpenOk;
using testing::RegisterOne;
using testing::TestDir;

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

}  // namespace
}  // namespace emosweep::orchestrator
