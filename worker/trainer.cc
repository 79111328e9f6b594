// worker/trainer.cc: RunJob: data → model → train/validate/select → evaluate.
// The loop is described step by step in docs/trainer.md.
#include "worker/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>

#include "cluster/reducer.h"
#include "core/files.h"
#include "core/log.h"
#include "models/da_losses.h"
#include "models/model.h"
#include "worker/checkpoint.h"
#include "worker/da_selection.h"
#include "worker/dataset.h"
#include "worker/evaluate.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"
#include "worker/job.h"
#include "worker/trainer_internal.h"
#include "worker/trainer_state.h"

namespace emosweep::worker {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

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

namespace {

double MetricValue(const EvalOutput& e, const std::string& metric) {
  return metric == "loss" ? e.loss : e.metrics.Get(metric);
}

// A job's modules under one root so that parameters, buffers and the flat
// buffer cover the model and the domain discriminator alike.
struct JobModules {
  models::ModelPtr model;
  std::shared_ptr<models::DomainAdapter> adapter;
  std::shared_ptr<torch::nn::Module> root;
};

class Trainer {
 public:
  Trainer(const JobSpec& spec, const JobContext& ctx) : spec_(spec), ctx_(ctx) {}
  Result<JobResult> Run();

 private:
  Status LoadData();
  Status BuildModel();
  Status NormalizeInputs();
  Status CheckBatchNormBatches(int64_t n) const;
  Status SyncBuffers();
  Status MaybeResume();
  // Collectives on a few host floats (loss sums, stop votes): staged through device memory when the
  // group trains on CUDA (the NCCL reducer reads device pointers only).
  Status HostCollective(float* v, size_t n, bool broadcast);  // sum over the group, or rank 0's values
  Status HostAllreduceSum(float* v, size_t n) { return HostCollective(v, n, false); }
  Status HostBroadcast(float* v, size_t n) { return HostCollective(v, n, true); }
  Status WriteState(int next_epoch);
  Status TrainEpoch(int epoch, double* train_loss);
  Result<bool> ValidateEpoch(int epoch, const nlohmann::json& da, EpochRecord* rec);  // returns "stop early"
  void Snapshot();
  void RestoreBest();
  models::LossContext LossCtx(int epoch) const;

  const JobSpec& spec_;
  const JobContext& ctx_;
  std::string id_, where_;
  TrainConfig cfg_;
  torch::Device device_{torch::kCPU};
  cluster::GradientReducer* reducer_ = nullptr;
  std::unique_ptr<cluster::GradientReducer> local_reducer_;
  int num_classes_ = 0;

  Split train_, val_, target_;
  std::map<std::string, Split> evals_;
  ModalityStats train_norm_;  // feature_norm = train: the statistics applied (saved with the model)
  JobModules m_;
  std::unique_ptr<FlatParameters> flat_;
  std::unique_ptr<FusedOptimizer> opt_;
  std::unique_ptr<Schedule> sched_;
  torch::Tensor class_weights_;
  std::unique_ptr<IndexShuffler> shuffle_, target_shuffle_;
  std::vector<int64_t> target_order_;
  int64_t target_cursor_ = 0;
  std::vector<int64_t> target_idx_;  // the current global batch's target rows
  std::map<std::string, torch::Tensor> batch_bufs_;
  torch::Tensor label_buf_;

