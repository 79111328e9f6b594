// Schedules against values from PyTorch's formulas (torch/optim/lr_scheduler.py),
// evaluated by hand at chosen steps (the reference expressions are spelled out).
#include "jobs/schedule.h"

#include <cmath>

#include <gtest/gtest.h>

namespace emosweep::jobs {
namespace {

constexpr double kPi = 3.14159265358979323846;

TrainConfig Base(const std::string& kind) {
  auto c = ParseTrainConfig({{"schedule", kind}}, "test");
  EXPECT_TRUE(c.ok());
  return *c;
}

TEST(Schedule, OneCycleMatchesPyTorchSeedSetting) {
  // multimodal-ser: lr 2e-5, max_lr 2e-4, pct_start 0.1, 100 steps, div 25, final_div 1e4.
  TrainConfig c = Base("onecycle");
  c.lr = 2e-5;
  c.onecycle_pct_start = 0.1;
  Schedule s(c, 100);
  const double max_lr = 2e-4, initial = max_lr / 25, min_lr = initial / 1e4;
  auto cos_anneal = [](double a, double b, double pct) { return b + (a - b) / 2 * (std::cos(kPi * pct) + 1); };
  std::vector<double> lrs, moms;
  for (int i = 0; i < 100; ++i) {
    lrs.push_back(s.lr());
    moms.push_back(s.momentum());
    s.StepBatch();
  }
  EXPECT_NEAR(lrs[0], initial, 1e-18);
  EXPECT_NEAR(moms[0], 0.95, 1e-15);
  EXPECT_NEAR(lrs[4], cos_anneal(initial, max_lr, 4.0 / 9), 1e-18);  // phase 1 ends at 0.1*100-1 = 9
  EXPECT_NEAR(lrs[9], max_lr, 1e-18);
  EXPECT_NEAR(moms[9], 0.85, 1e-15);
  EXPECT_NEAR(lrs[54], (max_lr + min_lr) / 2, 1e-18);               // pct = 45/90
  EXPECT_NEAR(moms[54], 0.90, 1e-15);
  EXPECT_NEAR(lrs[99], min_lr, 1e-18);
  EXPECT_NEAR(moms[99], 0.95, 1e-15);
  for (int i = 1; i <= 9; ++i) EXPECT_GT(lrs[i], lrs[i - 1]);
  for (int i = 10; i < 100; ++i) EXPECT_LT(lrs[i], lrs[i - 1]);
  EXPECT_TRUE(s.cycles_momentum());
}

TEST(Schedule, PlateauReducesAfterPatienceWithRelThreshold) {
  TrainConfig c = Base("plateau");
  c.lr = 1.0;
  c.plateau_factor = 0.5;
  c.plateau_patience = 2;
  Schedule s(c, 1);
  // best 0.9 after step 2; 0.89991 = 0.9 * (1 - 1e-4) is not "better" (strict).
  for (double v : {1.0, 0.9, 0.89991, 0.95}) s.StepValidation(v);
  EXPECT_EQ(s.lr(), 1.0);  // 2 bad epochs = patience: not yet
  s.StepValidation(0.95);  // 3rd bad
  EXPECT_EQ(s.lr(), 0.5);
  s.StepValidation(0.5);   // better: reset
  for (int i = 0; i < 3; ++i) s.StepValidation(0.6);
  EXPECT_EQ(s.lr(), 0.25);
}

TEST(Schedule, PlateauMaxModeCooldownAndMinLr) {
  TrainConfig c = Base("plateau");
  c.plateau_mode = "max";
  c.lr = 1.0;
  c.plateau_factor = 0.1;
  c.plateau_patience = 0;
  c.plateau_cooldown = 1;
  c.plateau_min_lr = 0.05;
  Schedule s(c, 1);
  s.StepValidation(0.5);  // better than -inf
  EXPECT_EQ(s.lr(), 1.0);
  s.StepValidation(0.4);  // bad > 0 → reduce to 0.1, cooldown 1
  EXPECT_NEAR(s.lr(), 0.1, 1e-15);
  s.StepValidation(0.4);  // in cooldown: bad count reset
  EXPECT_NEAR(s.lr(), 0.1, 1e-15);
  s.StepValidation(0.4);  // reduce, floored at min_lr
  EXPECT_NEAR(s.lr(), 0.05, 1e-15);
  s.StepValidation(0.3);  // cooldown
  s.StepValidation(0.3);  // 0.05 - 0.05 = 0 <= eps: unchanged
  EXPECT_NEAR(s.lr(), 0.05, 1e-15);
}

TEST(Schedule, CosineAndStep) {
  TrainConfig c = Base("cosine");
  c.lr = 0.1;
  c.cosine_t_max = 10;
  c.cosine_eta_min = 0.001;
  Schedule cos(c, 1);
  for (int e = 0; e < 3; ++e) cos.StepEpoch();
  EXPECT_NEAR(cos.lr(), 0.001 + (0.1 - 0.001) * (1 + std::cos(kPi * 3 / 10)) / 2, 1e-15);
  for (int e = 3; e < 10; ++e) cos.StepEpoch();
  EXPECT_NEAR(cos.lr(), 0.001, 1e-15);

  TrainConfig d = Base("step");
  d.lr = 0.1;
  d.step_size = 3;
  d.step_gamma = 0.5;
  Schedule st(d, 1);
  std::vector<double> v;
  for (int e = 0; e < 7; ++e) {
    v.push_back(st.lr());
    st.StepEpoch();
  }
  EXPECT_EQ(v, (std::vector<double>{0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025}));
}

// specs/da-variants.md's LR row: Ganin & Lempitsky lr/(1+10p)^0.75 (p = step/total) and TLlib lr(1+γi)^−0.75.
TEST(Schedule, InvPerRunAndPerStep) {
  auto ganin = ParseTrainConfig({{"schedule", "inv"}, {"lr", 0.01}}, "test");
  ASSERT_TRUE(ganin.ok()) << ganin.status().ToString();
  Schedule g(*ganin, 200);
  EXPECT_EQ(g.lr(), 0.01);
  for (int i = 0; i < 50; ++i) g.StepBatch();
  EXPECT_NEAR(g.lr(), 0.01 / std::pow(1 + 10 * 0.25, 0.75), 1e-15);
  for (int i = 50; i < 200; ++i) g.StepBatch();
  EXPECT_NEAR(g.lr(), 0.01 / std::pow(11.0, 0.75), 1e-15);
  g.StepEpoch();  // per step only
  EXPECT_NEAR(g.lr(), 0.01 / std::pow(11.0, 0.75), 1e-15);
  auto tllib =
      ParseTrainConfig({{"schedule", "inv"}, {"lr", 0.01}, {"inv_per", "step"}, {"inv_gamma", 0.001}}, "test");
  ASSERT_TRUE(tllib.ok()) << tllib.status().ToString();
  Schedule t(*tllib, 200), resumed(*tllib, 200);
  for (int i = 0; i < 1000; ++i) t.StepBatch();  // past total_steps the value is held, as onecycle's
  EXPECT_NEAR(t.lr(), 0.01 * std::pow(1 + 0.001 * 200, -0.75), 1e-15);
  ASSERT_TRUE(resumed.LoadState(nlohmann::json::parse(t.State().dump())).ok());
  EXPECT_EQ(resumed.lr(), t.lr());
  // The keys are not in the effective config of a job with another schedule (its identity is unchanged).
  auto none = EffectiveTrainConfig({{"inv_gamma", 3.0}}, "test");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->contains("inv_gamma"));
  EXPECT_FALSE(none->contains("inv_per"));
  auto inv = EffectiveTrainConfig({{"schedule", "inv"}}, "test");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ((*inv)["inv_power"], 0.75);
  EXPECT_FALSE(ParseTrainConfig({{"schedule", "inv"}, {"inv_per", "epoch"}}, "test").ok());
}

TEST(Schedule, StateRoundTripContinuesIdentically) {
  TrainConfig c = Base("plateau");
  c.plateau_patience = 1;
  Schedule a(c, 1), b(c, 1);
  for (double v : {1.0, 2.0, 3.0}) a.StepValidation(v);
  ASSERT_TRUE(b.LoadState(nlohmann::json::parse(a.State().dump())).ok());
  for (double v : {3.0, 0.5, 0.4}) {
    a.StepValidation(v);
    b.StepValidation(v);
    EXPECT_EQ(a.lr(), b.lr());
  }
  Schedule other(Base("onecycle"), 10);
  EXPECT_FALSE(other.LoadState(a.State()).ok());
}

}  // namespace
}  // namespace emosweep::jobs
