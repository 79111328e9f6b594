// worker/trainer_validate.cc: per-epoch validation of a job (job_trainer_internal.h): the selection value,
// the plateau schedule, early stopping, and the best epoch's snapshot and its restoring.
#include "worker/job_trainer_internal.h"

#include <string>

#include "worker/da_selection.h"

namespace emosweep::worker::internal {
namespace {

double MetricValue(const EvalOutput& e, const std::string& metric) {
  return metric == "loss" ? e.loss : e.metrics.Get(metric);
}

}  // namespace

void Trainer::Snapshot() {
  torch::NoGradGuard g;
  if (!best_params_.defined()) best_params_ = torch::empty_like(flat_->params());
  best_params_.copy_(flat_->params());
  auto buffers = m_.root->buffers(true);
  if (best_buffers_.size() != buffers.size()) {
    best_buffers_.clear();
    for (auto& b : buffers) best_buffers_.push_back(b.detach().clone());
  } else {
    for (size_t i = 0; i < buffers.size(); ++i) best_buffers_[i].copy_(buffers[i]);
  }
}

void Trainer::RestoreBest() {
  torch::NoGradGuard g;
  flat_->params().copy_(best_params_);
  auto buffers = m_.root->buffers(true);
  for (size_t i = 0; i < buffers.size() && i < best_buffers_.size(); ++i) buffers[i].copy_(best_buffers_[i]);
}

Result<bool> Trainer::ValidateEpoch(int epoch, const nlohmann::json& da, EpochRecord* rec) {
  const bool oracle = spec_.selection == "oracle";
  const Split* sel = oracle ? &evals_.at(spec_.oracle_eval) : &val_;
  ES_RETURN_IF_ERROR(SyncBuffers());
  models::LossContext lctx = LossCtx(epoch);
  EvalOutput v;
  if (val_.size()) {
    ES_ASSIGN_OR_RETURN(v, Evaluate(*m_.model, val_, cfg_.batch_size, lctx, num_classes_, false, device_));
    rec->val_loss = v.loss;
    rec->val_metrics = v.metrics.ToJson(/*with_confusion=*/false);
  }
  EvalOutput s = v;
  if (oracle) {
    ES_ASSIGN_OR_RETURN(s, Evaluate(*m_.model, *sel, cfg_.batch_size, lctx, num_classes_, false, device_));
    rec->val_metrics["oracle_" + cfg_.metric] = MetricValue(s, cfg_.metric);
  }
  if (sel->size() == 0) return false;
  // ReduceLROnPlateau reads the validation split whenever there is one, also under oracle selection: the
  // oracle eval set picks the reported epoch (flagged), it does not steer the training itself. Without a
  // validation split the schedule has nothing else to read (that run is oracle through and through).
  sched_->StepValidation(MetricValue(val_.size() ? v : s, cfg_.plateau_metric));
  opt_->set_lr(sched_->lr());
  double value = MetricValue(s, cfg_.metric);
  bool higher = cfg_.MetricHigherIsBetter();
  int tier = 0;
  if (UnsupervisedSelection(spec_.selection)) {
    ES_ASSIGN_OR_RETURN(SelectionValue u, UnsupervisedSelectionValue(spec_.selection, da, epoch, where_));
    value = u.value;
    higher = u.higher;
    tier = u.tier;
  }
  const bool improved = !es_.have_best || tier > es_.best_tier ||
                        (tier == es_.best_tier && (higher ? value > es_.best_value : value < es_.best_value));
  if (improved) {
    es_.have_best = true;
    es_.best_tier = tier;
    es_.best_value = value;
    es_.best_epoch = epoch;
    es_.bad_evals = 0;
    if (spec_.selection != "last") Snapshot();
  } else {
    ++es_.bad_evals;
  }
  return cfg_.patience > 0 && es_.bad_evals >= cfg_.patience;
}

}  // namespace emosweep::worker::internal
