// DA diagnostics and unsupervised selection criteria against direct computations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "worker/da_diagnostics.h"
#include "worker/da_selection.h"

namespace emosweep::worker {
namespace {

TEST(DaDiagnostics, LinearMmdIsTheSquaredMeanDistance) {
  auto s = torch::tensor({{0.0, 0.0}, {2.0, 2.0}}, torch::kDouble);  // mean (1, 1)
  auto t = torch::tensor({{4.0, 1.0}, {4.0, 3.0}, {4.0, 2.0}}, torch::kDouble);  // mean (4, 2)
  EXPECT_NEAR(LinearMmd(s, t), 9.0 + 1.0, 1e-12);
  EXPECT_NEAR(LinearMmd(s, s), 0.0, 1e-12);
}

TEST(DaDiagnostics, PredictionStatsSeparateACollapseFromAConfidentSpread) {
  // Confident and spread over 2 of 3 classes: IM = ln 2 − mean H.
  auto spread = torch::tensor({{0.9, 0.05, 0.05}, {0.05, 0.9, 0.05}}, torch::kDouble);
  PredictionStats a = TargetPredictionStats(spread);
  ASSERT_EQ(a.class_share.size(), 3u);
  EXPECT_NEAR(a.class_share[0], 0.5, 1e-12);
  EXPECT_NEAR(a.class_share[2], 0.0, 1e-12);
  const double h = -(0.9 * std::log(0.9) + 2 * 0.05 * std::log(0.05));
  EXPECT_NEAR(a.mean_entropy, h, 1e-9);
  const double hm = -(2 * 0.475 * std::log(0.475) + 0.05 * std::log(0.05));
  EXPECT_NEAR(a.im, hm - h, 1e-9);
  // The same confidence, all on one class: lower entropy is no help, IM is 0 and the share is 1.
  auto collapsed = torch::tensor({{0.9, 0.05, 0.05}, {0.9, 0.05, 0.05}}, torch::kDouble);
  PredictionStats b = TargetPredictionStats(collapsed);
  EXPECT_NEAR(b.max_share, 1.0, 1e-12);
  EXPECT_EQ(b.max_class, 0);
  EXPECT_NEAR(b.im, 0.0, 1e-9);
  EXPECT_GT(a.im, b.im + 0.4);
}

TEST(DaDiagnostics, SoftNeighborhoodDensityByHand) {
  auto p = torch::tensor({{1.0, 0.0}, {0.6, 0.8}, {0.0, 1.0}}, torch::kDouble);  // already unit rows
  const double tau = 0.5;
  double expect = 0;
  for (int i = 0; i < 3; ++i) {
    double z = 0, e[3];
    for (int j = 0; j < 3; ++j) {
      e[j] = j == i ? 0.0 : std::exp((p[i] * p[j]).sum().item<double>() / tau);
      z += e[j];
    }
    for (int j = 0; j < 3; ++j)
      if (j != i) expect -= (e[j] / z) * std::log(e[j] / z) / 3.0;
  }
  EXPECT_NEAR(SoftNeighborhoodDensity(p, tau), expect, 1e-9);
}

TEST(DaDiagnostics, DevRiskFormulaWithControlVariate) {
  auto w = torch::tensor({0.5, 1.0, 2.0, 0.5}, torch::kDouble);
  auto l = torch::tensor({1.0, 0.2, 0.4, 3.0}, torch::kDouble);
  // By hand: wl = (0.5, 0.2, 0.8, 1.5), mean 0.75; mean w = 1.0.
  const double cov = ((0.5 - 0.75) * (-0.5) + (0.2 - 0.75) * 0 + (0.8 - 0.75) * 1.0 + (1.5 - 0.75) * (-0.5)) / 3;
  const double var = (0.25 + 0 + 1 + 0.25) / 3;
  const double eta = -cov / var;
  double got_eta = 0;
  EXPECT_NEAR(DevRisk(w, l, &got_eta), 0.75 + eta * 1.0 - eta, 1e-12);
  EXPECT_NEAR(got_eta, eta, 1e-12);
  // Constant weights: no control variate, the plain weighted mean.
  EXPECT_NEAR(DevRisk(torch::full({4}, 2.0, torch::kDouble), l, &got_eta), 2.0 * 1.15, 1e-12);
  EXPECT_EQ(got_eta, 0.0);
}

TEST(DaDiagnostics, DevWeightsTheValidationRowsThatLookLikeTheTarget) {
  // Source along x ~ N(0,1); target shifted to x ~ N(2,1). Validation rows at x = 2 (target-like) have loss 1,
  // rows at x = -2 (source-only) loss 0: the importance-weighted risk is far above the plain mean 0.5,
  // and a flipped loss pattern gives a risk far below it.
  torch::manual_seed(3);
  auto src = torch::randn({400, 1}, torch::kDouble);
  auto tgt = torch::randn({400, 1}, torch::kDouble) + 2.0;
  auto val = torch::cat({torch::full({50, 1}, 2.0, torch::kDouble), torch::full({50, 1}, -2.0, torch::kDouble)});
  auto loss_t = torch::cat({torch::ones({50}, torch::kDouble), torch::zeros({50}, torch::kDouble)});
  DevResult hard = DeepEmbeddedValidation(src, tgt, val, loss_t);
  DevResult easy = DeepEmbeddedValidation(src, tgt, val, 1.0 - loss_t);
  EXPECT_GT(hard.domain_acc, 0.75);
  EXPECT_TRUE(hard.defined) << hard.undefined_reason;
  EXPECT_GT(hard.ess, kDevMinEss);
  EXPECT_GT(hard.risk, 0.8);
  EXPECT_LT(easy.risk, 0.2);
}

TEST(DaDiagnostics, DevIsUndefinedWhenTheFeaturesSeparateTheDomains) {
  // Target 12 standard deviations away: the held-out domain classifier is perfect, the source-validation rows
  // get weights ~0 and carry no information about the target risk. DEV must say so, not return the (scaled)
  // source-validation loss.
  torch::manual_seed(4);
  auto src = torch::randn({400, 2}, torch::kDouble);
  auto tgt = torch::randn({400, 2}, torch::kDouble) + 12.0;
  auto val = torch::randn({100, 2}, torch::kDouble);
  auto loss = torch::rand({100}, torch::kDouble);
  DevResult r = DeepEmbeddedValidation(src, tgt, val, loss);
  EXPECT_FALSE(r.defined);
  EXPECT_TRUE(std::isnan(r.risk));
  EXPECT_LT(r.weight_mean, kDevMinWeightMean);
  EXPECT_NEAR(r.domain_acc, 1.0, 1e-12);
  EXPECT_NE(r.undefined_reason.find("separate the domains"), std::string::npos) << r.undefined_reason;
}

TEST(DaDiagnostics, DevIsUndefinedWhenAFewRowsCarryTheWeight) {
  // Source N(0,1), target N(3,1): the 96 validation rows near the source mean get small weights and 4 rows at the
  // target mean large ones; the mean weight is fine but the effective sample size is ~4 rows.
  torch::manual_seed(5);
  auto src = torch::randn({400, 1}, torch::kDouble);
  auto tgt = torch::randn({400, 1}, torch::kDouble) + 3.0;
  auto val = torch::cat({torch::full({96, 1}, -1.0, torch::kDouble), torch::full({4, 1}, 3.0, torch::kDouble)});
  DevResult r = DeepEmbeddedValidation(src, tgt, val, torch::ones({100}, torch::kDouble));
  EXPECT_GE(r.weight_mean, kDevMinWeightMean);
  EXPECT_LT(r.ess, kDevMinEss);
  EXPECT_FALSE(r.defined);
  EXPECT_NE(r.undefined_reason.find("effective sample size"), std::string::npos) << r.undefined_reason;
}

// im and snd on a target too small for them to vary: refused as bad input (not retried), naming the job.
TEST(DaSelection, TargetsTooSmallForImOrSndAreRefused) {
  for (auto [sel, rows, ok] : std::vector<std::tuple<const char*, int64_t, bool>>{{"im", 1, false},
                                                                                    {"im", 2, true},
                                                                                    {"snd", 1, false},
                                                                                    {"snd", 2, false},
                                                                                    {"snd", 3, true},
                                                                                    {"dev", 1, true},
                                                                                    {"source_val", 1, true}}) {
    Status s = CheckUnsupervisedTarget(sel, /*training=*/true, rows, "job abc");
    EXPECT_EQ(s.ok(), ok) << sel << " " << rows << ": " << s.ToString();
    if (!s.ok()) {
      EXPECT_TRUE(s.IsBadInput());
      EXPECT_NE(s.message().find("job abc: selection '" + std::string(sel) + "' needs at least"), std::string::npos)
          << s.message();
    }
  }
  EXPECT_TRUE(CheckUnsupervisedTarget("snd", /*training=*/false, 1, "job abc").ok()) << "an eval job selects nothing";
}

// eval_every 2: epochs 1, 3, 5 are validated (they have validation metrics beside "da"); 0, 2, 4 carry only the
// diagnostics. DEV is defined at epoch 5 alone among the validated ones (and at 0, 2, 4, which never ranked).
std::vector<EpochRecord> SparseDevCurve() {
  std::vector<EpochRecord> curve;
  for (int e = 0; e < 6; ++e) {
    EpochRecord r;
    r.epoch = e;
    const bool defined = e % 2 == 0 || e == 5;
    nlohmann::json da = {{"im", 0.1 * e}, {"target_max_share", 0.5}, {"dev_defined", defined}};
    if (defined) da["dev"] = 1.0;
    else da["dev_undefined"] = "effective sample size 4.6 < 10 rows";
    r.val_metrics = {{"da", da}};
    if (e % 2 == 1) r.val_metrics["ua"] = 0.5;
    curve.push_back(r);
  }
  return curve;
}

TEST(DaSelection, DevSaysWhenItWasDefinedAtFewValidatedEpochs) {
  const std::vector<std::string> labels = {"a", "b"};
  DaSummary s = DaWarnings(SparseDevCurve(), 5, labels, "dev", 0, 0, 60, "", true);
  ASSERT_EQ(s.warnings.size(), 1u) << s.warnings.dump();
  EXPECT_EQ(s.warnings[0]["code"], "dev_sparse");
  const std::string m = s.warnings[0]["message"];
  EXPECT_NE(m.find("defined at only 1 of 3 validated epochs"), std::string::npos) << m;
  EXPECT_NE(m.find("effective sample size 4.6 < 10 rows"), std::string::npos) << m;
  // Selected where DEV was undefined: dev_undefined, counted over the validated epochs only.
  s = DaWarnings(SparseDevCurve(), 3, labels, "dev", 0, 0, 60, "", true);
  ASSERT_EQ(s.warnings.size(), 1u) << s.warnings.dump();
  EXPECT_EQ(s.warnings[0]["code"], "dev_undefined");
  EXPECT_NE(s.warnings[0]["message"].get<std::string>().find("undefined at 2 of 3 validated epochs"),
            std::string::npos)
      << s.warnings.dump();
  // Defined at most validated epochs: no warning.
  auto curve = SparseDevCurve();
  curve[3].val_metrics["da"]["dev_defined"] = true;
  s = DaWarnings(curve, 5, labels, "dev", 0, 0, 60, "", true);
  EXPECT_TRUE(s.warnings.empty()) << s.warnings.dump();
}

}  // namespace
}  // namespace emosweep::worker