  int64_t step_ = 0;
  int64_t steps_per_epoch_ = 0;
  int start_epoch_ = 0;
  // The last epoch's training-side DA means (λ, DA loss, discriminator accuracy) and the run's largest λ.
  nlohmann::json da_train_ = nlohmann::json::object();
  double da_lambda_seen_ = 0;
  EarlyStopState es_;
  torch::Tensor best_params_;
  std::vector<double> class_weights_cpu_;  // the class weights for host-side batch sums
  std::vector<torch::Tensor> best_buffers_;
  std::vector<EpochRecord> curve_;
  std::string state_path_;
  Clock::time_point last_state_write_ = Clock::now();
};

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
  return Status::Ok();
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
    if (target_.size() == 0) return Status::InvalidArgument(where_ + ": adaptation needs target_unlabeled data");
  }
  if (!spec_.init_from.empty()) ES_RETURN_IF_ERROR(LoadInitFrom(spec_, ctx_, where_, *m_.model, &train_norm_));
  m_.root->to(device_);
  std::vector<std::string> freeze;
  for (const auto& f : cfg_.freeze) freeze.push_back("model." + f);
  ES_ASSIGN_OR_RETURN(FlatParameters flat, FlatParameters::Build(*m_.root, freeze));
  flat_ = std::make_unique<FlatParameters>(std::move(flat));
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
// channel when training"), which a job meets only at its last batch, possibly hours in. Said up front instead,
// with the fix. A rank's shard of the global batch counts.
Status Trainer::CheckBatchNormBatches(int64_t n) const {
  if (n == 0 || m_.model->transductive()) return Status::Ok();
  bool has_bn = false;
  for (const auto& mod : m_.root->modules(/*include_self=*/false))
    has_bn |= mod->name().find("BatchNorm") != std::string::npos;
  if (!has_bn) return Status::Ok();
  const int64_t bs = cfg_.batch_size, world = reducer_->size();
  std::vector<int64_t> lens;
  if (n >= bs) lens.push_back(bs);
  if (!cfg_.drop_last && n % bs != 0) lens.push_back(n % bs);
  for (int64_t len : lens) {
    // Shards hold floor(len/world) or ceil(len/world) rows: one of them is a single row when the floor is 1,
    // or when there are fewer rows than ranks (some ranks then get none, others one).
    if (len / world != 1 && !(len > 0 && len < world)) continue;
    std::string msg = where_ + ": model '" + spec_.model.value("name", std::string()) +
                      "' has BatchNorm layers, which cannot train on one row, and a training batch of " +
                      std::to_string(len) + " row(s) (" + std::to_string(n) + " rows, batch_size " +
                      std::to_string(bs) + (cfg_.drop_last ? ", drop_last" : "") + ")";
    msg += world == 1 ? " has 1 row: set drop_last = true or another batch_size"
                      : " over " + std::to_string(world) +
                            " ranks gives a rank 1 row: set drop_last = true, another batch_size or fewer ranks";
    return Status::InvalidArgument(msg);
  }
  return Status::Ok();
}

Status Trainer::WriteState(int next_epoch) {
  // The group's ranks hold the same state: its rank 0 (the leader) writes it once.
  if (state_path_.empty() || reducer_->rank() != 0) return Status::Ok();
  Checkpoint c;
  AddModuleState(c, *m_.root, "");
  for (auto& [n, t] : opt_->StateTensors()) c.Add(n, t);
  if (best_params_.defined()) {
    c.Add("best.params", best_params_);
    for (size_t i = 0; i < best_buffers_.size(); ++i) c.Add("best.buffer." + std::to_string(i), best_buffers_[i]);
  }
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    c.Add("rng.torch", gen.get_state());
  }
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& r : curve_) curve.push_back(EpochRecordToJson(r));
  c.meta = {{"job_id", id_},
            {"next_epoch", next_epoch},
            {"step", step_},
            {"optimizer", opt_->StateMeta()},
            {"schedule", sched_->State()},
            {"early_stop", es_.ToJson()},
            {"shuffle_rng", shuffle_->State()},
            {"target_rng", target_shuffle_->State()},
            {"target_order", target_order_},
            {"target_cursor", target_cursor_},
            {"curve", curve}};
  ES_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(state_path_).parent_path().string()));
  ES_RETURN_IF_ERROR(WriteCheckpoint(state_path_, c));
  last_state_write_ = Clock::now();
  return Status::Ok();
}

