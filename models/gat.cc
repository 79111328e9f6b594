#include "models/gat.h"

#include <ATen/TensorIterator.h>

#include "models/gat_softmax.h"

namespace emosweep::models {
namespace {

constexpr double kSlope = 0.2;  // GATConv's LeakyReLU on the scores

// alpha = softmax over j of leaky_relu(a_dst[h, i] + a_src[h, j]) masked to -inf where absent[i, j], with the
// row max subtracted (no gradient through it): the dense path's softmax with its elementwise passes fused
// (models/gat_softmax.h) and its reductions, exp and division left to torch, so that forward and gradients are
// bitwise those of the unfused composite (the fallback, and tests/models/graph_test.cc's reference).
// CPU float32 only.
class DenseSoftmax : public torch::autograd::Function<DenseSoftmax> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a_dst_in,
                               const torch::Tensor& a_src_in, const torch::Tensor& absent) {
    auto a_dst = a_dst_in.contiguous(), a_src = a_src_in.contiguous();
    TORCH_CHECK(absent.is_contiguous() && absent.scalar_type() == torch::kBool, "DenseSoftmax: absent must be a contiguous bool mask");
    const int64_t heads = a_dst.size(0), n = a_dst.size(1);
    auto w = torch::empty({heads, n, n}, a_dst.options());
    GatScores(a_dst.data_ptr<float>(), a_src.data_ptr<float>(), absent.data_ptr<bool>(), heads, n,
              static_cast<float>(kSlope), w.data_ptr<float>());
    w.sub_(std::get<0>(w.max(2, /*keepdim=*/true))).exp_();  // in place: the scores are not needed again
    auto s = w.sum(2, /*keepdim=*/true);
    ctx->save_for_backward({a_dst, a_src, absent, w, s});
    // The layout torch gives the broadcast sum of the (possibly transposed) inputs: the backward writes the scores'
    // gradient in it, as autograd did, so that the reductions to a_dst and a_src sum in the same order.
    if (a_dst_in.requires_grad() || a_src_in.requires_grad()) {  // (not for an evaluation forward)
      auto layout = at::TensorIteratorConfig()
                        .add_owned_output(at::Tensor())
                        .add_owned_input(a_dst_in.unsqueeze(2))
                        .add_owned_input(a_src_in.unsqueeze(1))
                        .build()
                        .output();
      ctx->saved_data["strides"] = layout.strides().vec();
    }
    return w / s;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &a_dst = saved[0], &a_src = saved[1], &absent = saved[2], &w = saved[3], &s = saved[4];
    const int64_t heads = a_dst.size(0), n = a_dst.size(1);
    auto g = grads[0].contiguous();
    auto buf = torch::empty_like(w);
    GatSoftmaxDenomGrad(g.data_ptr<float>(), w.data_ptr<float>(), s.data_ptr<float>(), heads, n, buf.data_ptr<float>());
    auto gs = buf.sum(2, /*keepdim=*/true);
    const auto strides = ctx->saved_data["strides"].toIntVector();
    auto v = strides == buf.strides().vec() ? buf : at::empty_strided({heads, n, n}, strides, w.options());
    GatScoresGrad(g.data_ptr<float>(), w.data_ptr<float>(), s.data_ptr<float>(), gs.data_ptr<float>(),
                  a_dst.data_ptr<float>(), a_src.data_ptr<float>(), absent.data_ptr<bool>(), heads, n,
                  static_cast<float>(kSlope), v.data_ptr<float>(), strides.data());
    // As autograd reduced the broadcast add: a_dst[h, i] over j (dim 2), a_src[h, j] over i (dim 1).
    return {v.sum(2, /*keepdim=*/true).squeeze(2), v.sum(1, /*keepdim=*/true).squeeze(1), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor WithSelfLoops(const torch::Tensor& edge_index, int64_t num_nodes) {
  auto keep = edge_index[0].ne(edge_index[1]);
  auto loops = torch::arange(num_nodes, edge_index.options()).view({1, -1}).expand({2, num_nodes});
  return torch::cat({edge_index.index({torch::indexing::Slice(), keep}), loops}, 1);
}

GatConvImpl::GatConvImpl(int64_t in_dim, int64_t out_dim, int64_t heads, bool concat)
    : out_dim_(out_dim), heads_(heads), concat_(concat) {
  lin = register_module("lin", SlotLinear(torch::nn::LinearOptions(in_dim, heads * out_dim).bias(false)));
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
  const DenseGraph& g = Dense(edge_index, n, a_dst.options());
  torch::Tensor alpha;
  if (g.single && a_dst.device().is_cpu() && a_dst.scalar_type() == torch::kFloat) {
    alpha = DenseSoftmax::apply(a_dst, a_src, g.absent);  // the same numbers with fewer passes
  } else {
    auto e = torch::leaky_relu(a_dst.unsqueeze(2) + a_src.unsqueeze(1), kSlope);  // [H, target, source]
    auto masked = e.masked_fill(g.absent, -std::numeric_limits<float>::infinity());
    auto w = torch::exp(masked - std::get<0>(masked.max(2, /*keepdim=*/true)).detach());
    // Edge multiplicities, so that a repeated edge weighs as in the edge-list softmax; with none repeated the
    // product is w·1 = w exactly and is skipped.
    if (!g.single) w = w * g.mult;
    alpha = w / w.sum(2, /*keepdim=*/true);
  }
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
