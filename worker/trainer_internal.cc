// worker/trainer_internal.cc: what the single-job trainer shares with the packed trainer
// (trainer_internal.h): loss context, class weights, init_from, feature normalisation.
#include "worker/trainer_internal.h"

#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/files.h"
#include "worker/checkpoint.h"
#include "worker/trainer.h"

namespace emosweep::worker {

models::LossContext JobLossContext(const TrainConfig& cfg, int epoch, int64_t step, int64_t steps_per_epoch,
                                   const torch::Tensor& class_weights) {
  models::LossContext c;
  c.epoch = epoch;
  c.num_epochs = cfg.epochs;
  c.step = step;
  c.steps_per_epoch = steps_per_epoch;
  c.class_weights = class_weights;
  c.label_smoothing = cfg.label_smoothing;
  return c;
}

// Loss weights per class from the training labels (absent classes get 0). Shared with the packed trainer.
torch::Tensor ClassWeights(const std::string& kind, const torch::Tensor& labels, int num_classes) {
  if (kind == "none") return {};
  torch::Tensor counts = torch::bincount(labels, /*weights=*/{}, num_classes).to(torch::kDouble);
  torch::Tensor present = counts > 0;
  const double n = counts.sum().item<double>();
  const double c_present = present.sum().item<double>();
  torch::Tensor inv = torch::where(present, 1.0 / counts.clamp_min(1), torch::zeros_like(counts));
  torch::Tensor w;
  if (kind == "balanced")
    w = inv * (n / c_present);  // sklearn: N / (C * n_c)
  else
    w = inv / inv.sum() * c_present;  // (1/n_c) / Σ_k (1/n_k) · C
  return w.to(torch::kFloat);
}

Status LoadInitFrom(const JobSpec& spec, const JobContext& ctx, const std::string& where,
                    models::FusionModelImpl& model, ModalityStats* norm) {
  std::string path = ctx.checkpoint_of ? ctx.checkpoint_of(spec.init_from) : "";
  if (path.empty() && !ctx.work_dir.empty()) path = JobModelPath(ctx.work_dir, spec.init_from);
  if (path.empty() || !FileExists(path))
    return Status::FailedPrecondition(where + ": no checkpoint for init_from job " + spec.init_from.substr(0, 12) +
                                      (path.empty() ? "" : " (looked for " + path + ")"));
  ES_ASSIGN_OR_RETURN(Checkpoint c, ReadCheckpoint(path));
  // The output layer's rows are the producer's classes in its order: a job whose labels list the same classes in
  // another order scored its predictions against permuted classes (8 % UA instead of 92 %, exit 0; helper-72).
  if (c.meta.is_object() && c.meta.contains("labels") && c.meta["labels"].is_array()) {
    std::vector<std::string> have;
    for (const auto& l : c.meta["labels"]) have.push_back(l.is_string() ? l.get<std::string>() : l.dump());
    if (have != spec.labels.vec())
      return Status::InvalidArgument(where + ": init_from job " + spec.init_from.substr(0, 12) +
                                     " was trained on the classes " + nlohmann::json(have).dump() +
                                     " (in that order), this job lists " + nlohmann::json(spec.labels.vec()).dump() +
                                     ": give it the same labels in the same order (" + path + ")");
  }
  ES_RETURN_IF_ERROR(LoadModuleState(c, model, "model.", /*strict=*/true, path));
  // A model trained on standardised inputs carries the statistics it saw.
  for (const auto& [n, t] : c.tensors) {
    const std::string pre = "input_norm.";
    if (n.rfind(pre, 0) != 0) continue;
    const std::string rest = n.substr(pre.size());
    const size_t dot = rest.rfind('.');
    if (dot == std::string::npos) continue;
    NormStats& ns = (*norm)[rest.substr(0, dot)];
    if (rest.substr(dot + 1) == "mean")
      ns.mean = t;
    else if (rest.substr(dot + 1) == "inv_std")
      ns.inv_std = t;
  }
  return Status::Ok();
}

// feature_norm: "train" standardises every split with the training rows'
// statistics (or, for jobs initialised from a checkpoint, with the statistics
// that model was trained on, so that a fine-tuned or evaluated model sees
// inputs on the scale it learnt); "corpus" standardises each corpus's rows
// with that corpus's whole-store statistics.
Status NormalizeSplits(const std::string& mode, const std::vector<std::pair<std::string, Split*>>& splits,
                       const Split& train, const std::map<std::string, std::string>& features,
                       ModalityStats* train_norm, const std::string& where) {
  if (mode == "none") return Status::Ok();
  if (mode == "train") {
    const bool from_ckpt = !train_norm->empty();
    for (const auto& [m, ns] : *train_norm)
      if (!ns.mean.defined() || !ns.inv_std.defined())
        return Status::Corruption(where + ": init_from checkpoint has incomplete input_norm statistics for '" + m +
                                  "'");
    if (!from_ckpt) {
      if (train.size() == 0)
        return Status::InvalidArgument(where +
                                       ": feature_norm = \"train\" needs training rows or an init_from "
                                       "checkpoint that saved its statistics");
      *train_norm = StatsOf(train);
    }
    for (const auto& [n, s] : splits) ES_RETURN_IF_ERROR(Standardize(s, *train_norm, 0, s->size(), where + " " + n));
    return Status::Ok();
  }
  std::map<std::string, ModalityStats> per_store;
  for (const auto& [n, s] : splits) {
    int64_t row = 0;
    for (const auto& [store, count] : s->parts) {
      auto it = per_store.find(store);
      if (it == per_store.end()) {
        ES_ASSIGN_OR_RETURN(ModalityStats st, StoreStats(store, features));
        it = per_store.emplace(store, std::move(st)).first;
      }
      ES_RETURN_IF_ERROR(Standardize(s, it->second, row, row + count, where + " " + n + " (" + store + ")"));
      row += count;
    }
  }
  return Status::Ok();
}

Status CheckOneRowBatches(const std::string& where, const std::string& model_name, bool has_batchnorm,
                          const std::string& adapt_variant, int64_t n, int64_t batch_size, bool drop_last,
                          int64_t world) {
  const bool pairs = adapt_variant.rfind("coral_", 0) == 0 || adapt_variant.rfind("mk_mmd_", 0) == 0;
  if (n == 0 || (!has_batchnorm && !pairs)) return Status::Ok();
  std::vector<int64_t> lens;
  if (n >= batch_size) lens.push_back(batch_size);
  if (!drop_last && n % batch_size != 0) lens.push_back(n % batch_size);
  for (int64_t len : lens) {
    // Shards hold floor(len/world) or ceil(len/world) rows: one of them is a single row when the floor is 1,
    // or when there are fewer rows than ranks (some ranks then get none, others one).
    if (len / world != 1 && !(len > 0 && len < world)) continue;
    std::string msg = where + ": " +
                      (has_batchnorm ? "model '" + model_name + "' has BatchNorm layers, which cannot train on one row"
                                     : "adapt variant '" + adapt_variant + "' needs at least 2 rows per batch (" +
                                           (adapt_variant[0] == 'c' ? "a covariance" : "a pair of rows") + ")") +
                      ", and a training batch of " + std::to_string(len) + " row(s) (" + std::to_string(n) +
                      " rows, batch_size " + std::to_string(batch_size) + (drop_last ? ", drop_last" : "") + ")";
    msg += world == 1 ? " has 1 row: set drop_last = true or another batch_size"
                      : " over " + std::to_string(world) +
                            " ranks gives a rank 1 row: set drop_last = true, another batch_size or fewer ranks";
    return Status::InvalidArgument(msg);
  }
  return Status::Ok();
}

Status DivergedError(const std::string& where, double train_loss, int epoch) {
  return Status::FailedPrecondition(where + ": training loss became " + (std::isnan(train_loss) ? "NaN" : "infinite") +
                                    " in epoch " + std::to_string(epoch) + " (counted from 0, as in info.curves)" +
                                    " (diverged: lower train.lr, set train.grad_clip, or check the features)");
}

}  // namespace emosweep::worker