Status Trainer::MaybeResume() {
  if (state_path_.empty() || !FileExists(state_path_)) return Status::Ok();
  ES_ASSIGN_OR_RETURN(Checkpoint c, ReadCheckpoint(state_path_));
  const auto& meta = c.meta;
  if (meta.value("job_id", "") != id_)
    return Status::Corruption(state_path_ + ": checkpoint belongs to job " + meta.value("job_id", std::string("?")));
  ES_RETURN_IF_ERROR(LoadModuleState(c, *m_.root, "", /*strict=*/true, state_path_));
  std::vector<std::pair<std::string, torch::Tensor>> opt_state;
  for (const auto& [n, t] : c.tensors)
    if (n.rfind("optimizer.", 0) == 0) opt_state.emplace_back(n, t);
  ES_RETURN_IF_ERROR(opt_->LoadState(meta["optimizer"], opt_state).WithContext(state_path_));
  ES_RETURN_IF_ERROR(sched_->LoadState(meta["schedule"]).WithContext(state_path_));
  if (const torch::Tensor* b = c.Find("best.params")) {
    best_params_ = b->to(device_);
    best_buffers_.clear();
    for (size_t i = 0;; ++i) {
      const torch::Tensor* t = c.Find("best.buffer." + std::to_string(i));
      if (!t) break;
      best_buffers_.push_back(t->to(device_));
    }
  }
  const torch::Tensor* rng = c.Find("rng.torch");
  if (!rng) return Status::Corruption(state_path_ + ": checkpoint lacks the torch RNG state");
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle sharing the default generator
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(*rng);
  }
  if (!shuffle_->LoadState(meta["shuffle_rng"]) || !target_shuffle_->LoadState(meta["target_rng"]))
    return Status::Corruption(state_path_ + ": bad RNG state");
  target_order_ = meta["target_order"].get<std::vector<int64_t>>();
  target_cursor_ = meta["target_cursor"];
  es_ = EarlyStopState::FromJson(meta["early_stop"]);
  step_ = meta["step"];
  start_epoch_ = meta["next_epoch"];
  curve_.clear();
  for (const auto& r : meta["curve"]) curve_.push_back(EpochRecordFromJson(r));
  opt_->set_lr(sched_->lr());
  if (sched_->cycles_momentum()) opt_->set_momentum(sched_->momentum());
  LOG_INFO << where_ << ": resuming at epoch " << start_epoch_ << " from " << state_path_;
  return Status::Ok();
}

Status Trainer::HostCollective(float* v, size_t n, bool broadcast) {
  auto run = [&](float* d) { return broadcast ? reducer_->Broadcast(d, n, 0) : reducer_->AllreduceSum(d, n); };
  if (device_.is_cpu() || reducer_->size() == 1) return run(v);
  torch::Tensor t = torch::from_blob(v, {static_cast<int64_t>(n)}, torch::kFloat).to(device_);
  ES_RETURN_IF_ERROR(run(t.data_ptr<float>()));
  torch::Tensor h = t.cpu();
  std::copy(h.data_ptr<float>(), h.data_ptr<float>() + n, v);
  return Status::Ok();
}

// Data parallel: BatchNorm running statistics are updated by each rank from its own shards; before anything is
// evaluated the group takes rank 0's (what PyTorch DDP's default broadcast_buffers does at every forward), so
// that every rank validates, early-stops and snapshots the same model. A no-op in a world of one.
Status Trainer::SyncBuffers() {
  if (reducer_->size() == 1) return Status::Ok();
  torch::NoGradGuard g;
  for (auto& b : m_.root->buffers(/*recurse=*/true)) {
    if (!b.defined() || b.numel() == 0 || b.scalar_type() != torch::kFloat || !b.is_contiguous()) continue;
    ES_RETURN_IF_ERROR(reducer_->Broadcast(b.data_ptr<float>(), static_cast<size_t>(b.numel()), 0));
  }
  return Status::Ok();
}

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

