// worker/packed_trainer.cc: K MLP jobs trained as one batched model (see packed_trainer.h).
// Each step mirrors trainer.cc's single loop member by member; the layout, the RNG streams and
// what is bitwise are described in docs/design/packing.md ("The batched trainer").
#include "worker/packed_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>

#include "cluster/reducer.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "jobs/pack.h"
#include "models/da_losses.h"
#include "models/layers.h"
#include "models/model.h"
#include "models/packed_mlp.h"
#include "worker/checkpoint.h"
#include "worker/da_selection.h"
#include "worker/dataset.h"
#include "worker/evaluate.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"
#include "worker/trainer.h"
#include "worker/trainer_internal.h"
#include "worker/trainer_state.h"

namespace emosweep::worker {
namespace {

using models::PackedLayer;
using models::PackedMlp;
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool IsMlpFamily(const JobSpec& s) {
  const std::string name = s.model.is_object() ? s.model.value("name", std::string()) : std::string();
  return name == "concat_mlp" || name == "unimodal_mlp";
}

// One member of the pack: everything its single job's Trainer holds.
struct Member {
  const JobSpec* spec = nullptr;
  const JobContext* ctx = nullptr;
  size_t index = 0;  // position in the caller's vectors
  int slot = -1;     // row of the packed buffer
  std::string id, where;
  TrainConfig cfg;
  int num_classes = 0;
  bool training = true;
  Split train, val, target;  // target: target_unlabeled (domain adaptation, DA diagnostics)
  std::map<std::string, Split> evals;
  ModalityStats train_norm;
  std::vector<std::string> modalities;  // the model's input order
  torch::Tensor train_x, val_x, target_x;  // inputs concatenated in the model's order
  std::map<std::string, torch::Tensor> eval_x;
  models::ModelPtr model;
  std::shared_ptr<torch::nn::Module> root;
  std::shared_ptr<models::DomainAdapter> adapter;  // null without `adapt`
  // DANN: the discriminator's parameters, rebound to views of the member's row (where the single job's flat
  // buffer has them), and their gradients' views of the row.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> adapter_params;
  std::unique_ptr<FlatParameters> own;  // the single model's own buffer (checkpoint I/O)
  std::unique_ptr<FlatParameters> row;  // its row of the packed buffer
  std::unique_ptr<FusedOptimizer> opt;
  std::unique_ptr<Schedule> sched;
  torch::Tensor class_weights;
  std::unique_ptr<IndexShuffler> shuffle, target_shuffle;
  std::vector<int64_t> target_order, target_idx;  // trainer.cc's target cycling (DrawTargetRows)
  int64_t target_cursor = 0;
  // trainer.cc's DA bookkeeping: the last epoch's training-side means, the run's largest λ, and this epoch's
  // Σ n·da, Σ n·disc_acc, Σ n·λ and last λ.
  nlohmann::json da_train = nlohmann::json::object();
  double da_lambda_seen = 0;
  double da_acc[3] = {0, 0, 0};
  double lambda_last = 0;
  nlohmann::json da;  // this epoch's diagnostics (EpochDaDiagnostics)
  at::Generator gen;
  int64_t step = 0, steps_per_epoch = 0;
  int start_epoch = 0, epochs_run = 0, resumed_from = 0;
  bool stopped_early = false;
  EarlyStopState es;
  torch::Tensor best_params;
  std::vector<EpochRecord> curve;
  std::string state_path;
  double t_load = 0;
  Clock::time_point t_start;
  // The current epoch.
  std::vector<int64_t> order;
  int64_t batches = 0;
  double count = 0;
  EpochRecord rec;
  bool done = false;  // result set (finished, failed or aborted)
  Result<JobResult> result = Status::Internal("pack member not run");

  models::LossContext LossCtx(int epoch) const {
    models::LossContext c;
    c.epoch = epoch;
    c.num_epochs = cfg.epochs;
    c.step = step;
    c.steps_per_epoch = steps_per_epoch;
    c.class_weights = class_weights;
    c.label_smoothing = cfg.label_smoothing;
    return c;
  }
  void PullRow() {  // the single model's parameters <- the packed row
    torch::NoGradGuard g;
    own->params().copy_(row->params());
  }
};

// While alive, torch's default CPU generator holds `gen`'s state (nullptr: no-op); Restore() hands the advanced
// state back to `gen` and the default generator its own.
class GeneratorSwap {
 public:
  explicit GeneratorSwap(at::Generator* gen) : gen_(gen) {
    if (!gen_) return;
    at::Generator def = at::detail::getDefaultCPUGenerator();
    torch::Tensor mine;
    {
      std::lock_guard<std::mutex> lock(gen_->mutex());
      mine = gen_->get_state();
    }
    std::lock_guard<std::mutex> lock(def.mutex());
    saved_ = def.get_state();
    def.set_state(mine);
  }
  void Restore() {
    if (!gen_) return;
    at::Generator def = at::detail::getDefaultCPUGenerator();
    torch::Tensor advanced;
    {
      std::lock_guard<std::mutex> lock(def.mutex());
      advanced = def.get_state();
      def.set_state(saved_);
    }
    std::lock_guard<std::mutex> lock(gen_->mutex());
    gen_->set_state(advanced);
    gen_ = nullptr;
  }
  ~GeneratorSwap() { Restore(); }

 private:
  at::Generator* gen_;
  torch::Tensor saved_;
};

double MetricValue(const EvalOutput& e, const std::string& metric) {
  return metric == "loss" ? e.loss : e.metrics.Get(metric);
}

// Rows of several members' splits in one tensor, so that one index_select gathers a group's batch.
struct Pool {
  torch::Tensor x, y;
  std::vector<int64_t> offset;
};

Pool MakePool(const std::vector<const torch::Tensor*>& xs, const std::vector<const torch::Tensor*>& ys) {
  Pool p;
  std::vector<torch::Tensor> xv, yv;
  int64_t off = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    p.offset.push_back(off);
    off += xs[i]->size(0);
    xv.push_back(*xs[i]);
    yv.push_back(*ys[i]);
  }
  p.x = torch::cat(xv, 0);
  p.y = torch::cat(yv, 0);
  return p;
}

struct EvalItem {
  Member* member;
  const Split* split;
  const torch::Tensor* x;
  models::LossContext lctx;
  bool keep_predictions;
  EvalOutput out;
  Status status;
  std::vector<int> labels, preds;
  double loss_sum = 0;
};

class PackedTrainer {
 public:
  PackedTrainer(const std::vector<JobSpec>& specs, const std::vector<JobContext>& contexts)
      : specs_(specs), contexts_(contexts) {}
  std::vector<Result<JobResult>> Run();

