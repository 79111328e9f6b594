// cli/cmd_run.cc: `emosweep run PROTOCOL --ledger DB`: the single-process sweep.
//
// Binds the runner's executor to worker::RunJob, which lives in the torch
// module (cli/torch_module.h), loaded on a thread as soon as the sweep's first
// jobs are known not to be done (with the worker processes of the default
// started then too): a re-run with nothing left to do never loads libtorch.
// SIGINT/SIGTERM/SIGUSR1: no new jobs, the running ones checkpoint and go
// back to pending; SIGTERM/SIGUSR1 (preemption) then exit 0 so a requeued job
// resumes, SIGINT exits 1. A second SIGINT kills at once. --pack (issue 16, docs/design/packing.md):
// jobs of one jobs::PackKey run as packs through worker::RunPack (in this
// process, or in one worker process); under mpirun packs are off.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <unistd.h>

#include "cli/commands.h"
#include "cli/protocol_args.h"
#include "cli/torch_module.h"
#include "core/files.h"
#include "core/log.h"
#include "core/progress.h"
#include "cluster/world.h"
#include "core/build_info.h"
#include "core/cpu.h"
#include "data/feature_store.h"
#include "jobs/pack.h"
#include "orchestrator/coordinator.h"
#include "orchestrator/pack_limit.h"
#include "orchestrator/placement.h"
#include "orchestrator/process_pool.h"
#include "orchestrator/runner.h"
#include "orchestrator/slice.h"
#include "protocols/expand_cache.h"
#include "protocols/grammar_util.h"

namespace emosweep::cli {
namespace {

// "N done by another run, " for the summary line: jobs another process (a concurrent sweep on the same
// ledger) finished while this one ran; "" when none.
std::string DoneElsewhere(int n) { return n > 0 ? std::to_string(n) + " done by another run, " : std::string(); }

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
  o.add_options()("threads", po::value<int>(),
                  "intra-op threads per job (default 1: these jobs' matrix products are too small to gain from "
                  "threads; the cores are filled with jobs instead, see --parallel). Not part of a job's identity: a larger "
                  "model's numbers can differ by thread count; provenance records it (docs/trainer.md, Determinism)")(
      "parallel", po::value<int>(),
      "jobs run at once (default: the cores this process may use, at most the jobs to run); K > 1 runs each job "
      "in its own worker process, with bitwise the same numbers as K = 1 (parallel x threads <= cores)")(
      "pack", po::value<std::string>()->default_value("auto"),
      "auto | off | K: train up to K ready jobs of one pack key (same model shapes, features and epochs) as one "
      "batched model, each recorded as its own job; auto picks K from a member's memory estimate, MemAvailable and "
      "the device (up to 32 on CPU, 256 on a GPU; on CPU also at most what keeps a pack's optimizer state within a cache budget, "
      "per pack key) and shares each key's jobs among the workers; off = single jobs (the reference "
      "path); under mpirun packs are off (docs/design/packing.md)")(
      "work-dir", po::value<std::string>(), "checkpoints of jobs (default: <ledger>.work/)")(
      "max-attempts", po::value<int>()->default_value(2), "tries per job before it is recorded as failed")(
      "no-retry-failed", "keep jobs that failed in an earlier run failed (default: retry them)")(
      "stale-after", po::value<double>()->default_value(600.0),
      "seconds without heartbeat after which another process's running job is taken over")(
      "device", po::value<std::string>()->default_value("cpu"),
      "cpu | cuda | cuda:N (under mpirun, cuda = round robin over the host's GPUs)")(
      "jobs-per-gpu", po::value<int>()->default_value(1),
      "under mpirun with --device cuda: worker ranks that may share one GPU (packing small jobs)")(
      "oversubscribe", "under mpirun: allow more worker threads per host than cores (benchmarks only)")(
      "group-size", po::value<int>()->default_value(1),
      "under mpirun: ranks per data-parallel worker group (rank 0 coordinates)")(
      "heartbeat", po::value<double>()->default_value(5.0), "under mpirun: seconds between worker heartbeats")(
      "stall-timeout", po::value<double>()->default_value(300.0),
      "under mpirun: a rank silent this long is named and the run ends instead of hanging")(
      "slice", po::value<std::string>(), "I/N: run only slice I of N independent slices of the DAG (Slurm arrays)")(
      "inject-fault", po::value<std::string>(), "testing only: stall:RANK or die:RANK")(
      "json", "print the sweep summary as one JSON document")(
      "status-file", po::value<std::string>(),
      "also write the sweep summary (JSON, with \"stopped\") to this file, atomically; the Slurm script of "
      "`submit` reads it to requeue a sweep stopped at its time limit");
}

namespace {
// --work-dir (or <ledger>.work) must be a directory this process can write, or creatable: every job tried it twice
// and failed, and its dependents were blocked (helper-66). Said before anything runs.
Status CheckWorkDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  if (ec) p = dir;
  if (fs::exists(p, ec) && !fs::is_directory(p, ec))
    return Status::InvalidArgument("--work-dir " + dir + ": not a directory");
  while (!p.empty() && !fs::exists(p, ec) && p != p.parent_path()) p = p.parent_path();  // the nearest that exists
  if (!p.empty() && ::access(p.c_str(), W_OK | X_OK) != 0)
    return Status::InvalidArgument("--work-dir " + dir + ": cannot write in " + p.string() + " (" +
                                   std::strerror(errno) + "): the jobs' checkpoints go there");
  return Status::Ok();
}

// The text summary's failed jobs: the first 20 (1000 diverged jobs printed 928 lines, helper-67), then where
// the rest are.
template <typename Failures>
void PrintFailures(const Failures& failures, const std::string& ledger) {
  constexpr size_t kShown = 20;
  size_t n = 0;
  for (const auto& [id, err] : failures) {
    if (n++ == kShown) break;
    std::printf("  %.12s  %s\n", id.c_str(), err.c_str());
  }
  if (failures.size() > kShown)
    std::printf("  ... and %zu more: emosweep ledger query --ledger %s --status failed\n", failures.size() - kShown,
                ledger.c_str());
}

// --status-file: the summary for scripts (cluster/slurm.cc), written whole or not at all.
void WriteStatusFile(const po::variables_map& vm, const nlohmann::json& summary) {
  if (!vm.count("status-file")) return;
  const std::string path = vm["status-file"].as<std::string>();
  Status st = WriteFileAtomic(path, summary.dump(2) + "\n");
  if (!st.ok()) LOG_WARN << "could not write --status-file " << path << ": " << st.ToString();
}
}  // namespace

