// worker/flat_params.h: every trainable parameter and its gradient as views into
// one contiguous buffer each.
//
// Why: the data-parallel reducer allreduces one flat gradient buffer in
// buckets (not one call per tensor), and the fused optimizer steps the whole
// buffer in one pass instead of ~100 small per-tensor kernels (the optimizer
// step was half of each step in the seeds' multimodal-ser code). Per step each
// gradient is taken as autograd computed it and copied into the buffer once
// (ZeroGrad/SyncGrads below), except the weights of models::SlotLinear layers
// (models/slot_linear.h), whose backward writes the gradient into the buffer
// itself (Build binds them). Parameters that get no gradient on a
// step see a zero gradient (weight decay and moment decay still apply), unlike
// PyTorch's set_to_none, which skips them (docs/trainer.md).
// Thread-safety: one instance per job/thread.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace emosweep::worker {

// [offset, offset + count) of the flat layout and where its gradient lies (FlatParameters::GradRanges).
struct GradRange {
  int64_t offset = 0, count = 0;
  const float* data = nullptr;
};

class FlatParameters {
 public:
  FlatParameters() = default;
  // Rebinds the parameters of `module` whose name starts with no prefix in
  // `freeze` (those are set requires_grad=false and left alone).
  static Result<FlatParameters> Build(torch::nn::Module& module, const std::vector<std::string>& freeze);
  // Over existing 1-D buffers (no module): the packed trainer's per-member rows (worker/packed_trainer.h),
  // so that the fused optimizer and the clipping step one member exactly as they step a single job.
  static FlatParameters OverBuffers(torch::Tensor params, torch::Tensor grads) {
    FlatParameters f;
    f.params_ = std::move(params);
    f.grads_ = std::move(grads);
    return f;
  }

  torch::Tensor& params() { return params_; }
  torch::Tensor& grads() { return grads_; }
  int64_t numel() const { return params_.defined() ? params_.numel() : 0; }
  size_t num_tensors() const { return tensors_.size(); }
  const std::vector<std::string>& names() const { return names_; }

  // The [offset, offset + count) span of the flat buffer held by the parameters whose name starts with `prefix`
  // (a module's parameters are contiguous: registration order). count 0 when there is none.
  std::pair<int64_t, int64_t> Span(const std::string& prefix) const;

  // Starts a step's gradient: every .grad is reset (undefined), so that autograd's AccumulateGrad takes the
  // fresh gradient tensor as is instead of adding it into a zeroed buffer (a memset plus a read-add-write
  // pass over every gradient: on the 10 M-parameter seed models the buffer passes bound the step,
  // bench/README.md). The buffer is NOT zeroed here: call SyncGrads() after backward and before reading
  // grads(); it copies each gradient in and zeroes the slices of parameters that got none, so the buffer
  // then holds exactly what zeroing and accumulating gave.
  void ZeroGrad();
  // Makes sure every .grad is still a view of grads_ (something may have set
  // it to undefined or replaced it); copies stray gradients back. Cheap: one
  // pointer comparison per tensor.
  void SyncGrads();
  // Instead of SyncGrads, for a step whose only reader of the gradient is the optimizer's update (one
  // process: no allreduce; no clipping, whose norm is torch's over the flat buffer): one range per
  // parameter, in buffer order, pointing at the .grad autograd produced when it is a contiguous float
  // tensor in host memory (no copy), else at the parameter's slice of grads() with the gradient copied in,
  // or zeroed when there is none. The values are bitwise what SyncGrads would put in the buffer; grads()
  // itself is not up to date afterwards (SyncGrads makes it so). Valid until the next backward/ZeroGrad.
  const std::vector<GradRange>& GradRanges();

 private:
  torch::Tensor params_, grads_;
  std::vector<torch::Tensor> tensors_;  // the parameters (sharing params_)
  std::vector<torch::Tensor> grad_views_;
  std::vector<std::string> names_;
  std::vector<GradRange> ranges_;
};

}  // namespace emosweep::worker
