// Report: one self-contained HTML file with the table and the SVG plots.
#include "orchestrator/report.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/files.h"
#include "orchestrator/runner.h"

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
  // To look at it: EMOSWEEP_REPORT_OUT=/tmp/r.html, then open or screenshot it.
  if (const char* out = std::getenv("EMOSWEEP_REPORT_OUT")) ASSERT_TRUE(WriteFileAtomic(out, s).ok());
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

namespace emosweep::orchestrator {
namespace {

// A sweep of every plotted kind, run with the fake executor: LOCO table,
// cross-corpus matrix, few-shot budgets. EMOSWEEP_REPORT_OUT writes the page.
TEST(Report, CrossCorpusMatricesAndFewShotCurvesFromAFakeSweep) {
  protocols::Protocol p;
  p.name = "demo";
  p.path = "demo.toml";
  p.description = "fake executor sweep used to look at the report";
  const std::vector<std::string> corpora = {"emodb", "ravdess", "emovo", "tess"};
  for (const std::string model : {"good", "mid", "base"})
    for (const auto& c : corpora)
      for (uint64_t seed = 1; seed <= 3; ++seed) p.jobs.push_back(testing::MakeJob("loco", model, c, seed));
  for (const std::string model : {"good", "mid"})
    for (const auto& src : corpora)
      for (const auto& tgt : corpora)
        for (uint64_t seed = 1; seed <= 2; ++seed) {
          auto j = testing::MakeJob("xc", model, src + ">" + tgt, seed);
          j.attrs["kind"] = "cross_corpus";
          j.attrs["source"] = src;
          j.attrs["target"] = tgt;
          p.jobs.push_back(j);
        }
  for (const std::string model : {"good", "mid"})
    for (const std::string budget : {"1%", "5%", "10%", "50%"})
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        auto j = testing::MakeJob("fewshot", model, "budget" + budget, seed);
        j.attrs["kind"] = "fewshot";
        j.attrs["budget"] = budget;
        p.jobs.push_back(j);
      }
  protocols::TableSpec t;
  t.name = "loco";
  t.experiment = "loco";
  t.rows = "model";
  t.columns = "target";
  t.metrics = {"ua", "macro_f1"};
  p.tables.push_back(t);
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/l.db")).value();
  testing::FakeExecutor fake;
  fake.fail_always.insert(p.jobs[5].spec.id);  // one missing run shows as † in the table
  Executor exec = [&fake](const worker::JobSpec& s, const worker::JobContext& c) { return fake(s, c); };
  RunOptions o;
  o.progress = false;
  o.scheduler.max_attempts = 1;
  ASSERT_TRUE(RunSweep(p, ledger.get(), exec, o).ok());
  auto html = BuildReport(p, ledger.get(), {"demo.db"});
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  if (const char* out = std::getenv("EMOSWEEP_REPORT_OUT")) ASSERT_TRUE(WriteFileAtomic(out, *html).ok());
  EXPECT_NE(html->find("Cross-corpus matrices"), std::string::npos);
  EXPECT_EQ(Count(*html, "train (source)"), 2u) << "one matrix per model";
  EXPECT_NE(html->find("Few-shot curves"), std::string::npos);
  EXPECT_NE(html->find("1 failed"), std::string::npos);
  EXPECT_NE(html->find("simulated crash"), std::string::npos) << "the failure is listed with its error";
}

}  // namespace
}  // namespace emosweep::orchestrator