 private:
  Status Setup(Member& m);
  Status LoadAndBuild(Member& m);
  Status NormalizeInputs(Member& m);
  Status BuildPack();
  Status MaybeResume(Member& m);
  Status WriteState(Member& m, int next_epoch);
  void TrainEpoch(int epoch, std::vector<Member*>& act);
  // by_slot: a pool holding each item's rows at its member's slot offset (otherwise one is made).
  void Evaluate(std::vector<EvalItem>& items, const Pool* by_slot = nullptr);
  void Validate(int epoch, std::vector<Member*>& act);
  void Finish(std::vector<Member*>& fin);
  void Fail(Member& m, Status s) {
    m.result = std::move(s);
    m.done = true;
  }

  const std::vector<JobSpec>& specs_;
  const std::vector<JobContext>& contexts_;
  std::vector<Member> members_;
  std::vector<Member*> packed_;  // by slot
  PackedMlp mlp_;
  Pool train_pool_, val_pool_, target_pool_;  // every packed member's training / validation / target rows, by slot
  torch::Tensor params_, grads_;  // [K, stride]
  int64_t p_ = 0, stride_ = 0;
  int threads_ = 1;
  std::string reducer_name_;
  std::string pack_id_;
  Clock::time_point last_state_write_ = Clock::now();
};

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
  if (!spec.adapt.empty()) {  // as trainer.cc's BuildModel: right after the model, under the same root
    ES_ASSIGN_OR_RETURN(std::unique_ptr<models::DomainAdapter> a,
                        models::MakeDomainAdapter(spec.adapt, m.model->feature_dim()));
    m.adapter = std::shared_ptr<models::DomainAdapter>(std::move(a));
    m.root->register_module("adapter", m.adapter);
    if (m.target.size() == 0) return Status::InvalidArgument(m.where + ": adaptation needs target_unlabeled data");
  }
  if (!spec.init_from.empty()) ES_RETURN_IF_ERROR(LoadInitFrom(spec, *m.ctx, m.where, *m.model, &m.train_norm));
  std::vector<std::string> freeze;
  for (const auto& f : m.cfg.freeze) freeze.push_back("model." + f);
  ES_ASSIGN_OR_RETURN(FlatParameters flat, FlatParameters::Build(*m.root, freeze));
  m.own = std::make_unique<FlatParameters>(std::move(flat));
  return Status::Ok();
}

// trainer.cc's NormalizeInputs, per member.
Status PackedTrainer::NormalizeInputs(Member& m) {
  std::vector<std::pair<std::string, Split*>> all = {
      {"train", &m.train}, {"val", &m.val}, {"target_unlabeled", &m.target}};
  for (auto& [n, s] : m.evals) all.emplace_back("eval." + n, &s);
  return NormalizeSplits(m.cfg.feature_norm, all, m.train, m.spec->features, &m.train_norm, m.where);
}

// Everything trainer.cc's Run() does before its epoch loop, except the optimizer and resume
// (they need the packed buffer).
Status PackedTrainer::Setup(Member& m) {
  const JobSpec& spec = *m.spec;
  m.t_start = Clock::now();
  m.id = spec.id.empty() ? spec.ComputeId() : spec.id;
  m.where = "job " + m.id.substr(0, 12);
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
  const int64_t n = m.train.size();
  m.steps_per_epoch = m.cfg.drop_last ? n / m.cfg.batch_size : (n + m.cfg.batch_size - 1) / m.cfg.batch_size;
  if (m.training && m.steps_per_epoch == 0)
    return Status::InvalidArgument(m.where + ": " + std::to_string(n) + " training rows are fewer than batch_size " +
                                   std::to_string(m.cfg.batch_size) + " with drop_last");
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
  // The single path reseeds torch's generator here for dropout; the member gets its own, seeded the same.
  m.gen = at::detail::createCPUGenerator(DeriveSeed(spec.seed, kTorchSeed) + 1);
  return Status::Ok();
}

