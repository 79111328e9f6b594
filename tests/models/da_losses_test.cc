// Domain-adaptation losses against direct computations, the reversed gradient included.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "models/da_losses.h"

namespace emosweep::models {
namespace {

double Sq(const torch::Tensor& x, int64_t i, const torch::Tensor& y, int64_t j) {
  return (x[i] - y[j]).pow(2).sum().item<double>();
}

std::vector<std::vector<double>> Cov(const torch::Tensor& f) {
  const int64_t n = f.size(0), d = f.size(1);
  std::vector<double> mu(d, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) mu[k] += f[i][k].item<double>() / n;
  std::vector<std::vector<double>> c(d, std::vector<double>(d, 0));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = 0; b < d; ++b)
        c[a][b] += (f[i][a].item<double>() - mu[a]) * (f[i][b].item<double>() - mu[b]) / (n - 1);
  return c;
}

TEST(DaLosses, GradientReversalForwardIdentityBackwardNegated) {
  auto x = torch::randn({3, 4}, torch::kDouble).requires_grad_(true);
  auto up = torch::randn({3, 4}, torch::kDouble);
  auto y = GradientReversal(x, 0.7);
  EXPECT_TRUE(torch::equal(y, x));
  (y * up).sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), -0.7 * up, 1e-12, 1e-12));
}

TEST(DaLosses, GrlSchedules) {
  EXPECT_NEAR(GrlLambdaGanin(0, 100), 0.0, 1e-12);
  EXPECT_NEAR(GrlLambdaGanin(50, 100), 2.0 / (1.0 + std::exp(-5.0)) - 1.0, 1e-12);
  EXPECT_NEAR(GrlLambdaTllib(500), 2.0 / (1.0 + std::exp(-0.5)) - 1.0, 1e-12);
  EXPECT_NEAR(GrlLambdaTllib(0), 0.0, 1e-12);
  EXPECT_GT(GrlLambdaTllib(100000), 0.999);
}

TEST(DaLosses, MmdRbfBiasedDiagonalsIncludedTruncated) {
  torch::manual_seed(7);
  auto s = torch::randn({5, 3}, torch::kDouble), t = torch::randn({4, 3}, torch::kDouble) + 0.5;
  const double g = 1.0 / 3.0;
  const int n = 4;  // source truncated to the target's 4 rows
  double kss = 0, ktt = 0, kst = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      kss += std::exp(-g * Sq(s, i, s, j));
      ktt += std::exp(-g * Sq(t, i, t, j));
      kst += std::exp(-g * Sq(s, i, t, j));
    }
  const double expect = (kss + ktt - 2 * kst) / (n * n);
  EXPECT_NEAR(MmdRbf(s, t, 0.0).item<double>(), expect, 1e-10);
  EXPECT_NEAR(MmdRbf(s, t, g).item<double>(), expect, 1e-10);
}

TEST(DaLosses, MultiKernelMmdLinearAndQuadratic) {
  torch::manual_seed(8);
  const int b = 4;
  auto s = torch::randn({b, 3}, torch::kDouble), t = torch::randn({b, 3}, torch::kDouble) * 2;
  auto x = torch::cat({s, t});
  std::vector<double> mult = {0.125, 0.25, 0.5, 1.0, 2.0};
  double mean_d2 = 0;
  for (int i = 0; i < 2 * b; ++i)
    for (int j = 0; j < 2 * b; ++j) mean_d2 += Sq(x, i, x, j) / (4.0 * b * b);
  auto k = [&](int i, int j) {
    double v = 0;
    for (double m : mult) v += std::exp(-Sq(x, i, x, j) / (2 * m * mean_d2));
    return v;
  };
  double lin = 0;
  for (int i = 0; i < b; ++i) {
    const int j = (i + 1) % b;
    lin += (k(i, j) + k(i + b, j + b) - k(i, j + b) - k(j, i + b)) / b;
  }
  lin += 2.0 / (b - 1);
  double quad = 0;
  for (int i = 0; i < b; ++i)
    for (int j = 0; j < b; ++j) {
      if (i != j) quad += (k(i, j) + k(i + b, j + b)) / (b * (b - 1.0));
      quad -= (k(i, j + b) + k(i + b, j)) / (b * b);
    }
  quad += 2.0 / (b - 1);
  EXPECT_NEAR(MkMmd(s, t, mult, true).item<double>(), lin, 1e-9);
  EXPECT_NEAR(MkMmd(s, t, mult, false).item<double>(), quad, 1e-9);
}