namespace {

// Installed when `run` starts and kept until the process exits: a stop request that comes before the sweep
// starts stops it before its first job, and one that comes after the sweep (Slurm's USR1 racing the last job, a
// rank waiting in MPI_Finalize) has nothing left to stop. With the default action either killed the process
// (a requeued Slurm job then ended FAILED instead of completing: seen in the Slurm integration test).
void InstallSignals() {
  ::signal(SIGINT, OnSignal);
  ::signal(SIGTERM, OnSignal);
  ::signal(SIGUSR1, OnSignal);
}

// The jobs TorchCheckModelFiles looks at: those whose model is a file (the check skips
// every other; a copy of every spec would double a 10^6-job run's memory, issue 15).
std::vector<jobs::JobSpec> Specs(const protocols::Protocol& p) {
  std::vector<jobs::JobSpec> specs;
  for (const auto& j : p.jobs)
    if (j.spec.model.is_object() && j.spec.model.contains("file")) specs.push_back(j.spec);
  return specs;
}

orchestrator::Executor TrainerExecutor() {
  return [](const jobs::JobSpec& s, const jobs::JobContext& c) { return TorchRunJob(s, c); };
}

// Rank 0 of an MPI world: the sweep's coordinator (the only ledger writer).
Status Coordinate(const po::variables_map& vm, cluster::World& world, orchestrator::RunOptions o,
                  const orchestrator::DistributedOptions& d) {
  auto& comm = world.comm();
  auto fail = [&](const Status& s) {
    LOG_ERROR << s.ToString();
    comm.Abort(ExitCodeFor(s), s.message());
    return s;
  };
  auto p = LoadProtocolFromArgs(vm);
  if (!p.ok()) return fail(p.status());
  if (vm.count("slice")) {
    int i = 0, n = 1;
    Status st = orchestrator::ParseSlice(vm["slice"].as<std::string>(), &i, &n);
    if (!st.ok()) return fail(st);
    p->jobs = orchestrator::SliceJobs(p->jobs, i, n);
  }
  Status inputs = RequireInputs(*p, "run");
  if (inputs.ok() && vm.count("status-file"))
    inputs = RefuseOutputOverInputs(*p, "status-file", vm["status-file"].as<std::string>());
  if (!inputs.ok()) return fail(inputs);
  Status models = TorchCheckModelFiles(Specs(*p));
  if (!models.ok()) return fail(models);
  const std::string ledger_path = vm["ledger"].as<std::string>();
  auto ledger = orchestrator::Ledger::Open(ledger_path);
  if (!ledger.ok()) return fail(ledger.status());
  auto started = orchestrator::StartSweep(*p, ledger->get(), o);
  if (!started.ok()) return fail(started.status());
  auto& sched = *started->scheduler;
  if (vm["pack"].as<std::string>() != "off")
    LOG_INFO << "--pack " << vm["pack"].as<std::string>()
             << ": packs are off under mpirun; every rank runs single jobs (docs/design/packing.md)";
  if (vm.count("parallel"))  // helper-59: ignored without a word
    LOG_WARN << "--parallel " << vm["parallel"].as<int>()
             << " is ignored under mpirun: every worker rank runs one job at a time (start more ranks instead)";
  auto c0 = sched.Counts();
  if (std::string w = orchestrator::OtherBuildsWarning(ledger->get(), c0.skipped); !w.empty()) LOG_WARN << w;
  LOG_INFO << "sweep " << started->sweep_id << " '" << p->name << "' on " << comm.size() << " ranks (groups of "
           << d.group_size << "): " << c0.total << " jobs, " << c0.skipped << " already done";
  const nlohmann::json build = BuildInfo();
  orchestrator::Ledger* l = ledger->get();
  auto prov = [&](const protocols::PlannedJob&, const jobs::JobResult& r) {
    nlohmann::json p = nlohmann::json{{"git_revision", build.value("git_revision", "unknown")},
                          {"host", comm.host()},
                          {"build", build},
                          {"device", o.device},
                          // what the job ran with (its train.threads wins over --threads; helper-73)
                          {"threads", r.info.value("threads", o.threads)},
                          // the job's own time on its worker (RunJob), as the single-process runner records
                          {"seconds", r.info.value("seconds_total", 0.0)}};
    if (r.info.value("resumed_from_epoch", 0) > 0) p["resumed_from_epoch"] = r.info["resumed_from_epoch"];  // extra_json
    if (r.info.contains("cpu")) p["cpu"] = r.info["cpu"];  // the rank's CPU, as the worker reported it
    return p;
  };
  auto ckpt = [l](const std::string& id) {
    auto c = l->CheckpointOf(id);
    return c.ok() ? *c : std::string();
  };
  auto sum = orchestrator::RunCoordinator(comm, sched, d, g_stop, prov, ckpt);
  if (!sum.ok()) {
    (void)l->FinishSweep(started->sweep_id, "error", {{"error", sum.status().ToString()}});
    return fail(sum.status());
  }
  auto counts = sched.Counts();
  auto failures = sched.Failures();
  const bool stopped = g_stop.load() || sum->stopped;  // this rank's signal, or another rank's
  nlohmann::json summary = {{"sweep_id", started->sweep_id}, {"ranks", comm.size()},
                            {"group_size", d.group_size}, {"total", counts.total},
                            {"skipped", counts.skipped}, {"ran", sum->finished},
                            {"failed", counts.failed}, {"blocked", counts.blocked},
                            {"interrupted", sum->interrupted}, {"seconds", sum->wall_s},
                            {"busy_rank_seconds", sum->busy_s},
                            {"efficiency", sum->wall_s > 0 ? sum->busy_s / (sum->wall_s * comm.size()) : 0.0},
                            {"pending", counts.pending}, {"stopped", stopped},
                            // the single-process summary's keys too (helper-69: a script reading "failures"
                            // broke under mpirun and so under `submit`)
                            {"done", counts.done}, {"retried", counts.retried_here}};
  {
    nlohmann::json f = nlohmann::json::array();
    for (const auto& [id, err] : failures) f.push_back({{"id", id}, {"error", err}});
    summary["failures"] = std::move(f);
  }
  const Status finished =
      l->FinishSweep(started->sweep_id, stopped ? "interrupted" : (failures.empty() ? "done" : "failed"), summary);
  WriteStatusFile(vm, summary);
  if (vm.count("json")) {
    PrintJson(summary.dump(2));
  } else {
    std::printf("sweep %lld (%s) on %d ranks: %d jobs: %d already done, %d ran, %s%d failed, %d blocked, %d left, in "
                "%s%s\n",
                static_cast<long long>(started->sweep_id), p->name.c_str(), comm.size(), counts.total,
                counts.skipped, sum->finished, DoneElsewhere(counts.done - counts.skipped - sum->finished).c_str(),
                counts.failed, counts.blocked, counts.pending, Progress::FormatDuration(sum->wall_s).c_str(),
                stopped ? " (stopped: re-run to finish)" : "");
    PrintFailures(failures, ledger_path);
  }
  if (!finished.ok()) return finished;  // e.g. the ledger file was deleted during the sweep
  // Stopped with jobs left: exit 3 (not 0: a script's `run && table` would tabulate an unfinished sweep, and a
  // Slurm job would end COMPLETED); the Slurm script requeues on it.
  if (stopped && counts.pending > 0)
    return Status::Aborted("stopped with " + std::to_string(counts.pending) +
                           " job(s) left; re-run the same command to resume");
  if (!failures.empty())
    return Status::Internal(std::to_string(counts.failed) + " job(s) failed and " + std::to_string(counts.blocked) +
                            " blocked (see 'emosweep ledger status --ledger " + ledger_path + "')");
  return Status::Ok();
}

Status RunDistributed(const po::variables_map& vm, cluster::World& world, const orchestrator::RunOptions& o) {
  auto& comm = world.comm();
  SetLogRank(comm.rank());
  orchestrator::DistributedOptions d;
  d.group_size = vm["group-size"].as<int>();
  d.heartbeat_s = vm["heartbeat"].as<double>();
  d.stall_timeout_s = vm["stall-timeout"].as<double>();
  if (vm.count("inject-fault")) d.inject_fault = vm["inject-fault"].as<std::string>();
  Status layout = orchestrator::CheckLayout(comm.size(), d.group_size);
  if (!layout.ok()) {
    if (comm.rank() == 0) LOG_ERROR << layout.message();
    comm.Abort(2, layout.message());
    return layout;
  }
  // Every rank with the same --group-size and build (an MPMD line could give them others: the ranks then hung).
  Status agree = orchestrator::CheckRanksAgree(comm, d, BuildInfo().value("git_revision", std::string("?")),
                                               std::max(60.0, d.stall_timeout_s));
  if (!agree.ok()) {
    LOG_ERROR << agree.message();
    comm.Abort(ExitCodeFor(agree), agree.message());
    return agree;
  }
  // Where this rank computes (docs/design/distributed.md, "Placement"): its host's cores and GPUs.
  orchestrator::PlacementInput pin;
  pin.device = o.device;
  pin.host = comm.host();
  pin.world_rank = comm.rank();
  pin.local_rank = world.node().local_rank;
  pin.local_size = world.node().local_size;
  pin.host_has_coordinator = world.node().has_world_rank0;
  pin.group_size = d.group_size;
  pin.threads = o.threads;
  pin.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (o.device != "cpu") {
    Result<int> gpus = TorchCudaDeviceCount();
    if (!gpus.ok()) {
      comm.Abort(ExitCodeFor(gpus.status()), gpus.status().message());
      return gpus.status();
    }
    pin.gpus = *gpus;
  }
  pin.jobs_per_gpu = vm["jobs-per-gpu"].as<int>();
  pin.allow_oversubscribe = vm.count("oversubscribe") > 0;
  Result<orchestrator::Placement> placed = orchestrator::PlaceRank(pin);
  if (!placed.ok()) {
    comm.Abort(2, placed.status().message());  // logs the message, then ends every rank
    return placed.status();
  }
  orchestrator::RunOptions placed_o = o;
  placed_o.device = placed->device;
  if (placed->worker_index >= 0 && o.device != "cpu")
    LOG_INFO << "rank " << comm.rank() << " on " << comm.host() << ": device " << placed->device;
  // Collective: every rank, rank 0 included, takes part in the group split.
  auto reducer = world.MakeGroupReducer(orchestrator::GroupColor(comm.rank(), d.group_size), placed_o.device,
                                        cluster::BucketConfig{});
  if (!reducer.ok()) {
    comm.Abort(1, reducer.status().message());
    return reducer.status();
  }
  Status st;
  if (comm.rank() == 0) {
    st = Coordinate(vm, world, o, d);
  } else {
    orchestrator::RunOptions ro = placed_o;
    auto make_context = [ro] {
      jobs::JobContext c;
      c.threads = ro.threads;
      c.device = ro.device;
      c.work_dir = ro.work_dir;
      return c;
    };
    // Load the torch module while rank 0 expands the protocol and registers the jobs,
    // not with the first job (~0.5 s of every worker's time inside the sweep; a 0-job
    // re-run loads it for nothing, beside rank 0's work). A load error is the first
    // job's to report (TorchRunJob returns it again).
    std::thread preload([] { (void)LoadTorchModule(); });
    st = orchestrator::RunWorkerRank(comm, **reducer, d, TrainerExecutor(), make_context, g_stop);
    preload.join();
    if (!st.ok()) {
      comm.Abort(1, st.message());
      return st;
    }
  }
  Status fin = world.Finalize();
  return st.ok() ? fin : st;
}

}  // namespace