// The MLP's layers from member 0's model (MlpModel: body = [Linear, ReLU, Dropout]*, head = Linear);
// every member must have the same shapes, flat order and dropout.
Status PackedTrainer::BuildPack() {
  const int k = static_cast<int>(packed_.size());
  struct LayerRef {
    std::string w, b;
    int64_t in, out;
  };
  auto describe = [](Member& m, std::vector<LayerRef>* layers, double* p) -> Status {
    layers->clear();
    *p = 0;
    torch::nn::Module& model = *m.model;
    std::shared_ptr<torch::nn::Module> body, head;
    for (const auto& c : model.named_children()) {
      if (c.key() == "body") body = c.value();
      else if (c.key() == "head") head = c.value();
      else return Status::FailedPrecondition("unexpected module " + c.key());
    }
    if (!body || !head || !head->as<torch::nn::Linear>()) return Status::FailedPrecondition("not an MLP");
    bool have_dropout = false;
    size_t i = 0;
    const auto children = body->named_children();
    while (i < children.size()) {
      auto* lin = children[i].value()->as<torch::nn::Linear>();
      if (!lin || i + 2 >= children.size() + 0 || !children[i + 1].value()->as<torch::nn::ReLU>() ||
          !children[i + 2].value()->as<torch::nn::Dropout>())
        return Status::FailedPrecondition("body is not Linear-ReLU-Dropout");
      if (!lin->bias.defined()) return Status::FailedPrecondition("linear without bias");
      const double dp = children[i + 2].value()->as<torch::nn::Dropout>()->options.p();
      if (have_dropout && dp != *p) return Status::FailedPrecondition("dropout differs between layers");
      *p = dp;
      have_dropout = true;
      layers->push_back({"model.body." + children[i].key() + ".weight", "model.body." + children[i].key() + ".bias",
                         lin->weight.size(1), lin->weight.size(0)});
      i += 3;
    }
    auto* h = head->as<torch::nn::Linear>();
    if (!h->bias.defined()) return Status::FailedPrecondition("head without bias");
    layers->push_back({"model.head.weight", "model.head.bias", h->weight.size(1), h->weight.size(0)});
    return Status::Ok();
  };
  std::vector<LayerRef> layers;
  double p = 0;
  ES_RETURN_IF_ERROR(describe(*packed_[0], &layers, &p));
  for (int s = 1; s < k; ++s) {
    std::vector<LayerRef> l2;
    double p2 = 0;
    ES_RETURN_IF_ERROR(describe(*packed_[s], &l2, &p2));
    if (l2.size() != layers.size()) return Status::FailedPrecondition("members differ in architecture");
    for (size_t i = 0; i < l2.size(); ++i)
      if (l2[i].in != layers[i].in || l2[i].out != layers[i].out || l2[i].w != layers[i].w)
        return Status::FailedPrecondition("members differ in architecture");
    if (packed_[s]->own->names() != packed_[0]->own->names())
      return Status::FailedPrecondition("members differ in trainable parameters");
  }
  // The flat order of member 0's buffer (equal for all); rows padded to 16 floats (64 bytes).
  const FlatParameters& f0 = *packed_[0]->own;
  std::map<std::string, int64_t> offset;
  {
    int64_t off = 0;
    auto named = packed_[0]->root->named_parameters(true);
    for (const auto& name : f0.names()) {
      offset[name] = off;
      off += named[name].numel();
    }
    p_ = off;
  }
  stride_ = (p_ + 15) / 16 * 16;
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  params_ = torch::zeros({k, stride_}, opts);
  grads_ = torch::zeros({k, stride_}, opts);
  for (int s = 0; s < k; ++s) {
    Member& m = *packed_[s];
    torch::NoGradGuard g;
    params_[s].narrow(0, 0, p_).copy_(m.own->params());
    m.row = std::make_unique<FlatParameters>(
        FlatParameters::OverBuffers(params_[s].narrow(0, 0, p_), grads_[s].narrow(0, 0, p_)));
    // DANN: the discriminator runs as the member's own module on its slices of the features; its parameters
    // become views of the member's row, so that the member's optimizer, state and selection see them where the
    // single job's flat buffer has them.
    m.adapter_params.clear();
    for (auto& p : m.root->named_parameters(true)) {
      if (p.key().rfind("adapter.", 0) != 0) continue;
      auto it = offset.find(p.key());
      if (it == offset.end()) continue;
      const int64_t n = p.value().numel();
      p.value().set_data(params_[s].narrow(0, it->second, n).view(p.value().sizes()));
      m.adapter_params.emplace_back(p.value(), grads_[s].narrow(0, it->second, n).view(p.value().sizes()));
    }
  }
  mlp_.k = k;
  mlp_.dropout.clear();
  for (int s = 0; s < k; ++s) {
    std::vector<LayerRef> l2;
    double ps = 0;
    ES_RETURN_IF_ERROR(describe(*packed_[s], &l2, &ps));
    mlp_.dropout.push_back(ps);
  }
  mlp_.layers.clear();
  for (const auto& L : layers) {
    PackedLayer pl;
    pl.in = L.in;
    pl.out = L.out;
    auto make = [&](const std::string& name, std::vector<int64_t> shape) {
      std::vector<int64_t> full = {k};
      full.insert(full.end(), shape.begin(), shape.end());
      const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
      auto it = offset.find(name);
      if (it == offset.end()) {  // frozen: a stacked copy without gradient
        std::vector<torch::Tensor> rows;
        for (int s = 0; s < k; ++s) rows.push_back(packed_[s]->root->named_parameters(true)[name].detach().clone());
        return torch::stack(rows);
      }
      torch::Tensor t = params_.narrow(1, it->second, n).view(full).detach();
      t.requires_grad_(true);  // its gradient is written by PackedLinear's backward, never accumulated
      return t;
    };
    auto grad_view = [&](const std::string& name, std::vector<int64_t> shape) {
      auto it = offset.find(name);
      if (it == offset.end()) return torch::Tensor();
      std::vector<int64_t> full = {k};
      full.insert(full.end(), shape.begin(), shape.end());
      const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
      return grads_.narrow(1, it->second, n).view(full);
    };
    pl.w = make(L.w, {L.out, L.in});
    pl.b = make(L.b, {L.out});
    pl.gw = grad_view(L.w, {L.out, L.in});
    pl.gb = grad_view(L.b, {L.out});
    mlp_.layers.push_back(pl);
  }
  return Status::Ok();
}

Status PackedTrainer::MaybeResume(Member& m) {
  const std::string& path = m.state_path;
  if (path.empty() || !FileExists(path)) return Status::Ok();
  ES_ASSIGN_OR_RETURN(Checkpoint c, ReadCheckpoint(path));
  const auto& meta = c.meta;
  if (meta.value("job_id", "") != m.id)
    return Status::Corruption(path + ": checkpoint belongs to job " + meta.value("job_id", std::string("?")));
  ES_RETURN_IF_ERROR(LoadModuleState(c, *m.root, "", /*strict=*/true, path));
  {
    // The model's parameters load into its own buffer (copied into the row here), a discriminator's straight
    // into the row.
    torch::NoGradGuard g;
    if (m.adapter_params.empty()) {
      m.row->params().copy_(m.own->params());
    } else {
      const auto [off, n] = m.own->Span("model.");
      m.row->params().narrow(0, off, n).copy_(m.own->params().narrow(0, off, n));
    }
  }
  std::vector<std::pair<std::string, torch::Tensor>> opt_state;
  for (const auto& [n, t] : c.tensors)
    if (n.rfind("optimizer.", 0) == 0) opt_state.emplace_back(n, t);
  ES_RETURN_IF_ERROR(m.opt->LoadState(meta["optimizer"], opt_state).WithContext(path));
  ES_RETURN_IF_ERROR(m.sched->LoadState(meta["schedule"]).WithContext(path));
  if (const torch::Tensor* b = c.Find("best.params")) m.best_params = b->clone();
  const torch::Tensor* rng = c.Find("rng.torch");
  if (!rng) return Status::Corruption(path + ": checkpoint lacks the torch RNG state");
  {
    std::lock_guard<std::mutex> lock(m.gen.mutex());
    m.gen.set_state(*rng);
  }
  if (!m.shuffle->LoadState(meta["shuffle_rng"]) || !m.target_shuffle->LoadState(meta["target_rng"]))
    return Status::Corruption(path + ": bad RNG state");
  m.target_order = meta["target_order"].get<std::vector<int64_t>>();
  m.target_cursor = meta["target_cursor"];
  m.es = EarlyStopState::FromJson(meta["early_stop"]);
  m.step = meta["step"];
  m.start_epoch = meta["next_epoch"];
  m.curve.clear();
  for (const auto& r : meta["curve"]) m.curve.push_back(EpochRecordFromJson(r));
  m.opt->set_lr(m.sched->lr());
  if (m.sched->cycles_momentum()) m.opt->set_momentum(m.sched->momentum());
  LOG_INFO << m.where << ": resuming at epoch " << m.start_epoch << " from " << path << " (pack member)";
  return Status::Ok();
}

