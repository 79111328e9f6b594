// tests/orchestrator/ledger_claim_test.cc: claiming a job (one connection wins, dead or silent owners
// are taken over) and completing it atomically (all rows or none, only by its owner).
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <string>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeResult;
using testing::MakeJob;
using testing::OpenOk;
using testing::RegisterOne;
using testing::TestDir;

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

}  // namespace
}  // namespace emosweep::orchestrator