Status Trainer::TrainEpoch(int epoch, double* train_loss) {
  const bool faithful_eval = m_.model->faithful_eval_mode_bug();
  // The seed's CemoBAM/HemoGAT call train() once before the loop and eval()
  // for validation, so from the second epoch on they train in eval mode.
  if (epoch == 0 || !faithful_eval)
    m_.root->train();
  else
    m_.root->eval();
  const int64_t n = train_.size();
  const int world = reducer_->size(), rank = reducer_->rank();
  const bool transductive = m_.model->transductive();
  std::vector<int64_t> order;
  if (cfg_.balanced_sampling && !transductive) {
    std::vector<int64_t> labels(train_.labels.data_ptr<int64_t>(), train_.labels.data_ptr<int64_t>() + n);
    order = shuffle_->BalancedSample(labels, num_classes_, n);
  } else {
    order.resize(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    if (!transductive) shuffle_->Shuffle(order);
  }
  const int64_t bs = transductive ? n : cfg_.batch_size;
  int64_t batches = transductive ? 1 : (cfg_.drop_last ? n / bs : (n + bs - 1) / bs);
  double loss_sum = 0, count = 0;
  torch::Tensor loss_acc = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device_));
  // Σ n·da, Σ n·disc_acc, Σ n·λ over this rank's rows (DA diagnostics; one host copy per epoch).
  torch::Tensor da_acc = torch::zeros({3}, torch::TensorOptions().dtype(torch::kDouble).device(device_));
  double lambda_last = 0;
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t lo = b * bs, len = std::min(bs, n - lo);
    // This rank's share of the global batch (transductive: every rank runs the whole graph).
    const int64_t s0 = transductive ? lo : lo + rank * len / world;
    const int64_t s1 = transductive ? lo + len : lo + (rank + 1) * len / world;
    const int64_t n_local = s1 - s0;
    // Adaptation: every rank draws the global batch's target rows (also a rank
    // with no rows of this batch), so that the target cursor and shuffle stay
    // identical across the group; each rank then takes the shard matching its
    // source rows, as a world of one would see them (docs/design/distributed.md).
    if (m_.adapter)
      DrawTargetRows(*target_shuffle_, target_.size(), transductive ? target_.size() : len, !transductive,
                     &target_order_, &target_cursor_, &target_idx_);
    flat_->ZeroGrad();
    if (n_local > 0) {
      models::Batch batch;
      torch::Tensor idx = torch::from_blob(order.data() + s0, {n_local}, torch::kLong);
      for (const auto& [mod, t] : train_.inputs) {
        torch::Tensor& buf = batch_bufs_[mod];
        if (!buf.defined()) buf = torch::empty({bs, t.size(1)}, t.options());
        buf.resize_({n_local, t.size(1)});
        at::index_select_out(buf, t, 0, idx);
        batch.inputs[mod] = buf.to(device_);
      }
      if (!label_buf_.defined()) label_buf_ = torch::empty({bs}, torch::kLong);
      label_buf_.resize_({n_local});
      at::index_select_out(label_buf_, train_.labels, 0, idx);
      batch.labels = label_buf_.to(device_);
      models::LossContext lctx = LossCtx(epoch);
      if (world > 1 && !transductive && class_weights_.defined()) {
        // Class-weighted CE over a sharded batch: normalise by the global batch's mean weight, so that the
        // n_r-scaled shards average to the weighted mean of the whole batch (exact, as one rank computes).
        const int64_t* lab = train_.labels.data_ptr<int64_t>();
        double wsum = 0;
        for (int64_t i = lo; i < lo + len; ++i) wsum += class_weights_cpu_[static_cast<size_t>(lab[order[i]])];
        lctx.class_weight_mean = wsum / static_cast<double>(len);
      }
      models::ModelOutput out = m_.model->Forward(batch);
      models::LossTerms terms = m_.model->Loss(out, batch, lctx);
      torch::Tensor total = terms.total;
      if (m_.adapter) {
        // Target batch of the same size, cycling through target_unlabeled (seed §4.6): this rank's shard.
        const int64_t t0 = transductive ? 0 : s0 - lo;
        const int64_t t_count = transductive ? target_.size() : n_local;
        models::Batch tb;
        torch::Tensor ti = torch::from_blob(target_idx_.data() + t0, {t_count}, torch::kLong);
        for (const auto& [mod, t] : target_.inputs) tb.inputs[mod] = t.index_select(0, ti).to(device_);
        torch::Tensor ft;
        if (m_.adapter->needs_target_grad()) {
          ft = m_.model->Forward(tb).features;
        } else {
          torch::NoGradGuard ng;
          ft = m_.model->Forward(tb).features;
        }
        models::LossTerms da = m_.adapter->Loss(out.features, ft, lctx);
        total = total + da.total;
        {
          torch::NoGradGuard ng;
          const double nl = static_cast<double>(n_local);
          da_acc[0] += da.parts.at("da").detach().to(torch::kDouble) * nl;
          if (da.parts.count("disc_acc")) da_acc[1] += da.parts.at("disc_acc").to(torch::kDouble) * nl;
          lambda_last = m_.adapter->last_lambda();
          da_acc[2] += lambda_last * nl;
          da_lambda_seen_ = std::max(da_lambda_seen_, lambda_last);
        }
      }
      total.backward();
      loss_acc += total.detach().to(torch::kDouble) * static_cast<double>(n_local);
      count += static_cast<double>(n_local);
    }
    if (world == 1 && cfg_.grad_clip <= 0 && !opt_->tensor_path()) {
      // One process, no clipping: nothing but the update reads the gradient, which then reads each
      // parameter's .grad in place instead of a copy in the flat buffer (bitwise the same step). A clipping
      // job keeps the copy: its norm is torch's over the flat buffer, and a lane-by-lane reproduction of
      // it over the .grads (tried) was not bitwise in every case.
      opt_->Step(flat_->GradRanges());
    } else {
      flat_->SyncGrads();
      // Mean over the global batch = Σ_r n_r g_r / Σ_r n_r: scale each rank's
      // per-sample-mean gradient by n_r·W/len before the allreduce-mean.
      if (!transductive && n_local * world != len) flat_->grads().mul_(static_cast<double>(n_local * world) / len);
      ES_RETURN_IF_ERROR(reducer_->AllreduceMean(flat_->grads().data_ptr<float>(), flat_->numel()));
      GradScale clip;
      if (cfg_.grad_clip > 0) {
        // The model's parameters only, as the seed (clip_grad_norm_(model.parameters())): a domain
        // discriminator's gradients neither count towards the norm nor get scaled. The step applies the
        // coefficient as it reads the gradient (bitwise ClipGradNorm + Step, one pass over it less).
        const auto [off, n] = flat_->Span("model.");
        clip = ClipScale(flat_->grads(), off, n, cfg_.grad_clip);
      }
      opt_->Step(clip);
    }
    ++step_;
    sched_->StepBatch();
    opt_->set_lr(sched_->lr());
    if (sched_->cycles_momentum()) opt_->set_momentum(sched_->momentum());
  }
  loss_sum = loss_acc.item<double>();
  torch::Tensor da_host = da_acc.cpu();
  float sums[5] = {static_cast<float>(loss_sum), static_cast<float>(count), 0, 0, 0};
  for (int k = 0; k < 3; ++k) sums[2 + k] = static_cast<float>(da_host[k].item<double>());
  ES_RETURN_IF_ERROR(HostAllreduceSum(sums, m_.adapter ? 5 : 2));
  *train_loss = sums[1] > 0 ? sums[0] / sums[1] : std::nan("");
  if (m_.adapter && sums[1] > 0)
    da_train_ = DaTrainingMeans(sums[2] / sums[1], sums[3] / sums[1], sums[4] / sums[1], lambda_last,
                                m_.adapter->weight(), m_.adapter->lambda_max() > 0);
  // A diverged job (NaN/Inf loss) would go on to record chance-level numbers:
  // it fails instead (every rank sees the same reduced sum).
  if (sums[1] > 0 && !std::isfinite(*train_loss))
    return Status::FailedPrecondition(where_ + ": training loss became " + (std::isnan(*train_loss) ? "NaN" : "infinite") +
                                      " in epoch " + std::to_string(epoch + 1) +
                                      " (diverged: lower train.lr, set train.grad_clip, or check the features)");
  return Status::Ok();
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