namespace {
Status RunSingleProcess(const po::variables_map& vm);
}  // namespace

Status RunRun(const po::variables_map& vm) {
  InstallSignals();
  // Jobs run in the torch module, loaded when the first one starts; a missing module fails here, before any
  // rank starts or the ledger is touched.
  ES_RETURN_IF_ERROR(FindTorchModule().status());
  ES_RETURN_IF_ERROR(orchestrator::ParsePack(vm["pack"].as<std::string>()).status());  // bad --pack: exit 2 first
  // A misspelt --device: exit 2 before anything; whether the GPU is there is the placement's question under
  // mpirun (its message names the layout) and RunSingleProcess's otherwise.
  ES_RETURN_IF_ERROR(CheckDeviceOption(vm["device"].as<std::string>(), /*require_visible=*/false));
  if (!(vm["stale-after"].as<double>() > 0)) return Status::InvalidArgument("--stale-after must be above 0 seconds");
  ES_ASSIGN_OR_RETURN(std::unique_ptr<cluster::World> world, cluster::CreateWorld(nullptr, nullptr));
  if (world->comm().size() > 1) {
    orchestrator::RunOptions o;
    o.threads = vm.count("threads") ? vm["threads"].as<int>() : 1;
    o.device = vm["device"].as<std::string>();
    const std::string ledger_path = vm["ledger"].as<std::string>();
    o.work_dir = vm.count("work-dir") ? vm["work-dir"].as<std::string>() : ledger_path + ".work";
    if (vm.count("work-dir")) {
      // Every rank checks; one that fails ends the world (a node-local path may differ between nodes, and the
      // other ranks would wait for it in CheckRanksAgree).
      if (Status wd = CheckWorkDir(o.work_dir); !wd.ok()) {
        LOG_ERROR << wd.message();
        world->comm().Abort(2, wd.message());
        return wd;
      }
    }
    o.scheduler.max_attempts = vm["max-attempts"].as<int>();  // as in one process: refused below 1
    if (o.scheduler.max_attempts < 1) return Status::InvalidArgument("--max-attempts must be at least 1");
    o.scheduler.retry_failed = !vm.count("no-retry-failed");
    o.scheduler.stale_after_s = vm["stale-after"].as<double>();
    o.scheduler.check_checkpoint = TorchVerifyCheckpointFile;
    return RunDistributed(vm, *world, o);
  }
  // A world of one (plain run, or `mpirun -n 1`, which initialised MPI and must finalise it).
  Status st = RunSingleProcess(vm);
  Status fin = world->Finalize();
  return st.ok() ? fin : st;
}

