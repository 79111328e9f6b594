// The GAT's attention products over the graph's edges only (models/gat_sparse.h, gat.cc's SparseBmm): the
// kernels against the dense sum they reproduce, and a GAT layer against its dense formulation, bitwise.
#include "models/gat_sparse.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "models/gat.h"
#include "models/knn_graph.h"
#include "models/short_gemm.h"
#include "tests/models/gat_reference.h"

namespace emosweep::models {
namespace {

// OpenBLAS's sum of k terms as gat_sparse.h states it, over every term (the absent edges' zeros included):
// K blocks, each one chain of fused multiply-adds from +0 in K order, the block's sum added to C from +0.
float BlockedSum(int64_t k, const std::function<float(int64_t)>& a, const std::function<float(int64_t)>& b) {
  float c = 0.0f;
  for (int64_t b0 = 0; b0 < k;) {
    const int64_t b1 = BlasKBlockEnd(b0, k);
    float acc = 0.0f;
    for (int64_t q = b0; q < b1; ++q) acc = std::fma(a(q), b(q), acc);
    c = acc + c;
    b0 = b1;
  }
  return c;
}

struct OneThread {  // the products run over the edges with one intra-op thread only (OpenBLAS splits K otherwise)
  int before = at::get_num_threads();
  OneThread() { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(before); }
};

// Bitwise, and NaN where the other is NaN (a NaN's sign and payload follow the op that made it: the reference's
// unfused softmax and the layer's fused one make their NaNs with different operations).
bool SameFloats(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  const torch::Tensor ac = a.contiguous(), bc = b.contiguous();
  const float *pa = ac.data_ptr<float>(), *pb = bc.data_ptr<float>();
  for (int64_t i = 0; i < a.numel(); ++i)
    if (!(std::isnan(pa[i]) && std::isnan(pb[i])) && std::memcmp(pa + i, pb + i, sizeof(float)) != 0) return false;
  return true;
}

struct Lists {
  std::vector<int32_t> ptr, idx;
};

// Lists of the non-zero pattern `on` [n x n] by row (transposed = false) or by column, ascending.
Lists ListsOf(const std::vector<char>& on, int64_t n, bool transposed) {
  Lists l;
  for (int64_t r = 0; r < n; ++r) {
    l.ptr.push_back(static_cast<int32_t>(l.idx.size()));
    for (int64_t q = 0; q < n; ++q)
      if (transposed ? on[q * n + r] : on[r * n + q]) l.idx.push_back(static_cast<int32_t>(q));
  }
  l.ptr.push_back(static_cast<int32_t>(l.idx.size()));
  return l;
}

// Every shape class the kernels treat apart: one column, widths below / at / past a vector and past 8 vectors (a
// masked last vector: 17, 130, 470), a reduction over c split into two blocks (470: 240 + 230), one over the nodes
// split in two (600: 304 + 296); rows without edges, with 1-16 and with more than 16 (up to 40). The reference
// takes its K blocks from the same BlasKBlockEnd: whether that is OpenBLAS's blocking is what the layer test
// checks (against torch's bmm).
TEST(GatSparse, KernelsEqualTheDenseBlockedSumBitwise) {
  if (!ShortGemmAvailable()) GTEST_SKIP() << "no AVX-512F: gat.cc keeps torch's bmm";
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t shapes[][2] = {{5, 1}, {33, 17}, {37, 470}, {90, 130}, {600, 40}, {20, 16}};
  for (const auto& s : shapes) {
    const int64_t n = s[0], c_dim = s[1], heads = 2;
    std::vector<char> on(n * n, 0);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t want = r % 7 == 3 ? 0 : static_cast<int64_t>(rng() % std::min<int64_t>(n, 41));
      for (int64_t k = 0; k < want; ++k) on[r * n + rng() % n] = 1;
    }
    std::vector<float> a(heads * n * n, 0.0f), x(heads * n * c_dim), g(heads * n * c_dim);
    for (int64_t e = 0; e < heads * n * n; ++e)
      if (on[e % (n * n)]) a[e] = rng() % 13 == 0 ? (rng() % 2 ? -0.0f : 0.0f) : normal(rng);
    for (auto* v : {&x, &g})
      for (float& f : *v) f = rng() % 11 == 0 ? (rng() % 2 ? -0.0f : 0.0f) : normal(rng);
    // X interleaves the heads as the layer's [N, H, C] output does: x[h·C + q·H·C + c].
    const int64_t x_h = c_dim, x_n = heads * c_dim;
    for (bool transposed : {false, true}) {
      const Lists l = ListsOf(on, n, transposed);
      std::vector<float> out(heads * n * c_dim, 1.0f);
      GatSparseAggregate(a.data(), transposed ? 1 : n, transposed ? n : 1, l.ptr.data(), l.idx.data(), x.data(), x_h,
                         x_n, heads, n, c_dim, out.data());
      int64_t differ = 0;
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t r = 0; r < n; ++r)
          for (int64_t c = 0; c < c_dim; ++c) {
            auto av = [&](int64_t q) { return a[h * n * n + (transposed ? q * n + r : r * n + q)]; };
            auto xv = [&](int64_t q) { return x[h * x_h + q * x_n + c]; };
            const float ref = BlockedSum(n, av, xv), got = out[(h * n + r) * c_dim + c];
            differ += std::memcmp(&ref, &got, sizeof(float)) != 0;
          }
      EXPECT_EQ(differ, 0) << "aggregate n " << n << " c " << c_dim << " transposed " << transposed;
    }
    const Lists rows = ListsOf(on, n, false);
    std::vector<float> d(heads * n * n, 7.0f);  // entries off the edges must stay as they are
    GatSparseEdgeDots(g.data(), x_h, x_n, x.data(), x_h, x_n, rows.ptr.data(), rows.idx.data(), heads, n, c_dim,
                      d.data());
    int64_t differ = 0, touched = 0;
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const float got = d[(h * n + i) * n + j];
          if (!on[i * n + j]) {
            touched += got != 7.0f;
            continue;
          }
          const float ref = BlockedSum(
              c_dim, [&](int64_t c) { return g[h * x_h + i * x_n + c]; },
              [&](int64_t c) { return x[h * x_h + j * x_n + c]; });
          differ += std::memcmp(&ref, &got, sizeof(float)) != 0;
        }
    EXPECT_EQ(differ, 0) << "edge dots n " << n << " c " << c_dim;
    EXPECT_EQ(touched, 0) << "edge dots wrote off the edges, n " << n << " c " << c_dim;
  }
}

