// worker/fused_optimizer.h: AdamW / Adam / SGD over one flat parameter buffer.
//
// One hand-written pass over the buffer per step (split across intra-op
// threads), numerically the update of torch::optim's AdamW, Adam (L2 decay)
// and SGD (momentum, Nesterov, no dampening), with no per-step allocation.
// The schedule sets lr and, for OneCycle, beta1/momentum between steps.
// On a CUDA buffer the same update runs as a few whole-buffer tensor operations
// (torch's multi-tensor formulation over one tensor); the host loops are CPU only.
// Thread-safety: one instance per job/thread.
#pragma once

#include <torch/torch.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "worker/flat_params.h"
#include "worker/job.h"

namespace emosweep::worker {

// Gradient clipping folded into the update: the step reads g · coef over [offset, offset + count) of the
// flat gradient (g elsewhere) instead of clipping rewriting the gradient first (ClipGradNorm's
// grads.mul_(coef)): the same float products, so the same step bitwise, one read+write pass over the
// gradient less (bench/README.md, seed_epoch_bench). grads() is left unscaled. coef 1 = no scaling.
struct GradScale {
  float coef = 1.0f;
  int64_t offset = 0, count = 0;
};

class FusedOptimizer {
 public:
  FusedOptimizer(FlatParameters* flat, const TrainConfig& config);
  // The same with its state (exp_avg and exp_avg_sq, or momentum_buffer) in tensors the caller gives, zeroed
  // here, each of the buffer's numel and device: a pack's rows, so that StepRows updates many members at once.
  struct StateViews {
    torch::Tensor exp_avg, exp_avg_sq, momentum;
  };
  FusedOptimizer(FlatParameters* flat, const TrainConfig& config, const StateViews& views);

  // One Adam/AdamW step of several optimizers at once (a pack on a GPU: one set of whole-rows kernels
  // instead of one set per member). Optimizer i's parameters are row slots[i] of `params` [K, S] (its
  // buffer is that row's first numel() values), its state the same rows of `exp_avg` / `exp_avg_sq`, and its
  // gradient row i of `grads` [m, S] (already clipped; the padding columns zero). Each uses its own lr,
  // betas, eps, weight decay and step count; the update is StepTensors' per row, with the per-member
  // scalars as [m, 1] columns (so not bitwise the per-member path: the float products round once more
  // where a scalar alpha would fuse). Every optimizer must be adam or adamw (StepRowsTakes).
  static bool StepRowsTakes(const FusedOptimizer& o) { return o.kind_ == "adam" || o.kind_ == "adamw"; }
  static void StepRows(const std::vector<FusedOptimizer*>& opts, const std::vector<int64_t>& slots,
                       torch::Tensor params, const torch::Tensor& grads, torch::Tensor exp_avg,
                       torch::Tensor exp_avg_sq);

  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  // beta1 for adam/adamw, momentum for sgd (OneCycle's momentum cycling).
  void set_momentum(double m);
  // One update; `scale`: the clipping coefficient to apply to the gradient as it is read (ClipScale).
  void Step(const GradScale& scale = {});
  // The same update reading the gradient in place, range by range (FlatParameters::GradRanges: no copy into
  // grads()); the ranges cover the buffer in order. On the tensor path the gradient is synced first.
  void Step(const std::vector<GradRange>& grads, const GradScale& scale = {});
  // Whole-buffer tensor operations instead of the host loops: chosen automatically for
  // buffers that are not in host memory; settable on CPU so that tests compare both.
  void set_tensor_path(bool on) { tensor_path_ = on; }
  // Benches (pack_bench --count-ops): every optimizer made afterwards takes the tensor path, as on a GPU.
  static void SetTensorPathEverywhereForBench(bool on);
  bool tensor_path() const { return tensor_path_; }
  int64_t steps() const { return step_; }
  // Adam/AdamW host loop on AVX-512: how many elements ahead it prefetches each array (0 = none: the
  // compiled loop; bench, tests). Bitwise the same update either way.
  static constexpr int64_t kPrefetchAhead = 512;
  void set_prefetch(int64_t elements) { prefetch_ = elements; }
  // Tests: the host loops take the buffer in pieces of at most n elements, as intra-op threads cut it, so
  // that one thread also runs pieces that start inside a gradient range (bitwise the same update).
  void set_max_piece_for_test(int64_t n) { max_piece_ = n; }

  // Checkpoint support: named state tensors plus scalars.
  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() const;
  nlohmann::json StateMeta() const;
  Status LoadState(const nlohmann::json& meta, const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

 private:
  FlatParameters* flat_;
  std::string kind_;
  double lr_, weight_decay_, beta1_, beta2_, eps_, momentum_;
  bool nesterov_;
  int64_t step_ = 0;
  bool momentum_initialised_ = false;  // torch's SGD seeds the buffer with the first gradient
  bool tensor_path_ = false;
  int64_t max_piece_ = std::numeric_limits<int64_t>::max();
  int64_t prefetch_ = kPrefetchAhead;
  torch::Tensor exp_avg_, exp_avg_sq_, momentum_buf_;

  void StepHost(const std::vector<GradRange>& grads, const GradScale& scale);
  void StepTensors(const GradScale& scale);
};

// The Adam/AdamW update of Step() as a plain scalar loop (no vectorisation, no fused multiply-add): what
// every compiled variant of Step's loop must equal bitwise (tests).
void AdamReferenceStep(float* p, const float* g, float* m, float* v, int64_t n, float b1, float one_b1, float b2,
                       float one_b2, float sqrt_bc2, float eps, float step_size, float decay, float wd, bool decoupled);

// Global L2 norm clipping on the flat gradient (torch::nn::utils::clip_grad_norm_
// semantics: scale by max_norm / (norm + 1e-6) when that is < 1). Returns the norm.
double ClipGradNorm(torch::Tensor& grads, double max_norm);
// The same clipping of grads[offset, offset + count) as a GradScale for Step(), leaving the gradient as it
// is: the norm is computed exactly as ClipGradNorm computes it over that slice (stored in *norm if given),
// coef = max_norm / (norm + 1e-6) rounded to float when < 1, else 1.
GradScale ClipScale(const torch::Tensor& grads, int64_t offset, int64_t count, double max_norm,
                    double* norm = nullptr);
// The same for a norm already computed (torch's over that slice).
GradScale ClipScaleForNorm(double norm, int64_t offset, int64_t count, double max_norm);

}  // namespace emosweep::worker
