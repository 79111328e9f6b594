// Metrics against hand-computed cases, including absent classes.
#include "jobs/metrics.h"

#include <cmath>

#include <gtest/gtest.h>

namespace emosweep::jobs {
namespace {

TEST(Metrics, HandComputedFourClassesOneAbsent) {
  // confusion rows (truth) 0: [2,1,0], 1: [0,1,1], 2: [0,0,1]; class 3 never occurs.
  auto m = ComputeMetrics({0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2}, 4);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->n, 6);
  EXPECT_NEAR(m->wa, 4.0 / 6, 1e-12);
  EXPECT_NEAR(m->ua, (2.0 / 3 + 0.5 + 1.0) / 3, 1e-12);
  EXPECT_NEAR(m->macro_f1, (0.8 + 0.5 + 2.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(m->weighted_f1, (0.8 * 3 + 0.5 * 2 + 2.0 / 3) / 6, 1e-12);
  ASSERT_EQ(m->per_class_recall.size(), 4u);
  EXPECT_NEAR(m->per_class_recall[0], 2.0 / 3, 1e-12);
  EXPECT_TRUE(std::isnan(m->per_class_recall[3]));
  EXPECT_EQ(m->confusion[0][1], 1);
  EXPECT_EQ(m->confusion[1][2], 1);
  nlohmann::json j = m->ToJson();
  EXPECT_TRUE(j["per_class_recall"][3].is_null());
  EXPECT_EQ(j["confusion"][0][0], 2);
}

TEST(Metrics, ClassOnlyPredictedLowersF1NotUa) {
  // sklearn: balanced_accuracy_score = 0.75, f1_score(average="macro") = (2/3 + 1 + 0) / 3.
  auto m = ComputeMetrics({0, 0, 1, 1}, {0, 2, 1, 1}, 3);
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR(m->ua, 0.75, 1e-12);
  EXPECT_NEAR(m->macro_f1, (2.0 / 3 + 1.0) / 3, 1e-12);
  EXPECT_NEAR(m->weighted_f1, (2.0 / 3 * 2 + 2) / 4, 1e-12);
  EXPECT_TRUE(std::isnan(m->per_class_recall[2]));
}

TEST(Metrics, PerfectAndAllWrong) {
  auto p = ComputeMetrics({0, 1, 2, 1}, {0, 1, 2, 1}, 3);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->ua, 1.0);
  EXPECT_EQ(p->wa, 1.0);
  EXPECT_EQ(p->macro_f1, 1.0);
  auto w = ComputeMetrics({0, 0, 1}, {1, 1, 0}, 2);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->ua, 0.0);
  EXPECT_EQ(w->macro_f1, 0.0);
}

TEST(Metrics, UaDiffersFromWaOnImbalance) {
  // 8 of class 0 all right, 2 of class 1 all wrong: WA 0.8, UA 0.5.
  std::vector<int> y(10, 0), p(10, 0);
  y[8] = y[9] = 1;
  auto m = ComputeMetrics(y, p, 2);
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR(m->wa, 0.8, 1e-12);
  EXPECT_NEAR(m->ua, 0.5, 1e-12);
}

TEST(Metrics, RejectsMismatchedLengths) {
  auto m = ComputeMetrics({0, 1}, {0}, 2);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("2 labels but 1 predictions"), std::string::npos);
}

TEST(Metrics, RejectsOutOfRangeLabel) {
  auto m = ComputeMetrics({0, 3}, {0, 1}, 2);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("row 1"), std::string::npos) << m.status().message();
}

TEST(Metrics, FromConfusionEqualsFromVectors) {
  auto m = ComputeMetrics({0, 1, 1, 2, 2, 2}, {0, 1, 2, 2, 0, 2}, 3);
  ASSERT_TRUE(m.ok());
  ClassificationMetrics c = MetricsFromConfusion(m->confusion);
  EXPECT_EQ(c.ua, m->ua);
  EXPECT_EQ(c.macro_f1, m->macro_f1);
  EXPECT_EQ(c.n, 6);
}

}  // namespace
}  // namespace emosweep::jobs