// trainer.cc's WriteState: the single job's format, so that the member resumes packed or alone.
Status PackedTrainer::WriteState(Member& m, int next_epoch) {
  if (m.state_path.empty()) return Status::Ok();
  m.PullRow();
  Checkpoint c;
  AddModuleState(c, *m.root, "");
  for (auto& [n, t] : m.opt->StateTensors()) c.Add(n, t);
  if (m.best_params.defined()) c.Add("best.params", m.best_params);
  {
    std::lock_guard<std::mutex> lock(m.gen.mutex());
    c.Add("rng.torch", m.gen.get_state());
  }
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& r : m.curve) curve.push_back(EpochRecordToJson(r));
  c.meta = {{"job_id", m.id},
            {"next_epoch", next_epoch},
            {"step", m.step},
            {"optimizer", m.opt->StateMeta()},
            {"schedule", m.sched->State()},
            {"early_stop", m.es.ToJson()},
            {"shuffle_rng", m.shuffle->State()},
            {"target_rng", m.target_shuffle->State()},
            {"target_order", m.target_order},
            {"target_cursor", m.target_cursor},
            {"curve", curve}};
  ES_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(m.state_path).parent_path().string()));
  return WriteCheckpoint(m.state_path, c);
}

// One epoch of every member in `act`, step by step: at step b the members that still have a
// batch form groups of equal batch length; each group runs as one batched forward, each member's
// loss is its model's own Loss on its logits, one backward, then each member's own update.
void PackedTrainer::TrainEpoch(int epoch, std::vector<Member*>& act) {
  int64_t max_batches = 0;
  std::vector<Member*> trainers;
  for (Member* m : act) {
    const int64_t n = m->train.size();
    if (m->cfg.balanced_sampling) {
      std::vector<int64_t> labels(m->train.labels.data_ptr<int64_t>(), m->train.labels.data_ptr<int64_t>() + n);
      m->order = m->shuffle->BalancedSample(labels, m->num_classes, n);
    } else {
      m->order.resize(n);
      for (int64_t i = 0; i < n; ++i) m->order[i] = i;
      m->shuffle->Shuffle(m->order);
    }
    const int64_t bs = m->cfg.batch_size;
    m->batches = m->cfg.drop_last ? n / bs : (n + bs - 1) / bs;
    m->count = 0;
    std::fill(std::begin(m->da_acc), std::end(m->da_acc), 0.0);
    m->lambda_last = 0;
    max_batches = std::max(max_batches, m->batches);
  }
  const Pool& pool = train_pool_;
  torch::Tensor loss_acc = torch::zeros({static_cast<int64_t>(act.size())}, torch::kDouble);
  std::vector<at::Generator*> gens;
  for (int64_t b = 0; b < max_batches; ++b) {
    std::map<int64_t, std::vector<size_t>> groups;  // batch length -> positions in act
    for (size_t i = 0; i < act.size(); ++i) {
      Member* m = act[i];
      if (b >= m->batches) continue;
      const int64_t bs = m->cfg.batch_size, lo = b * bs;
      groups[std::min(bs, m->train.size() - lo)].push_back(i);
    }
    if (groups.empty()) break;
    // No zeroing: PackedLinear's backward overwrites every trainable element of a stepped member's row
    // (each is a weight or bias of some layer); rows of members not stepped are not read.
    std::vector<torch::Tensor> totals;
    std::vector<size_t> stepped;
    for (auto& [len, pos] : groups) {
      const int64_t gm = static_cast<int64_t>(pos.size());
      std::vector<int64_t> gidx;
      gidx.reserve(gm * len);
      std::vector<int> slots;
      gens.clear();
      for (size_t i : pos) {
        Member* m = act[i];
        const int64_t lo = b * m->cfg.batch_size;
        for (int64_t r = 0; r < len; ++r) gidx.push_back(pool.offset[m->slot] + m->order[lo + r]);
        slots.push_back(m->slot);
        gens.push_back(&m->gen);
      }
      // Adaptation: each adapting member draws its target batch (as many rows as its source batch) from its own
      // cycle, before its forward, exactly as trainer.cc does.
      std::vector<int64_t> da_j;  // positions in this group of the adapting members
      for (int64_t j = 0; j < gm; ++j) {
        Member* m = act[pos[static_cast<size_t>(j)]];
        if (!m->adapter) continue;
        DrawTargetRows(*m->target_shuffle, m->target.size(), len, /*shuffle=*/true, &m->target_order, &m->target_cursor,
                       &m->target_idx);
        da_j.push_back(j);
      }
      // DANN (the members agree on the variant): the target batch back-propagates through the model too, so
      // each layer's gradient is the sum of two (as AccumulateGrad adds them alone): the rows start at zero and
      // both forwards accumulate. The discriminator's gradients are autograd's own (reset, as FlatParameters
      // does).
      const bool target_grad = !da_j.empty() && act[pos[static_cast<size_t>(da_j[0])]]->adapter->needs_target_grad();
      if (target_grad)
        for (size_t i : pos) {
          Member* m = act[i];
          grads_[m->slot].zero_();
          for (auto& [p, g] : m->adapter_params) p.mutable_grad() = torch::Tensor();
        }
      torch::Tensor ti = torch::from_blob(gidx.data(), {gm * len}, torch::kLong);
      torch::Tensor x = pool.x.index_select(0, ti).view({gm, len, pool.x.size(1)});
      torch::Tensor y = pool.y.index_select(0, ti).view({gm, len});
      torch::Tensor feats;
      torch::Tensor logits =
          mlp_.Forward(slots, x, /*training=*/true, gens, da_j.empty() ? nullptr : &feats, target_grad);
      // The adapting members' target forward (training mode: their dropout draws follow the source batch's, from
      // the same generator, as alone), without gradient for MMD / CORAL (DomainAdapter::needs_target_grad).
      std::vector<torch::Tensor> fs, ft;
      if (!da_j.empty()) {
        const int64_t dm = static_cast<int64_t>(da_j.size());
        std::vector<int64_t> tidx;
        tidx.reserve(dm * len);
        std::vector<int> tslots;
        std::vector<at::Generator*> tgens;
        for (int64_t j : da_j) {
          Member* m = act[pos[static_cast<size_t>(j)]];
          for (int64_t r = 0; r < len; ++r) tidx.push_back(target_pool_.offset[m->slot] + m->target_idx[r]);
          tslots.push_back(m->slot);
          tgens.push_back(&m->gen);
        }
        torch::Tensor tt = torch::from_blob(tidx.data(), {dm * len}, torch::kLong);
        torch::Tensor tx = target_pool_.x.index_select(0, tt).view({dm, len, target_pool_.x.size(1)});
        torch::Tensor tf;
        if (target_grad) {
          mlp_.Forward(tslots, tx, /*training=*/true, tgens, &tf, /*accumulate_grads=*/true);
        } else {
          torch::NoGradGuard ng;
          mlp_.Forward(tslots, tx, /*training=*/true, tgens, &tf);
        }
        fs = feats.unbind(0);
        ft = tf.unbind(0);
      }
      std::vector<torch::Tensor> lg = logits.unbind(0), lb = y.unbind(0);
      std::vector<torch::Tensor> gtot;
      size_t next_da = 0;
      for (int64_t j = 0; j < gm; ++j) {
        Member* m = act[pos[static_cast<size_t>(j)]];
        models::ModelOutput o;
        o.logits = lg[static_cast<size_t>(j)];
        models::Batch batch;
        batch.labels = lb[static_cast<size_t>(j)];
        const models::LossContext lctx = m->LossCtx(epoch);
        models::LossTerms terms = m->model->Loss(o, batch, lctx);
        torch::Tensor total = terms.total;
        if (m->adapter) {
          // Its DA loss on its own slices of the features, with its own adapter (weight, schedule), as alone.
          // DANN's discriminator draws its dropout masks from torch's default generator, which alone is the one
          // the model's dropout draws from: the member's generator stands in for it during the call.
          GeneratorSwap swap(target_grad ? &m->gen : nullptr);
          models::LossTerms da = m->adapter->Loss(fs[static_cast<size_t>(j)], ft[next_da++], lctx);
          swap.Restore();
          total = total + da.total;
          const double nl = static_cast<double>(len);
          m->da_acc[0] += static_cast<double>(da.parts.at("da").detach().item<float>()) * nl;
          if (da.parts.count("disc_acc"))
            m->da_acc[1] += static_cast<double>(da.parts.at("disc_acc").item<float>()) * nl;
          m->lambda_last = m->adapter->last_lambda();
          m->da_acc[2] += m->lambda_last * nl;
          m->da_lambda_seen = std::max(m->da_lambda_seen, m->lambda_last);
        }
        gtot.push_back(total);
        m->count += static_cast<double>(len);
      }
      {
        torch::NoGradGuard ng;
        std::vector<int64_t> p64(pos.begin(), pos.end());
        torch::Tensor stacked = torch::stack(gtot).detach().to(torch::kDouble) * static_cast<double>(len);
        loss_acc.index_add_(0, torch::tensor(p64, torch::kLong), stacked);
      }
      totals.insert(totals.end(), gtot.begin(), gtot.end());
      stepped.insert(stepped.end(), pos.begin(), pos.end());
    }
    // Each member's gradient is its own loss's: the members share no parameter.
    torch::stack(totals).sum().backward();
    for (size_t i : stepped) {
      Member* m = act[i];
      if (!m->adapter_params.empty()) {
        torch::NoGradGuard ng;
        for (auto& [p, g] : m->adapter_params) {  // FlatParameters::SyncGrads: copied in, zero when none
          if (p.grad().defined())
            g.copy_(p.grad());
          else
            g.zero_();
          p.mutable_grad() = torch::Tensor();
        }
        // The model's parameters only, as trainer.cc (a discriminator's gradients neither count nor get scaled).
        const auto [off, n] = m->own->Span("model.");
        if (m->cfg.grad_clip > 0) {
          torch::Tensor g = m->row->grads().narrow(0, off, n);
          ClipGradNorm(g, m->cfg.grad_clip);
        }
      } else if (m->cfg.grad_clip > 0) {
        ClipGradNorm(m->row->grads(), m->cfg.grad_clip);
      }
      m->opt->Step();
      ++m->step;
      m->sched->StepBatch();
      m->opt->set_lr(m->sched->lr());
      if (m->sched->cycles_momentum()) m->opt->set_momentum(m->sched->momentum());
    }
  }
  torch::Tensor acc = loss_acc.contiguous();
  for (size_t i = 0; i < act.size(); ++i) {
    Member* m = act[i];
    const double loss_sum = acc.data_ptr<double>()[i];
    const float s0 = static_cast<float>(loss_sum), s1 = static_cast<float>(m->count);
    m->rec.train_loss = s1 > 0 ? s0 / s1 : std::nan("");
    if (m->adapter && s1 > 0) {  // trainer.cc's sums[2..4] (floats) over the row count
      const float d0 = static_cast<float>(m->da_acc[0]), d1 = static_cast<float>(m->da_acc[1]),
                  d2 = static_cast<float>(m->da_acc[2]);
      m->da_train = DaTrainingMeans(d0 / s1, d1 / s1, d2 / s1, m->lambda_last, m->adapter->weight(),
                                    m->adapter->lambda_max() > 0);
    }
  }
}

