// kNN graph, GAT layer, CBAM block and the length-1 attention.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "models/cbam.h"
#include "models/gat.h"
#include "models/knn_graph.h"
#include "models/layers.h"
#include "tests/models/gat_reference.h"

namespace emosweep::models {
namespace {

std::set<std::pair<int64_t, int64_t>> Edges(const torch::Tensor& ei) {
  std::set<std::pair<int64_t, int64_t>> s;
  for (int64_t e = 0; e < ei.size(1); ++e) s.insert({ei[0][e].item<int64_t>(), ei[1][e].item<int64_t>()});
  return s;
}

TEST(KnnGraph, DualTopKUnionWithSelfLoopsAnchorIsSource) {
  auto text = torch::tensor({{1.0f, 0.0f}, {0.9f, 0.1f}, {0.0f, 1.0f}, {0.1f, 0.9f}});
  auto audio = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {0.8f, 0.2f}, {0.3f, 1.0f}});
  auto ei = DualKnnGraph(text, audio, 1, 1);
  std::set<std::pair<int64_t, int64_t>> expect = {{0, 0}, {1, 1}, {2, 2}, {3, 3},   // self-loops
                                                  {0, 1}, {1, 0}, {2, 3}, {3, 2},   // text top-1
                                                  {0, 2}, {2, 0}, {1, 3}, {3, 1}};  // audio top-1
  EXPECT_EQ(ei.size(1), 12);
  EXPECT_EQ(Edges(ei), expect);
  // Asymmetric case: node 2 is the text neighbour of 0, not the reverse; the edge is (0 → 2) only.
  auto t2 = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {0.95f, 0.3f}, {0.99f, 0.2f}});
  auto e2 = Edges(DualKnnGraph(t2, t2, 1, 0));
  EXPECT_TRUE(e2.count({0, 3}));   // 0's nearest is 3 (cos 0.980 > 0.953)
  EXPECT_FALSE(e2.count({3, 0}));  // 3's nearest is 2
  EXPECT_TRUE(e2.count({3, 2}));
  EXPECT_TRUE(e2.count({1, 2}));  // 1's nearest is 2
  // k larger than N-1 is clipped; k = 0 leaves only self-loops.
  EXPECT_EQ(DualKnnGraph(text, audio, 10, 0).size(1), 16);
  EXPECT_EQ(DualKnnGraph(text, audio, 0, 0).size(1), 4);
}

TEST(Gat, AttentionSumsToOneOverIncomingEdges) {
  torch::manual_seed(10);
  GatConv gat(5, 3, 2, true);
  auto x = torch::randn({6, 5});
  auto ei = torch::tensor({{0, 1, 2, 3, 4, 5, 0, 2}, {1, 2, 3, 4, 5, 0, 3, 3}}, torch::kLong);
  GatAttention att;
  auto out = gat->forward_with_attention(x, ei, &att);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{6, 6}));
  auto sums = torch::zeros({6, 2}).index_add(0, att.edge_index[1], att.alpha);
  EXPECT_TRUE(torch::allclose(sums, torch::ones({6, 2}), 1e-5, 1e-6));
  EXPECT_EQ(att.edge_index.size(1), 8 + 6);  // self-loops added
}

TEST(Gat, DensePathEqualsEdgeListPathWithGradients) {
  torch::manual_seed(13);
  GatConv gat(6, 4, 3, true);
  auto x1 = torch::randn({7, 6}, torch::requires_grad());
  auto x2 = x1.detach().clone().requires_grad_(true);
  auto ei = torch::tensor({{0, 1, 2, 3, 4, 5, 6, 0, 2, 2}, {1, 2, 3, 4, 5, 6, 0, 3, 3, 2}}, torch::kLong);
  auto dense = gat(x1, ei);  // 7 nodes <= kDenseMaxNodes
  GatAttention att;
  auto edge = gat->forward_with_attention(x2, ei, &att);
  EXPECT_TRUE(torch::allclose(dense, edge, 1e-5, 1e-6));
  auto up = torch::randn_like(dense);
  (dense * up).sum().backward();
  (edge * up).sum().backward();
  EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad(), 1e-5, 1e-6));
}

