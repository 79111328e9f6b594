#include "cli/command_table.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli/commands.h"
#include "cli/torch_module.h"
#include "core/log.h"

namespace emosweep::cli {

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"version", "print version and build configuration", "[--json]", "", VersionOptions, {}, VersionRun},
      {"data import", "import features into a feature store (metadata CSV + .npy/.npz/.csv, seed pickles, adapters)",
       "(--metadata META.csv --features NAME=MODALITY:PATH[:SPEC]... | --pickle FILE.pkl... | --adapter NAME --root DIR) "
       "--corpus NAME --out STORE.h5 [--label-map MAP] [--json]",
       "Builds one HDF5 feature store (docs/formats/feature-store.md) from existing features. Input formats,\n"
       "the seed-pickle allow-list and the id/speaker rules: docs/formats/import.md. Bad input (corrupt or\n"
       "truncated files, unknown labels, NaN/Inf, mismatched rows or dimensions) exits 2 and leaves no output.\n"
       "Adapter form (docs/corpora.md): extracts audio/text features from a raw corpus, optionally with\n"
       "TorchScript encoders (--audio-encoder/--text-encoder FILE.pt, docs/features.md); resumable, and\n"
       "SIGINT/SIGTERM keep the finished rows in STORE.h5.partial (exit 3) for the re-run.",
       DataImportOptions, {}, DataImportRun},
      {"data synth", "generate synthetic corpora (feature stores) with a controllable domain shift",
       "--out DIR [--corpora N] [--speakers S] [--per-speaker U] [--shift X] [--imbalance Y] [--seed N] [--frames] "
       "[--json]",
       "Writes DIR/<prefix>_a.h5, _b.h5, ...: corpora that share one class structure and differ by a\n"
       "per-corpus shift (offset, scale, optional rotation), with per-speaker offsets and optional class\n"
       "imbalance, so that DA methods face a shift with a known answer. Deterministic for a seed.",
       DataSynthOptions, {}, DataSynthRun},
      {"data inspect", "show a feature store: counts per speaker x label, feature sets, NaN/Inf, hash",
       "STORE [--json]",
       "Exit 0 when the store is sound; 2 when it cannot be read, or when it has non-finite values,\n"
       "a content-hash mismatch or invalid rows (the report is printed first).",
       DataInspectOptions, {{"store", 1}}, DataInspectRun},
      {"data split", "write speaker-independent (or stratified) splits of a store as a split file",
       "STORE --method speaker_kfold|loso|stratified [--k 5] [--group-by speaker] [--seed N] "
       "[--allow-speaker-overlap] --out SPLITS.json [--json]",
       "Split files are versioned and hashed (docs/formats/split-file.md). Speaker overlap between\n"
       "train/val and test is refused (exit 2, naming folds and speakers) unless --allow-speaker-overlap.",
       DataSplitOptions, {{"store", 1}}, DataSplitRun},
      {"plan", "validate a protocol and list its jobs (nothing runs)",
       "PROTOCOL [--store-dir DIR] [--var NAME=VALUE] [--ledger DB] [--jobs] [--json]",
       "Parses and validates the protocol (grammar v1, docs/formats/protocol.md), expands it into jobs\n"
       "and prints experiments, job counts by kind and tables. Missing feature stores are listed, not an\n"
       "error. Exit 0 when the protocol is valid, 2 when it is malformed.",
       PlanOptions, {{"protocol", 1}}, PlanRun},
      {"submit", "render an sbatch script for a sweep and submit it to Slurm",
       "PROTOCOL --ledger DB [--nodes N] [--ntasks-per-node T] [--gpus-per-node G] [--time T] [--partition P] "
       "[--array N] [--dry-run]",
       "Runs `srun --mpi=pmix emosweep run PROTOCOL` as one MPI job (rank 0 coordinates; one task: the\n"
       "single-process runner), or with --array N a job array whose tasks run independent slices of the DAG.\n"
       "The job is requeued on preemption and receives USR1 --signal-seconds before its time limit (Slurm:\n"
       "up to 60 s early): running jobs checkpoint, and the script requeues the job while --max-requeues\n"
       "allows. It exits 3 (Slurm: FAILED) when the sweep stopped with jobs left and nothing requeues it:\n"
       "re-submit to resume. Details: docs/design/distributed.md, \"Preemption\".",
       SubmitOptions, {{"protocol", 1}}, SubmitRun},
      {"train", "train and evaluate one job described by a JOB.toml; print its metrics",
       "--config JOB.toml [--json] [--threads N] [--device cpu|cuda|cuda:N] [--work-dir DIR]",
       "Runs one job (stores, features, labels, split or explicit data, model, [train], selection, seed;\n"
       "docs/trainer.md) and prints UA / WA / macro-F1 / weighted-F1 per evaluated set. With --work-dir,\n"
       "SIGINT/SIGTERM/SIGUSR1 save the state after the current epoch (exit 3); the same command resumes.",
       TrainOptions, {}, TrainRun},
      {"run", "run a protocol's jobs not yet done in the ledger (resumable)",
       "PROTOCOL --ledger DB [--parallel K] [--threads N] [--pack auto|off|K] [--work-dir DIR] [--max-attempts N] "
       "[--json]",
       "Expands the protocol, skips jobs already done in the ledger and runs the rest in dependency order\n"
       "(docs/design/orchestrator.md). A failing job is recorded with its error and the sweep goes on (exit 1\n"
       "at the end). Several `run` processes may share one ledger. SIGINT/SIGTERM/SIGUSR1: running jobs\n"
       "checkpoint and return to pending, and the run exits 3 when jobs are left; re-run the same command to\n"
       "resume. Ready jobs that share a pack key train\n"
       "together as one pack (--pack, docs/design/packing.md); each is recorded as its own job.",
       RunOptions, {{"protocol", 1}}, RunRun},
      {"ledger status", "counts by status and kind, sweeps, running jobs, failures with their errors",
       "--ledger DB [--sweep ID] [--json]", "Opens the ledger read-only (safe beside a running sweep).",
       LedgerStatusOptions, {}, LedgerStatusRun},
      {"ledger query", "list jobs by status/kind/attribute, or run one read-only SQL statement",
       "--ledger DB [--status S] [--kind K] [--attr KEY=VALUE]... [--sweep ID] [--sql STATEMENT] [--csv|--json]",
       "The schema is docs/formats/ledger.md. --sql runs on a read-only connection (PRAGMA query_only).",
       LedgerQueryOptions, {}, LedgerQueryRun},
      {"ledger export", "export metrics, jobs, curves, predictions, provenance, sweeps, eval details or id lists as CSV or JSON",
       "--ledger DB [--what metrics] [--format csv|json | --json] [--out FILE]", "", LedgerExportOptions, {},
       LedgerExportRun},
      {"ledger gc", "drop what no kept protocol references: their unfinished jobs and their predictions",
       "PROTOCOL... --ledger DB [--yes] [--store-dir DIR] [--var NAME=VALUE] [--json]",
       "Keeps every job the given protocols expand to, and every done job's metrics, curves and provenance.\n"
       "Drops jobs no given protocol references that are not done, the predictions of those that are, and\n"
       "result rows of superseded attempts. Dry run unless --yes; prints what it drops and the bytes freed.\n"
       "Refuses while a sweep is running on the ledger (docs/design/orchestrator.md, Scale).",
       LedgerGcOptions, {{"protocol", -1}}, LedgerGcRun},
      {"ledger vacuum", "give a ledger's free pages back to the file system (SQLite VACUUM)",
       "--ledger DB [--json]", "Refuses while a sweep is running on the ledger; prints the bytes freed.",
       LedgerVacuumOptions, {}, LedgerVacuumRun},
      {"table", "print a protocol's paper table from the ledger (mean ± labelled spread)",
       "PROTOCOL --ledger DB [--name T|--all] [--format markdown|latex|csv|json | --json] [--reproduce] [--compare A,B]",
       "Cells aggregate seeds/folds (docs/design/orchestrator.md, Tables). --reproduce compares with the\n"
       "protocol's published values; --compare A,B adds a paired permutation (or bootstrap) test between\n"
       "two rows over per-utterance predictions.",
       TableOptions, {{"protocol", 1}}, TableRun},
      {"report", "write a self-contained HTML report with tables and SVG plots",
       "PROTOCOL --ledger DB --out FILE.html", "", ReportOptions, {{"protocol", 1}}, ReportRun},
      {"list", "list what a protocol can name: models, label maps, feature sets, adapters, DA variants, protocols",
       "models|label-maps|feature-sets|adapters|da-variants|protocols [--json]",
       "Reads the binary's own registries (nothing to configure). `list models --json` includes every\n"
       "model's configuration keys with types and defaults; `list protocols` shows the protocol library,\n"
       "whose protocols plan/run/table/report/submit/ledger gc accept by name (e.g. `emosweep run quickstart ...`).",
       ListOptions, {{"what", 1}}, ListRun},
      {"worker", "(internal) a worker process of `run --parallel K`; not for direct use", "[--slot N]",
       "Started by `emosweep run` with K > 1 (one process per parallel job, so jobs are bitwise\n"
       "reproducible): reads job requests from file descriptor 3 and writes results to descriptor 4\n"
       "(orchestrator/process_pool.h). Exits when its parent closes descriptor 3 or dies.",
       WorkerOptions, {}, WorkerRun},
  };
  return kCommands;
}

