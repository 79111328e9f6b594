// cli/cmd_run.cc: `emosweep run PROTOCOL --ledger DB`: the single-process sweep.
//
// Binds the runner's executor to worker::RunJob (the only torch edge of the
// orchestration path). SIGINT/SIGTERM/SIGUSR1: no new jobs, the running ones
// checkpoint and go back to pending; SIGTERM/SIGUSR1 (preemption) then exit 0
// so a requeued job resumes, SIGINT exits 1. A second SIGINT kills at once.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/protocol_args.h"
#include "core/log.h"
#include "core/progress.h"
#include "orchestrator/runner.h"
#include "worker/job.h"

namespace emosweep::cli {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

void OnSignal(int sig) {
  g_signal = sig;
  g_stop = true;
  if (sig == SIGINT) ::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process
}

}  // namespace

void RunOptions(po::options_description& o) {
  AddProtocolArgs(o);
  o.add_options()("threads", po::value<int>(), "intra-op threads per job (default: cores / parallel)")(
      "parallel", po::value<int>()->default_value(1), "jobs run at once (parallel x threads <= cores)")(
      "work-dir", po::value<std::string>(), "checkpoints of jobs (default: <ledger>.work/)")(
      "max-attempts", po::value<int>()->default_value(2), "tries per job before it is recorded as failed")(
      "no-retry-failed", "keep jobs that failed in an earlier run failed (default: retry them)")(
      "stale-after", po::value<double>()->default_value(600.0),
      "seconds without heartbeat after which another process's running job is taken over")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu | cuda:N")(
      "json", "print the sweep summary as one JSON document");
}

Status RunRun(const po::variables_map& vm) {
  ES_ASSIGN_OR_RETURN(protocols::Protocol p, LoadProtocolFromArgs(vm));
  ES_RETURN_IF_ERROR(RequireInputs(p, "run"));
  for (const auto& w : p.warnings) LOG_WARN << p.path << ": " << w;
  std::string ledger_path = vm["ledger"].as<std::string>();
  orchestrator::RunOptions o;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.parallel = vm["parallel"].as<int>();
  if (o.parallel < 1) return Status::InvalidArgument("--parallel must be at least 1");
  o.threads = vm.count("threads") ? vm["threads"].as<int>() : std::max(1, cores / o.parallel);
  if (o.threads < 1) return Status::InvalidArgument("--threads must be at least 1");
  if (o.parallel * o.threads > cores)
    return Status::InvalidArgument("--parallel " + std::to_string(o.parallel) + " x --threads " +
                                   std::to_string(o.threads) + " exceeds the " + std::to_string(cores) +
                                   " cores of this machine");
  o.work_dir = vm.count("work-dir") ? vm["work-dir"].as<std::string>() : ledger_path + ".work";
  o.device = vm["device"].as<std::string>();
  o.scheduler.max_attempts = vm["max-attempts"].as<int>();
  if (o.scheduler.max_attempts < 1) return Status::InvalidArgument("--max-attempts must be at least 1");
  o.scheduler.retry_failed = !vm.count("no-retry-failed");
  o.scheduler.stale_after_s = vm["stale-after"].as<double>();
  o.heartbeat_s = std::max(0.5, std::min(30.0, o.scheduler.stale_after_s / 10));
  o.stop = &g_stop;
  o.progress = !vm.count("json");

  ES_ASSIGN_OR_RETURN(auto ledger, orchestrator::Ledger::Open(ledger_path));
  ::signal(SIGINT, OnSignal);
  ::signal(SIGTERM, OnSignal);
  ::signal(SIGUSR1, OnSignal);
  orchestrator::Executor exec = [](const worker::JobSpec& s, const worker::JobContext& c) {
    return worker::RunJob(s, c);
  };
  auto summary = orchestrator::RunSweep(p, ledger.get(), exec, o);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGUSR1, SIG_DFL);
  if (!summary.ok()) return summary.status();
  const auto& s = *summary;
  if (vm.count("json")) {
    PrintJson(s.ToJson().dump(2));
  } else {
    const auto& c = s.counts;
    std::printf("sweep %lld (%s): %d jobs: %d already done, %d ran, %d failed, %d blocked, %d left, in %s\n",
                static_cast<long long>(s.sweep_id), p.name.c_str(), c.total, c.skipped, c.finished_here, c.failed,
                c.blocked, c.pending + c.running_elsewhere + c.running_here,
                Progress::FormatDuration(s.seconds).c_str());
    for (const auto& [id, err] : s.failures) std::printf("  %.12s  %s\n", id.c_str(), err.c_str());
  }
  if (s.stopped) {
    int sig = g_signal.load();
    LOG_WARN << "stopped by signal " << sig << "; unfinished jobs are pending again, re-run to resume";
    if (sig == SIGINT) return Status::Aborted("interrupted; re-run the same command to resume");
    return Status::Ok();
  }
  if (!s.failures.empty())
    return Status::Internal(std::to_string(s.counts.failed) + " job(s) failed and " +
                            std::to_string(s.counts.blocked) + " blocked (see 'emosweep ledger status --ledger " +
                            ledger_path + "')");
  return Status::Ok();
}

}  // namespace emosweep::cli