// Cached graph constants (and the skipped ×1 when no edge repeats) give bitwise the old outputs and
// gradients: a graph without repeated edges and one with (0 → 3 twice), each forward run twice (build,
// then cache hit), both layer kinds; an in-place change of the edge list rebuilds the constants.
TEST(Gat, DenseGraphCacheEqualsUncachedFormulationBitwise) {
  torch::manual_seed(21);
  for (bool concat : {true, false}) {
    const int64_t heads = concat ? 3 : 1, out_dim = 4;
    GatConv gat(6, out_dim, heads, concat);
    auto simple = torch::tensor({{0, 1, 2, 3, 4, 5, 6, 0}, {1, 2, 3, 4, 5, 6, 0, 3}}, torch::kLong);
    auto repeated = torch::tensor({{0, 1, 2, 3, 4, 5, 6, 0, 0}, {1, 2, 3, 4, 5, 6, 0, 3, 3}}, torch::kLong);
    for (const auto& ei : {simple, repeated}) {
      for (int pass = 0; pass < 2; ++pass) {
        SCOPED_TRACE(testing::Message() << "concat " << concat << " pass " << pass);
        ExpectLayerEqualsReference(gat, torch::randn({7, 6}), ei, torch::randn({7, concat ? heads * out_dim : out_dim}),
                                   heads, out_dim, concat);
      }
    }
    // Rewriting the (cached) edge list in place: 0 → 3 becomes 5 → 3.
    {
      torch::NoGradGuard g;
      simple[0][7] = 5;
    }
    auto x = torch::randn({7, 6});
    EXPECT_TRUE(torch::equal(gat(x, simple), DenseReference(*gat, x, simple, heads, out_dim, concat)));
  }
}

// The fused softmax passes (models/gat_softmax.h, DenseSoftmax in gat.cc) give bitwise the composite's outputs
// and gradients at a size where torch's vectorized loops and reductions run full vectors and tails (150 nodes,
// a dual top-k graph as the GAT models build it, 4 heads and the 1-head mean layer), twice (cached graph).
TEST(Gat, FusedDenseSoftmaxEqualsCompositeBitwise) {
  torch::manual_seed(5);
  const int64_t n = 150;
  auto text = torch::randn({n, 24}), audio = torch::randn({n, 16});
  auto ei = DualKnnGraph(text, audio, 5, 6);
  for (bool concat : {true, false}) {
    const int64_t heads = concat ? 4 : 1, out_dim = 8;
    GatConv gat(12, out_dim, heads, concat);
    for (int pass = 0; pass < 2; ++pass) {
      SCOPED_TRACE(testing::Message() << "concat " << concat << " pass " << pass);
      const torch::Tensor x = 3 * torch::randn({n, 12});
      const torch::Tensor ref = ExpectLayerEqualsReference(
          gat, x, ei, torch::randn({n, concat ? heads * out_dim : out_dim}), heads, out_dim, concat);
      // No-grad (evaluation) forward: the same numbers.
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(gat(x, ei), ref));
    }
  }
}