namespace {
std::vector<std::string>& ProcessArgs() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

void SetProcessArgs(int argc, char** argv) { ProcessArgs().assign(argv, argv + argc); }

void EnsurePassiveOpenMP() {
  if (std::getenv("OMP_WAIT_POLICY") || ProcessArgs().empty()) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  std::vector<char*> argv;
  for (auto& a : ProcessArgs()) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv("/proc/self/exe", argv.data());
  LOG_WARN << "could not re-execute with OMP_WAIT_POLICY=PASSIVE (" << std::strerror(errno)
           << "); idle OpenMP threads may spin: set OMP_WAIT_POLICY=PASSIVE yourself";
}

void PrintJson(const std::string& json_text) {
  std::fwrite(json_text.data(), 1, json_text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

Status CheckDeviceOption(const std::string& device, bool require_visible) {
  if (device == "cpu") return Status::Ok();
  int index = -1;
  if (device.rfind("cuda:", 0) == 0) {
    const std::string n = device.substr(5);
    if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos)
      return Status::InvalidArgument("--device '" + device + "': expected cpu, cuda or cuda:N");
    index = std::stoi(n);
  } else if (device != "cuda") {
    return Status::InvalidArgument("--device '" + device + "': expected cpu, cuda or cuda:N");
  }
  if (!require_visible) return Status::Ok();
  ES_ASSIGN_OR_RETURN(int count, TorchCudaDeviceCount());
  if (count == 0)
    return Status::InvalidArgument("--device " + device +
                                   ": no CUDA device is visible (this libtorch has no CUDA, or the machine no GPU)");
  if (index >= count)
    return Status::InvalidArgument("--device " + device + ": only " + std::to_string(count) + " CUDA device" +
                                   (count == 1 ? "" : "s") + " visible (cuda:0.." + std::to_string(count - 1) + ")");
  return Status::Ok();
}

}  // namespace emosweep::cli
