// worker/packed_setup.cc: a pack member's set-up (packed_trainer_internal.h): what trainer.cc's Run() does before its
// epoch loop, with the steps of trainer_setup.cc (checks, data, model, feature normalisation, the model-order
// inputs, RNG streams), member by member.
#include "worker/packed_trainer_internal.h"

#include <string>
#include <utility>
#include <vector>

#include "models/generator_swap.h"
#include "models/layers.h"
#include "worker/da_selection.h"
#include "worker/trainer.h"
#include "worker/trainer_internal.h"

namespace emosweep::worker::packed {

Status PackedTrainer::LoadAndBuild(Member& m) {
  const JobSpec& spec = *m.spec;
  ES_ASSIGN_OR_RETURN(m.train, LoadSplit(spec.train, spec.features, spec.labels, true, m.where + " train"));
  ES_ASSIGN_OR_RETURN(m.val, LoadSplit(spec.val, spec.features, spec.labels, true, m.where + " val"));
  for (const auto& [name, refs] : spec.eval) {
    ES_ASSIGN_OR_RETURN(m.evals[name], LoadSplit(refs, spec.features, spec.labels, true, m.where + " eval." + name));
  }
  ES_ASSIGN_OR_RETURN(
      m.target, LoadSplit(spec.target_unlabeled, spec.features, spec.labels, false, m.where + " target_unlabeled"));
  m.training = spec.kind != "eval";
  ES_RETURN_IF_ERROR(CheckUnsupervisedTarget(spec.selection, m.training, m.target.size(), m.where));
  if (m.training && m.train.size() == 0) return Status::InvalidArgument(m.where + ": no training data");
  m.t_load = Since(m.t_start);
  models::ModelSpec ms;
  const Split* dims_from = m.train.size() ? &m.train : m.val.size() ? &m.val : nullptr;
  for (const auto& [n, s] : m.evals)
    if (!dims_from && s.size()) dims_from = &s;
  if (!dims_from) return Status::InvalidArgument(m.where + ": the job has no data");
  for (const auto& [mod, t] : dims_from->inputs) ms.input_dims[mod] = t.size(1);
  ms.num_classes = m.num_classes;
  ms.labels = spec.labels;
  ms.config = spec.model;
  const std::string name = spec.model.value("name", "");
  torch::manual_seed(DeriveSeed(spec.seed, kTorchSeed));
  ES_ASSIGN_OR_RETURN(m.model, models::CreateModel(name, ms));
  m.modalities = name == "unimodal_mlp" ? std::vector<std::string>{spec.model.value("modality", std::string("audio"))}
                                        : models::ModalityOrder(ms.input_dims);
  m.root = std::make_shared<torch::nn::Module>("job");
  m.root->register_module("model", m.model);
  if (!spec.adapt.empty()) {  // as trainer_setup.cc's BuildModel: right after the model, under the same root
    ES_ASSIGN_OR_RETURN(std::unique_ptr<models::DomainAdapter> a,
                        models::MakeDomainAdapter(spec.adapt, m.model->feature_dim()));
    m.adapter = std::shared_ptr<models::DomainAdapter>(std::move(a));
    m.root->register_module("adapter", m.adapter);
    if (m.target.size() == 0) return Status::InvalidArgument(m.where + ": adaptation needs target_unlabeled data");
  }
  if (!spec.init_from.empty()) ES_RETURN_IF_ERROR(LoadInitFrom(spec, *m.ctx, m.where, *m.model, &m.train_norm));
  std::vector<std::string> freeze;
  for (const auto& f : m.cfg.freeze) freeze.push_back("model." + f);
  Result<FlatParameters> flat = FlatParameters::Build(*m.root, freeze);
  if (!flat.ok()) return flat.status().WithContext(m.where);  // e.g. a [train] freeze prefix naming no parameter
  m.own = std::make_unique<FlatParameters>(std::move(flat).value());
  return Status::Ok();
}

// trainer_setup.cc's NormalizeInputs, per member.
Status PackedTrainer::NormalizeInputs(Member& m) {
  std::vector<std::pair<std::string, Split*>> all = {
      {"train", &m.train}, {"val", &m.val}, {"target_unlabeled", &m.target}};
  for (auto& [n, s] : m.evals) all.emplace_back("eval." + n, &s);
  return NormalizeSplits(m.cfg.feature_norm, all, m.train, m.spec->features, &m.train_norm, m.where);
}

// Everything trainer.cc's Run() does before its epoch loop (with trainer_setup.cc's steps), except the
// optimizer and resume (they need the packed buffer).
Status PackedTrainer::Setup(Member& m) {
  const JobSpec& spec = *m.spec;
  m.t_start = Clock::now();
  m.id = spec.id.empty() ? spec.ComputeId() : spec.id;
  m.where = "job " + m.id.substr(0, 12);
  m.log_where = m.ctx->label.empty() ? m.where : m.where + " [" + m.ctx->label + "]";
  ES_ASSIGN_OR_RETURN(m.cfg, ParseTrainConfig(spec.train_config, m.where + " train_config"));
  m.num_classes = static_cast<int>(spec.labels.size());
  if (m.num_classes < 2) return Status::InvalidArgument(m.where + ": a job needs at least two labels");
  if ((spec.selection == "source_val" || spec.selection == "target_val") && spec.val.empty() && spec.kind != "eval")
    return Status::InvalidArgument(m.where + ": selection '" + spec.selection + "' needs validation data");
  if (UnsupervisedSelection(spec.selection) && spec.kind != "eval" && spec.target_unlabeled.empty())
    return Status::InvalidArgument(m.where + ": selection '" + spec.selection + "' needs target_unlabeled data");
  if (spec.selection == "dev" && spec.val.empty() && spec.kind != "eval")
    return Status::InvalidArgument(m.where + ": selection 'dev' needs (source) validation data");
  if (spec.keep_checkpoint && m.ctx->work_dir.empty())
    return Status::InvalidArgument(m.where + ": keep_checkpoint needs a work directory");
  if (!m.ctx->work_dir.empty()) m.state_path = JobStatePath(m.ctx->work_dir, m.id);
  ES_RETURN_IF_ERROR(LoadAndBuild(m));
  ES_RETURN_IF_ERROR(NormalizeInputs(m));
  if (m.training) m.class_weights = ClassWeights(m.cfg.class_weights, m.train.labels, m.num_classes);
  if (m.class_weights.defined() && !dev_.is_cpu()) m.class_weights = m.class_weights.to(dev_);
  const int64_t n = m.train.size();
  m.steps_per_epoch = m.cfg.drop_last ? n / m.cfg.batch_size : (n + m.cfg.batch_size - 1) / m.cfg.batch_size;
  if (m.training && m.steps_per_epoch == 0)
    return Status::InvalidArgument(m.where + ": " + std::to_string(n) + " training rows are fewer than batch_size " +
                                   std::to_string(m.cfg.batch_size) + " with drop_last");
  if (m.training)  // the packed MLP has no BatchNorm; its members run on one rank
    ES_RETURN_IF_ERROR(CheckOneRowBatches(m.where, spec.model.value("name", std::string()), /*has_batchnorm=*/false,
                                          m.adapter ? m.adapter->variant() : std::string(), n, m.cfg.batch_size,
                                          m.cfg.drop_last, /*world=*/1));
  auto cat = [&](const Split& s) {
    std::vector<torch::Tensor> parts;
    for (const auto& mod : m.modalities) parts.push_back(s.inputs.at(mod));
    return parts.size() == 1 ? parts[0].contiguous() : torch::cat(parts, 1);
  };
  for (const auto& mod : m.modalities)
    for (const Split* s : {&m.train, &m.val, &m.target})
      if (s->size() && !s->inputs.count(mod))
        return Status::InvalidArgument(m.where + ": modality '" + mod + "' missing");
  if (m.train.size()) m.train_x = cat(m.train);
  if (m.val.size()) m.val_x = cat(m.val);
  if (m.target.size()) m.target_x = cat(m.target);
  for (const auto& [name, s] : m.evals)
    if (s.size()) m.eval_x[name] = cat(s);
  m.shuffle = std::make_unique<IndexShuffler>(DeriveSeed(spec.seed, kShuffleSeed));
  m.target_shuffle = std::make_unique<IndexShuffler>(DeriveSeed(spec.seed, kTargetSeed));
  // The single path reseeds torch's generators here for dropout (its device's default one draws it); the member
  // gets its own of that kind, seeded the same.
  const uint64_t torch_seed = DeriveSeed(spec.seed, kTorchSeed) + 1;
  m.gen = models::CounterGenerator(g_member_generator_for_test ? g_member_generator_for_test(torch_seed)
                                                               : models::NewGeneratorLike(dev_, torch_seed));
  return Status::Ok();
}

}  // namespace emosweep::worker::packed
