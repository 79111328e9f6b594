// Real processes on one ledger: kill -9 mid-sweep then resume; two concurrent runs.
// The sweeps are run by tests/orchestrator/fake_sweep_main.cc (real runner,
// scheduler and ledger; a sleeping fake executor), started with fork/exec.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "orchestrator/ledger.h"
#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::orchestrator {
namespace {

pid_t Start(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::map<std::string, std::vector<std::string>> ReadLog(const std::string& path) {
  std::map<std::string, std::vector<std::string>> runs;  // id -> pids that completed it
  std::ifstream in(path);
  std::string id, pid;
  while (in >> id >> pid) runs[id].push_back(pid);
  return runs;
}

int CountDone(const std::string& ledger) {
  auto l = Ledger::Open(ledger, {true});
  if (!l.ok()) return 0;
  auto q = (*l)->Query("SELECT count(*) FROM jobs WHERE status = 'done'");
  return q.ok() ? (*q)["rows"][0][0].get<int>() : 0;
}

// Every planned job done exactly once in the ledger, with one complete result each.
void ExpectCompleteLedger(const std::string& path, int n) {
  auto l = std::move(Ledger::Open(path, {true})).value();
  auto plan = testing::FakeSweepPlan(n);
  std::vector<std::string> ids;
  for (const auto& j : plan) ids.push_back(j.spec.id);
  auto status = *l->StatusOf(ids);
  ASSERT_EQ(status.size(), static_cast<size_t>(n));
  for (const auto& [id, s] : status) EXPECT_EQ(s, JobStatus::kDone) << id;
  auto q = [&](const std::string& sql) { return (*l->Query(sql))["rows"][0][0].get<int64_t>(); };
  EXPECT_EQ(q("SELECT count(*) FROM jobs"), n);
  EXPECT_EQ(q("SELECT count(*) FROM metrics"), 5 * n) << "ua, wa, macro_f1, weighted_f1, n per job";
  EXPECT_EQ(q("SELECT count(*) FROM predictions"), 40 * n);
  EXPECT_EQ(q("SELECT count(*) FROM curves"), 3 * n);
  EXPECT_EQ(q("SELECT count(*) FROM provenance"), n);
  EXPECT_EQ(q("SELECT count(*) FROM jobs WHERE owner IS NOT NULL"), 0);
}

TEST(Process, KillNineMidSweepThenRerunLosesAndDuplicatesNothing) {
  std::string dir = testing::TestDir(), db = dir + "/l.db", log = dir + "/runs.log";
  const int n = 24;
  // 200 ms a job: the kill must land mid-sweep also on a loaded machine, where the poll below can stall for a
  // second (at 80 ms the whole sweep once finished before it saw 6 jobs done).
  pid_t first = Start({FAKE_SWEEP_BINARY, db, std::to_string(n), "200", log});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (CountDone(db) < 6 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  EXPECT_EQ(Wait(first), 128 + SIGKILL);
  int done_before = CountDone(db);
  ASSERT_GE(done_before, 6);
  ASSERT_LT(done_before, n) << "the sweep finished before the kill; the test proves nothing";

  EXPECT_EQ(Wait(Start({FAKE_SWEEP_BINARY, db, std::to_string(n), "10", log})), 0);
  ExpectCompleteLedger(db, n);
  auto runs = ReadLog(log);
  EXPECT_EQ(runs.size(), static_cast<size_t>(n)) << "every job completed";
  int repeated = 0;
  for (const auto& [id, pids] : runs) repeated += pids.size() > 1;
  // Only a job killed between its last line of work and its commit can have run twice.
  EXPECT_LE(repeated, 1);
}

TEST(Process, TwoConcurrentRunsOnOneLedgerBothFinishAndRunEveryJobOnce) {
  std::string dir = testing::TestDir(), db = dir + "/l.db", log = dir + "/runs.log";
  const int n = 30;
  pid_t a = Start({FAKE_SWEEP_BINARY, db, std::to_string(n), "40", log});
  pid_t b = Start({FAKE_SWEEP_BINARY, db, std::to_string(n), "40", log, "2"});
  EXPECT_EQ(Wait(a), 0);
  EXPECT_EQ(Wait(b), 0);
  ExpectCompleteLedger(db, n);
  auto runs = ReadLog(log);
  EXPECT_EQ(runs.size(), static_cast<size_t>(n));
  std::set<std::string> workers;
  for (const auto& [id, pids] : runs) {
    EXPECT_EQ(pids.size(), 1u) << "job " << id << " ran more than once";
    workers.insert(pids.begin(), pids.end());
  }
  EXPECT_EQ(workers.size(), 2u) << "both processes took jobs";
  auto l = std::move(Ledger::Open(db, {true})).value();
  auto sweeps = *l->Sweeps();
  ASSERT_EQ(sweeps.size(), 2u);
  for (const auto& s : sweeps) EXPECT_EQ(s["status"], "done");
}

}  // namespace
}  // namespace emosweep::orchestrator