// trainer.cc's Evaluate for many (member, split) pairs at once: batch i of every split, grouped by length.
void PackedTrainer::Evaluate(std::vector<EvalItem>& items, const Pool* by_slot) {
  std::vector<const torch::Tensor*> xs, ys;
  int64_t nmax = 0;
  for (auto& it : items) {
    xs.push_back(it.x);
    ys.push_back(&it.split->labels);
    nmax = std::max(nmax, it.split->size());
    it.labels.reserve(it.split->size());
    it.preds.reserve(it.split->size());
  }
  if (items.empty() || nmax == 0) return;
  Pool own;
  if (!by_slot) own = MakePool(xs, ys);
  const Pool& pool = by_slot ? *by_slot : own;
  auto offset = [&](size_t i) { return by_slot ? pool.offset[items[i].member->slot] : pool.offset[i]; };
  torch::NoGradGuard no_grad;
  const int64_t bs = std::max<int64_t>(1, items[0].member->cfg.batch_size);
  for (int64_t b = 0; b < nmax; b += bs) {
    std::map<int64_t, std::vector<size_t>> groups;
    for (size_t i = 0; i < items.size(); ++i) {
      const int64_t n = items[i].split->size();
      if (b < n) groups[std::min(n, b + bs) - b].push_back(i);
    }
    for (auto& [len, pos] : groups) {
      const int64_t gm = static_cast<int64_t>(pos.size());
      std::vector<int64_t> gidx;
      std::vector<int> slots;
      for (size_t i : pos) {
        for (int64_t r = 0; r < len; ++r) gidx.push_back(offset(i) + b + r);
        slots.push_back(items[i].member->slot);
      }
      torch::Tensor ti = torch::from_blob(gidx.data(), {gm * len}, torch::kLong);
      torch::Tensor x = pool.x.index_select(0, ti).view({gm, len, pool.x.size(1)});
      torch::Tensor y = pool.y.index_select(0, ti).view({gm, len});
      torch::Tensor logits = mlp_.Forward(slots, x, /*training=*/false, {});
      torch::Tensor probs = torch::softmax(logits, 2).contiguous();
      torch::Tensor arg = probs.argmax(2).contiguous();
      std::vector<torch::Tensor> lg = logits.unbind(0), lb = y.unbind(0);
      for (int64_t j = 0; j < gm; ++j) {
        EvalItem& it = items[pos[static_cast<size_t>(j)]];
        const int nc = it.member->num_classes;
        models::ModelOutput o;
        o.logits = lg[static_cast<size_t>(j)];
        models::Batch batch;
        batch.labels = lb[static_cast<size_t>(j)];
        models::LossTerms terms = it.member->model->Loss(o, batch, it.lctx);
        it.loss_sum += terms.total.item<double>() * static_cast<double>(len);
        const float* pp = probs.data_ptr<float>() + j * len * nc;
        const int64_t* ap = arg.data_ptr<int64_t>() + j * len;
        const int64_t* lp = it.split->labels.data_ptr<int64_t>();
        for (int64_t i = 0; i < len; ++i) {
          it.labels.push_back(static_cast<int>(lp[b + i]));
          it.preds.push_back(static_cast<int>(ap[i]));
          if (it.keep_predictions) {
            Prediction p;
            p.utt_id = it.split->ids[b + i];
            p.label = it.labels.back();
            p.pred = it.preds.back();
            p.probs.assign(pp + i * nc, pp + (i + 1) * nc);
            it.out.predictions.push_back(std::move(p));
          }
        }
      }
    }
  }
  for (auto& it : items) {
    it.out.loss = it.loss_sum / static_cast<double>(it.split->size());
    auto metrics = ComputeMetrics(it.labels, it.preds, it.member->num_classes);
    if (metrics.ok())
      it.out.metrics = std::move(*metrics);
    else
      it.status = metrics.status();
  }
}