TEST(DaLosses, CoralDeepAndMeanCov) {
  torch::manual_seed(9);
  auto s = torch::randn({6, 3}, torch::kDouble), t = torch::randn({5, 3}, torch::kDouble) * 1.5 + 0.3;
  auto cs = Cov(s), ct = Cov(t);
  double fro = 0;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) fro += std::pow(cs[a][b] - ct[a][b], 2);
  EXPECT_NEAR(CoralDeep(s, t).item<double>(), fro / (4 * 9), 1e-10);
  double dmu = 0;
  for (int a = 0; a < 3; ++a) dmu += std::pow(s.select(1, a).mean().item<double>() - t.select(1, a).mean().item<double>(), 2);
  EXPECT_NEAR(CoralMeanCov(s, t).item<double>(), dmu / 3 + fro / 9, 1e-10);
}

TEST(DaLosses, DannAdapterSeedFormAndReversedFeatureGradient) {
  auto r = MakeDomainAdapter({{"variant", "dann_ganin"}, {"weight", 0.5}}, 6);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto& ad = **r;
  EXPECT_TRUE(ad.needs_target_grad());
  EXPECT_FALSE(ad.parameters().empty());
  ad.eval();  // no dropout: compare with a direct evaluation of the same discriminator
  auto fs = torch::randn({4, 6}).requires_grad_(true), ft = torch::randn({3, 6}).requires_grad_(true);
  LossContext ctx;
  ctx.epoch = 3;
  ctx.num_epochs = 10;
  auto terms = ad.Loss(fs, ft, ctx);
  const double lambda = GrlLambdaGanin(3, 10);
  EXPECT_NEAR(terms.parts.at("grl_lambda").item<double>(), lambda, 1e-6);
  auto disc = ad.named_children()["discriminator"];
  auto d = std::dynamic_pointer_cast<DomainDiscriminatorImpl>(disc);
  ASSERT_TRUE(d);
  auto ls = torch::log_sigmoid(d->forward(fs)), lt = torch::log_sigmoid(d->forward(ft));
  auto l1s = torch::log_sigmoid(-d->forward(fs));
  // Seed: BCE(source, 0) + BCE(target, 1), each a mean.
  const double expect = -l1s.mean().item<double>() - lt.mean().item<double>();
  EXPECT_NEAR(terms.parts.at("da").item<double>(), expect, 1e-5);
  EXPECT_NEAR(terms.total.item<double>(), 0.5 * expect, 1e-5);
  (void)ls;
  // The feature gradient through the GRL is −λ times the gradient without it.
  terms.total.backward();
  auto fs2 = fs.detach().clone().requires_grad_(true);
  auto direct = 0.5 * torch::nn::functional::binary_cross_entropy_with_logits(
                          d->forward(fs2), torch::zeros({4, 1}));
  direct.backward();
  EXPECT_TRUE(torch::allclose(fs.grad(), -lambda * fs2.grad(), 1e-5, 1e-7));
}

TEST(DaLosses, TllibFormAndStatAdapters) {
  auto r = MakeDomainAdapter({{"variant", "dann_tllib"}}, 5);
  ASSERT_TRUE(r.ok());
  (*r)->eval();
  auto fs = torch::randn({4, 5}), ft = torch::randn({4, 5});
  LossContext ctx;
  ctx.step = 250;
  auto terms = (*r)->Loss(fs, ft, ctx);
  EXPECT_NEAR(terms.parts.at("grl_lambda").item<double>(), GrlLambdaTllib(250), 1e-6);
  auto d = std::dynamic_pointer_cast<DomainDiscriminatorImpl>((*r)->named_children()["discriminator"]);
  const double expect =
      0.5 * (-torch::log_sigmoid(d->forward(fs)).mean().item<double>() - torch::log_sigmoid(-d->forward(ft)).mean().item<double>());
  EXPECT_NEAR(terms.parts.at("da").item<double>(), expect, 1e-5);

  auto m = MakeDomainAdapter({{"variant", "mmd_rbf"}, {"weight", 0.2}}, 5);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE((*m)->parameters().empty());
  EXPECT_NEAR((*m)->Loss(fs, ft, ctx).total.item<double>(), 0.2 * MmdRbf(fs, ft, 0.2).item<double>(), 1e-6);
  auto c = MakeDomainAdapter({{"variant", "coral_mean_cov"}}, 5);
  EXPECT_NEAR((*c)->Loss(fs, ft, ctx).parts.at("da").item<double>(), CoralMeanCov(fs, ft).item<double>(), 1e-7);
  EXPECT_FALSE(MakeDomainAdapter({{"variant", "coral"}}, 5).ok());
  EXPECT_FALSE(MakeDomainAdapter(nlohmann::json::object(), 5).ok());
  EXPECT_FALSE(MakeDomainAdapter({{"variant", "mmd_rbf"}}, 0).ok());
}

