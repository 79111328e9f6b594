// cluster/slurm.h: rendering and submitting sbatch scripts for a sweep.
//
// `emosweep submit` turns a protocol + ledger into one sbatch script that runs
// `srun --mpi=pmix emosweep run ...` (one MPI job; rank 0 coordinates), or,
// with --array, a job array whose task i runs `emosweep run --slice i/N` on an
// independent slice of the DAG. The script asks Slurm for --requeue and
// `--signal=B:USR1@S` and forwards USR1/TERM to the job step, so a preempted
// sweep checkpoints, exits 0 and resumes when requeued. A sweep that reaches
// its time limit (USR1) with jobs left requeues itself (`scontrol requeue`,
// as submitit does) after the checkpoint, at most max_requeues times: the
// run writes its summary to a status file that the script reads.
//
// Quoting: every value that reaches the shell is single-quoted (ShellQuote).
// #SBATCH directive values are not parsed by a shell, so they cannot be
// quoted; they are validated instead (no newlines, no control characters,
// no '#'), and a hostile value is an error, never passed through.
// Thread-safety: pure functions; Submit spawns a process.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::cluster {

struct SubmitOptions {
  std::string protocol;                 // path (made absolute by the caller)
  std::string ledger;                   // path (made absolute by the caller)
  std::string binary;                   // absolute path of the emosweep binary
  std::string workdir;                  // directory the job starts in
  std::vector<std::string> run_args;    // extra arguments for `emosweep run` (e.g. --store-dir X)
  std::string job_name = "emosweep";
  int nodes = 1;
  int ntasks_per_node = 1;
  int cpus_per_task = 1;
  int gpus_per_node = 0;
  int group_size = 1;                   // ranks per worker group (emosweep run --group-size)
  std::string device;                   // emosweep run --device; "" = cuda when gpus_per_node > 0, else cpu
  int jobs_per_gpu = 0;                 // emosweep run --jobs-per-gpu; 0 = ceil(ntasks_per_node / gpus_per_node)
  std::string time = "01:00:00";
  std::string partition;                // "" = cluster default
  std::string account;                  // "" = none
  std::string log_dir = "slurm-logs";
  int signal_seconds = 120;             // USR1 this long before the time limit
  bool requeue = true;
  int max_requeues = 10;                // time limit reached with jobs left: requeue itself at most this often
  int array_slices = 0;                 // 0 = one MPI job; N > 0 = job array of N slices
  std::string mpi = "pmix";             // srun --mpi=...
  double stale_after_s = 0;             // emosweep run --stale-after; 0 = run's default
};

// POSIX single-quote quoting: safe for any byte string except NUL.
std::string ShellQuote(const std::string& s);

// Seconds of a Slurm time limit ("MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS"); -1 when the
// text is not one of those forms.
long TimeLimitSeconds(const std::string& time);

// Validates the options (directive values, ranges) and renders the script. The script exits 0 when the
// sweep finished or was requeued, the job step's status when it failed, and 3 when the sweep stopped with
// jobs left and no requeue follows (the time limit after the last requeue, or a stop without requeues), so
// that Slurm records the job as FAILED and `--dependency=afterok` does not fire on an unfinished sweep.
Result<std::string> RenderSbatchScript(const SubmitOptions& options);

// Runs `sbatch --parsable SCRIPT` (no shell involved) and returns the job id.
Result<std::string> SubmitSbatch(const std::string& script_path, const std::string& sbatch = "sbatch");

}  // namespace emosweep::cluster
