// bench/coordinator_bench.cc: per-job scheduling overhead of a sweep at 1..N ranks,
// with the jobs themselves taken out (issue 15: < 2 ms a job at 1-3 ranks).
//
// Every job sleeps --job-ms (a sleep, not a busy loop: on a 2-core machine busy
// workers would compete with rank 0 and measure the CPU queue) and returns a fake
// result of a tiny job's size (tests/orchestrator/fake_jobs: 40 test predictions,
// a 3-epoch curve, metrics); its spec carries --utts training utterance ids, as
// a real tiny job's does. Everything else is the real path: the ledger file (WAL),
// the Scheduler's claims and completions, and, under mpirun, the coordinator and
// worker loops over MPI. One process (no mpirun, or -n 1) runs the single-process
// runner (orchestrator::RunSweep, one job at a time).
//
//   [mpirun -n N] coordinator_bench [--jobs 400] [--job-ms 20] [--utts 180] [--ledger PATH] [--json]
//                                   [--no-prefetch]
// --no-prefetch: DistributedOptions::prefetch_below_s = 0 (every job waits for the
// round trip, as before issue 15's prefetch), for an A/B on the same build.
//
// Prints (rank 0): ranks, jobs, wall s, and
//   overhead/job = (worker ranks x wall - jobs x job time) / jobs: worker time per
//                  job not spent in the job (hand-out, messages, JSON, ledger
//                  writes, waiting), the "per-job scheduling overhead";
//   rank0 cpu/job = the coordinating process's CPU per job (user + sys).
// The ledger is a fresh file (default: a temp file, removed afterwards).
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "cluster/world.h"
#include "core/log.h"
#include "orchestrator/coordinator.h"
#include "orchestrator/runner.h"
#include "tests/orchestrator/fake_jobs.h"

namespace {

using namespace emosweep;

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Args {
  int jobs = 400, job_ms = 20, utts = 180;
  std::string ledger;
  bool json = false;
  bool prefetch = true;
};

protocols::Protocol Plan(const Args& a) {
  protocols::Protocol p;
  p.name = "coordinator-bench";
  p.path = "coordinator_bench.toml";
  p.effective = {{"name", p.name}, {"jobs", a.jobs}};
  for (int i = 0; i < a.jobs; ++i)
    p.jobs.push_back(testing::MakeJob("bench", i % 2 ? "good" : "mid", "c" + std::to_string(i),
                                      static_cast<uint64_t>(i % 5 + 1), {}, a.utts));
  return p;
}

orchestrator::Executor SleepExecutor(int ms) {
  return [ms](const jobs::JobSpec& spec, const jobs::JobContext&) -> Result<jobs::JobResult> {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return testing::FakeResult(spec);
  };
}

void Print(const Args& a, int ranks, double wall, double cpu0, int done) {
  const int workers = ranks > 1 ? ranks - 1 : 1;
  const double job_s = a.job_ms / 1000.0;
  const double ovh_ms = (workers * wall - done * job_s) / done * 1000;
  const double cpu_ms = cpu0 / done * 1000;
  if (a.json) {
    std::printf(
        "{\"ranks\": %d, \"jobs\": %d, \"job_ms\": %d, \"prefetch\": %s, \"wall_s\": %.4f, "
        "\"overhead_ms_per_job\": %.3f, \"rank0_cpu_ms_per_job\": %.3f}\n",
        ranks, done, a.job_ms, a.prefetch ? "true" : "false", wall, ovh_ms, cpu_ms);
  } else {
    std::printf("ranks %d  jobs %d  job %d ms%s  wall %.3f s  overhead/job %.3f ms  rank0 cpu/job %.3f ms  %s\n", ranks,
                done, a.job_ms, a.prefetch ? "" : " (no prefetch)", wall, ovh_ms, cpu_ms,
                ovh_ms < 2.0 ? "(< 2 ms: met)" : "(< 2 ms: NOT met)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "coordinator_bench: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--jobs")
      a.jobs = std::atoi(next());
    else if (k == "--job-ms")
      a.job_ms = std::atoi(next());
    else if (k == "--utts")
      a.utts = std::atoi(next());
    else if (k == "--ledger")
      a.ledger = next();
    else if (k == "--json")
      a.json = true;
    else if (k == "--no-prefetch")
      a.prefetch = false;
    else {
      std::fprintf(stderr,
                   "usage: [mpirun -n N] coordinator_bench [--jobs 400] [--job-ms 20] [--utts 180] "
                   "[--ledger PATH] [--json] [--no-prefetch]\n");
      return 2;
    }
  }
  if (a.jobs < 1 || a.job_ms < 0 || a.utts < 1) {
    std::fprintf(stderr, "coordinator_bench: --jobs and --utts must be >= 1, --job-ms >= 0\n");
    return 2;
  }
  SetLogLevel(LogLevel::kWarn);
  auto world = cluster::CreateWorld(&argc, &argv);
  if (!world.ok()) {
    std::fprintf(stderr, "coordinator_bench: %s\n", world.status().ToString().c_str());
    return 1;
  }
  auto& comm = (*world)->comm();
  const int rank = comm.rank(), ranks = comm.size();
  std::atomic<bool> stop{false};
  orchestrator::DistributedOptions d;
  if (!a.prefetch) d.prefetch_below_s = 0;
  auto reducer = (*world)->MakeGroupReducer(orchestrator::GroupColor(rank, d.group_size), "cpu", {});
  if (!reducer.ok()) {
    std::fprintf(stderr, "coordinator_bench: %s\n", reducer.status().ToString().c_str());
    return 1;
  }
  if (rank != 0) {
    Status st = orchestrator::RunWorkerRank(
        comm, **reducer, d, SleepExecutor(a.job_ms), [] { return jobs::JobContext(); }, stop);
    if (!st.ok()) comm.Abort(1, st.message());
    return (*world)->Finalize().ok() ? 0 : 1;
  }

  const bool own_ledger = a.ledger.empty();
  if (own_ledger)
    a.ledger =
        (std::filesystem::temp_directory_path() / ("coordinator_bench_" + std::to_string(::getpid()) + ".db")).string();
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "coordinator_bench: %s\n", s.ToString().c_str());
    if (ranks > 1) comm.Abort(1, s.message());
    return 1;
  };
  auto ledger = orchestrator::Ledger::Open(a.ledger);
  if (!ledger.ok()) return fail(ledger.status());
  protocols::Protocol p = Plan(a);
  orchestrator::RunOptions o;
  o.parallel = 1;
  o.progress = false;
  o.work_dir = a.ledger + ".work";
  const double cpu_start = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0;
  if (ranks == 1) {
    auto s = orchestrator::RunSweep(p, ledger->get(), SleepExecutor(a.job_ms), o);
    if (!s.ok()) return fail(s.status());
    done = s->counts.finished_here;
  } else {
    auto started = orchestrator::StartSweep(p, ledger->get(), o);
    if (!started.ok()) return fail(started.status());
    auto sum = orchestrator::RunCoordinator(comm, *started->scheduler, d, stop, nullptr, nullptr);
    if (!sum.ok()) return fail(sum.status());
    done = sum->finished;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu0 = CpuSeconds() - cpu_start;
  if (done != a.jobs)
    return fail(Status::Internal(std::to_string(done) + " of " + std::to_string(a.jobs) + " jobs done"));
  Print(a, ranks, wall, cpu0, done);
  ledger->reset();
  if (own_ledger)
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(a.ledger + suffix);
  return (*world)->Finalize().ok() ? 0 : 1;
}
