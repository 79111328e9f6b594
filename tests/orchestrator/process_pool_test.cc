// ProcessPool (run --parallel K as worker processes): the frame protocol, a
// child that dies mid-job, a child's failure code, and a stop forwarded as
// SIGTERM. The children here are small /bin/sh scripts speaking the protocol
// (the real child, `emosweep worker`, is covered end to end by
// tests/cli/parallel_repro_test.sh).
#include "orchestrator/process_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
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

// `run`'s idle-core meter reads pids() on one runner thread while others start, reap and respawn children in
// Run (helper-75: a data race under ThreadSanitizer, the pid written without the pool's mutex). Children that
// answer and exit (worker_exits; reading the request until the pool closes it) are reaped and respawned on every
// job; the sampler sees only live ids.
TEST(ProcessPool, PidsAreReadWhileJobsStartAndReapChildren) {
  // 62-byte reply: {"status":"failed","code":1,"error":"bad","worker_exits":true}
  ProcessPool pool(Sh(R"(cat <&3 >/dev/null & printf '\076\0\0\0\0\0\0\0{"status":"failed","code":1,"error":"bad","worker_exits":true}' >&4; wait)", 2));
  std::atomic<bool> done{false};
  std::atomic<long> sampled{0}, bad{0};
  std::thread sampler([&] {
    while (!done) {
      for (int pid : pool.pids()) {
        ++sampled;
        if (pid <= 0) ++bad;
      }
    }
  });
  std::vector<std::thread> runners;
  for (int t = 0; t < 2; ++t)
    runners.emplace_back([&] {
      jobs::JobContext ctx;
      for (int i = 0; i < 10; ++i) EXPECT_EQ(pool.Run(Spec(), ctx).status().message(), "bad");
    });
  for (auto& r : runners) r.join();
  done = true;
  sampler.join();
  EXPECT_EQ(pool.spawned(), 20) << "a child per job: each exits after its reply";
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(sampled.load(), 0);
  EXPECT_TRUE(pool.pids().empty()) << "every child reaped";
}

