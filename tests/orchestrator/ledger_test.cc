// Ledger: schema, migrations/rejection, claiming, atomic completion, read API.
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
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

TEST(Ledger, NewFileGetsSchemaV1InWalMode) {
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
  // Reopening an existing v1 file migrates nothing and keeps the data.
  auto again = OpenOk(path);
  EXPECT_EQ(again->schema_version(), 1);
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
  EXPECT_EQ(c->attempts, 2);
  // Our own pid with another nonce is an earlier process that had our pid.
  EXPECT_TRUE(OwnerIsDeadHere(host + ":" + std::to_string(::getpid()) + ":00000000"));
  EXPECT_FALSE(OwnerIsDeadHere(me));
}

TEST(Ledger, SilentOwnerElsewhereIsTakenOverAfterStaleTimeoutAndExhaustsAttempts) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "m", "c", 1);
  RegisterOne(l.get(), job);
  ClaimOptions fresh{/*stale_after_s=*/600, /*max_attempts=*/2, "w"};
  ClaimOptions stale{/*stale_after_s=*/-1, /*max_attempts=*/2, "w"};
  ASSERT_EQ(l->Claim(job.spec.id, "far-away:1:aa", fresh)->outcome, ClaimOutcome::kClaimed);
  EXPECT_EQ(l->Claim(job.spec.id, "here:2:bb", fresh)->outcome, ClaimOutcome::kNotClaimable);
  EXPECT_EQ(l->Claim(job.spec.id, "here:2:bb", stale)->outcome, ClaimOutcome::kTaken);
  // The second owner dies too: two attempts used, the job is failed, not run a third time.
  EXPECT_EQ(l->Claim(job.spec.id, "here:3:cc", stale)->outcome, ClaimOutcome::kExhausted);
  auto row = l->GetJob(job.spec.id);
  EXPECT_EQ((*row)->status, JobStatus::kFailed);
  EXPECT_NE((*row)->error.find("died while running"), std::string::npos);
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

TEST(Ledger, CompleteWithNaNMetricWritesNothing) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "good", "c", 1);
  RegisterOne(l.get(), job);
  std::string me = ThisOwner();
  ASSERT_EQ(l->Claim(job.spec.id, me, {})->outcome, ClaimOutcome::kClaimed);
  worker::JobResult r = FakeResult(job.spec);
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

}  // namespace
}  // namespace emosweep::orchestrator
