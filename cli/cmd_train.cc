// cli/cmd_train.cc: `emosweep train --config JOB.toml`: run one job, print its metrics.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/log.h"
#include "cli/torch_module.h"

namespace emosweep::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }
// Without --work-dir there is no state to save and nothing is recorded: SIGINT/SIGTERM
// end the process at once (exit 1) instead of waiting for an epoch boundary.
extern "C" void OnQuitSignal(int) {
  static const char kMsg[] = "emosweep train: interrupted (no --work-dir: nothing saved, nothing to resume)\n";
  ssize_t n = ::write(2, kMsg, sizeof kMsg - 1);
  (void)n;
  ::_exit(1);
}

std::string Fmt(const nlohmann::json& v) {
  if (!v.is_number()) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v.get<double>());
  return b;
}

}  // namespace

void TrainOptions(po::options_description& o) {
  o.add_options()("config", po::value<std::string>()->required(), "JOB.toml describing the job (docs/trainer.md)")(
      "json", "print one JSON document (job spec, result, predictions)")(
      "threads", po::value<int>()->default_value(1), "intra-op threads (a [train] threads value wins)")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu | cuda | cuda:N (cuda: device 0)")(
      "work-dir", po::value<std::string>()->default_value(""),
      "where checkpoints live; with it, an interrupted run (SIGINT/SIGTERM/SIGUSR1) resumes when started again; "
      "without it, SIGINT/SIGTERM end the run at once (exit 1, nothing saved)");
}

// "lambda 0.55 da_loss 1.2 disc_acc 0.61 mmd 0.03 target_dist [0.25 0.25 0.30 0.20] entropy 0.9 im 0.4 snd 5.1 dev 0.8".
static std::string DaLine(const nlohmann::json& d) {
  std::string out;
  auto num = [&](const char* key, const char* label) {
    if (!d.contains(key)) return;
    out += std::string(out.empty() ? "" : " ") + label + " " + Fmt(d[key]);
  };
  num("lambda", "lambda");
  num("da_loss", "da_loss");
  num("disc_acc", "disc_acc");
  num("mmd_linear", "mmd");
  if (d.contains("target_dist") && d["target_dist"].is_array()) {
    out += std::string(out.empty() ? "" : " ") + "target_dist [";
    for (size_t i = 0; i < d["target_dist"].size(); ++i) out += (i ? " " : "") + Fmt(d["target_dist"][i]);
    out += "]";
  }
  num("target_entropy", "entropy");
  num("im", "im");
  num("snd", "snd");
  num("dev", "dev");
  return out;
}

Status TrainRun(const po::variables_map& vm) {
  // Installed before the stores load (seconds for large ones), so an early signal stops the run
  // after its first epoch (saving the state with --work-dir) instead of killing it.
  const bool resumable = !vm["work-dir"].as<std::string>().empty();
  for (int sig : {SIGINT, SIGTERM}) std::signal(sig, resumable ? OnStopSignal : OnQuitSignal);
  std::signal(SIGUSR1, OnStopSignal);
  jobs::JobContext ctx;
  ctx.threads = vm["threads"].as<int>();
  if (ctx.threads < 1 || ctx.threads > 1024) return Status::InvalidArgument("--threads must be between 1 and 1024");
  if (ctx.threads > 1) EnsurePassiveOpenMP();  // before anything else runs: it may re-execute this command
  // Loads the torch module (cli/torch_module.h): the job file is checked against the stores through the
  // trainer's store cache, which the run below reuses.
  ES_ASSIGN_OR_RETURN(jobs::JobSpec spec, TorchJobSpecFromTomlFile(vm["config"].as<std::string>()));
  // The job file's own [train] threads counts too (as `run`'s train.threads does): re-executed once more when it
  // asks for several threads and OpenMP would still spin.
  if (spec.train_config.value("threads", 0) > 1) EnsurePassiveOpenMP();
  ctx.device = vm["device"].as<std::string>();
  ES_RETURN_IF_ERROR(CheckDeviceOption(ctx.device));
  ctx.work_dir = vm["work-dir"].as<std::string>();
  ctx.stop_requested = &g_stop;
  ctx.on_epoch = [](const jobs::EpochRecord& r) {
    LOG_INFO << "epoch " << r.epoch << " train_loss " << Fmt(r.train_loss) << " val_loss " << Fmt(r.val_loss)
             << " val_ua "  // val_metrics is null for an epoch without validation (no val data)
             << Fmt(r.val_metrics.is_object() ? r.val_metrics.value("ua", nlohmann::json()) : nlohmann::json())
             << " lr " << r.lr << " ("
             << Fmt(r.seconds) << " s)";
    // Domain adaptation (jobs with target_unlabeled data): the epoch's diagnostics, docs/trainer.md.
    if (r.val_metrics.is_object() && r.val_metrics.contains("da"))
      LOG_INFO << "epoch " << r.epoch << " da " << DaLine(r.val_metrics["da"]);
  };
  LOG_INFO << "job " << spec.id.substr(0, 12) << ": model " << spec.model.value("name", "?") << ", selection "
           << spec.selection << ", seed " << spec.seed;
  Result<jobs::JobResult> ran = TorchRunJob(spec, ctx);
  // A problem of the job file found only once the model exists (a [train] freeze prefix naming no
  // parameter, a divergence) names the file too.
  if (!ran.ok()) {
    // Stopped without --work-dir (SIGUSR1 at an epoch's end): nothing was saved, so not "re-run to resume" (3).
    if (ran.status().code() == StatusCode::kAborted && !resumable)
      return Status::Internal(ran.status().message() + " (nothing saved: without --work-dir the job starts over)");
    return ran.status().IsBadInput() ? ran.status().WithContext(vm["config"].as<std::string>()) : ran.status();
  }
  jobs::JobResult result = std::move(ran).value();
  if (vm.count("json")) {
    nlohmann::json j = {{"job_id", spec.id}, {"job", spec.ToJson()}, {"result", jobs::JobResultToJson(result)}};
    PrintJson(j.dump(2));
    return Status::Ok();
  }
  std::cout << "job " << spec.id.substr(0, 12) << "  model " << spec.model.value("name", "?") << "  selection "
            << spec.selection << (spec.selection == "oracle" ? " (ORACLE: selected on " + spec.oracle_eval + ")" : "")
            << "  selected epoch " << result.selected_epoch << "\n";
  if (result.info.contains("warnings"))
    for (const auto& w : result.info["warnings"]) std::cout << "WARNING: " << w.value("message", "") << "\n";
  std::cout << "set          n      UA      WA  macroF1  weightedF1\n";
  for (const auto& [name, e] : result.evals) {
    char line[160];
    std::snprintf(line, sizeof line, "%-10s %5lld  %s  %s  %s  %s\n", name.c_str(),
                  static_cast<long long>(e.metrics.value("n", 0)), Fmt(e.metrics["ua"]).c_str(),
                  Fmt(e.metrics["wa"]).c_str(), Fmt(e.metrics["macro_f1"]).c_str(),
                  Fmt(e.metrics["weighted_f1"]).c_str());
    std::cout << line;
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
