// worker/trainer_setup.cc: a job's set-up (job_trainer_internal.h): its data, model (init_from, flat
// parameters, optimizer), normalised inputs, and the check that no BatchNorm batch has a single row.
#include "worker/job_trainer_internal.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "worker/da_selection.h"
#include "worker/trainer_internal.h"

namespace emosweep::worker::internal {

models::LossContext Trainer::LossCtx(int epoch) const {
  return JobLossContext(cfg_, epoch, step_, steps_per_epoch_, class_weights_);
}

Status Trainer::LoadData() {
  ES_ASSIGN_OR_RETURN(train_, LoadSplit(spec_.train, spec_.features, spec_.labels, true, where_ + " train"));
  ES_ASSIGN_OR_RETURN(val_, LoadSplit(spec_.val, spec_.features, spec_.labels, true, where_ + " val"));
  for (const auto& [name, refs] : spec_.eval) {
    ES_ASSIGN_OR_RETURN(evals_[name], LoadSplit(refs, spec_.features, spec_.labels, true, where_ + " eval." + name));
  }
  ES_ASSIGN_OR_RETURN(
      target_, LoadSplit(spec_.target_unlabeled, spec_.features, spec_.labels, false, where_ + " target_unlabeled"));
  return CheckUnsupervisedTarget(spec_.selection, spec_.kind != "eval", target_.size(), where_);
}

Status Trainer::BuildModel() {
  models::ModelSpec ms;
  const Split* dims_from = train_.size() ? &train_ : val_.size() ? &val_ : nullptr;
  for (const auto& [n, s] : evals_)
    if (!dims_from && s.size()) dims_from = &s;
  if (!dims_from) return Status::InvalidArgument(where_ + ": the job has no data");
  for (const auto& [mod, t] : dims_from->inputs) ms.input_dims[mod] = t.size(1);
  ms.num_classes = num_classes_;
  ms.labels = spec_.labels;
  ms.config = spec_.model;
  const std::string name = spec_.model.value("name", "");
  if (name.empty()) return Status::InvalidArgument(where_ + ": model.name is missing");
  torch::manual_seed(DeriveSeed(spec_.seed, kTorchSeed));
  ES_ASSIGN_OR_RETURN(m_.model, models::CreateModel(name, ms));
  m_.root = std::make_shared<torch::nn::Module>("job");
  m_.root->register_module("model", m_.model);
  if (!spec_.adapt.empty()) {
    ES_ASSIGN_OR_RETURN(std::unique_ptr<models::DomainAdapter> a,
                        models::MakeDomainAdapter(spec_.adapt, m_.model->feature_dim()));
    m_.adapter = std::shared_ptr<models::DomainAdapter>(std::move(a));
    m_.root->register_module("adapter", m_.adapter);
    if (target_.size() == 0)
      return Status::InvalidArgument(where_ + ": adaptation needs target_unlabeled data ([data] target_unlabeled)");
  }
  if (!spec_.init_from.empty()) ES_RETURN_IF_ERROR(LoadInitFrom(spec_, ctx_, where_, *m_.model, &train_norm_));
  m_.root->to(device_);
  std::vector<std::string> freeze;
  for (const auto& f : cfg_.freeze) freeze.push_back("model." + f);
  Result<FlatParameters> flat = FlatParameters::Build(*m_.root, freeze);
  if (!flat.ok()) return flat.status().WithContext(where_);  // e.g. a [train] freeze prefix naming no parameter
  flat_ = std::make_unique<FlatParameters>(std::move(flat).value());
  opt_ = std::make_unique<FusedOptimizer>(flat_.get(), cfg_);
  // Every rank starts from rank 0's parameters.
  ES_RETURN_IF_ERROR(reducer_->Broadcast(flat_->params().data_ptr<float>(), flat_->numel(), 0));
  return Status::Ok();
}

// feature_norm: "train" standardises every split with the training rows'
// statistics (or, for jobs initialised from a checkpoint, with the statistics
// that model was trained on, so that a fine-tuned or evaluated model sees
// inputs on the scale it learnt); "corpus" standardises each corpus's rows
// with that corpus's whole-store statistics.
Status Trainer::NormalizeInputs() {
  std::vector<std::pair<std::string, Split*>> all = {
      {"train", &train_}, {"val", &val_}, {"target_unlabeled", &target_}};
  for (auto& [n, s] : evals_) all.emplace_back("eval." + n, &s);
  return NormalizeSplits(cfg_.feature_norm, all, train_, spec_.features, &train_norm_, where_);
}

// BatchNorm in training mode cannot normalise a batch of one row (libtorch: "Expected more than 1 value per
// channel when training"), nor CORAL/MK-MMD compare one row: a job meets it only at its last batch, possibly
// hours in (trainer_internal.h). A rank's shard of the global batch counts.
Status Trainer::CheckOneRowBatches(int64_t n) const {
  if (m_.model->transductive()) return Status::Ok();
  bool has_bn = false;
  for (const auto& mod : m_.root->modules(/*include_self=*/false))
    has_bn |= mod->name().find("BatchNorm") != std::string::npos;
  return worker::CheckOneRowBatches(where_, spec_.model.value("name", std::string()), has_bn,
                                    m_.adapter ? m_.adapter->variant() : std::string(), n, cfg_.batch_size,
                                    cfg_.drop_last, reducer_->size());
}

}  // namespace emosweep::worker::internal
