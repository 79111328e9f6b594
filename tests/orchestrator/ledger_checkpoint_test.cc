// tests/orchestrator/ledger_checkpoint_test.cc: kept checkpoints: paths resolved against the ledger from
// any working directory, old working-directory-relative paths, Supersede of a done job.
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeResult;
using testing::MakeJob;
using testing::OpenOk;
using testing::RawExec;
using testing::RegisterOne;
using testing::TestDir;

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

// Session 17's resume audit: the first run started from another directory than the ledger's stored the
// trainer's cwd-relative path ("proj/l.db.work/..."), so a resume from the ledger's own directory, or after
// moving the project, did not find the models and re-ran 8 of 9 finished jobs.
TEST(Ledger, CheckpointRecordedFromAnotherDirectoryIsStoredRelativeToTheLedger) {
  CwdGuard guard;
  const std::filesystem::path root = TestDir();
  std::filesystem::create_directories(root / "proj" / "l.db.work" / "j");
  std::ofstream(root / "proj" / "l.db.work" / "j" / "model.ckpt") << "x";
  auto job = MakeJob("e", "m", "c", 1);
  {
    std::filesystem::current_path(root);  // `run --ledger proj/l.db` from the parent
    auto l = OpenOk("proj/l.db");
    CompleteWithCheckpoint(l.get(), job, "proj/l.db.work/j/model.ckpt");
    EXPECT_EQ((*l->GetJob(job.spec.id))->checkpoint, "l.db.work/j/model.ckpt");
  }
  std::filesystem::rename(root / "proj", root / "moved");  // the project moved whole
  std::filesystem::current_path(root / "moved");
  auto l = OpenOk("l.db");
  auto c = l->CheckpointOf(job.spec.id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(*c)) << *c;
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

}  // namespace
}  // namespace emosweep::orchestrator
