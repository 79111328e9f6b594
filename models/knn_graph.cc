#include "models/knn_graph.h"

#include <algorithm>

namespace emosweep::models {
namespace {

// Ranks 1..k of each row by cosine similarity, as flattened source*N + target codes.
torch::Tensor TopK(const torch::Tensor& x, int64_t k) {
  const int64_t n = x.size(0);
  k = std::min(k, n - 1);
  if (k <= 0) return torch::empty({0}, torch::kLong);
  auto xn = x / x.norm(2, 1, true).clamp_min(1e-10);
  auto sim = torch::matmul(xn, xn.t());
  auto idx = std::get<1>(sim.topk(k + 1, 1, /*largest=*/true, /*sorted=*/true)).narrow(1, 1, k);
  auto src = torch::arange(n, torch::kLong).view({n, 1}).expand({n, k});
  return (src * n + idx).reshape({-1});
}

}  // namespace

torch::Tensor DualKnnGraph(const torch::Tensor& text, const torch::Tensor& audio, int64_t k_text, int64_t k_audio) {
  torch::NoGradGuard g;
  auto t = text.to(torch::kCPU, torch::kFloat), a = audio.to(torch::kCPU, torch::kFloat);
  const int64_t n = t.size(0);
  auto self = torch::arange(n, torch::kLong) * (n + 1);
  auto codes = std::get<0>(torch::_unique(torch::cat({self, TopK(t, k_text), TopK(a, k_audio)}), /*sorted=*/true));
  auto ei = torch::stack({torch::div(codes, n, "floor"), torch::remainder(codes, n)});
  return ei.to(text.device());
}

}  // namespace emosweep::models
