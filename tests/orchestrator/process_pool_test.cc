// ProcessPool (run --parallel K as worker processes): the frame protocol, a
// child that dies mid-job, a child's failure code, and a stop forwarded as
// SIGTERM. The children here are small /bin/sh scripts speaking the protocol
// (the real child, `emosweep worker`, is covered end to end by
// tests/cli/parallel_repro_test.sh).
#include "orchestrator/process_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace emosweep::orchestrator {
namespace {

ProcessPoolOptions Sh(const std::string& script, int size = 1) {
  ProcessPoolOptions o;
  o.executable = "/bin/sh";
  o.args = {"-c", script};
  o.size = size;
  return o;
}

jobs::JobSpec Spec() {
  jobs::JobSpec s;
  s.id = "0123456789abcdef0123";
  s.kind = "supervised";
  return s;
}

TEST(ProcessPool, FramesRoundTripThroughAPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_TRUE(WriteFrame(fds[1], "{\"a\": 1}").ok());
  ASSERT_TRUE(WriteFrame(fds[1], "").ok());
  ::close(fds[1]);
  bool eof = false;
  auto a = ReadFrame(fds[0], &eof);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "{\"a\": 1}");
  auto b = ReadFrame(fds[0], &eof);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(eof);
  EXPECT_EQ(*b, "");
  auto c = ReadFrame(fds[0], &eof);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(eof);
  ::close(fds[0]);
}

TEST(ProcessPool, ReplyCarriesTheFailureCode) {
  Result<jobs::JobResult> bad = Status::InvalidArgument("labels: 'x' is not a label of the store");
  auto back = OutcomeOf(ReplyFor(bad), "job x");
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(back.status().message(), "labels: 'x' is not a label of the store");
  auto stopped = OutcomeOf(ReplyFor(Status::Aborted("stopped")), "job x");
  EXPECT_EQ(stopped.status().code(), StatusCode::kAborted);
}

TEST(ProcessPool, AChildThatDiesFailsItsJobNamingTheSignalAndIsRespawned) {
  ProcessPool pool(Sh("kill -9 $$"));
  jobs::JobContext ctx;
  auto r = pool.Run(Spec(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("killed by signal 9"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("0123456789ab"), std::string::npos) << r.status().message();
  auto again = pool.Run(Spec(), ctx);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(pool.spawned(), 2);
}

TEST(ProcessPool, TheChildsReplyIsTheOutcome) {
  // 42-byte reply: {"status":"failed","code":1,"error":"bad"}
  ProcessPool pool(Sh(R"(printf '\052\0\0\0\0\0\0\0{"status":"failed","code":1,"error":"bad"}' >&4; cat <&3 >/dev/null)"));
  jobs::JobContext ctx;
  auto r = pool.Run(Spec(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "bad");
}

TEST(ProcessPool, AStopRequestIsForwardedAsSigterm) {
  // The child answers "interrupted" only when it receives SIGTERM.
  ProcessPool pool(Sh(R"(trap 'printf "\044\0\0\0\0\0\0\0{\"status\":\"interrupted\",\"error\":\"x\"}" >&4; kill $! 2>/dev/null; exit 0' TERM
sleep 30 3<&- 4>&- >/dev/null 2>&1 & wait)"));
  std::atomic<bool> stop{false};
  jobs::JobContext ctx;
  ctx.stop_requested = &stop;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  auto start = std::chrono::steady_clock::now();
  auto r = pool.Run(Spec(), ctx);
  t.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted) << r.status().ToString();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
}

}  // namespace
}  // namespace emosweep::orchestrator
