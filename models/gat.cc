#include "models/gat.h"

namespace emosweep::models {

torch::Tensor WithSelfLoops(const torch::Tensor& edge_index, int64_t num_nodes) {
  auto keep = edge_index[0].ne(edge_index[1]);
  auto loops = torch::arange(num_nodes, edge_index.options()).view({1, -1}).expand({2, num_nodes});
  return torch::cat({edge_index.index({torch::indexing::Slice(), keep}), loops}, 1);
}

GatConvImpl::GatConvImpl(int64_t in_dim, int64_t out_dim, int64_t heads, bool concat)
    : out_dim_(out_dim), heads_(heads), concat_(concat) {
  lin = register_module("lin", torch::nn::Linear(torch::nn::LinearOptions(in_dim, heads * out_dim).bias(false)));
  att_src = register_parameter("att_src", torch::empty({1, heads, out_dim}));
  att_dst = register_parameter("att_dst", torch::empty({1, heads, out_dim}));
  bias = register_parameter("bias", torch::zeros({concat ? heads * out_dim : out_dim}));
  torch::NoGradGuard g;
  torch::nn::init::xavier_uniform_(lin->weight);
  // PyG glorot on [1, H, C]: bound sqrt(6 / (H + C)) from the last two dims.
  const double b = std::sqrt(6.0 / static_cast<double>(heads + out_dim));
  att_src.uniform_(-b, b);
  att_dst.uniform_(-b, b);
}

torch::Tensor GatConvImpl::forward(const torch::Tensor& x, const torch::Tensor& edge_index) {
  const int64_t n = x.size(0);
  // Up to kDenseMaxNodes the same math on a dense [H, N, N] masked score matrix is
  // several times faster on CPU than gather/scatter over edges (bench/graph_bench).
  if (n > kDenseMaxNodes) return forward_with_attention(x, edge_index, nullptr);
  auto h = lin(x).view({n, heads_, out_dim_});
  auto a_src = (h * att_src).sum(-1).t();  // [H, N]
  auto a_dst = (h * att_dst).sum(-1).t();
  auto e = torch::leaky_relu(a_dst.unsqueeze(2) + a_src.unsqueeze(1), 0.2);  // [H, target, source]
  const DenseGraph& g = Dense(edge_index, n, e.options());
  auto masked = e.masked_fill(g.absent, -std::numeric_limits<float>::infinity());
  auto w = torch::exp(masked - std::get<0>(masked.max(2, /*keepdim=*/true)).detach());
  // Edge multiplicities, so that a repeated edge weighs as in the edge-list softmax; with none repeated the
  // product is w·1 = w exactly and is skipped.
  if (!g.single) w = w * g.mult;
  auto alpha = w / w.sum(2, /*keepdim=*/true);
  auto out = torch::bmm(alpha, h.transpose(0, 1)).transpose(0, 1);  // [N, H, C]
  out = concat_ ? out.reshape({n, heads_ * out_dim_}) : out.mean(1);
  return out + bias;
}

const GatConvImpl::DenseGraph& GatConvImpl::Dense(const torch::Tensor& edge_index, int64_t n,
                                                   const torch::TensorOptions& opts) {
  for (const auto& d : dense_cache_)
    if (d.edge_index.unsafeGetTensorImpl() == edge_index.unsafeGetTensorImpl() &&
        d.version == edge_index._version() && d.n == n && d.mult.options().dtype() == opts.dtype() &&
        d.mult.device() == opts.device())
      return d;
  torch::NoGradGuard no_grad;
  DenseGraph d;
  d.edge_index = edge_index;
  d.version = edge_index._version();
  d.n = n;
  auto ei = WithSelfLoops(edge_index, n);
  d.mult = torch::zeros({n, n}, opts);
  d.mult.index_put_({ei[1], ei[0]}, torch::ones({ei.size(1)}, opts), /*accumulate=*/true);
  d.absent = d.mult.eq(0);
  d.single = d.mult.max().item<float>() <= 1.0f;
  if (dense_cache_.size() == 4) dense_cache_.erase(dense_cache_.begin());
  dense_cache_.push_back(std::move(d));
  return dense_cache_.back();
}

torch::Tensor GatConvImpl::forward_with_attention(const torch::Tensor& x, const torch::Tensor& edge_index,
                                                  GatAttention* att) {
  const int64_t n = x.size(0);
  auto ei = WithSelfLoops(edge_index, n);
  auto src = ei[0], dst = ei[1];
  auto h = lin(x).view({n, heads_, out_dim_});
  auto a_src = (h * att_src).sum(-1);  // [N, H]
  auto a_dst = (h * att_dst).sum(-1);
  auto e = torch::leaky_relu(a_src.index_select(0, src) + a_dst.index_select(0, dst), 0.2);  // [E, H]
  // Softmax over the incoming edges of each target; the per-target max is a constant shift (no gradient).
  auto emax = torch::full({n, heads_}, -std::numeric_limits<float>::infinity(), e.options())
                  .scatter_reduce(0, dst.view({-1, 1}).expand_as(e), e.detach(), "amax", /*include_self=*/true);
  auto w = torch::exp(e - emax.index_select(0, dst));
  auto denom = torch::zeros({n, heads_}, e.options()).index_add(0, dst, w);
  auto alpha = w / denom.index_select(0, dst);
  auto msg = h.index_select(0, src) * alpha.unsqueeze(-1);  // [E, H, C]
  auto out = torch::zeros({n, heads_, out_dim_}, h.options()).index_add(0, dst, msg);
  if (att) *att = {ei, alpha};
  out = concat_ ? out.reshape({n, heads_ * out_dim_}) : out.mean(1);
  return out + bias;
}

}  // namespace emosweep::models