namespace {

// Prints a sweep summary (the single-process runner's and a finished re-run's).
void PrintSummary(const po::variables_map& vm, const protocols::Protocol& p, const orchestrator::RunSummary& s) {
  WriteStatusFile(vm, s.ToJson());
  if (vm.count("json")) {
    PrintJson(s.ToJson().dump(2));
  } else {
    const auto& c = s.counts;
    std::printf("sweep %lld (%s): %d jobs: %d already done, %d ran, %s%d failed, %d blocked, %d left, in %s\n",
                static_cast<long long>(s.sweep_id), p.name.c_str(), c.total, c.skipped, c.finished_here,
                DoneElsewhere(c.done - c.skipped - c.finished_here).c_str(), c.failed, c.blocked,
                c.pending + c.running_elsewhere + c.running_here, Progress::FormatDuration(s.seconds).c_str());
    if (std::string packs = s.PacksText(); !packs.empty()) std::printf("  %s\n", packs.c_str());
    PrintFailures(s.failures, vm["ledger"].as<std::string>());
  }
}

// The input dim of a job (the sum of its feature sets' dims, from the stores' attributes;
// an unknown set counts 1024), each store read once.
class InputDims {
 public:
  int64_t Of(const jobs::JobSpec& spec) {
    const std::string store = spec.train.empty() ? std::string() : spec.train[0].store.str();
    auto it = dims_.find(store);
    if (it == dims_.end()) {
      std::map<std::string, int64_t> d;
      auto info = data::ReadStoreInfo(store, /*check_hash=*/false);
      if (info.ok())
        for (const auto& f : info->features) d[f.name] = f.dim;
      it = dims_.emplace(store, std::move(d)).first;
    }
    int64_t input_dim = 0;
    for (const auto& [modality, name] : spec.features) {
      auto f = it->second.find(name);
      input_dim += f == it->second.end() ? 1024 : f->second;  // unknown: a generous guess
    }
    return input_dim;
  }

