// Report: one self-contained HTML file with the table and the SVG plots.
#include "orchestrator/report.h"

#include <gtest/gtest.h>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/hand_ledger.h"

namespace emosweep::orchestrator {
namespace {

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(Report, IsSelfContainedAndHoldsTableHeatmapConfusionsAndCurves) {
  auto h = testing::MakeHandLedger(testing::TestDir() + "/l.db");
  auto html = BuildReport(h.protocol, h.ledger.get(), {"hand.db"});
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  const std::string& s = *html;
  EXPECT_EQ(s.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(Count(s, "<svg"), Count(s, "</svg>"));
  EXPECT_EQ(Count(s, "src="), 0u) << "no external images or scripts";
  EXPECT_EQ(Count(s, "<script"), 0u);
  EXPECT_EQ(Count(s, "<link"), 0u);
  EXPECT_EQ(Count(s, "http"), Count(s, "http://www.w3.org/2000/svg")) << "only the SVG namespace is a URL";
  EXPECT_NE(s.find("<b>90.1 ± 1.4</b>"), std::string::npos) << "the table with the best cell bold";
  EXPECT_NE(s.find("loco_ua: mean UA"), std::string::npos) << "table heatmap";
  EXPECT_NE(s.find("fill=\"url(#hatch)\""), std::string::npos) << "the missing cell is hatched, not zero";
  EXPECT_EQ(Count(s, "aria-label=\"good (5 runs, &#39;test&#39;)\""), 1u) << "confusion matrix of row good, both columns";
  EXPECT_EQ(Count(s, "aria-label=\"good: mean of 5 runs\""), 1u) << "learning curve of row good";
  EXPECT_EQ(Count(s, "aria-label=\"mid (3 runs, &#39;test&#39;)\""), 1u);
  EXPECT_NE(s.find("Reproduction check"), std::string::npos);
  EXPECT_NE(s.find("8 done"), std::string::npos);
  EXPECT_NE(s.find("4 pending"), std::string::npos);
}

TEST(Report, FewShotColumnsBecomeACurveWithSpreadBars) {
  auto h = testing::MakeHandLedger(testing::TestDir() + "/l.db");
  auto& spec = h.protocol.tables[0];
  spec.columns = "budget";
  for (auto& j : h.protocol.jobs) j.attrs["budget"] = j.attrs["target"] == "emodb" ? "10%" : "50%";
  auto html = BuildReport(h.protocol, h.ledger.get(), {"hand.db"});
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("UA by label budget (bars: std)"), std::string::npos);
  EXPECT_NE(html->find("Few-shot curves"), std::string::npos);
  EXPECT_NE(html->find("<path d=\"M"), std::string::npos);
}

}  // namespace
}  // namespace emosweep::orchestrator