// A layer on a sparse dual top-k graph (600 nodes, ~2 % of the entries: both reductions split into two K
// blocks, 470 columns a head) equals the dense formulation bitwise in its output, the input's gradient and
// every parameter's, over three steps and in an evaluation forward, with the products over the edges only (each
// checked once against torch's on random operands of its layout, none rejected, as the counters show); the
// 2-head concat and the 1-head mean layer. A dense-ish graph (40 nodes, > 12.5 % edges) keeps torch's bmm.
TEST(GatSparse, LayerEqualsDenseFormulationBitwise) {
  if (!ShortGemmAvailable()) GTEST_SKIP() << "no AVX-512F: gat.cc keeps torch's bmm";
  OneThread one;
  torch::manual_seed(31);
  const int64_t n = 600;
  auto text = torch::randn({n, 20}), audio = torch::randn({n, 14});
  auto ei = DualKnnGraph(text, audio, 3, 8);
  for (bool concat : {true, false}) {
    const int64_t heads = concat ? 2 : 1, out_dim = 470;
    GatConv gat(12, out_dim, heads, concat);
    const GatSparseCounts before = GatSparseProductCounts();
    for (int pass = 0; pass < 3; ++pass) {
      SCOPED_TRACE(testing::Message() << "concat " << concat << " pass " << pass);
      const torch::Tensor x = 2 * torch::randn({n, 12});
      const torch::Tensor ref = ExpectLayerEqualsReference(
          gat, x, ei, torch::randn({n, concat ? heads * out_dim : out_dim}), heads, out_dim, concat);
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(gat(x, ei), ref)) << "evaluation forward";
    }
    const GatSparseCounts after = GatSparseProductCounts();
    EXPECT_EQ(after.forward - before.forward, 6) << "concat " << concat;  // 3 training + 3 evaluation forwards
    EXPECT_EQ(after.edge_dots - before.edge_dots, 3) << "concat " << concat;
    EXPECT_EQ(after.transposed - before.transposed, 3) << "concat " << concat;
    EXPECT_EQ(after.rejected, before.rejected) << "concat " << concat;
  }
  // Dense-ish (each node lists 8 + 8 neighbours of 40: > 12.5 % of the entries): torch's bmm, nothing counted.
  auto small = DualKnnGraph(torch::randn({40, 6}), torch::randn({40, 5}), 8, 8);
  ASSERT_GT(small.size(1), 40 * 40 / 8);
  GatConv gat(6, 8, 2, true);
  const GatSparseCounts before = GatSparseProductCounts();
  auto x = torch::randn({40, 6}, torch::requires_grad());
  gat(x, small).sum().backward();
  gat(x, small).sum().backward();
  const GatSparseCounts after = GatSparseProductCounts();
  EXPECT_EQ(after.forward, before.forward);
  EXPECT_EQ(after.edge_dots, before.edge_dots);
}