// trainer.cc's ValidateEpoch (source_val / target_val / last, and dev / im / snd from the epoch's DA
// diagnostics) for every member at once.
void PackedTrainer::Validate(int epoch, std::vector<Member*>& act) {
  std::vector<EvalItem> items;
  for (Member* m : act)
    if (m->val.size()) items.push_back({m, &m->val, &m->val_x, m->LossCtx(epoch), false, {}, Status::Ok(), {}, {}});
  Evaluate(items, &val_pool_);
  for (auto& it : items) {
    Member& m = *it.member;
    if (!it.status.ok()) {
      Fail(m, it.status);
      continue;
    }
    const EvalOutput& v = it.out;
    m.rec.val_loss = v.loss;
    m.rec.val_metrics = v.metrics.ToJson(/*with_confusion=*/false);
    m.sched->StepValidation(MetricValue(v, m.cfg.plateau_metric));
    m.opt->set_lr(m.sched->lr());
    double value = MetricValue(v, m.cfg.metric);
    bool higher = m.cfg.MetricHigherIsBetter();
    int tier = 0;
    if (UnsupervisedSelection(m.spec->selection)) {  // dev / im / snd: from this epoch's DA diagnostics
      Result<SelectionValue> u = UnsupervisedSelectionValue(m.spec->selection, m.da, epoch, m.where);
      if (!u.ok()) {
        Fail(m, u.status());
        continue;
      }
      value = u->value;
      higher = u->higher;
      tier = u->tier;
    }
    const bool improved = !m.es.have_best || tier > m.es.best_tier ||
                          (tier == m.es.best_tier && (higher ? value > m.es.best_value : value < m.es.best_value));
    if (improved) {
      m.es.have_best = true;
      m.es.best_tier = tier;
      m.es.best_value = value;
      m.es.best_epoch = epoch;
      m.es.bad_evals = 0;
      if (m.spec->selection != "last") {
        torch::NoGradGuard g;
        if (!m.best_params.defined()) m.best_params = torch::empty_like(m.row->params());
        m.best_params.copy_(m.row->params());
      }
    } else {
      ++m.es.bad_evals;
    }
    m.stopped_early = m.cfg.patience > 0 && m.es.bad_evals >= m.cfg.patience;
  }
}

// The end of trainer.cc's Run(): restore the selected epoch, evaluate every set, write the model.
void PackedTrainer::Finish(std::vector<Member*>& fin) {
  const auto t_eval = Clock::now();
  std::vector<EvalItem> items;
  if (fin.empty()) return;
  for (Member* m : fin) {
    const bool use_best = m->training && m->spec->selection != "last" && m->best_params.defined();
    if (use_best) {
      torch::NoGradGuard g;
      m->row->params().copy_(m->best_params);
    }
    const models::LossContext lctx = m->LossCtx(std::max(0, m->epochs_run - 1));
    if (m->val.size()) items.push_back({m, &m->val, &m->val_x, lctx, true, {}, Status::Ok(), {}, {}});
    for (const auto& [name, s] : m->evals)
      if (s.size()) items.push_back({m, &s, &m->eval_x.at(name), lctx, true, {}, Status::Ok(), {}, {}});
  }
  Evaluate(items);
  std::map<Member*, std::vector<EvalItem*>> by_member;
  for (auto& it : items) by_member[it.member].push_back(&it);
  for (Member* m : fin) {
    JobResult result;
    const bool use_best = m->training && m->spec->selection != "last" && m->best_params.defined();
    result.selected_epoch = use_best ? m->es.best_epoch : m->epochs_run - 1;
    result.curve = m->curve;
    Status st = Status::Ok();
    for (EvalItem* it : by_member[m]) {
      if (!it->status.ok()) {
        st = it->status;
        break;
      }
      const std::string name = it->split == &m->val ? "val" : [&] {
        for (const auto& [n, s] : m->evals)
          if (&s == it->split) return n;
        return std::string();
      }();
      EvalResult& r = result.evals[name];
      r.metrics = it->out.metrics.ToJson(true);
      r.metrics["loss"] = it->out.loss;
      r.predictions = std::move(it->out.predictions);
    }
    if (!st.ok()) {
      Fail(*m, st);
      continue;
    }
    // Empty eval sets: Evaluate's result for no rows (what the single path records).
    for (const auto& [name, s] : m->evals) {
      if (s.size()) continue;
      EvalOutput e;
      EvalResult& r = result.evals[name];
      r.metrics = e.metrics.ToJson(true);
      r.metrics["loss"] = e.loss;
    }
    if (m->spec->keep_checkpoint) {
      m->PullRow();
      Checkpoint c;
      AddModuleState(c, *m->model, "model.");
      if (m->cfg.feature_norm == "train")
        for (const auto& [mod, ns] : m->train_norm) {
          c.Add("input_norm." + mod + ".mean", ns.mean);
          c.Add("input_norm." + mod + ".inv_std", ns.inv_std);
        }
      c.meta = {{"job_id", m->id},
                {"model", m->spec->model},
                {"labels", m->spec->labels},
                {"selected_epoch", result.selected_epoch}};
      const std::string path = JobModelPath(m->ctx->work_dir, m->id);
      st = MakeDirs(std::filesystem::path(path).parent_path().string());
      if (st.ok()) st = WriteCheckpoint(path, c);
      if (!st.ok()) {
        Fail(*m, st);
        continue;
      }
      result.checkpoint = path;
    }
    if (!m->state_path.empty() && FileExists(m->state_path)) std::filesystem::remove(m->state_path);
    int64_t params = 0;
    for (const auto& p : m->root->parameters()) params += p.numel();
    result.info = {{"parameters", params},
                   {"trainable_parameters", m->own->numel()},
                   {"threads", threads_},
                   {"device", m->ctx->device},
                   {"world_size", 1},
                   {"reducer", reducer_name_},
                   {"selection", m->spec->selection},
                   {"selection_metric", m->cfg.metric},
                   {"oracle_selection", false},
                   {"selected_epoch", result.selected_epoch},
                   {"epochs_run", m->epochs_run},
                   {"stopped_early", m->stopped_early},
                   {"resumed_from_epoch", m->resumed_from},
                   {"optimizer_steps", m->step},
                   {"seconds_load", m->t_load},
                   {"seconds_train", std::chrono::duration<double>(t_eval - m->t_start).count() - m->t_load},
                   {"seconds_eval", Since(t_eval)},
                   {"seconds_total", Since(m->t_start)},
                   {"pack", {{"size", static_cast<int>(specs_.size())}, {"index", static_cast<int>(m->index)}, {"id", pack_id_}}}};
    if (nlohmann::json pv = m->model->Provenance(); !pv.is_null()) result.info["model"] = pv;
    DaSummary da = DaWarnings(m->curve, result.selected_epoch, m->spec->labels, m->spec->selection,
                              m->adapter && m->epochs_run > 0 ? m->adapter->lambda_max() : 0.0, m->da_lambda_seen,
                              m->step, m->adapter ? m->adapter->horizon_text(m->LossCtx(0)) : std::string(),
                              m->training && m->target.size() > 0);
    if (!da.da_selected.is_null()) result.info["da_selected"] = da.da_selected;
    if (!da.warnings.empty()) {
      result.info["warnings"] = da.warnings;
      for (const auto& w : da.warnings) LOG_WARN << m->where << ": " << w["message"].get<std::string>();
    }
    m->result = std::move(result);
    m->done = true;
  }
}

