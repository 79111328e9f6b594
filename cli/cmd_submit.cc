// cli/cmd_submit.cc: `emosweep submit`: render an sbatch script for a sweep and submit it.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <regex>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/protocol_args.h"
#include "cli/protocol_library.h"
#include "cluster/slurm.h"
#include "core/files.h"
#include "core/log.h"
#include "orchestrator/ledger.h"

namespace emosweep::cli {
namespace fs = std::filesystem;

void SubmitOptions(po::options_description& o) {
  o.add_options()
      ("protocol", po::value<std::string>()->required(), "protocol file")
      ("ledger", po::value<std::string>()->required(), "SQLite ledger the sweep writes")
      ("nodes", po::value<int>()->default_value(1), "nodes")
      ("ntasks-per-node", po::value<int>()->default_value(1), "MPI ranks per node")
      ("cpus-per-task", po::value<int>()->default_value(1), "cores per rank (also emosweep run --threads)")
      ("gpus-per-node", po::value<int>()->default_value(0), "GPUs per node")
      ("device", po::value<std::string>()->default_value(""),
       "emosweep run --device: cpu, cuda or cuda:N (default: cuda when --gpus-per-node > 0, else cpu)")
      ("jobs-per-gpu", po::value<int>()->default_value(0),
       "emosweep run --jobs-per-gpu with CUDA (default 0: ceil(ntasks-per-node / gpus-per-node))")
      ("group-size", po::value<int>()->default_value(1), "ranks per data-parallel worker group")
      ("time", po::value<std::string>()->default_value("01:00:00"), "wall-time limit")
      ("partition", po::value<std::string>()->default_value(""), "partition (default: the cluster's)")
      ("account", po::value<std::string>()->default_value(""), "account to charge")
      ("job-name", po::value<std::string>()->default_value("emosweep"), "Slurm job name")
      ("log-dir", po::value<std::string>()->default_value("slurm-logs"),
       "where Slurm writes per-job logs (its own name may not hold spaces, which #SBATCH --output cannot take; "
       "one under the current directory is written relative to it, so the current directory's path may)")
      ("signal-seconds", po::value<int>()->default_value(120), "send USR1 this long before the time limit")
      ("array", po::value<int>()->default_value(0), "submit a job array of N independent DAG slices instead of one MPI job")
      ("store-dir", po::value<std::string>(), "passed to emosweep run --store-dir")
      ("work-dir", po::value<std::string>(), "passed to emosweep run --work-dir")
      ("max-jobs", po::value<uint64_t>(), "passed to emosweep run --max-jobs")
      ("stale-after", po::value<double>(),
       "passed to emosweep run --stale-after: seconds of silence after which a job of a process on another "
       "node is taken over (default 600; a requeued allocation may land on another node)")
      ("no-requeue", "requeue nothing: neither on preemption (Slurm) nor at the time limit (this script)")
      ("max-requeues", po::value<int>()->default_value(10),
       "at the time limit with jobs left, requeue the job itself at most this often (0 = never)")
      ("mpi", po::value<std::string>()->default_value("pmix"), "srun --mpi plugin")
      ("sbatch", po::value<std::string>()->default_value("sbatch"), "sbatch executable")
      ("dry-run", "print the script, submit nothing")
      ("json", "print one JSON document");
}

namespace {
std::string Absolute(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

std::string SelfBinary() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("emosweep") : p.string();
}
}  // namespace

Status SubmitRun(const po::variables_map& vm) {
  cluster::SubmitOptions o;
  ES_ASSIGN_OR_RETURN(std::string protocol_path, ResolveProtocolPath(vm["protocol"].as<std::string>()));
  o.protocol = Absolute(protocol_path);
  o.ledger = Absolute(vm["ledger"].as<std::string>());
  if (!FileExists(o.protocol)) return Status::NotFound(o.protocol + ": no such protocol file");
  // The ledger the job will open: an existing one must be a ledger file, a new one must be creatable, so
  // that an unusable --ledger fails here and not in the queue.
  {
    std::error_code ec;
    if (fs::exists(o.ledger, ec)) {
      if (fs::is_directory(o.ledger, ec))
        return Status::InvalidArgument("--ledger " + o.ledger + " is a directory, not a ledger file");
      ES_ASSIGN_OR_RETURN(auto ledger, orchestrator::Ledger::Open(o.ledger, {/*read_only=*/true}));
      (void)ledger;
    } else {
      ES_RETURN_IF_ERROR(CheckOutputFile(o.ledger));
    }
  }
  {  // the protocol as `run` will read it (grammar, keys, stores), so a bad one fails here, not in the queue
    ES_ASSIGN_OR_RETURN(protocols::LoadOptions lo, LoadOptionsFromArgs(vm));
    lo.expand = false;
    ES_ASSIGN_OR_RETURN(protocols::Protocol shallow, protocols::LoadProtocol(o.protocol, lo));
    ES_RETURN_IF_ERROR(RequireInputs(shallow, "submit"));
    ES_RETURN_IF_ERROR(RefuseOutputOverInputs(shallow, "ledger", o.ledger));
  }
  o.binary = SelfBinary();
  o.workdir = fs::current_path().string();
  o.nodes = vm["nodes"].as<int>();
  o.ntasks_per_node = vm["ntasks-per-node"].as<int>();
  o.cpus_per_task = vm["cpus-per-task"].as<int>();
  o.gpus_per_node = vm["gpus-per-node"].as<int>();
  o.group_size = vm["group-size"].as<int>();
  o.device = vm["device"].as<std::string>();
  o.jobs_per_gpu = vm["jobs-per-gpu"].as<int>();
  o.time = vm["time"].as<std::string>();
  // Slurm's forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
  static const std::regex kTime(R"(([0-9]+-[0-9]+(:[0-9]+){0,2})|([0-9]+(:[0-9]+){0,2}))");
  if (!std::regex_match(o.time, kTime))
    return Status::InvalidArgument("--time '" + o.time + "': expected MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS");
  o.partition = vm["partition"].as<std::string>();
  o.account = vm["account"].as<std::string>();
  o.job_name = vm["job-name"].as<std::string>();
  o.log_dir = Absolute(vm["log-dir"].as<std::string>());
  o.signal_seconds = vm["signal-seconds"].as<int>();
  o.array_slices = vm["array"].as<int>();
  o.requeue = vm.count("no-requeue") == 0;
  if (!o.requeue && !vm["max-requeues"].defaulted() && vm["max-requeues"].as<int>() > 0)
    return Status::InvalidArgument("--no-requeue and --max-requeues " + std::to_string(vm["max-requeues"].as<int>()) +
                                   " contradict each other: --no-requeue requeues nothing, at the time limit either");
  o.max_requeues = o.requeue ? vm["max-requeues"].as<int>() : 0;
  if (vm.count("stale-after")) {
    o.stale_after_s = vm["stale-after"].as<double>();
    if (!(o.stale_after_s > 0)) return Status::InvalidArgument("--stale-after must be above 0 seconds");
  }
  o.mpi = vm["mpi"].as<std::string>();
  if (vm.count("store-dir")) o.run_args.insert(o.run_args.end(), {"--store-dir", Absolute(vm["store-dir"].as<std::string>())});
  if (vm.count("work-dir")) o.run_args.insert(o.run_args.end(), {"--work-dir", Absolute(vm["work-dir"].as<std::string>())});
  if (vm.count("max-jobs")) o.run_args.insert(o.run_args.end(), {"--max-jobs", std::to_string(vm["max-jobs"].as<uint64_t>())});

  ES_ASSIGN_OR_RETURN(std::string script, cluster::RenderSbatchScript(o));
  const long limit = cluster::TimeLimitSeconds(o.time);
  if (o.signal_seconds > 0 && o.signal_seconds + 60 >= limit)
    LOG_WARN << "--signal-seconds " << o.signal_seconds << " with --time " << o.time << " (" << limit
             << " s): Slurm signals up to 60 s early, so an allocation may do little work before it checkpoints";
  const bool json = vm.count("json") > 0;
  if (vm.count("dry-run")) {
    if (json) PrintJson(nlohmann::json{{"script", script}, {"submitted", false}}.dump(2));
    else std::cout << script;
    return Status::Ok();
  }
  std::error_code dir_ec;
  const bool made_log_dir = !fs::is_directory(o.log_dir, dir_ec);
  ES_RETURN_IF_ERROR(MakeDirs(o.log_dir));
  // sbatch reads the script from a name of its own; only a queued job's script becomes <job-name>.sbatch (a
  // failed submit leaves the previous job's script there, and nothing of its own).
  const std::string script_path = o.log_dir + "/" + o.job_name + ".sbatch";
  const std::string pending = script_path + ".submitting-" + std::to_string(::getpid());
  if (Status wrote = WriteFileAtomic(pending, script); !wrote.ok()) {  // a full disk: no empty log dir left
    if (made_log_dir) ::rmdir(o.log_dir.c_str());
    return wrote;
  }
  Result<std::string> submitted = cluster::SubmitSbatch(pending, vm["sbatch"].as<std::string>());
  if (!submitted.ok()) {
    std::remove(pending.c_str());
    if (made_log_dir) ::rmdir(o.log_dir.c_str());  // only when empty
    return submitted.status();
  }
  if (std::rename(pending.c_str(), script_path.c_str()) != 0) std::remove(pending.c_str());
  const std::string job_id = std::move(submitted).value();
  if (json) {
    PrintJson(nlohmann::json{{"submitted", true}, {"job_id", job_id}, {"script", script_path}, {"log_dir", o.log_dir}}
                  .dump(2));
  } else {
    std::cout << "submitted Slurm job " << job_id << "\n  script: " << script_path << "\n  logs:   " << o.log_dir
              << "\n  follow: emosweep ledger status --ledger " << cluster::ShellQuote(o.ledger) << "\n";
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