TEST(DaLosses, GrlHorizonInStepsEpochsOrAFractionOfTheRun) {
  // A 7-epoch run of 8 steps per epoch (56 steps), as the quick start's DA jobs.
  LossContext ctx;
  ctx.num_epochs = 7;
  ctx.steps_per_epoch = 8;
  ctx.step = 56;
  auto fs = torch::randn({4, 5}), ft = torch::randn({4, 5});
  auto lambda_of = [&](const nlohmann::json& cfg) {
    auto a = MakeDomainAdapter(cfg, 5);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    (*a)->Loss(fs, ft, ctx);
    return (*a)->last_lambda();
  };
  // dann_tllib: TLlib's N = 1000 steps gives 0.028 at the run's end; half the run as horizon gives 2/(1+e^-2)-1.
  EXPECT_NEAR(lambda_of({{"variant", "dann_tllib"}}), GrlLambdaTllib(56), 1e-12);
  EXPECT_LT(lambda_of({{"variant", "dann_tllib"}}), 0.03);
  const double half = 2.0 / (1.0 + std::exp(-2.0)) - 1.0;
  EXPECT_NEAR(lambda_of({{"variant", "dann_tllib"}, {"grl_horizon", "0.5 run"}}), half, 1e-12);
  EXPECT_NEAR(lambda_of({{"variant", "dann_tllib"}, {"grl_horizon", "28 steps"}}), half, 1e-12);
  EXPECT_NEAR(lambda_of({{"variant", "dann_tllib"}, {"grl_horizon", "3.5 epochs"}}), half, 1e-12);
  // dann_ganin, epoch 2 (16 steps done): native p = 2/7; horizon 4 epochs: p = 0.5; 1 epoch: p = 1 (clipped).
  ctx.epoch = 2;
  EXPECT_NEAR(lambda_of({{"variant", "dann_ganin"}}), GrlLambdaGanin(2, 7), 1e-12);
  EXPECT_NEAR(lambda_of({{"variant", "dann_ganin"}, {"grl_horizon", "4 epochs"}}),
              2.0 / (1.0 + std::exp(-5.0)) - 1.0, 1e-12);
  EXPECT_NEAR(lambda_of({{"variant", "dann_ganin"}, {"grl_horizon", "1 epochs"}, {"lambda_max", 0.5}}),
              0.5 * (2.0 / (1.0 + std::exp(-10.0)) - 1.0), 1e-12);
  for (const char* bad : {"1000", "steps", "-3 steps", "2 weeks", "0 run", "nan epochs"})
    EXPECT_FALSE(MakeDomainAdapter({{"variant", "dann_tllib"}, {"grl_horizon", bad}}, 5).ok()) << bad;
}

TEST(DaLosses, DannReportsTheDiscriminatorAccuracy) {
  auto r = MakeDomainAdapter({{"variant", "dann_tllib"}}, 3);
  ASSERT_TRUE(r.ok());
  (*r)->eval();
  auto d = std::dynamic_pointer_cast<DomainDiscriminatorImpl>((*r)->named_children()["discriminator"]);
  auto fs = torch::randn({6, 3}), ft = torch::randn({5, 3});
  LossContext ctx;
  auto terms = (*r)->Loss(fs, ft, ctx);
  // TLlib form: source label 1 (logit > 0 is right), target label 0.
  const double expect = 0.5 * ((d->forward(fs) > 0).to(torch::kFloat).mean().item<double>() +
                               (d->forward(ft) <= 0).to(torch::kFloat).mean().item<double>());
  EXPECT_NEAR(terms.parts.at("disc_acc").item<double>(), expect, 1e-6);
  EXPECT_GT((*r)->lambda_max(), 0.0);
  auto m = MakeDomainAdapter({{"variant", "mmd_rbf"}}, 3);
  EXPECT_EQ((*m)->lambda_max(), 0.0);  // no schedule: never warned about
}

TEST(DaLosses, TooSmallBatchesAreCheckedNotNaN) {
  auto one = torch::randn({1, 3}), two = torch::randn({2, 3});
  EXPECT_THROW(CoralDeep(one, two), c10::Error);
  EXPECT_THROW(CoralMeanCov(two, one), c10::Error);
  EXPECT_THROW(MkMmd(one, two, {1.0}, true), c10::Error);
  EXPECT_THROW(MmdRbf(torch::randn({0, 3}), two, 0.0), c10::Error);
  EXPECT_TRUE(std::isfinite(CoralDeep(two, two * 2).item<double>()));
}

}  // namespace
}  // namespace emosweep::models
