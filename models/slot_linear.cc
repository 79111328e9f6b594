// models/slot_linear.cc: Linear with its weight gradient written into a slot (see slot_linear.h).
#include "models/slot_linear.h"

#include <ATen/ExpandUtils.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

namespace emosweep::models {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// The backward of y = x·W^T + b (b optional) for a 2-D x: torch's AddmmBackward0 (MmBackward0 without a
// bias) followed by TBackward0 on W^T, in one node. Inputs in next-edge order: x, W, b.
struct SlotLinearBackward : public torch::autograd::Node {
  SavedVariable x_, w_;
  bool x_column_major_ = false;  // x's strides as torch's mm_mat1_backward tests them
  bool has_bias_ = false;
  std::vector<int64_t> bias_sizes_;
  std::shared_ptr<GradSlot> state_;

  std::string name() const override { return "SlotLinearBackward"; }
  void release_variables() override {
    x_.reset_data();
    w_.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    const torch::Tensor& dy = grads[0];
    variable_list out(has_bias_ ? 3 : 2);
    if (!dy.defined()) return out;
    if (task_should_compute_output(0)) {
      // mm_mat1_backward(grad, mat2 = W^T, ...): mat2.t() is W (W's sizes and strides).
      const torch::Tensor w = w_.unpack(shared_from_this());
      out[0] = x_column_major_ ? w.t().mm(dy.t()).t() : dy.mm(w);
    }
    if (task_should_compute_output(1)) {
      // mm_mat2_backward for the column-major mat2 = W^T: (dY^T·X)^T; TBackward0 transposes it back to dY^T·X.
      const torch::Tensor x = x_.unpack();
      const torch::Tensor w = w_.unpack(shared_from_this());
      torch::Tensor& slot = state_->slot;
      if (slot.defined() && !state_->claimed && !w.grad().defined()) {
        state_->claimed = true;
        at::mm_out(slot, dy.t(), x);
        out[1] = slot.alias();  // one reference: AccumulateGrad makes it the .grad without a copy
      } else {
        out[1] = dy.t().mm(x);
      }
    }
    if (has_bias_ && task_should_compute_output(2)) out[2] = at::sum_to(dy, bias_sizes_);
    return out;
  }
};

}  // namespace

torch::Tensor SlotLinearImpl::forward(const torch::Tensor& input) {
  const bool plain = input.dim() != 2 || input.layout() != torch::kStrided || !weight.is_contiguous() ||
                     !torch::GradMode::is_enabled() || !weight.requires_grad();
  if (plain) return torch::nn::LinearImpl::forward(input);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;  // the product itself, without torch's nodes (ours is set below)
    y = torch::nn::LinearImpl::forward(input);
  }
  auto node = std::shared_ptr<SlotLinearBackward>(new SlotLinearBackward(), torch::autograd::deleteNode);
  node->has_bias_ = bias.defined();
  if (node->has_bias_) {
    node->set_next_edges(torch::autograd::collect_next_edges(input, weight, bias));
    node->bias_sizes_ = bias.sizes().vec();
  } else {
    node->set_next_edges(torch::autograd::collect_next_edges(input, weight));
  }
  node->x_column_major_ = input.stride(0) == 1 && input.stride(1) == input.size(0);
  // Saved only for the products that need them (dW needs x, dX needs W), as torch saves mat1/mat2.
  node->x_ = SavedVariable(input, false);
  node->w_ = SavedVariable(weight, false);
  node->state_ = state_;
  state_->claimed = false;
  torch::autograd::set_history(y, node);
  return y;
}

void SlotLinearImpl::set_weight_grad_slot(torch::Tensor slot) {
  const bool fits = slot.defined() && slot.sizes() == weight.sizes() && slot.scalar_type() == weight.scalar_type() &&
                    slot.device() == weight.device() && slot.is_contiguous();
  state_->slot = fits ? std::move(slot) : torch::Tensor();
  state_->claimed = false;
}

void BindWeightGradSlots(torch::nn::Module& module, const std::vector<torch::Tensor>& weights,
                         const std::vector<torch::Tensor>& slots) {
  // apply(Module&) visits `module` itself without needing it in a shared_ptr (modules(true) would).
  module.apply([&](torch::nn::Module& m) {
    auto* lin = dynamic_cast<SlotLinearImpl*>(&m);
    if (!lin) return;
    torch::Tensor slot;
    for (size_t i = 0; i < weights.size() && i < slots.size(); ++i)
      if (weights[i].unsafeGetTensorImpl() == lin->weight.unsafeGetTensorImpl()) slot = slots[i];
    lin->set_weight_grad_slot(slot);
  });
}

}  // namespace emosweep::models