Result<JobResult> Trainer::Run() {
  const auto t_start = Clock::now();
  id_ = spec_.id.empty() ? spec_.ComputeId() : spec_.id;
  where_ = "job " + id_.substr(0, 12);
  ES_ASSIGN_OR_RETURN(cfg_, ParseTrainConfig(spec_.train_config, where_ + " train_config"));
  num_classes_ = static_cast<int>(spec_.labels.size());
  if (num_classes_ < 2) return Status::InvalidArgument(where_ + ": a job needs at least two labels");
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
  ES_RETURN_IF_ERROR(CheckBatchNormBatches(n));
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
                                        " is not visible to every rank; the group needs a shared work directory)");
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
    r.metrics["loss"] = e.loss;
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
  if (reducer_->rank() == 0 && !state_path_.empty() && FileExists(state_path_)) std::filesystem::remove(state_path_);
  int64_t params = 0, trainable = flat_->numel();
  for (const auto& p : m_.root->parameters()) params += p.numel();
  result.info = {{"parameters", params},
                 {"trainable_parameters", trainable},
                 {"threads", threads},
                 {"device", ctx_.device},
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
    for (const auto& w : warnings) LOG_WARN << where_ << ": " << w["message"].get<std::string>();
  }
  return result;
}

}  // namespace

std::string JobStatePath(const std::string& work_dir, const std::string& job_id) {
  return work_dir + "/" + job_id + "/state.ckpt";
}
std::string JobModelPath(const std::string& work_dir, const std::string& job_id) {
  return work_dir + "/" + job_id + "/model.ckpt";
}

Result<JobResult> RunJobUnguarded(const JobSpec& spec, const JobContext& context) {
  Trainer t(spec, context);
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
