// tests/models/gat_reference.h: the GAT layer's dense formulation as it was before its per-graph constants were
// cached, its softmax fused and its products run over the edges (self-loops, multiplicities and the mask rebuilt
// at every call, the weights always multiplied by the multiplicities, torch's bmm), and a check that a layer
// equals it in output, input gradient and every parameter gradient. For graph_test.cc and gat_sparse_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <limits>
#include <vector>

#include "models/gat.h"

namespace emosweep::models {

inline torch::Tensor DenseReference(GatConvImpl& g, const torch::Tensor& x, const torch::Tensor& edge_index,
                                    int64_t heads, int64_t out_dim, bool concat) {
  const int64_t n = x.size(0);
  auto ei = WithSelfLoops(edge_index, n);
  auto h = g.lin(x).view({n, heads, out_dim});
  auto a_src = (h * g.att_src).sum(-1).t();
  auto a_dst = (h * g.att_dst).sum(-1).t();
  auto e = torch::leaky_relu(a_dst.unsqueeze(2) + a_src.unsqueeze(1), 0.2);
  auto mult = torch::zeros({n, n}, e.options());
  mult.index_put_({ei[1], ei[0]}, torch::ones({ei.size(1)}, e.options()), /*accumulate=*/true);
  auto masked = e.masked_fill(mult.eq(0), -std::numeric_limits<float>::infinity());
  auto w = torch::exp(masked - std::get<0>(masked.max(2, /*keepdim=*/true)).detach()) * mult;
  auto alpha = w / w.sum(2, /*keepdim=*/true);
  auto out = torch::bmm(alpha, h.transpose(0, 1)).transpose(0, 1);
  out = concat ? out.reshape({n, heads * out_dim}) : out.mean(1);
  return out + g.bias;
}

using SameFn = std::function<bool(const torch::Tensor&, const torch::Tensor&)>;

// Runs `gat` and DenseReference on x with the upstream gradient `up` and expects `same` of the outputs, the
// input gradients and every parameter's gradient (torch::equal unless given). Returns the reference output.
inline torch::Tensor ExpectLayerEqualsReference(
    GatConv& gat, const torch::Tensor& x, const torch::Tensor& edge_index, const torch::Tensor& up, int64_t heads,
    int64_t out_dim, bool concat,
    const SameFn& same = [](const torch::Tensor& a, const torch::Tensor& b) { return torch::equal(a, b); }) {
  auto x1 = x.detach().clone().requires_grad_(true), x2 = x.detach().clone().requires_grad_(true);
  gat->zero_grad();
  auto ours = gat(x1, edge_index);
  (ours * up).sum().backward();
  std::vector<torch::Tensor> ours_grads;
  for (auto& p : gat->parameters()) ours_grads.push_back(p.grad().clone());
  gat->zero_grad();
  auto ref = DenseReference(*gat, x2, edge_index, heads, out_dim, concat);
  (ref * up).sum().backward();
  EXPECT_TRUE(same(ours, ref)) << "output";
  EXPECT_TRUE(same(x1.grad(), x2.grad())) << "input gradient";
  auto params = gat->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(same(ours_grads[i], params[i].grad())) << "parameter " << i;
  return ref.detach();
}

}  // namespace emosweep::models