std::vector<Result<JobResult>> PackedTrainer::Run() {
  const JobContext& c0 = contexts_[0];
  members_.resize(specs_.size());
  // Threads: contexts[0]'s (or member 0's train.threads), as RunJob would set them.
  for (size_t i = 0; i < specs_.size(); ++i) {
    Member& m = members_[i];
    m.spec = &specs_[i];
    m.ctx = &contexts_[i];
    m.index = i;
  }
  {
    auto cfg0 = ParseTrainConfig(specs_[0].train_config, "train_config");
    threads_ = cfg0.ok() && cfg0->threads > 0 ? cfg0->threads : std::max(1, c0.threads);
  }
  at::set_num_threads(threads_);
  reducer_name_ = cluster::MakeLocalReducer()->backend();
  {
    std::vector<std::string> ids;
    for (const auto& s : specs_) ids.push_back(s.id.empty() ? s.ComputeId() : s.id);
    std::sort(ids.begin(), ids.end());
    pack_id_ = HashJson(ids);
  }
  for (Member& m : members_) {
    Status st = Setup(m);
    if (!st.ok()) {
      // The single path reports the same problem (and anything this code does not expect runs as it would alone).
      m.result = RunJob(*m.spec, *m.ctx);
      at::set_num_threads(threads_);
      m.done = true;
      continue;
    }
    m.slot = static_cast<int>(packed_.size());
    packed_.push_back(&m);
  }
  std::vector<Result<JobResult>> out;
  auto collect = [&]() {
    for (Member& m : members_) out.push_back(std::move(m.result));
    return out;
  };
  if (packed_.empty()) return collect();
  if (Status st = BuildPack(); !st.ok()) {
    LOG_WARN << "pack: " << st.ToString() << "; running its members one after another";
    for (Member* m : packed_) {
      m->result = RunJob(*m->spec, *m->ctx);
      at::set_num_threads(threads_);
    }
    return collect();
  }
  {
    std::vector<const torch::Tensor*> tx, ty, vx, vy, ux, uy;
    const torch::Tensor none_x = torch::empty({0, mlp_.layers.front().in}), none_y = torch::empty({0}, torch::kLong);
    std::vector<torch::Tensor> no_labels;  // the target's labels are never read: row counts only
    for (Member* m : packed_) no_labels.push_back(torch::zeros({m->target.size()}, torch::kLong));
    for (Member* m : packed_) {
      tx.push_back(m->train.size() ? &m->train_x : &none_x);
      ty.push_back(m->train.size() ? &m->train.labels : &none_y);
      vx.push_back(m->val.size() ? &m->val_x : &none_x);
      vy.push_back(m->val.size() ? &m->val.labels : &none_y);
      ux.push_back(m->adapter ? &m->target_x : &none_x);
      uy.push_back(m->adapter ? &no_labels[static_cast<size_t>(m->slot)] : &none_y);
    }
    train_pool_ = MakePool(tx, ty);
    val_pool_ = MakePool(vx, vy);
    target_pool_ = MakePool(ux, uy);
  }
  for (Member* m : packed_) {
    m->opt = std::make_unique<FusedOptimizer>(m->row.get(), m->cfg);
    m->sched = std::make_unique<Schedule>(m->cfg, m->steps_per_epoch * m->cfg.epochs);
    m->opt->set_lr(m->sched->lr());
    if (m->sched->cycles_momentum()) m->opt->set_momentum(m->sched->momentum());
    if (Status st = MaybeResume(*m); !st.ok()) Fail(*m, st);
    m->resumed_from = m->start_epoch;
    m->epochs_run = m->start_epoch;
  }
  int epochs = 0, first = std::numeric_limits<int>::max();
  for (Member* m : packed_) {
    if (m->done) continue;
    epochs = std::max(epochs, m->training ? m->cfg.epochs : 0);
    first = std::min(first, m->start_epoch);
  }
  // Members with nothing to train (eval jobs, or resumed at their last epoch) finish first.
  {
    std::vector<Member*> fin;
    for (Member* m : packed_)
      if (!m->done && (!m->training || m->start_epoch >= m->cfg.epochs)) fin.push_back(m);
    Finish(fin);
  }
  for (int epoch = first; epoch < epochs; ++epoch) {
    std::vector<Member*> act;
    for (Member* m : packed_)
      if (!m->done && m->start_epoch <= epoch && epoch < m->cfg.epochs) act.push_back(m);
    if (act.empty()) continue;
    const auto t_epoch = Clock::now();
    for (Member* m : act) {
      m->rec = EpochRecord();
      m->rec.epoch = epoch;
      m->rec.lr = m->opt->lr();
      m->rec.val_loss = std::nan("");
    }
    TrainEpoch(epoch, act);
    std::vector<Member*> alive;
    for (Member* m : act) {
      const double tl = m->rec.train_loss;
      if (m->count > 0 && !std::isfinite(tl)) {
        Fail(*m, Status::FailedPrecondition(m->where + ": training loss became " + (std::isnan(tl) ? "NaN" : "infinite") +
                                            " in epoch " + std::to_string(epoch + 1) +
                                            " (diverged: lower train.lr, set train.grad_clip, or check the features)"));
        continue;
      }
      m->sched->StepEpoch();
      m->opt->set_lr(m->sched->lr());
      m->stopped_early = false;
      // Per-epoch DA diagnostics (training-side means + an eval-mode pass over the unlabeled target): trainer.cc's
      // own function on the member's single model, its parameters copied from its row.
      m->da = nlohmann::json::object();
      if (m->target.size() > 0) {
        m->PullRow();
        m->da = EpochDaDiagnostics(*m->model, m->train, m->val, m->target, m->da_train, m->spec->selection,
                                   m->cfg.batch_size, torch::Device(torch::kCPU));
      }
      alive.push_back(m);
    }
    {
      std::vector<Member*> val;
      for (Member* m : alive)
        if ((epoch + 1) % m->cfg.eval_every == 0 || epoch + 1 == m->cfg.epochs) val.push_back(m);
      Validate(epoch, val);
    }
    for (Member* m : alive) {
      if (m->done) continue;  // failed in validation
      if (!m->da.empty()) {
        if (!m->rec.val_metrics.is_object()) m->rec.val_metrics = nlohmann::json::object();
        m->rec.val_metrics["da"] = m->da;
      }
      m->rec.seconds = Since(t_epoch);
      m->curve.push_back(m->rec);
      m->epochs_run = epoch + 1;
      if (m->ctx->on_epoch) m->ctx->on_epoch(m->rec);
    }
    // As the single path: the stop flag is read after the epoch's progress callbacks.
    bool preempt = false;
    for (const auto& ctx : contexts_) preempt |= ctx.stop_requested && ctx.stop_requested->load();
    std::vector<Member*> fin;
    const bool write_due = Since(last_state_write_) > 60;
    for (Member* m : alive) {
      if (m->done) continue;
      if (m->stopped_early || epoch + 1 == m->cfg.epochs) {
        // Preempted at its last epoch, the single path still saves and aborts.
        if (!m->stopped_early && preempt) {
        } else {
          fin.push_back(m);
          continue;
        }
      }
      if (preempt || write_due) {
        if (Status st = WriteState(*m, epoch + 1); !st.ok()) {
          Fail(*m, st);
          continue;
        }
      }
      if (preempt)
        Fail(*m, Status::Aborted(m->where + ": stopped on request after epoch " + std::to_string(epoch + 1) +
                                 "; state saved to " + m->state_path));
    }
    if (preempt || write_due) last_state_write_ = Clock::now();
    Finish(fin);
    if (preempt) {
      // Members resumed at a later epoch than the pack had reached keep the state they resumed from.
      for (Member* m : packed_)
        if (!m->done)
          Fail(*m, Status::Aborted(m->where + ": stopped on request before its epoch " +
                                   std::to_string(m->start_epoch + 1) + "; state kept in " + m->state_path));
      break;
    }
  }
  for (Member* m : packed_)
    if (!m->done) Fail(*m, Status::Internal(m->where + ": the pack ended without finishing this member"));
  return collect();
}

}  // namespace

