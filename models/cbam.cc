#include "models/cbam.h"

namespace emosweep::models {

Cbam1dImpl::Cbam1dImpl(int64_t dim, int64_t reduction, int64_t kernel, bool faithful) : faithful_(faithful) {
  const int64_t hidden = std::max<int64_t>(1, dim / reduction);
  fc1_ = register_module("fc1", torch::nn::Linear(torch::nn::LinearOptions(dim, hidden).bias(false)));
  fc2_ = register_module("fc2", torch::nn::Linear(torch::nn::LinearOptions(hidden, dim).bias(false)));
  conv_ = register_module(
      "conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(2, 1, kernel).padding(kernel / 2).bias(false)));
}

torch::Tensor Cbam1dImpl::forward(const torch::Tensor& x) {
  auto mlp = fc2_(torch::relu(fc1_(x)));
  torch::Tensor y;
  if (faithful_) {
    y = x * (2.0 * torch::sigmoid(mlp));
    auto s = torch::sigmoid(conv_(torch::stack({y, y}, 1)));  // [B, 2, d] -> [B, 1, d]
    return y * s.squeeze(1);
  }
  y = x * torch::sigmoid(2.0 * mlp);
  auto pooled = torch::stack({y.mean(1), std::get<0>(y.max(1))}, 1).unsqueeze(-1);  // [B, 2, 1]
  auto s = torch::sigmoid(conv_(pooled)).view({-1, 1});                              // [B, 1]
  return y * s;
}

}  // namespace emosweep::models
