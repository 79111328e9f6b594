// worker/trainer.cc: RunJob: data → model → train/validate/select → evaluate.
// The loop is described step by step in docs/trainer.md.
#include "worker/trainer.h"
#include "core/cpu.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/files.h"
#include "core/log.h"
#include "worker/checkpoint.h"
#include "worker/da_selection.h"
#include "worker/job_trainer_internal.h"
#include "worker/job.h"
#include "worker/trainer_internal.h"

namespace emosweep::worker::internal {

Result<JobResult> Trainer::Run() {
  const auto t_start = Clock::now();
  id_ = spec_.id.empty() ? spec_.ComputeId() : spec_.id;
  where_ = "job " + id_.substr(0, 12);
  log_where_ = ctx_.label.empty() ? where_ : where_ + " [" + ctx_.label + "]";
  ES_ASSIGN_OR_RETURN(cfg_, ParseTrainConfig(spec_.train_config, where_ + " train_config"));
  num_classes_ = static_cast<int>(spec_.labels.size());
  if (num_classes_ < 2) return Status::InvalidArgument(where_ + ": a job needs at least two labels");
  if (spec_.selection == "oracle" && spec_.oracle_eval.empty())
    return Status::InvalidArgument(where_ + ": selection = \"oracle\" needs oracle_eval, the eval set it selects on");
  if (spec_.selection == "oracle" && !spec_.eval.count(spec_.oracle_eval))
    return Status::InvalidArgument(where_ + ": oracle selection names eval set '" + spec_.oracle_eval +
                                   "', which the job does not have");
  if ((spec_.selection == "source_val" || spec_.selection == "target_val") && spec_.val.empty() && spec_.kind != "eval")
    return Status::InvalidArgument(where_ + ": selection '" + spec_.selection + "' needs validation data");
  if (UnsupervisedSelection(spec_.selection) && spec_.kind != "eval" && spec_.target_unlabeled.empty())
    return Status::InvalidArgument(where_ + ": selection '" + spec_.selection + "' needs target_unlabeled data");
  if (spec_.selection == "dev" && spec_.val.empty() && spec_.kind != "eval")
    return Status::InvalidArgument(where_ + ": selection 'dev' needs (source) validation data");
  if (spec_.keep_checkpoint && ctx_.work_dir.empty())
    return Status::InvalidArgument(where_ + ": keep_checkpoint needs a work directory");
  const int threads = cfg_.threads > 0 ? cfg_.threads : std::max(1, ctx_.threads);
  at::set_num_threads(threads);
  device_ = torch::Device(ctx_.device);
  if (ctx_.reducer) {
    reducer_ = ctx_.reducer;
  } else {
    local_reducer_ = cluster::MakeLocalReducer();
    reducer_ = local_reducer_.get();
  }
  if (!ctx_.work_dir.empty()) state_path_ = JobStatePath(ctx_.work_dir, id_);

  ES_RETURN_IF_ERROR(LoadData());
  const bool training = spec_.kind != "eval";
  if (training && train_.size() == 0) return Status::InvalidArgument(where_ + ": no training data");
  const double t_load = Since(t_start);
  ES_RETURN_IF_ERROR(BuildModel());
  ES_RETURN_IF_ERROR(NormalizeInputs());
  if (training) class_weights_ = ClassWeights(cfg_.class_weights, train_.labels, num_classes_);
  if (class_weights_.defined()) {
    torch::Tensor w = class_weights_.to(torch::kDouble).contiguous();
    class_weights_cpu_.assign(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
    class_weights_ = class_weights_.to(device_);
  }
  const int64_t n = train_.size();
  const int64_t steps_per_epoch =
      m_.model->transductive() ? 1
                               : (cfg_.drop_last ? n / cfg_.batch_size : (n + cfg_.batch_size - 1) / cfg_.batch_size);
  if (training && steps_per_epoch == 0)
    return Status::InvalidArgument(where_ + ": " + std::to_string(n) + " training rows are fewer than batch_size " +
                                   std::to_string(cfg_.batch_size) + " with drop_last");
  ES_RETURN_IF_ERROR(CheckOneRowBatches(n));
  steps_per_epoch_ = steps_per_epoch;
  sched_ = std::make_unique<Schedule>(cfg_, steps_per_epoch * cfg_.epochs);
  opt_->set_lr(sched_->lr());
  if (sched_->cycles_momentum()) opt_->set_momentum(sched_->momentum());
  shuffle_ = std::make_unique<IndexShuffler>(DeriveSeed(spec_.seed, kShuffleSeed));
  target_shuffle_ = std::make_unique<IndexShuffler>(DeriveSeed(spec_.seed, kTargetSeed));
  // Model initialisation consumed torch's RNG; reseed so dropout streams do not depend on model size.
  torch::manual_seed(DeriveSeed(spec_.seed, kTorchSeed) + 1);
  ES_RETURN_IF_ERROR(MaybeResume());
  {
    // Every rank of a group must resume from the same epoch (they read the
    // leader's state file: the group shares the work directory); otherwise
    // they would run different numbers of collective steps and hang.
    float leader_epoch = static_cast<float>(start_epoch_);
    ES_RETURN_IF_ERROR(HostBroadcast(&leader_epoch, 1));
    float differs = leader_epoch != static_cast<float>(start_epoch_) ? 1.f : 0.f;
    ES_RETURN_IF_ERROR(HostAllreduceSum(&differs, 1));
    if (differs > 0)
      return Status::FailedPrecondition(where_ + ": the ranks of its group resumed from different epochs (state " +
                                        state_path_ +
                                        " is not visible to every rank, and the group needs a shared work directory; "
                                        "or the ranks differ in --threads or emosweep build, and one started over)");
  }
  const int resumed_from = start_epoch_;

  const auto t_train = Clock::now();
  bool stopped_early = false;
  int epochs_run = start_epoch_;
  for (int epoch = start_epoch_; training && epoch < cfg_.epochs; ++epoch) {
    const auto t_epoch = Clock::now();
    EpochRecord rec;
    rec.epoch = epoch;
    rec.lr = opt_->lr();
    rec.val_loss = std::nan("");
    ES_RETURN_IF_ERROR(TrainEpoch(epoch, &rec.train_loss));
    sched_->StepEpoch();
    opt_->set_lr(sched_->lr());
    bool stop = false;
    // Per-epoch DA diagnostics (TrainEpoch's training-side means + an eval-mode pass over the unlabeled target).
    const nlohmann::json da =
        EpochDaDiagnostics(*m_.model, train_, val_, target_, da_train_, spec_.selection, cfg_.batch_size, device_);
    if ((epoch + 1) % cfg_.eval_every == 0 || epoch + 1 == cfg_.epochs) {
      ES_ASSIGN_OR_RETURN(stop, ValidateEpoch(epoch, da, &rec));
    }
    if (!da.empty()) {
      if (!rec.val_metrics.is_object()) rec.val_metrics = nlohmann::json::object();
      rec.val_metrics["da"] = da;
    }
    rec.seconds = Since(t_epoch);
    curve_.push_back(rec);
    epochs_run = epoch + 1;
    if (ctx_.on_epoch) ctx_.on_epoch(rec);
    bool preempt = ctx_.stop_requested && ctx_.stop_requested->load();
    // The group decides together: a rank that stopped alone (it saw the stop
    // flag or its early-stopping test first) would leave its peers waiting in
    // the next allreduce. One 2-float allreduce per epoch; a no-op alone.
    float decide[2] = {preempt ? 1.f : 0.f, stop ? 1.f : 0.f};
    ES_RETURN_IF_ERROR(HostAllreduceSum(decide, 2));
    preempt = decide[0] > 0;
    stop = decide[1] > 0;
    if (stop) {
      stopped_early = true;
      break;
    }
    // State is written on preemption and otherwise at most once a minute
    // (a 12M-parameter model's state is ~200 MB); results never depend on it.
    if (preempt || Since(last_state_write_) > 60) ES_RETURN_IF_ERROR(WriteState(epoch + 1));
    if (preempt)
      return Status::Aborted(where_ + ": stopped on request after epoch " + std::to_string(epoch + 1) +
                             "; state saved to " + state_path_);
  }
  const double t_training = Since(t_train);

  JobResult result;
  const bool use_best = training && spec_.selection != "last" && best_params_.defined();
  if (use_best) RestoreBest();
  ES_RETURN_IF_ERROR(SyncBuffers());
  result.selected_epoch = use_best ? es_.best_epoch : epochs_run - 1;
  result.curve = curve_;
  const auto t_eval = Clock::now();
  models::LossContext lctx = LossCtx(std::max(0, epochs_run - 1));
  auto eval_into = [&](const std::string& name, const Split& s) -> Status {
    ES_ASSIGN_OR_RETURN(EvalOutput e, Evaluate(*m_.model, s, cfg_.batch_size, lctx, num_classes_, true, device_));
    EvalResult& r = result.evals[name];
    r.metrics = e.metrics.ToJson(true);
    RecordLoss(e, &r.metrics);
    r.predictions = std::move(e.predictions);
    return Status::Ok();
  };
  if (val_.size()) ES_RETURN_IF_ERROR(eval_into("val", val_));
  for (const auto& [name, s] : evals_) ES_RETURN_IF_ERROR(eval_into(name, s));
  if (spec_.keep_checkpoint) {
    Checkpoint c;
    AddModuleState(c, *m_.model, "model.");
    // Only statistics this model's inputs were standardised with: one inherited from an init_from checkpoint
    // but not applied (feature_norm none/corpus here) would mislead a job initialised from this one.
    if (cfg_.feature_norm == "train")
      for (const auto& [m, ns] : train_norm_) {
        c.Add("input_norm." + m + ".mean", ns.mean);
        c.Add("input_norm." + m + ".inv_std", ns.inv_std);
      }
    c.meta = {
        {"job_id", id_}, {"model", spec_.model}, {"labels", spec_.labels}, {"selected_epoch", result.selected_epoch}};
    const std::string path = JobModelPath(ctx_.work_dir, id_);
    if (reducer_->rank() == 0) {  // the group's ranks hold the same model: the leader writes it
      ES_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
      ES_RETURN_IF_ERROR(WriteCheckpoint(path, c));
    }
    result.checkpoint = path;
  }
  if (reducer_->rank() == 0) RemoveJobState(state_path_);
  int64_t params = 0, trainable = flat_->numel();
  for (const auto& p : m_.root->parameters()) params += p.numel();
  result.info = {{"parameters", params},
                 {"trainable_parameters", trainable},
                 {"threads", threads},
                 {"device", ctx_.device},
                 {"cpu", CpuModelName()},
                 {"world_size", reducer_->size()},
                 {"reducer", reducer_->backend()},
                 {"selection", spec_.selection},
                 {"selection_metric", cfg_.metric},
                 {"oracle_selection", spec_.selection == "oracle"},
                 {"selected_epoch", result.selected_epoch},
                 {"epochs_run", epochs_run},
                 {"stopped_early", stopped_early},
                 {"resumed_from_epoch", resumed_from},
                 {"optimizer_steps", step_},
                 {"seconds_load", t_load},
                 {"seconds_train", t_training},
                 {"seconds_eval", Since(t_eval)},
                 {"seconds_total", Since(t_start)}};
  if (spec_.selection == "oracle") result.info["oracle_eval"] = spec_.oracle_eval;
  if (nlohmann::json pv = m_.model->Provenance(); !pv.is_null()) result.info["model"] = pv;
  // Domain adaptation: the selected epoch's diagnostics and the warnings a table caption repeats.
  DaSummary da = DaWarnings(curve_, result.selected_epoch, spec_.labels, spec_.selection,
                            m_.adapter && epochs_run > 0 ? m_.adapter->lambda_max() : 0.0, da_lambda_seen_, step_,
                            m_.adapter ? m_.adapter->horizon_text(LossCtx(0)) : std::string(),
                            training && target_.size() > 0);
  if (!da.da_selected.is_null()) result.info["da_selected"] = da.da_selected;
  const nlohmann::json& warnings = da.warnings;
  if (!warnings.empty()) {
    result.info["warnings"] = warnings;
    // Once per job: a data-parallel group's ranks hold the same model and curve (helper-59: each logged them).
    if (reducer_->rank() == 0)
      for (const auto& w : warnings) LOG_WARN << log_where_ << ": " << w["message"].get<std::string>();
  }
  return result;
}

}  // namespace emosweep::worker::internal

namespace emosweep::worker {

std::string JobStatePath(const std::string& work_dir, const std::string& job_id) {
  return work_dir + "/" + job_id + "/state.ckpt";
}
void RemoveJobState(const std::string& state_path) {
  if (state_path.empty()) return;
  std::error_code ec;
  std::filesystem::remove(state_path, ec);
  std::filesystem::remove(std::filesystem::path(state_path).parent_path(), ec);  // only when empty
}
std::string JobModelPath(const std::string& work_dir, const std::string& job_id) {
  return work_dir + "/" + job_id + "/model.ckpt";
}

Result<JobResult> RunJobUnguarded(const JobSpec& spec, const JobContext& context) {
  internal::Trainer t(spec, context);
  return t.Run();
}

Result<JobResult> RunJob(const JobSpec& spec, const JobContext& context) {
  const std::string id = (spec.id.empty() ? spec.ComputeId() : spec.id).substr(0, 12);
  try {
    return RunJobUnguarded(spec, context);
  } catch (const c10::Error& e) {
    return Status::Internal("job " + id + ": libtorch error: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal("job " + id + ": " + e.what());
  }
}

int CudaDeviceCount() {
  try {
    return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace emosweep::worker
