#include "models/layers.h"

#include <cmath>

#include "models/dropout.h"

namespace emosweep::models {

LengthOneAttentionImpl::LengthOneAttentionImpl(int64_t dim, int64_t heads, double dropout)
    : heads_(heads), dropout_(dropout) {
  TORCH_CHECK(heads > 0 && dim % heads == 0, "attention dim ", dim, " not divisible by heads ", heads);
  v_proj = register_module("v_proj", SlotLinear(dim, dim));
  out_proj = register_module("out_proj", SlotLinear(dim, dim));
  torch::NoGradGuard g;
  // PyTorch MHA: xavier_uniform_ on the packed [3d, d] in_proj_weight, zero biases.
  const double bound = std::sqrt(6.0 / static_cast<double>(dim + 3 * dim));
  v_proj->weight.uniform_(-bound, bound);
  v_proj->bias.zero_();
  out_proj->bias.zero_();
}

torch::Tensor LengthOneAttentionImpl::forward(const torch::Tensor& kv) {
  torch::Tensor v = v_proj(kv);
  if (is_training() && dropout_ > 0) {
    // The single attention weight per (sample, head) is 1; dropout keeps it at
    // 1/(1-p) or drops it to 0, exactly like PyTorch's attention dropout.
    const int64_t b = v.size(0);
    auto w = ApplyDropout(torch::ones({b, heads_, 1}, v.options()), dropout_, /*train=*/true);
    v = (v.view({b, heads_, -1}) * w).view({b, -1});
  }
  return out_proj(v);
}

torch::nn::Sequential MlpStack(int64_t in_dim, const std::vector<int64_t>& hidden, double dropout) {
  torch::nn::Sequential s;
  int64_t d = in_dim;
  for (int64_t h : hidden) {
    s->push_back(torch::nn::Linear(d, h));
    s->push_back(torch::nn::ReLU());
    FastDropout drop(dropout);
    drop->counter_on_device = true;  // the packable family: its masks from the counter stream on a GPU
    s->push_back(drop);
    d = h;
  }
  return s;
}

void XavierLinears(torch::nn::Module& m, bool keep_mha_in_proj) {
  torch::NoGradGuard g;
  for (auto& item : m.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {  // callable from a constructor
    const std::string& name = item.key();
    if (keep_mha_in_proj && name.size() >= 6 && name.compare(name.size() - 6, 6, "v_proj") == 0) continue;
    if (auto* lin = item.value()->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_uniform_(lin->weight);
      if (lin->bias.defined()) lin->bias.zero_();
    }
  }
}

std::vector<std::string> ModalityOrder(const std::map<std::string, int64_t>& dims) {
  // Seeds concatenate text before audio; video (MER) comes between audio and text.
  static const char* kOrder[] = {"text", "audio", "video"};
  std::vector<std::string> out;
  for (const char* m : kOrder)
    if (dims.count(m)) out.push_back(m);
  for (const auto& [m, d] : dims) {
    (void)d;
    bool known = false;
    for (const char* k : kOrder) known |= (m == k);
    if (!known) out.push_back(m);
  }
  return out;
}

}  // namespace emosweep::models
