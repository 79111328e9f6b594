// models/layers.h: small building blocks shared by the fusion models (libtorch).
//
// LengthOneAttention is nn.MultiheadAttention specialised to the seeds' case of
// one query and one key (seed-methods.md §0.4): softmax over one key is 1, so
// the output is out_proj(W_v·kv + b_v) (Q/K projections cannot influence it and
// are not allocated). Attention-weight dropout is kept: PyTorch drops the single
// weight per head, which zeroes that head's value in training mode.
// Thread-safety: modules belong to one model instance (one thread).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "models/slot_linear.h"

namespace emosweep::models {

class LengthOneAttentionImpl : public torch::nn::Module {
 public:
  // `pytorch_init`: W_v as the value slice of PyTorch's packed in_proj (Xavier over
  // [3d, d]), out_proj with PyTorch's Linear init; both biases 0.
  LengthOneAttentionImpl(int64_t dim, int64_t heads, double dropout);
  torch::Tensor forward(const torch::Tensor& kv);  // [B, d] -> [B, d]
  SlotLinear v_proj{nullptr}, out_proj{nullptr};  // weight gradients into the flat buffer (slot_linear.h)

 private:
  int64_t heads_;
  double dropout_;
};
TORCH_MODULE(LengthOneAttention);

// Linear -> ReLU -> Dropout per hidden size (no activation after the last hidden);
// returns the hidden stack only; callers add their own output layer. On a GPU its dropout draws from the
// counter-based stream (models/counter_dropout.h), as the pack's batched MLP does.
torch::nn::Sequential MlpStack(int64_t in_dim, const std::vector<int64_t>& hidden, double dropout);

// Xavier-uniform weights and zero biases on every Linear below `m` (multimodal-ser
// init). `keep_mha_in_proj`: leave LengthOneAttention's v_proj alone (nn.MultiheadAttention's
// packed in_proj is not an nn.Linear, so the seed's init loop never touches it).
void XavierLinears(torch::nn::Module& m, bool keep_mha_in_proj);

// Concatenation order used by every model that concatenates modalities.
std::vector<std::string> ModalityOrder(const std::map<std::string, int64_t>& dims);

}  // namespace emosweep::models
