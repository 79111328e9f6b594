// worker/trainer_epoch.cc: one training epoch of a job (job_trainer_internal.h), domain adaptation included,
// and the collectives of its group (host floats, BatchNorm buffers).
#include "worker/job_trainer_internal.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "worker/da_selection.h"
#include "worker/trainer_internal.h"

namespace emosweep::worker::internal {

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
  if (rank > 0) {
    // Dropout draws of a data-parallel group's other ranks: a stream of their own per rank and epoch (rank 0 keeps
    // the job's one stream, as a world of one draws). With one stream for all, row i of every equal-sized shard got
    // the same mask (helper-59). Per epoch, so that a resumed run (which restores the leader's generator) draws as
    // an uninterrupted one. Only dropout draws from this generator while training.
    torch::manual_seed(DeriveSeed(DeriveSeed(spec_.seed, kTorchSeed) + 1,
                                  static_cast<uint64_t>(rank) << 32 | static_cast<uint32_t>(epoch)));
  }
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
    return DivergedError(where_, *train_loss, epoch);
  return Status::Ok();
}

}  // namespace emosweep::worker::internal