TEST(Gat, HandCheckedTinyGraphAndDirection) {
  // One head, 2 -> 2, identity W, a_src = (1, 0), a_dst = (0, 1), bias 0. Edges 0 → 1 only (+ self-loops).
  GatConv gat(2, 2, 1, true);
  {
    torch::NoGradGuard g;
    gat->lin->weight.copy_(torch::eye(2));
    gat->att_src.copy_(torch::tensor({1.0f, 0.0f}).view({1, 1, 2}));
    gat->att_dst.copy_(torch::tensor({0.0f, 1.0f}).view({1, 1, 2}));
    gat->bias.zero_();
  }
  auto x = torch::tensor({{1.0f, 2.0f}, {-1.0f, 0.5f}});
  auto ei = torch::tensor({{0}, {1}}, torch::kLong);
  auto out = gat(x, ei);
  auto lrelu = [](double v) { return v > 0 ? v : 0.2 * v; };
  // Node 1 receives from 0 and itself: e_10 = lrelu(x0[0] + x1[1]), e_11 = lrelu(x1[0] + x1[1]).
  const double e10 = lrelu(1.0 + 0.5), e11 = lrelu(-1.0 + 0.5);
  const double w10 = std::exp(e10) / (std::exp(e10) + std::exp(e11)), w11 = 1 - w10;
  EXPECT_NEAR(out[1][0].item<double>(), w10 * 1.0 + w11 * -1.0, 1e-6);
  EXPECT_NEAR(out[1][1].item<double>(), w10 * 2.0 + w11 * 0.5, 1e-6);
  // Node 0 has only its self-loop: output = x0, independent of x1 (source → target direction).
  EXPECT_NEAR(out[0][0].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(out[0][1].item<double>(), 2.0, 1e-6);
  auto x2 = x.clone();
  x2[1][0] = 5.0f;
  EXPECT_TRUE(torch::allclose(gat(x2, ei)[0], out[0]));
  // Mean over heads.
  GatConv mean(4, 3, 2, false);
  EXPECT_EQ(mean(torch::randn({3, 4}), ei).sizes(), (std::vector<int64_t>{3, 3}));
}

TEST(Cbam, ChannelAndSpatialGatesCorrectAndFaithful) {
  torch::manual_seed(11);
  auto x = torch::randn({3, 32});
  for (bool faithful : {false, true}) {
    Cbam1d cb(32, 16, 7, faithful);
    auto params = cb->named_parameters();
    {
      torch::NoGradGuard g;
      params["conv.weight"].zero_();  // spatial gate = σ(0) = 0.5 everywhere
    }
    auto mlp = torch::matmul(torch::relu(torch::matmul(x, params["fc1.weight"].t())), params["fc2.weight"].t());
    auto expect = faithful ? x * 2.0 * torch::sigmoid(mlp) * 0.5 : x * torch::sigmoid(2.0 * mlp) * 0.5;
    EXPECT_TRUE(torch::allclose(cb(x), expect, 1e-5, 1e-6)) << "faithful=" << faithful;
  }
}

TEST(LengthOneAttention, EqualsMultiheadAttentionOnOneKey) {
  torch::manual_seed(12);
  const int64_t d = 8, h = 2;
  torch::nn::MultiheadAttention ref(torch::nn::MultiheadAttentionOptions(d, h));
  LengthOneAttention mine(d, h, 0.0);
  {
    torch::NoGradGuard g;
    mine->v_proj->weight.copy_(ref->in_proj_weight.narrow(0, 2 * d, d));
    mine->v_proj->bias.copy_(ref->in_proj_bias.narrow(0, 2 * d, d));
    mine->out_proj->weight.copy_(ref->out_proj->weight);
    mine->out_proj->bias.copy_(ref->out_proj->bias);
  }
  ref->eval();
  mine->eval();
  auto q = torch::randn({1, 5, d}), kv = torch::randn({1, 5, d});  // [L=1, B=5, d]
  auto expect = std::get<0>(ref(q, kv, kv)).squeeze(0);
  EXPECT_TRUE(torch::allclose(mine(kv.squeeze(0)), expect, 1e-5, 1e-6));
  // Training mode: each (sample, head) value is either dropped or scaled by 1/(1-p), like PyTorch's
  // dropout on the single attention weight.
  LengthOneAttention drop(d, h, 0.5);
  {
    torch::NoGradGuard g;
    drop->out_proj->weight.copy_(torch::eye(d));
    drop->out_proj->bias.zero_();
  }
  drop->train();
  auto in = kv.squeeze(0);
  auto v = drop->v_proj(in).view({5, h, d / h});
  auto out = drop(in).view({5, h, d / h});
  int dropped = 0, kept = 0;
  for (int b = 0; b < 5; ++b)
    for (int k = 0; k < h; ++k) {
      if (torch::allclose(out[b][k], torch::zeros({d / h}))) ++dropped;
      else if (torch::allclose(out[b][k], 2.0 * v[b][k], 1e-5, 1e-6)) ++kept;
    }
  EXPECT_EQ(dropped + kept, 5 * h);
}

}  // namespace
}  // namespace emosweep::models
