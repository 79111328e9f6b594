#include "cluster/slurm.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

extern char** environ;

namespace emosweep::cluster {
namespace {

// A #SBATCH value goes to sbatch's own parser: refuse anything that could end
// the line, start a comment or smuggle another directive.
Status CheckDirective(const std::string& key, const std::string& value) {
  if (value.empty()) return Status::InvalidArgument("--" + key + " must not be empty");
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f || c == '#' || c == '"' || c == '\'' || c == '\\' || c == ' ')
      return Status::InvalidArgument("--" + key + " value '" + value +
                                     "' contains a character that cannot appear in an #SBATCH line "
                                     "(space, quote, backslash, '#' or control character)");
  }
  return Status::Ok();
}

Status CheckTime(const std::string& t) {
  // Slurm accepts "minutes", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS".
  if (t.empty() || t.find_first_not_of("0123456789:-") != std::string::npos)
    return Status::InvalidArgument("--time '" + t + "' is not a Slurm time (e.g. 01:30:00 or 2-00:00:00)");
  return Status::Ok();
}

// `log_dir` relative to `workdir` when it lies under it, else unchanged.
std::string LogDirForDirective(const std::string& log_dir, const std::string& workdir) {
  namespace fs = std::filesystem;
  if (workdir.empty() || !fs::path(log_dir).is_absolute()) return log_dir;
  fs::path rel = fs::path(log_dir).lexically_normal().lexically_relative(fs::path(workdir).lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return log_dir;
  std::string r = rel.string();
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r;
}

}  // namespace