// `run` starts the children before the sweep's first job (they load the torch module while
// the run process sets up the sweep): Start() spawns every free slot once, and a job then goes
// to a child that is already running instead of starting one.
TEST(ProcessPool, StartSpawnsEveryChildBeforeAnyJobAndRunUsesThem) {
  const std::string log = ::testing::TempDir() + "/pool_start_" + std::to_string(::getpid());
  std::remove(log.c_str());
  ProcessPool pool(Sh("echo $$ >> '" + log +
                          R"('; printf '\052\0\0\0\0\0\0\0{"status":"failed","code":1,"error":"bad"}' >&4; cat <&3 >/dev/null)",
                      2));
  pool.Start();
  EXPECT_EQ(pool.spawned(), 2);
  int lines = 0;
  for (int i = 0; i < 500 && lines < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream in(log);
    std::string line;
    for (lines = 0; std::getline(in, line);) ++lines;
  }
  EXPECT_EQ(lines, 2) << "both children run before any job was sent";
  pool.Start();  // already running: nothing more starts
  EXPECT_EQ(pool.spawned(), 2);
  jobs::JobContext ctx;
  auto r = pool.Run(Spec(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "bad");
  EXPECT_EQ(pool.spawned(), 2);
  std::remove(log.c_str());
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

// --- Packs (issue 16): one request, one reply with a result per member ---

jobs::JobSpec SpecWithId(const std::string& id) {
  jobs::JobSpec s = Spec();
  s.id = id;
  return s;
}

TEST(ProcessPool, PackRepliesRoundTripPerMember) {
  std::vector<Result<jobs::JobResult>> outcomes;
  jobs::JobResult ok;
  ok.selected_epoch = 3;
  outcomes.emplace_back(ok);
  outcomes.emplace_back(Status::Aborted("stopped"));
  outcomes.emplace_back(Status::InvalidArgument("bad member"));
  auto back = PackOutcomesOf(PackReplyFor(outcomes), {"aaaa", "bbbb", "cccc"});
  ASSERT_EQ(back.size(), 3u);
  ASSERT_TRUE(back[0].ok());
  EXPECT_EQ(back[0]->selected_epoch, 3);
  EXPECT_EQ(back[1].status().code(), StatusCode::kAborted);
  EXPECT_EQ(back[2].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(back[2].status().message(), "bad member");
  // A reply with the wrong number of results fails every member; a plain reply counts for all.
  auto wrong = PackOutcomesOf(PackReplyFor(outcomes), {"aaaa", "bbbb"});
  ASSERT_EQ(wrong.size(), 2u);
  EXPECT_FALSE(wrong[0].ok());
  EXPECT_NE(wrong[0].status().message().find("3 results"), std::string::npos) << wrong[0].status().message();
  auto plain = PackOutcomesOf(ReplyFor(Status::Internal("worker: malformed request")), {"aaaa", "bbbb"});
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[1].status().message(), "worker: malformed request");
}

TEST(ProcessPool, APackIsOneRequestAndOneReplyWithAnOutcomePerMember) {
  const std::string dir = ::testing::TempDir() + "/pool_pack_" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  const std::string req = dir + "/request";
  // 91-byte reply (octal 133): member 1 failed with code 1, member 2 interrupted; then the
  // child keeps what it was sent (the request frame) until its input ends.
  {  // the pool's end closes the child's input: it then writes the request out and exits
    ProcessPool pool(Sh(std::string(R"(printf '\133\0\0\0\0\0\0\0{"results":[{"status":"failed","code":1,"error":"a"},{"status":"interrupted","error":"b"}]}' >&4; cat <&3 > )") + req));
    std::vector<jobs::JobSpec> members = {SpecWithId("11111111111111111111"), SpecWithId("22222222222222222222")};
    members[1].init_from = "pretrain-job";
    std::vector<jobs::JobContext> ctxs(2);
    ctxs[0].threads = 3;
    ctxs[1].checkpoint_of = [](const std::string& id) { return "/ckpt/" + id; };
    auto r = pool.RunPack(members, ctxs);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r[0].status().message(), "a");
    EXPECT_EQ(r[1].status().code(), StatusCode::kAborted);
    EXPECT_EQ(pool.spawned(), 1);
  }
  std::ifstream in(req, std::ios::binary);
  std::string frame((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(frame.size(), 8u);
  auto j = nlohmann::json::parse(frame.substr(8), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << frame;
  ASSERT_TRUE(j["pack"].is_array());
  ASSERT_EQ(j["pack"].size(), 2u);
  EXPECT_EQ(j["pack"][0]["id"], "11111111111111111111");
  EXPECT_EQ(j["pack"][1]["id"], "22222222222222222222");
  EXPECT_EQ(j["threads"], 3);
  EXPECT_EQ(j["checkpoints"]["pretrain-job"], "/ckpt/pretrain-job");
  EXPECT_FALSE(j.contains("spec"));
}

// helper-58: a member's result sent ahead of the pack's reply reaches its on_finished at once, even when the child
// dies afterwards (the members not sent fail naming the signal).
TEST(ProcessPool, AMemberSentAheadOfThePacksReplyReachesItsContextBeforeTheChildDies) {
  const std::string dir = ::testing::TempDir() + "/pool_ahead_" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  jobs::JobResult done;
  done.selected_epoch = 3;
  done.evals["test"].metrics = {{"ua", 0.75}};
  const std::string payload = MemberDoneFor(1, done).dump();
  std::string frame(8, '\0');
  for (int i = 0; i < 8; ++i) frame[size_t(i)] = static_cast<char>((payload.size() >> (8 * i)) & 0xff);
  frame += payload;
  {
    std::ofstream out(dir + "/frame", std::ios::binary);
    out << frame;
  }
  ProcessPool pool(Sh("cat " + dir + "/frame >&4; sleep 0.2; kill -9 $$"));
  std::vector<jobs::JobSpec> members = {SpecWithId("11111111111111111111"), SpecWithId("22222222222222222222")};
  std::vector<jobs::JobContext> ctxs(2);
  std::vector<int> delivered;
  double ua = 0;
  for (int i = 0; i < 2; ++i)
    ctxs[size_t(i)].on_finished = [&, i](const jobs::JobResult& r) {
      delivered.push_back(i);
      ua = r.evals.at("test").metrics.value("ua", 0.0);
    };
  auto r = pool.RunPack(members, ctxs);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(delivered, std::vector<int>{1});
  EXPECT_EQ(ua, 0.75);
  for (const auto& m : r) {
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("killed by signal 9"), std::string::npos) << m.status().message();
  }
}

TEST(ProcessPool, AChildThatDiesMidPackFailsEveryMemberNamingTheSignal) {
  ProcessPool pool(Sh("kill -9 $$"));
  std::vector<jobs::JobSpec> members = {SpecWithId("11111111111111111111"), SpecWithId("22222222222222222222")};
  auto r = pool.RunPack(members, std::vector<jobs::JobContext>(2));
  ASSERT_EQ(r.size(), 2u);
  for (const auto& m : r) {
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("killed by signal 9"), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find("pack of 2"), std::string::npos) << m.status().message();
  }
}

}  // namespace
}  // namespace emosweep::orchestrator
