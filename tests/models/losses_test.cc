// Each loss against a direct computation with plain loops on small tensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "models/losses.h"

namespace emosweep::models {
namespace {
namespace F = torch::nn::functional;

double D(const torch::Tensor& t) { return t.item<double>(); }

std::vector<std::vector<double>> LogSoftmaxRows(const torch::Tensor& x) {
  std::vector<std::vector<double>> out;
  for (int64_t i = 0; i < x.size(0); ++i) {
    double m = -1e300, s = 0;
    for (int64_t j = 0; j < x.size(1); ++j) m = std::max(m, x[i][j].item<double>());
    for (int64_t j = 0; j < x.size(1); ++j) s += std::exp(x[i][j].item<double>() - m);
    std::vector<double> r;
    for (int64_t j = 0; j < x.size(1); ++j) r.push_back(x[i][j].item<double>() - m - std::log(s));
    out.push_back(r);
  }
  return out;
}

torch::Tensor Normalize(const torch::Tensor& x) { return x / x.norm(2, 1, true); }

TEST(Losses, ClassWeights) {
  auto b = *BalancedClassWeights({10, 30, 0, 60});
  EXPECT_NEAR(b[0].item<double>(), 100.0 / 30.0, 1e-5);
  EXPECT_NEAR(b[1].item<double>(), 100.0 / 90.0, 1e-5);
  EXPECT_EQ(b[2].item<double>(), 0.0);
  EXPECT_NEAR(b[3].item<double>(), 100.0 / 180.0, 1e-5);
  auto f = *InverseFrequencyClassWeights({10, 30, 0, 60});
  EXPECT_NEAR(f[0].item<double>(), 2.0, 1e-5);
  EXPECT_NEAR(f[1].item<double>(), 2.0 / 3.0, 1e-5);
  EXPECT_NEAR(f[3].item<double>(), 1.0 / 3.0, 1e-5);
  EXPECT_FALSE(BalancedClassWeights({0, 0}).ok());
  EXPECT_FALSE(InverseFrequencyClassWeights({}).ok());
  EXPECT_FALSE(BalancedClassWeights({3, -1}).ok());
}

TEST(Losses, CrossEntropyWeightsAndSmoothingMatchPyTorchFormula) {
  torch::manual_seed(1);
  auto x = torch::randn({5, 4}, torch::kDouble);
  auto y = torch::tensor({0, 3, 1, 1, 2}, torch::kLong);
  auto w = torch::tensor({0.5, 2.0, 1.0, 3.0}, torch::kDouble);
  const double eps = 0.1;
  auto lp = LogSoftmaxRows(x);
  double nll = 0, smooth = 0, wsum = 0;
  for (int n = 0; n < 5; ++n) {
    int64_t c = y[n].item<int64_t>();
    nll += -w[c].item<double>() * lp[n][c];
    wsum += w[c].item<double>();
    for (int k = 0; k < 4; ++k) smooth += -w[k].item<double>() * lp[n][k];
  }
  const double expect = (1 - eps) * nll / wsum + eps / 4.0 * smooth / wsum;
  EXPECT_NEAR(D(CrossEntropy(x, y, w, eps)), expect, 1e-10);
  double plain = 0;
  for (int n = 0; n < 5; ++n) plain += -lp[n][y[n].item<int64_t>()];
  EXPECT_NEAR(D(CrossEntropy(x, y, torch::Tensor(), 0.0)), plain / 5, 1e-10);
}

TEST(Losses, FocalWithSmoothingAndAlpha) {
  torch::manual_seed(2);
  auto x = torch::randn({4, 3}, torch::kDouble);
  auto y = torch::tensor({2, 0, 1, 2}, torch::kLong);
  auto alpha = torch::tensor({1.0, 0.5, 2.0}, torch::kDouble);
  const double eps = 0.1, gamma = 2.0;
  auto lp = LogSoftmaxRows(x);
  double total = 0;
  for (int n = 0; n < 4; ++n)
    for (int c = 0; c < 3; ++c) {
      const double q = c == y[n].item<int64_t>() ? 1 - eps : eps / 2;
      const double p = std::exp(lp[n][c]);
      total += alpha[c].item<double>() * std::pow(1 - p, gamma) * q * -lp[n][c];
    }
  EXPECT_NEAR(D(FocalLoss(x, y, alpha, gamma, eps)), total / 4, 1e-10);
  // γ = 0, ε = 0, no α: plain cross-entropy.
  EXPECT_NEAR(D(FocalLoss(x, y, torch::Tensor(), 0.0, 0.0)), D(CrossEntropy(x, y, torch::Tensor(), 0.0)), 1e-10);
}

TEST(Losses, NtXentCrossModalOneDirection) {
  torch::manual_seed(3);
  auto a = torch::randn({4, 5}, torch::kDouble), b = torch::randn({4, 5}, torch::kDouble);
  const double tau = 0.05;
  auto an = Normalize(a), bn = Normalize(b);
  double total = 0;
  for (int i = 0; i < 4; ++i) {
    double m = -1e300;
    std::vector<double> s(4);
    for (int j = 0; j < 4; ++j) {
      s[j] = (an[i] * bn[j]).sum().item<double>() / tau;
      m = std::max(m, s[j]);
    }
    double z = 0;
    for (int j = 0; j < 4; ++j) z += std::exp(s[j] - m);
    total += -(s[i] - m - std::log(z));
  }
  EXPECT_NEAR(D(NtXentCrossModal(a, b, tau)), total / 4, 1e-9);
}

TEST(Losses, NtXentSimClr2N) {
  torch::manual_seed(4);
  auto z1 = torch::randn({3, 4}, torch::kDouble), z2 = torch::randn({3, 4}, torch::kDouble);
  const double tau = 0.07;
  auto z = Normalize(torch::cat({z1, z2}));
  double total = 0;
  for (int i = 0; i < 6; ++i) {
    const int pos = (i + 3) % 6;
    double denom = 0;
    for (int k = 0; k < 6; ++k)
      if (k != i) denom += std::exp((z[i] * z[k]).sum().item<double>() / tau);
    total += -((z[i] * z[pos]).sum().item<double>() / tau - std::log(denom));
  }
  EXPECT_NEAR(D(NtXentSimClr(z1, z2, tau)), total / 6, 1e-9);
}

TEST(Losses, SupConAsSpecified) {
  torch::manual_seed(5);
  auto z = torch::randn({5, 3}, torch::kDouble);
  auto y = torch::tensor({0, 1, 0, 2, 1}, torch::kLong);  // anchor 3 has no positive
  const double tau = 0.07;
  auto zn = Normalize(z);
  double total = 0;
  for (int i = 0; i < 5; ++i) {
    double denom = 0;
    for (int k = 0; k < 5; ++k)
      if (k != i) denom += std::exp((zn[i] * zn[k]).sum().item<double>() / tau);
    double sum = 0;
    int npos = 0;
    for (int j = 0; j < 5; ++j)
      if (j != i && y[j].item<int64_t>() == y[i].item<int64_t>()) {
        sum += (zn[i] * zn[j]).sum().item<double>() / tau - std::log(denom + 1e-8);
        ++npos;
      }
    total += npos ? -sum / npos : 0.0;
  }
  EXPECT_NEAR(D(SupConLoss(z, y, tau)), total / 5, 1e-9);
}

TEST(Losses, SupConFiniteForABatchOfOneAndNoPositives) {
  // A last batch of one row (or a batch where every label is distinct) has no positive pair: the loss is 0 and its
  // gradient finite. The batch-of-one case used to be NaN (max over an all −∞ row).
  auto one = torch::randn({1, 4}, torch::kDouble).requires_grad_(true);
  auto l1 = SupConLoss(one, torch::tensor({2}, torch::kLong), 0.07);
  EXPECT_EQ(D(l1), 0.0);
  l1.backward();
  EXPECT_TRUE(torch::isfinite(one.grad()).all().item<bool>());
  auto distinct = torch::randn({3, 4}, torch::kDouble).requires_grad_(true);
  auto l3 = SupConLoss(distinct, torch::tensor({0, 1, 2}, torch::kLong), 0.01);
  EXPECT_EQ(D(l3), 0.0);
  l3.backward();
  EXPECT_TRUE(torch::isfinite(distinct.grad()).all().item<bool>());
}

TEST(Losses, MiclSymmetricPlusSameLabelTerm) {
  torch::manual_seed(6);
  auto t = torch::randn({4, 3}, torch::kDouble), a = torch::randn({4, 3}, torch::kDouble);
  auto y = torch::tensor({1, 0, 1, 1}, torch::kLong);
  const double tau = 0.07, w = 0.1;
  auto tn = Normalize(t), an = Normalize(a);
  double s[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) s[i][j] = (tn[i] * an[j]).sum().item<double>() / tau;
  double row = 0, col = 0;
  for (int i = 0; i < 4; ++i) {
    double zr = 0, zc = 0;
    for (int j = 0; j < 4; ++j) {
      zr += std::exp(s[i][j]);
      zc += std::exp(s[j][i]);
    }
    row += -(s[i][i] - std::log(zr));
    col += -(s[i][i] - std::log(zc));
  }
  double same = 0;
  int n = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      if (i != j && y[i].item<int64_t>() == y[j].item<int64_t>()) {
        same += s[i][j];
        ++n;
      }
  const double expect = 0.5 * (row / 4 + col / 4) + w * (-same / n);
  EXPECT_NEAR(D(MiclLoss(t, a, y, tau, w)), expect, 1e-8);
  EXPECT_NEAR(D(MiclLoss(t, a, torch::Tensor(), tau, w)), 0.5 * (row / 4 + col / 4), 1e-8);
}

TEST(Losses, VadMseLooksUpTheTargetTable) {
  auto table = torch::tensor({{0.1, 0.2, 0.3}, {-0.5, 0.5, 0.0}}, torch::kDouble);
  auto pred = torch::tensor({{0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}}, torch::kDouble);
  auto y = torch::tensor({1, 0}, torch::kLong);
  const double expect = (0.25 + 0.25 + 0.0 + 0.81 + 0.64 + 0.49) / 6.0;
  EXPECT_NEAR(D(VadMse(pred, table, y)), expect, 1e-12);
}

// A pack's losses on a GPU: PackedCrossEntropy equals CrossEntropy member by member (class weights or none,
// label smoothing or none), values and gradients, up to float rounding.
TEST(Losses, PackedCrossEntropyEqualsCrossEntropyPerMember) {
  torch::manual_seed(7);
  const int64_t m = 4, n = 9, c = 5;
  torch::Tensor x = torch::randn({m, n, c}).requires_grad_(true);
  torch::Tensor y = torch::randint(0, c, {m, n}, torch::kLong);
  std::vector<torch::Tensor> w = {torch::Tensor(), torch::rand({c}) + 0.1, torch::Tensor(), torch::rand({c}) + 0.5};
  const std::vector<float> eps = {0.0f, 0.0f, 0.1f, 0.2f};
  torch::Tensor wm = torch::ones({m, c});
  for (int64_t j = 0; j < m; ++j)
    if (w[j].defined()) wm[j].copy_(w[j]);
  torch::Tensor packed = PackedCrossEntropy(x, y, wm, torch::tensor(eps));
  ASSERT_EQ(packed.sizes(), (std::vector<int64_t>{m}));
  packed.sum().backward();
  torch::Tensor g_packed = x.grad().clone();
  x.mutable_grad() = torch::Tensor();
  for (int64_t j = 0; j < m; ++j) {
    torch::Tensor alone = CrossEntropy(x[j], y[j], w[j], eps[static_cast<size_t>(j)]);
    EXPECT_NEAR(packed[j].item<double>(), alone.item<double>(), 1e-6) << "member " << j;
    alone.backward();
  }
  EXPECT_TRUE(torch::allclose(g_packed, x.grad(), 1e-5, 1e-7)) << (g_packed - x.grad()).abs().max().item<double>();
}

// RowNormalize / RowCosineSimilarity against F::normalize / F::cosine_similarity, bitwise, in a graph shaped as
// GloMER's loss: t and a come out of nodes (so autograd sums their gradients in an input buffer) and have other
// uses before and after the normalisations, NT-Xent's product hands one normalised operand a transposed
// gradient, one row is zero and one so small that its squared norm is below the cosine's clamp (eps² = 1e-16).
struct RowNormGraph {
  torch::Tensor loss, terms;
  std::vector<torch::Tensor> grads;
};

RowNormGraph BuildRowNormGraph(bool fused, int64_t n, int64_t d, int64_t pd, bool same_operands) {
  torch::manual_seed(7);
  auto xt = torch::randn({n, d}).requires_grad_(true);
  auto xa = torch::randn({n, d}).requires_grad_(true);
  auto wt = (torch::randn({d, d}) / std::sqrt(static_cast<double>(d))).requires_grad_(true);
  auto wp = (torch::randn({d, pd}) / std::sqrt(static_cast<double>(d))).requires_grad_(true);
  auto t = torch::tanh(xt) * 0.5 + xt.mm(wt);
  auto a = same_operands ? t : xa.mm(wt) - xa * 0.25;
  {
    torch::NoGradGuard ng;  // row 0 of the leaves' images: zero; row 1: a squared norm under 1e-16
    if (n > 2) {
      t.index_put_({0}, 0.0);
      t.index_put_({1}, 0.0);
      t.index_put_({1, 3}, 3e-9);
    }
  }
  auto pt = torch::relu(t.mm(wp)), pa = torch::relu(a.mm(wp));
  auto norm = [&](const torch::Tensor& x) {
    return fused ? RowNormalize(x) : F::normalize(x, F::NormalizeFuncOptions().dim(1));
  };
  auto cosine = [&](const torch::Tensor& x, const torch::Tensor& y) {
    return fused ? RowCosineSimilarity(x, y) : F::cosine_similarity(x, y, F::CosineSimilarityFuncOptions().dim(1));
  };
  auto first_use = (t * a).sum(1).mean();
  auto s = torch::matmul(norm(pt), norm(pa).t()) / 0.1;
  auto ntx = F::cross_entropy(s, torch::arange(n, torch::kLong));
  auto div = (norm(t) - norm(a)).norm(2, 1).mean();
  auto cons = 1.0 - cosine(t, a).mean();
  auto last_use = torch::cat({t, a}, 1).pow(2).mean();
  RowNormGraph g;
  g.terms = torch::stack({first_use, ntx, div, cons, last_use});
  g.loss = first_use + 0.5 * ntx + 0.1 * (-div + cons) + last_use;
  g.loss.backward();
  for (auto* p : {&xt, &xa, &wt, &wp}) g.grads.push_back(p->grad().defined() ? p->grad() : torch::zeros({1}));
  return g;
}

TEST(RowNorm, NormalizeAndCosineEqualTorchsBitwiseInAGlomerShapedGraph) {
  for (bool same : {false, true}) {
    for (auto [n, d, pd] : {std::tuple<int64_t, int64_t, int64_t>{128, 512, 128}, {5, 7, 3}, {33, 100, 17}}) {
      SCOPED_TRACE("n " + std::to_string(n) + ", d " + std::to_string(d) + (same ? ", one operand" : ""));
      auto ref = BuildRowNormGraph(false, n, d, pd, same);
      auto got = BuildRowNormGraph(true, n, d, pd, same);
      EXPECT_TRUE(torch::equal(ref.terms, got.terms)) << ref.terms << got.terms;
      ASSERT_EQ(ref.grads.size(), got.grads.size());
      for (size_t i = 0; i < ref.grads.size(); ++i) {
        EXPECT_TRUE(torch::equal(ref.grads[i], got.grads[i]))
            << "gradient " << i << ": largest difference " << (ref.grads[i] - got.grads[i]).abs().max().item<double>();
      }
    }
  }
}

TEST(RowNorm, EachGradientPathCounts) {
  // Guards against a fused backward that drops a path: the norm's gradient and the clamp's mask change the result.
  torch::manual_seed(3);
  auto x = torch::randn({6, 9}).requires_grad_(true);
  auto c = torch::randn({6, 9});
  (RowNormalize(x * 1.0) * c).sum().backward();
  auto fused = x.grad().clone();
  x.mutable_grad().reset();
  (((x * 1.0) / x.norm(2, 1, true).detach()) * c).sum().backward();  // without the norm's gradient
  EXPECT_FALSE(torch::equal(fused, x.grad()));
  x.mutable_grad().reset();
  (F::normalize(x * 1.0, F::NormalizeFuncOptions().dim(1)) * c).sum().backward();
  EXPECT_TRUE(torch::equal(fused, x.grad()));
  // Without a gradient both fall back to torch's own ops: the same values.
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(RowNormalize(x), F::normalize(x, F::NormalizeFuncOptions().dim(1))));
  EXPECT_TRUE(torch::equal(RowCosineSimilarity(x, c), F::cosine_similarity(x, c, F::CosineSimilarityFuncOptions().dim(1))));
}

}  // namespace
}  // namespace emosweep::models