// What keeps torch's bmm although the graph is sparse: more than one intra-op thread (OpenBLAS's threaded driver
// splits K differently), and a non-finite entry in X or dOut (torch's 0·Inf NaNs reach rows the edges do not):
// the outputs and gradients are still the dense formulation's bits, with NaNs where it has them.
TEST(GatSparse, ThreadsAndNonFiniteValuesKeepTorchsProduct) {
  if (!ShortGemmAvailable()) GTEST_SKIP() << "no AVX-512F: gat.cc keeps torch's bmm";
  torch::manual_seed(32);
  const int64_t n = 300, heads = 2, out_dim = 24;
  auto ei = DualKnnGraph(torch::randn({n, 10}), torch::randn({n, 9}), 3, 5);
  GatConv gat(12, out_dim, heads, true);
  auto run = [&](const torch::Tensor& x, const torch::Tensor& up, const char* what) {
    SCOPED_TRACE(what);
    const GatSparseCounts before = GatSparseProductCounts();
    ExpectLayerEqualsReference(gat, x, ei, up, heads, out_dim, true, SameFloats);
    // (the reference's products are torch's: they count nothing)
    const GatSparseCounts after = GatSparseProductCounts();
    return after.forward - before.forward + after.edge_dots - before.edge_dots + after.transposed - before.transposed;
  };
  const torch::Tensor x = torch::randn({n, 12}), up = torch::randn({n, heads * out_dim});
  {
    OneThread one;
    EXPECT_EQ(run(x, up, "one thread"), 3);  // all three over the edges
    torch::Tensor inf_x = x.clone();
    inf_x[7][3] = std::numeric_limits<float>::infinity();
    EXPECT_EQ(run(inf_x, up, "an infinite input"),
              0);  // the forward falls back, and its NaNs reach every backward product
    torch::Tensor nan_up = up.clone();
    nan_up[11][5] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_EQ(run(x, nan_up, "a NaN gradient"), 1);  // the forward over the edges; both backward products fall back
  }
  at::set_num_threads(2);
  EXPECT_EQ(run(x, up, "two threads"), 0);
  at::set_num_threads(1);
}

}  // namespace
}  // namespace emosweep::models
