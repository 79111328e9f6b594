#include "cli/command_table.h"

#include <cstdio>

#include "cli/commands.h"

namespace emosweep::cli {

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"version", "print version and build configuration", "[--json]", "", VersionOptions, {}, VersionRun},
      {"plan", "validate a protocol and list its jobs (nothing runs)",
       "PROTOCOL [--store-dir DIR] [--var NAME=VALUE] [--ledger DB] [--jobs] [--json]",
       "Parses and validates the protocol (grammar v1, docs/formats/protocol.md), expands it into jobs\n"
       "and prints experiments, job counts by kind and tables. Missing feature stores are listed, not an\n"
       "error. Exit 0 when the protocol is valid, 2 when it is malformed.",
       PlanOptions, {{"protocol", 1}}, PlanRun},
      {"submit", "render an sbatch script for a sweep and submit it to Slurm",
       "PROTOCOL --ledger DB [--nodes N] [--ntasks-per-node T] [--gpus-per-node G] [--time T] [--partition P] "
       "[--array N] [--dry-run]",
       "Runs `srun --mpi=pmix emosweep run PROTOCOL` as one MPI job (rank 0 coordinates), or with --array N\n"
       "a job array whose tasks run independent slices of the DAG. The job is requeued on preemption and\n"
       "receives USR1 --signal-seconds before its time limit: running jobs checkpoint and resume later.",
       SubmitOptions, {{"protocol", 1}}, SubmitRun},
      {"train", "train and evaluate one job described by a JOB.toml; print its metrics",
       "--config JOB.toml [--json] [--threads N] [--device cpu|cuda:N] [--work-dir DIR]",
       "Runs one job (stores, features, labels, split or explicit data, model, [train], selection, seed;\n"
       "docs/trainer.md) and prints UA / WA / macro-F1 / weighted-F1 per evaluated set. With --work-dir,\n"
       "SIGINT/SIGTERM/SIGUSR1 save the state after the current epoch (exit 1); the same command resumes.",
       TrainOptions, {}, TrainRun},
  };
  return kCommands;
}

void PrintJson(const std::string& json_text) {
  std::fwrite(json_text.data(), 1, json_text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace emosweep::cli