bool PackedTrainerSupports(const std::vector<JobSpec>& members, const std::vector<JobContext>& contexts,
                           std::string* why) {
  auto no = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  if (members.size() < 2) return no("fewer than 2 members");
  if (contexts.size() != members.size()) return no("one context per member needed");
  for (size_t i = 0; i < members.size(); ++i) {
    const JobSpec& s = members[i];
    const JobContext& c = contexts[i];
    if (!IsMlpFamily(s)) return no("model family other than concat_mlp / unimodal_mlp");
    if (s.kind != "supervised" && s.kind != "pretrain" && s.kind != "finetune" && s.kind != "eval" && s.kind != "adapt")
      return no("job kind '" + s.kind + "'");
    if (!s.adapt.empty()) {
      const std::string v = s.adapt.value("variant", std::string());
      if (!jobs::PackableAdaptVariant(v)) return no("adaptation variant '" + v + "'");
    }
    // The DA variant and its settings (all but its weight) agree: every member adapts the same way, or none does.
    nlohmann::json a0 = members[0].adapt.is_object() ? members[0].adapt.tree() : nlohmann::json::object();
    nlohmann::json ai = s.adapt.is_object() ? s.adapt.tree() : nlohmann::json::object();
    a0.erase("weight");
    ai.erase("weight");
    if (a0 != ai) return no("members' adaptation differs (beyond its weight)");
    if (s.selection != "source_val" && s.selection != "target_val" && s.selection != "last" && s.selection != "dev" &&
        s.selection != "im" && s.selection != "snd")
      return no("selection '" + s.selection + "'");
    if (c.device != "cpu") return no("device " + c.device + " (the batched trainer runs on CPU)");
    if (c.reducer) return no("a data-parallel group");
    if (s.kind != members[0].kind) return no("members' kinds differ");
    // What shapes the batched model, the step count or the evaluation batches must agree (jobs::PackKey).
    auto cfg = ParseTrainConfig(s.train_config, "train_config");
    auto cfg0 = ParseTrainConfig(members[0].train_config, "train_config");
    if (!cfg.ok() || !cfg0.ok()) return no("bad train config");
    if (cfg->batch_size != cfg0->batch_size || cfg->epochs != cfg0->epochs || cfg->drop_last != cfg0->drop_last ||
        cfg->freeze != cfg0->freeze || cfg->threads != cfg0->threads)
      return no("members differ in batch_size, epochs, drop_last, freeze or threads");
    nlohmann::json m0 = members[0].model, mi = s.model;
    if (m0.is_object()) m0.erase("dropout");
    if (mi.is_object()) mi.erase("dropout");
    if (m0 != mi) return no("members' models differ (beyond dropout)");
  }
  return true;
}

std::vector<Result<JobResult>> RunPackedTrainer(const std::vector<JobSpec>& members,
                                                const std::vector<JobContext>& contexts) {
  PackedTrainer t(members, contexts);
  return t.Run();
}

}  // namespace emosweep::worker
