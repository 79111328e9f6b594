// tests/orchestrator/fake_sweep_main.cc: a real sweep process with a fake executor.
//
// The process tests (kill -9 mid-sweep, two concurrent runs on one ledger)
// need real processes on a real ledger and the real runner/scheduler/ledger,
// but not real training. This driver builds a fixed plan (one shared
// pre-training job, and a grid whose every 4th job depends on it), runs it
// through orchestrator::RunSweep with an executor that sleeps and appends
// "<job id> <pid>" to a log (O_APPEND: one line per completed execution).
//   fake_sweep LEDGER JOBS SLEEP_MS LOG [PARALLEL]
// Exit codes as the CLI: 0 ok, 1 failed jobs or errors, 2 bad usage.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "orchestrator/runner.h"
#include "tests/orchestrator/fake_jobs.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace


int main(int argc, char** argv) {
  using namespace emosweep;
  if (argc < 5) {
    std::fprintf(stderr, "usage: fake_sweep LEDGER JOBS SLEEP_MS LOG [PARALLEL]\n");
    return 2;
  }
  std::string ledger_path = argv[1], log_path = argv[4];
  int n = std::atoi(argv[2]), sleep_ms = std::atoi(argv[3]), parallel = argc > 5 ? std::atoi(argv[5]) : 1;
  ::signal(SIGTERM, OnSignal);
  ::signal(SIGINT, OnSignal);
  auto ledger = orchestrator::Ledger::Open(ledger_path);
  if (!ledger.ok()) {
    std::fprintf(stderr, "%s\n", ledger.status().ToString().c_str());
    return ExitCodeFor(ledger.status());
  }
  protocols::Protocol p;
  p.name = "fake";
  p.path = "fake.toml";
  p.effective = {{"name", "fake"}, {"jobs", n}};
  p.jobs = testing::FakeSweepPlan(n);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) return 1;
  orchestrator::Executor exec = [&](const jobs::JobSpec& spec,
                                    const jobs::JobContext& ctx) -> Result<jobs::JobResult> {
    for (int waited = 0; waited < sleep_ms; waited += 5) {
      if (ctx.stop_requested && ctx.stop_requested->load()) return Status::Aborted("stop requested");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::string line = spec.id + " " + std::to_string(::getpid()) + "\n";
    if (::write(log_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      return Status::IoError("log write failed");
    return testing::FakeResult(spec);
  };
  orchestrator::RunOptions o;
  o.parallel = parallel;
  o.poll_s = 0.02;
  o.heartbeat_s = 0.5;
  o.progress = false;
  o.stop = &g_stop;
  auto s = orchestrator::RunSweep(p, ledger->get(), exec, o);
  ::close(log_fd);
  if (!s.ok()) {
    std::fprintf(stderr, "fake_sweep: %s\n", s.status().ToString().c_str());
    return ExitCodeFor(s.status());
  }
  std::printf("%s\n", s->ToJson().dump().c_str());
  return s->failures.empty() ? 0 : 1;
}