 private:
  std::map<std::string, std::map<std::string, int64_t>> dims_;  // store -> feature set -> dim
};

// --pack auto (orchestrator/pack_limit.h): K from the largest packable job's memory
// estimate (input dims from the stores' attributes), MemAvailable, the workers and the
// device. 1 when no job of the protocol packs (single jobs: the reference path).
int AutoPack(const protocols::Protocol& p, const orchestrator::RunOptions& o, int cores, InputDims* dims) {
  int64_t largest = 0;
  int packable = 0;
  for (const auto& j : p.jobs) {
    if (jobs::PackKey(j.spec).empty()) continue;
    ++packable;
    largest = std::max(largest, orchestrator::PackMemberBytes(j.spec, dims->Of(j.spec)));
  }
  if (packable == 0) {
    LOG_INFO << "--pack auto: no job of this protocol packs; single jobs";
    return 1;
  }
  orchestrator::AutoPackInput in;
  in.member_bytes = largest;
  in.mem_available = orchestrator::MemAvailableBytes();
  in.parallel = o.parallel > 0 ? o.parallel : cores;
  in.gpu = o.device != "cpu";
  if (in.mem_available > 0 && largest > in.mem_available)  // e.g. hidden_dims = [100000000]: said before it is killed
    LOG_WARN << "a job of this protocol needs ~" << (largest >> 20) << " MiB (model, gradients, optimizer state and "
             << "activations), more than the " << (in.mem_available >> 20) << " MiB available: it may be killed";
  const int k = orchestrator::AutoPackLimit(in);
  LOG_INFO << "--pack auto: up to " << k << " jobs a pack (" << packable << " jobs may pack; a member needs ~"
           << (largest >> 20) << " MiB, MemAvailable " << (in.mem_available >> 20) << " MiB, " << in.parallel
           << " worker(s), " << (in.gpu ? "GPU" : "CPU") << ")";
  return k;
}

// Whether the sweep has jobs to run, by a cheap look at its first jobs in the ledger (at most
// 16 rows): false when they are all done (a re-run; start-up then stays lazy, loading torch
// only if a job does run). Only a start-up decision: the scheduler finds the real work.
bool WorkAhead(orchestrator::Ledger* ledger, const protocols::Protocol& p) {
  for (size_t i = 0; i < p.jobs.size() && i < 16; ++i) {
    auto row = ledger->GetJob(p.jobs[i].spec.id);
    if (!row.ok() || !*row || (*row)->status != orchestrator::JobStatus::kDone) return true;
  }
  return false;
}

Status RunSingleProcess(const po::variables_map& vm) {
  // Options of an MPI world, given to a world of one: said once, not silently ignored (after the re-execution for
  // OMP_WAIT_POLICY below, which would say it twice).
  auto warn_mpi_only = [&vm] {
    for (const char* name : {"jobs-per-gpu", "oversubscribe", "group-size", "heartbeat", "stall-timeout", "inject-fault"})
      if (vm.count(name) && !vm[name].defaulted())
        LOG_WARN << "--" << name << " applies under mpirun only (this run is one process): ignored";
  };
  std::string ledger_path = vm["ledger"].as<std::string>();
  orchestrator::RunOptions o;
  const int cores = UsableCores();
  o.parallel = vm.count("parallel") ? vm["parallel"].as<int>() : 0;  // 0 = auto: the usable cores
  if (vm.count("parallel") && o.parallel < 1) return Status::InvalidArgument("--parallel must be at least 1");
  o.threads = vm.count("threads") ? vm["threads"].as<int>() : 1;
  if (o.threads < 1) return Status::InvalidArgument("--threads must be at least 1");
  if (!vm.count("parallel") && o.threads > 1) o.parallel = std::max(1, cores / o.threads);
  if (o.parallel * o.threads > cores)
    return Status::InvalidArgument("--parallel " + std::to_string(o.parallel) + " x --threads " +
                                   std::to_string(o.threads) + " exceeds the " + std::to_string(cores) +
                                   " cores this process may use");
  o.work_dir = vm.count("work-dir") ? vm["work-dir"].as<std::string>() : ledger_path + ".work";
  if (vm.count("work-dir")) ES_RETURN_IF_ERROR(CheckWorkDir(o.work_dir));  // the default: the ledger's directory
  o.device = vm["device"].as<std::string>();
  ES_RETURN_IF_ERROR(CheckDeviceOption(o.device));  // a GPU this machine does not have: exit 2, no ledger
  o.scheduler.max_attempts = vm["max-attempts"].as<int>();
  if (o.scheduler.max_attempts < 1) return Status::InvalidArgument("--max-attempts must be at least 1");
  o.scheduler.retry_failed = !vm.count("no-retry-failed");
  o.scheduler.stale_after_s = vm["stale-after"].as<double>();
  o.scheduler.check_checkpoint = TorchVerifyCheckpointFile;
  o.heartbeat_s = std::max(0.5, std::min(30.0, o.scheduler.stale_after_s / 10));
  o.stop = &g_stop;
  o.progress = !vm.count("json");
  // The default places a second job beside the first only while about a core is idle
  // (IdleCoreMeter below). Its first reading starts now, so its answer is ready when the
  // protocol is expanded instead of costing a wait of its own.
  bool adaptive = o.parallel == 0;  // false below when jobs set their own train.threads
  IdleCoreMeter meter;  // guarded by here_mu once the sweep runs
  if (adaptive) meter.Start();

  // A re-run of a finished protocol (issue 15): the job ids of its last expansion are
  // cached by its content hash; when the ledger has every one done, nothing is expanded.
  if (!vm.count("slice")) {
    auto shallow = LoadShallowProtocolFromArgs(vm);
    std::vector<std::string> ids;
    // Only a ledger that exists can hold a finished run: opening one here would create it before the
    // protocol's own checks below (--max-jobs) refuse the run, leaving an empty ledger behind.
    if (shallow.ok() && shallow->missing_inputs.empty() && FileExists(ledger_path) &&
        protocols::ReadExpansionIds(shallow->expansion_key, &ids)) {
      ES_ASSIGN_OR_RETURN(auto ledger, orchestrator::Ledger::Open(ledger_path));
      ES_ASSIGN_OR_RETURN(auto finished, orchestrator::RecordFinishedRerun(*shallow, ids, ledger.get(), o));
      if (finished) {
        if (vm.count("status-file"))
          ES_RETURN_IF_ERROR(RefuseOutputOverInputs(*shallow, "status-file", vm["status-file"].as<std::string>()));
        warn_mpi_only();
        for (const auto& w : protocols::CondenseWarnings(shallow->warnings)) LOG_WARN << shallow->path << ": " << w;
        if (std::string w = orchestrator::OtherBuildsWarning(ledger.get(), finished->counts.skipped); !w.empty())
          LOG_WARN << w;
        PrintSummary(vm, *shallow, *finished);
        return Status::Ok();
      }
    }
  }
  ES_ASSIGN_OR_RETURN(protocols::Protocol p, LoadProtocolFromArgs(vm));
  if (vm.count("slice")) {
    int i = 0, n = 1;
    ES_RETURN_IF_ERROR(orchestrator::ParseSlice(vm["slice"].as<std::string>(), &i, &n));
    p.jobs = orchestrator::SliceJobs(p.jobs, i, n);
  }
  // Several intra-op threads in this process: OpenMP must sleep, not spin, when idle. A job's own train.threads
  // counts too (helper-73: a protocol with train.threads = 2 spun beside another process, 599 s instead of 12 s).
  // Asked before anything is printed: the re-executed command prints it (once).
  int job_threads = 0;
  for (const auto& j : p.jobs) job_threads = std::max(job_threads, j.spec.train_config.value("threads", 0));
  if ((o.parallel == 1 && o.threads > 1) || job_threads > 1) EnsurePassiveOpenMP();
  warn_mpi_only();
  if (p.missing_inputs.empty() && !vm.count("slice")) protocols::WriteExpansionIds(p.expansion_key, p.jobs);
  ES_RETURN_IF_ERROR(RequireInputs(p, "run"));
  if (vm.count("status-file"))
    ES_RETURN_IF_ERROR(RefuseOutputOverInputs(p, "status-file", vm["status-file"].as<std::string>()));
  ES_RETURN_IF_ERROR(TorchCheckModelFiles(Specs(p)));  // bad model files: exit 2 before any job
  for (const auto& w : protocols::CondenseWarnings(p.warnings)) LOG_WARN << p.path << ": " << w;
  ES_ASSIGN_OR_RETURN(const int pack, orchestrator::ParsePack(vm["pack"].as<std::string>()));
  InputDims dims;  // outlives the sweep: the scheduler asks pack_cap as keys become ready
  o.pack = pack == orchestrator::kPackAuto ? AutoPack(p, o, cores, &dims) : pack;
  o.pack_share = pack == orchestrator::kPackAuto;
  if (o.pack_share && o.device == "cpu") {
    // On CPU each key's packs also stay within the cache budget of their optimizer state
    // (orchestrator/pack_limit.h, CpuPackCap), asked once per key.
    o.scheduler.pack_cap = [&dims, limit = o.pack](const jobs::JobSpec& spec) {
      const int64_t params = orchestrator::PackMemberParams(spec, dims.Of(spec));
      const int cap = orchestrator::CpuPackCap(params);
      // Said when it binds (helper-58: a model's packs of 4 while every message said 32), once per key.
      if (cap < limit)
        LOG_INFO << "--pack auto: packs of up to " << cap << " for model " << spec.model.value("name", "?")
                 << " (job " << spec.id.substr(0, 12) << "): " << params
                 << " parameters a member, and a pack's optimizer state stays within the CPU cache budget";
      else
        LOG_DEBUG << "--pack auto: key of job " << spec.id.substr(0, 12) << ": " << params
                  << " parameters a member, packs of up to " << cap << " on CPU";
      return cap;
    };
  }
  o.job_threads = job_threads;
  // The default fills the cores with one-thread jobs; jobs that take T threads each run cores / T at a time
  // (helper-74: 2 jobs of 2 threads on 2 cores).
  if (!vm.count("parallel") && job_threads > std::max(1, o.threads)) {
    o.parallel = std::max(1, cores / job_threads);
    adaptive = false;
    LOG_INFO << "jobs set train.threads up to " << job_threads << ": " << o.parallel
             << " job(s) at a time on the " << cores << " usable core(s) (--parallel sets it)";
  }

  ES_ASSIGN_OR_RETURN(auto ledger, orchestrator::Ledger::Open(ledger_path));
  // Start-up overlap (issue 13): with work ahead, the torch module loads on a thread (and the
  // worker processes start, loading theirs, below) while the scheduler registers the jobs,
  // instead of when the first job comes. A re-run with nothing to do loads no libtorch.
  const bool work_ahead = WorkAhead(ledger.get(), p);
  struct Joined {
    std::thread t;
    ~Joined() {
      if (t.joinable()) t.join();
    }
  } preload;
  if (work_ahead) preload.t = std::thread([] { (void)LoadTorchModule(); });
  // One job at a time runs here, in this process (with --parallel 1 every
  // job does: the reference path). Jobs beside it run in worker processes
  // (orchestrator/process_pool.h), one per extra parallel job, so no two jobs
  // ever share torch's process-wide RNG and thread settings: the numbers do
  // not depend on K. Children start before the first job when the sweep has
  // work and a core is idle (below), else when two jobs run at once, and the
  // child's OpenMP sleeps when idle.
  std::unique_ptr<orchestrator::ProcessPool> pool;
  std::mutex here_mu;
  bool here_busy = false;
  int beside = 0;  // jobs or packs running in worker processes (guarded by here_mu)
  orchestrator::Executor executor = TrainerExecutor();
  if (o.parallel != 1) {
    orchestrator::ProcessPoolOptions po;
    po.size = std::max(1, (o.parallel > 0 ? o.parallel : cores) - 1);
    po.args = {"worker", "--log-level", vm["log-level"].as<std::string>()};
    po.env = {{"OMP_WAIT_POLICY", "PASSIVE"}};
    pool = std::make_unique<orchestrator::ProcessPool>(po);
    // A job beside the running one goes to a worker process only while about a
    // core is idle (core/cpu.h, IdleCoreMeter): when other sessions keep every
    // core busy, a second process gets no more CPU time and costs its start-up,
    // so the job waits for this process instead (the numbers are the same).
    // Only the default does this: an explicit --parallel K runs K at once.
    // With work ahead the children start now, each loading the torch module while this
    // process registers the jobs (ProcessPool::Start): when a core is idle, or always for
    // an explicit --parallel K.
    // "Idle" counts the CPU this process and its workers used as available (IdleCoreMeter::
    // SampleAvailable): our own work must not make the host look busy; this process's own core is
    // taken off.
    if (work_ahead) {
      const double free = adaptive ? meter.SampleAvailable(pool->pids()) : -1;
      if (free < 0 || free - 1 >= 0.7) pool->Start();
    }
    // Where the next job or pack runs: here (this process), beside (a worker process), or
    // nowhere (stopped while waiting for a core).
    enum class Where { kHere, kBeside, kStopped };
    auto place = [&, adaptive](const jobs::JobContext& c) -> Where {  // adaptive by value: it dies with this block
      for (;;) {
        {
          std::lock_guard<std::mutex> lock(here_mu);
          if (!here_busy) {
            here_busy = true;
            return Where::kHere;
          }
          // Available cores (idle + what this process tree used) minus those the job here and
          // the jobs beside take: a worker that just finished its job still counts its core as ours.
          const double free = adaptive ? meter.SampleAvailable(pool->pids()) : -1;
          if (free < 0 || free - 1 - beside >= 0.7) {  // a core is free: run it beside the one here
            ++beside;
            return Where::kBeside;
          }
        }
        if (c.stop_requested && c.stop_requested->load()) return Where::kStopped;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    };
    struct Free {
      std::mutex& mu;
      bool& busy;
      ~Free() {
        std::lock_guard<std::mutex> lock(mu);
        busy = false;
      }
    };
    struct Beside {
      std::mutex& mu;
      int& n;
      ~Beside() {
        std::lock_guard<std::mutex> lock(mu);
        --n;
      }
    };
    executor = [&, place](const jobs::JobSpec& s, const jobs::JobContext& c) -> Result<jobs::JobResult> {
      switch (place(c)) {
        case Where::kBeside: {
          Beside done{here_mu, beside};
          return pool->Run(s, c);
        }
        case Where::kStopped: return Status::Aborted("stopped before it started");
        case Where::kHere: break;
      }
      Free free_here{here_mu, here_busy};
      return TorchRunJob(s, c);
    };
    o.pack_executor = [&, place](const std::vector<jobs::JobSpec>& s, const std::vector<jobs::JobContext>& c)
        -> std::vector<Result<jobs::JobResult>> {
      switch (place(c[0])) {
        case Where::kBeside: {
          Beside done{here_mu, beside};
          return pool->RunPack(s, c);
        }
        case Where::kStopped:
          return std::vector<Result<jobs::JobResult>>(s.size(), Status::Aborted("stopped before it started"));
        case Where::kHere: break;
      }
      Free free_here{here_mu, here_busy};
      return TorchRunPack(s, c);
    };
  } else {
    o.pack_executor = [](const std::vector<jobs::JobSpec>& s, const std::vector<jobs::JobContext>& c) {
      return TorchRunPack(s, c);
    };
  }
  // The torch module loads with the first job to run (none on a re-run of a finished protocol). If it
  // cannot load, that is this build's problem, not the job's: the sweep stops, the job goes back to
  // pending, and the run exits 2 naming the file.
  std::mutex module_mu;
  Status module_error;
  executor = [&, inner = std::move(executor)](const jobs::JobSpec& s,
                                               const jobs::JobContext& c) -> Result<jobs::JobResult> {
    Status loaded = LoadTorchModule();
    if (!loaded.ok()) {
      std::lock_guard<std::mutex> lock(module_mu);
      module_error = loaded;
      g_stop = true;
      return loaded;
    }
    return inner(s, c);
  };
  o.pack_executor = [&, inner = std::move(o.pack_executor)](const std::vector<jobs::JobSpec>& s,
                                                            const std::vector<jobs::JobContext>& c) {
    Status loaded = LoadTorchModule();
    if (!loaded.ok()) {
      std::lock_guard<std::mutex> lock(module_mu);
      module_error = loaded;
      g_stop = true;
      return std::vector<Result<jobs::JobResult>>(s.size(), loaded);
    }
    return inner(s, c);
  };
  auto summary = orchestrator::RunSweep(&p, ledger.get(), executor, o);  // p.jobs move into the scheduler
  pool.reset();
  if (!summary.ok()) return summary.status();
  if (!module_error.ok()) return module_error;
  const auto& s = *summary;
  PrintSummary(vm, p, s);
  if (s.stopped && s.counts.pending > 0) {
    // Exit 3, whatever the signal (SIGTERM/SIGUSR1 exited 0 before: `run && table` tabulated an unfinished
    // sweep); the Slurm script requeues on it.
    LOG_WARN << "stopped by signal " << g_signal.load() << "; unfinished jobs are pending again, re-run to resume";
    return Status::Aborted("stopped with " + std::to_string(s.counts.pending) +
                           " job(s) left; re-run the same command to resume");
  }
  if (!s.failures.empty())
    return Status::Internal(std::to_string(s.counts.failed) + " job(s) failed and " +
                            std::to_string(s.counts.blocked) + " blocked (see 'emosweep ledger status --ledger " +
                            ledger_path + "')");
  return Status::Ok();
}

}  // namespace

}  // namespace emosweep::cli