long TimeLimitSeconds(const std::string& t) {
  if (t.empty() || t.find_first_not_of("0123456789:-") != std::string::npos) return -1;
  long days = 0;
  std::string rest = t;
  const size_t dash = t.find('-');
  if (dash != std::string::npos) {
    if (dash == 0 || t.find('-', dash + 1) != std::string::npos) return -1;
    days = std::stol(t.substr(0, dash));
    rest = t.substr(dash + 1);
  }
  std::vector<long> parts;
  size_t at = 0;
  while (true) {
    const size_t colon = rest.find(':', at);
    const std::string part = rest.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
    if (part.empty() || part.size() > 9) return -1;
    parts.push_back(std::stol(part));
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  if (parts.size() > 3) return -1;
  if (dash != std::string::npos) {  // D-HH, D-HH:MM, D-HH:MM:SS
    while (parts.size() < 3) parts.push_back(0);
    return ((days * 24 + parts[0]) * 60 + parts[1]) * 60 + parts[2];
  }
  if (parts.size() == 1) return parts[0] * 60;                         // MM
  if (parts.size() == 2) return parts[0] * 60 + parts[1];              // MM:SS
  return (parts[0] * 60 + parts[1]) * 60 + parts[2];                   // HH:MM:SS
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  out += "'";
  return out;
}

Result<std::string> RenderSbatchScript(const SubmitOptions& o) {
  ES_RETURN_IF_ERROR(CheckDirective("job-name", o.job_name));
  ES_RETURN_IF_ERROR(CheckTime(o.time));
  if (!o.partition.empty()) ES_RETURN_IF_ERROR(CheckDirective("partition", o.partition));
  if (!o.account.empty()) ES_RETURN_IF_ERROR(CheckDirective("account", o.account));
  // #SBATCH lines cannot quote: a log directory under the working directory (the
  // default, slurm-logs/) is written relative to it, so a working directory whose path
  // has spaces still works (sbatch runs there; relative --output paths are the job's
  // working directory's, the directory sbatch was run from).
  const std::string log_dir = LogDirForDirective(o.log_dir, o.workdir);
  ES_RETURN_IF_ERROR(CheckDirective("log-dir", log_dir));
  ES_RETURN_IF_ERROR(CheckDirective("mpi", o.mpi));
  if (o.nodes < 1 || o.ntasks_per_node < 1 || o.cpus_per_task < 1 || o.gpus_per_node < 0)
    return Status::InvalidArgument("--nodes, --ntasks-per-node and --cpus-per-task must be >= 1, --gpus-per-node >= 0");
  // emosweep run: rank 0 coordinates, the other ranks form groups of --group-size (orchestrator CheckLayout).
  const int tasks = o.nodes * o.ntasks_per_node;
  if (o.group_size < 1 || (tasks > 1 && (tasks - 1) % o.group_size != 0))
    return Status::InvalidArgument("--group-size " + std::to_string(o.group_size) + " must divide the " +
                                   std::to_string(tasks - 1) + " worker tasks (" + std::to_string(tasks) +
                                   " tasks, rank 0 coordinates): e.g. --ntasks-per-node " +
                                   std::to_string(o.group_size + 1) + " for one group on one node");
  bool has_device = false;
  for (const auto& a : o.run_args) has_device |= a == "--device" || a.rfind("--device=", 0) == 0;
  // GPUs allocated and no device chosen: CUDA, ranks round robin over the node's GPUs with as many ranks per
  // GPU as the node's tasks need (emosweep run's placement; docs/design/distributed.md).
  const std::string device = has_device ? "" : !o.device.empty() ? o.device : o.gpus_per_node > 0 ? "cuda" : "";
  const bool cuda = device == "cuda" || (device.size() > 5 && device.rfind("cuda:", 0) == 0 &&
                                          device.find_first_not_of("0123456789", 5) == std::string::npos);
  if (!device.empty() && device != "cpu" && !cuda)
    return Status::InvalidArgument("--device '" + device + "': expected cpu, cuda or cuda:N");
  if (cuda && o.gpus_per_node < 1)
    return Status::InvalidArgument("--device " + device + " needs --gpus-per-node >= 1 (Slurm hides GPUs that "
                                   "were not requested)");
  if (o.jobs_per_gpu < 0) return Status::InvalidArgument("--jobs-per-gpu must be >= 0 (0 = as the tasks need)");
  if (o.signal_seconds < 0) return Status::InvalidArgument("--signal-seconds must be >= 0");
  const long limit = TimeLimitSeconds(o.time);
  if (limit <= 0) return Status::InvalidArgument("--time '" + o.time + "' is not a Slurm time above 0");
  // A signal due at (or before) the start leaves no time to work (`emosweep submit` also warns when it is due
  // within Slurm's 60 s timer resolution of the start).
  if (o.signal_seconds > 0 && o.signal_seconds >= limit)
    return Status::InvalidArgument("--signal-seconds " + std::to_string(o.signal_seconds) + " is not below --time " +
                                   o.time + " (" + std::to_string(limit) + " s): the job would be signalled as it "
                                   "starts; lower --signal-seconds or raise --time");
  if (o.max_requeues < 0) return Status::InvalidArgument("--max-requeues must be >= 0");
  if (o.array_slices < 0) return Status::InvalidArgument("--array must be >= 0");
  if (o.protocol.empty() || o.ledger.empty() || o.binary.empty())
    return Status::InvalidArgument("protocol, ledger and binary are required");

  std::ostringstream s;
  const bool array = o.array_slices > 0;
  s << "#!/bin/bash\n"
    << "# Generated by `emosweep submit`. Re-submitting is safe: finished jobs are skipped (ledger).\n"
    << "#SBATCH --job-name=" << o.job_name << "\n"
    << "#SBATCH --nodes=" << o.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << o.ntasks_per_node << "\n"
    << "#SBATCH --cpus-per-task=" << o.cpus_per_task << "\n";
  if (o.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << o.gpus_per_node << "\n";
  s << "#SBATCH --time=" << o.time << "\n";
  if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << "\n";
  if (!o.account.empty()) s << "#SBATCH --account=" << o.account << "\n";
  if (o.requeue) s << "#SBATCH --requeue\n";
  if (o.signal_seconds > 0) s << "#SBATCH --signal=B:USR1@" << o.signal_seconds << "\n";
  if (array) {
    s << "#SBATCH --array=0-" << (o.array_slices - 1) << "\n"
      << "#SBATCH --output=" << log_dir << "/%x-%A_%a.out\n";
  } else {
    s << "#SBATCH --output=" << log_dir << "/%x-%j.out\n";
  }
  s << "#SBATCH --open-mode=append\n\n"
    << "set -uo pipefail\n"
    << "cd " << ShellQuote(o.workdir) << " || exit 1\n"
    << "export OMP_NUM_THREADS=" << o.cpus_per_task << "\n"
    << "echo \"emosweep: slurm job ${SLURM_JOB_ID:-?} on $(hostname) at $(date -Is)"
    << (array ? " slice ${SLURM_ARRAY_TASK_ID}" : "") << " (restart ${SLURM_RESTART_COUNT:-0})\"\n"
    << "# The Slurm id to requeue (an array task is JOB_TASK) and the run's summary file.\n"
    << (array ? "self=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n" : "self=\"${SLURM_JOB_ID}\"\n")
    << "status_file=" << ShellQuote(log_dir) << "/\"emosweep-${self}.status.json\"\n"
    << "rm -f \"$status_file\"\n\n"
    << "# Time limit (USR1, --signal) or preemption (TERM): pass it to the job step, whose ranks\n"
    << "# checkpoint running jobs and exit 0. "
    << (o.requeue ? "Preemption is requeued by Slurm (--requeue); at the\n# time limit this script requeues the job "
                    "itself below when jobs are left.\n"
                  : "Nothing is requeued (--no-requeue): re-submit to resume.\n")
    << "# The traps are set before the step starts: a signal in between is passed on once it runs.\n"
    << "got=\"\"\n"
    << "step=\"\"\n"
    << "forward() { [ -n \"$step\" ] && kill -USR1 \"$step\" 2>/dev/null; }\n"
    << "trap 'got=USR1; forward' USR1\n"
    << "trap 'got=TERM; forward' TERM\n\n";

  s << "srun --mpi=" << o.mpi << " --kill-on-bad-exit=1 " << ShellQuote(o.binary) << " run "
    << ShellQuote(o.protocol) << " --ledger " << ShellQuote(o.ledger);
  if (tasks > 1) s << " --group-size " << o.group_size;  // one task: the single-process runner, no groups
  s << " --threads " << o.cpus_per_task;
  if (o.stale_after_s > 0) {
    char stale[32];
    std::snprintf(stale, sizeof stale, "%g", o.stale_after_s);
    s << " --stale-after " << stale;
  }
  if (array) s << " --slice \"${SLURM_ARRAY_TASK_ID}/" << o.array_slices << "\"";
  if (!device.empty()) s << " --device " << ShellQuote(device);
  if (cuda)
    s << " --jobs-per-gpu "
      << (o.jobs_per_gpu > 0 ? o.jobs_per_gpu : (o.ntasks_per_node + o.gpus_per_node - 1) / o.gpus_per_node);
  for (const auto& a : o.run_args) s << " " << ShellQuote(a);
  s << " --status-file \"$status_file\" &\n"
    << "step=$!\n"
    << "[ -n \"$got\" ] && forward\n"
    << "while true; do\n"
    << "  wait \"$step\"; rc=$?\n"
    << "  # wait returns >128 when interrupted by a trapped signal; keep waiting for the step.\n"
    << "  if kill -0 \"$step\" 2>/dev/null; then continue; fi\n"
    << "  break\n"
    << "done\n"
    << "echo \"emosweep: job step finished with status $rc at $(date -Is)\"\n"
    << "# Stopped with jobs left (run exits 3; it exits 0 after a stop only when nothing was left; the status\n"
    << "# file says so too, for a step whose status srun reports otherwise): requeue at the time limit, else\n"
    << "# exit 3, so that Slurm records the job as FAILED (not COMPLETED) and --dependency=afterok does not\n"
    << "# fire on an unfinished sweep.\n"
    << "stopped=\"\"\n"
    << "if [ \"$rc\" = 3 ] || { grep -q '\"stopped\": *true' \"$status_file\" 2>/dev/null &&\n"
    << "                        grep -q '\"pending\": *[1-9]' \"$status_file\" 2>/dev/null; }; then\n"
    << "  stopped=1\n"
    << "fi\n";
  if (o.requeue)
    s << "# Preemption (TERM): Slurm requeues the job itself (--requeue).\n"
      << "if [ -n \"$stopped\" ] && [ \"$got\" = TERM ]; then exit 0; fi\n";
  s << "if [ -n \"$stopped\" ]; then\n"
    << "  if [ \"$got\" = USR1 ] && [ \"${SLURM_RESTART_COUNT:-0}\" -lt " << o.max_requeues << " ]; then\n"
    << "    echo \"emosweep: time limit reached with jobs left: requeueing $self (restart $(( ${SLURM_RESTART_COUNT:-0} + 1 )) of at most "
    << o.max_requeues << ")\"\n"
    << "    scontrol requeue \"$self\" && exit 0\n"
    << "    echo \"emosweep: scontrol requeue $self failed; re-submit to resume (finished jobs are kept)\"\n"
    << "  else\n"
    << "    echo \"emosweep: stopped with jobs left after " << o.max_requeues
    << " requeues; re-submit to resume (finished jobs are kept)\"\n"
    << "  fi\n"
    << "  exit 3\n"
    << "fi\n"
    << "exit $rc\n";
  return s.str();
}

Result<std::string> SubmitSbatch(const std::string& script_path, const std::string& sbatch) {
  int out_pipe[2];
  if (pipe(out_pipe) != 0) return Status::IoError("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
  std::vector<std::string> args = {sbatch, "--parsable", script_path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, sbatch.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    return Status::NotFound("cannot run '" + sbatch + "' (is Slurm installed and on PATH?)");
  }
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(out_pipe[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(out_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Status::Unavailable("sbatch failed for " + script_path + " (exit " +
                               std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  auto semi = out.find(';');  // "jobid;cluster"
  return semi == std::string::npos ? out : out.substr(0, semi);
}

}  // namespace emosweep::cluster
