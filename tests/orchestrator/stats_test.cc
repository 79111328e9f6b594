// Stats: summaries, Student t, metrics from predictions, paired tests.
#include "orchestrator/stats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace emosweep::orchestrator {
namespace {

TEST(Stats, SummaryUsesSampleStdAndStudentT) {
  Summary s = Summarize({90.1, 91.5, 88.7});
  EXPECT_NEAR(s.mean, 90.1, 1e-12);
  EXPECT_NEAR(s.std, 1.4, 1e-12);  // ddof = 1: sqrt((0 + 1.96 + 1.96) / 2)
  EXPECT_NEAR(s.sem, 1.4 / std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(s.ci95, 4.302652729911275 * 1.4 / std::sqrt(3.0), 1e-9);
  EXPECT_EQ(s.Spread("ci95"), s.ci95);
  Summary one = Summarize({5});
  EXPECT_EQ(one.mean, 5);
  EXPECT_TRUE(std::isnan(one.std));
  EXPECT_TRUE(std::isnan(Summarize({}).mean));
}

TEST(Stats, StudentTQuantilesMatchTables) {
  EXPECT_NEAR(StudentTQuantile(0.95, 1), 12.706204736, 1e-6);
  EXPECT_NEAR(StudentTQuantile(0.95, 2), 4.302652730, 1e-8);
  EXPECT_NEAR(StudentTQuantile(0.95, 4), 2.776445105, 1e-8);
  EXPECT_NEAR(StudentTQuantile(0.95, 30), 2.042272456, 1e-8);
  EXPECT_NEAR(StudentTQuantile(0.99, 10), 3.169272667, 1e-8);
  EXPECT_NEAR(StudentTCdf(0, 5), 0.5, 1e-12);
  EXPECT_NEAR(StudentTCdf(-2.0, 3) + StudentTCdf(2.0, 3), 1.0, 1e-12);
}

TEST(Stats, SpreadLabelsAreExplicitAndUnknownKindsRejected) {
  EXPECT_EQ(*SpreadLabel("std"), "std (ddof=1)");
  EXPECT_EQ(*SpreadLabel("sem"), "SEM");
  EXPECT_FALSE(SpreadLabel("stdev").ok());
}

TEST(Stats, MetricsFromPredictionsFollowSklearnConventions) {
  std::vector<int> labels = {0, 0, 1, 1, 2}, preds = {0, 1, 1, 1, 0};
  EXPECT_NEAR(*MetricFromPredictions("ua", labels, preds, 3), (0.5 + 1 + 0) / 3, 1e-12);
  EXPECT_NEAR(*MetricFromPredictions("wa", labels, preds, 3), 0.6, 1e-12);
  EXPECT_NEAR(*MetricFromPredictions("macro_f1", labels, preds, 3), (0.5 + 0.8 + 0) / 3, 1e-12);
  EXPECT_NEAR(*MetricFromPredictions("weighted_f1", labels, preds, 3), (0.5 * 2 + 0.8 * 2) / 5, 1e-12);
  // A class present in neither truth nor predictions does not enter UA or macro-F1.
  EXPECT_NEAR(*MetricFromPredictions("ua", labels, preds, 4), (0.5 + 1 + 0) / 3, 1e-12);
  EXPECT_FALSE(MetricFromPredictions("uar", labels, preds, 3).ok());
  EXPECT_FALSE(MetricFromPredictions("ua", labels, {0, 1}, 3).ok());
  EXPECT_FALSE(MetricFromPredictions("ua", labels, {0, 1, 1, 1, 7}, 3).ok());
}

// 200 items; A right on all, B wrong on `b_wrong` of them.
void Items(int b_wrong, std::vector<int>* labels, std::vector<int>* a, std::vector<int>* b) {
  for (int i = 0; i < 200; ++i) {
    labels->push_back(i % 4);
    a->push_back(i % 4);
    b->push_back(i < b_wrong ? (i + 1) % 4 : i % 4);
  }
}

TEST(Stats, PermutationTestSeparatesClearDifferencesFromNone) {
  std::vector<int> labels, a, b;
  Items(40, &labels, &a, &b);
  std::vector<int> group(labels.size(), 0);
  auto r = PairedTest("permutation", "wa", labels, a, b, group, 4, 999, 7);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->delta, 0.2, 1e-12);
  EXPECT_NEAR(r->p_value, 1.0 / 1000, 1e-12) << "no permutation reaches a 40-item one-sided difference";
  auto same = PairedTest("permutation", "wa", labels, a, a, group, 4, 999, 7);
  EXPECT_EQ(same->p_value, 1.0);
  // Seeded: the same call gives the same p-value; small differences give a large p.
  std::vector<int> l2, a2, b2;
  Items(2, &l2, &a2, &b2);
  auto p1 = PairedTest("permutation", "ua", l2, a2, b2, group, 4, 999, 3);
  auto p2 = PairedTest("permutation", "ua", l2, a2, b2, group, 4, 999, 3);
  EXPECT_EQ(p1->p_value, p2->p_value);
  EXPECT_GT(p1->p_value, 0.2);
}

TEST(Stats, BootstrapTestAgreesOnClearAndNullCases) {
  std::vector<int> labels, a, b;
  Items(40, &labels, &a, &b);
  std::vector<int> group(labels.size());
  for (size_t i = 0; i < group.size(); ++i) group[i] = static_cast<int>(i % 2);  // two job pairs
  auto r = PairedTest("bootstrap", "ua", labels, a, b, group, 4, 999, 11);
  ASSERT_TRUE(r.ok());
  EXPECT_LT(r->p_value, 0.01);
  auto same = PairedTest("bootstrap", "ua", labels, a, a, group, 4, 999, 11);
  EXPECT_EQ(same->p_value, 1.0);
  EXPECT_FALSE(PairedTest("ttest", "ua", labels, a, b, group, 4, 10, 1).ok());
  EXPECT_FALSE(PairedTest("bootstrap", "ua", {}, {}, {}, {}, 4, 10, 1).ok());
}

// The bold rule's test: identical non-zero differences have no spread to test (UA moves in steps of 1/N, so two
// or three runs can do this) and a non-finite value is an error, neither reads as p = 0 (helper-55's audit).
TEST(Stats, PairedTTestRefusesDifferencesWithoutSpreadAndNonFiniteValues) {
  EXPECT_NEAR(*PairedTTestP({0.9, 0.8}, {0.7, 0.7}), 1 - 2 * std::atan(3.0) / M_PI, 1e-12) << "n = 2: t = 3, df = 1";
  EXPECT_EQ(*PairedTTestP({0.5, 0.6}, {0.5, 0.6}), 1.0) << "all-zero differences";
  auto equal = PairedTTestP({75.0, 62.5}, {50.0, 37.5});
  ASSERT_FALSE(equal.ok());
  EXPECT_EQ(equal.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(PairedTTestP({0.5, NAN}, {0.4, 0.3}).ok());
  EXPECT_FALSE(PairedTTestP({0.5}, {0.4}).ok());
  // The same 1/N step (one more utterance of 127 right in each of 4 classes' mean) computed from different
  // counts differs in the last bits: still "the same", not t = 1e13 and p = 0 (helper-72).
  const double step = 100.0 / (4 * 127);
  const std::vector<double> a = {51.7 + step, 25.0 + step, 12.3 + step}, b = {51.7, 25.0, 12.3};
  ASSERT_NE(a[0] - b[0], a[1] - b[1]) << "the differences must differ in their last bits for this test";
  auto rounded = PairedTTestP(a, b);
  ASSERT_FALSE(rounded.ok()) << "p = " << *rounded;
  EXPECT_EQ(rounded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*PairedTTestP({0.1 + 0.2, 0.2 + 0.2}, {0.3, 0.4}), 1.0) << "zero up to rounding";
}

}  // namespace
}  // namespace emosweep::orchestrator
