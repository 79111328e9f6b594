// Report: one self-contained HTML file with the table and the SVG plots.
#include "orchestrator/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "core/files.h"
#include "orchestrator/runner.h"
#include "orchestrator/svg.h"
#include "orchestrator/tables.h"

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
  EXPECT_NE(s.find("fill=\"url(#hatch"), std::string::npos) << "the missing cell is hatched, not zero";
  // Columns are test corpora: one confusion matrix per row and test corpus, never pooled (issue 14, item 9).
  EXPECT_EQ(Count(s, "aria-label=\"good → emodb (3 runs, &#39;test&#39;)\""), 1u);
  EXPECT_EQ(Count(s, "aria-label=\"good → ravdess (2 runs, &#39;test&#39;)\""), 1u);
  EXPECT_EQ(Count(s, "aria-label=\"good (5 runs"), 0u) << "a matrix pooling two test corpora";
  EXPECT_EQ(Count(s, "aria-label=\"mid → emodb (3 runs, &#39;test&#39;)\""), 1u);
  // Learning curves: runs of unequal length are named, the mean stops where every run has a value,
  // and the selected epochs are marked.
  EXPECT_EQ(Count(s, "aria-label=\"good: mean of 5 runs; 1 stopped early (3-4 epochs), mean drawn up to epoch 3; "
                     "selected epoch 2-3 (median 3)\""), 1u);
  EXPECT_EQ(Count(s, "aria-label=\"mid: mean of 3 runs; selected epoch 3\""), 1u);
  EXPECT_EQ(Count(s, "<title>val loss @ 4:"), 1u) << "epoch 4: only mid's curve (good has a run without it)";
  EXPECT_GE(Count(s, "<title>selected epoch @ "), 3u);
  EXPECT_NE(s.find("Reproduction check"), std::string::npos);
  // The check prints ours as the table does, and a cell with runs missing is "incomplete", never "no".
  EXPECT_NE(s.find("<td>66.0 ± 1.4 (2/3)</td><td>66.0</td><td>+0.0</td><td class=\"warn\">incomplete</td>"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("1 with runs missing: not compared until complete"), std::string::npos);
  EXPECT_NE(s.find("8 done"), std::string::npos);
  EXPECT_NE(s.find("4 pending"), std::string::npos);
}

// A cell pooling runs whose classes come in different orders sums by class name, not by index; a run with other
// classes is left out and counted (helper-72: two experiments' matrices summed by index read "neutral predicted as
// happiness" where every run was right).
TEST(Report, ConfusionsOfRunsWithOtherClassOrdersAreSummedByName) {
  const std::vector<std::string> core = {"anger", "happiness", "neutral", "sadness"};
  const std::vector<std::string> reversed = {"sadness", "neutral", "happiness", "anger"};
  const std::vector<std::string> other = {"anger", "happiness", "neutral", "fear"};
  const std::vector<std::string> unnamed;
  // Every run right on its 16 rows a class, but one "anger" row of each run predicted as its next class.
  auto matrix = [](const std::vector<std::string>& classes) {
    nlohmann::json m = nlohmann::json::array();
    for (size_t a = 0; a < 4; ++a) {
      nlohmann::json row = nlohmann::json::array();
      for (size_t b = 0; b < 4; ++b) row.push_back(a == b ? 16 : 0);
      m.push_back(row);
    }
    const size_t anger = std::find(classes.begin(), classes.end(), "anger") - classes.begin();
    if (anger < 4) {
      m[anger][anger] = 15;
      m[anger][(anger + 1) % 4] = 1;
    }
    return m;
  };
  const nlohmann::json m_core = matrix(core), m_rev = matrix(reversed), m_other = matrix(other),
                       m_small = nlohmann::json::parse("[[1, 0], [0, 1]]");
  int summed = 0, left_out = 0;
  // The misfits first: they must not decide the sum's size (helper-74).
  auto sum = SumConfusions(core, {{&core, &m_small}, {&other, &m_other}, {&core, &m_core}, {&reversed, &m_rev},
                                  {&unnamed, &m_core}},
                           &summed, &left_out);
  EXPECT_EQ(summed, 3);
  EXPECT_EQ(left_out, 2) << "the run with fear, and the 2 x 2 matrix";
  ASSERT_EQ(sum.size(), 4u);
  // Diagonal: every right prediction stays right whatever the run's order.
  EXPECT_EQ(sum[1][1], 48);
  EXPECT_EQ(sum[2][2], 48);
  EXPECT_EQ(sum[3][3], 48);
  EXPECT_EQ(sum[0][0], 45);
  // anger's wrong prediction: happiness in core order (the core run and the unnamed one); in the reversed run
  // anger is the last class, whose next is its first: sadness.
  EXPECT_EQ(sum[0][1], 2);
  EXPECT_EQ(sum[0][3], 1);
  int64_t total = 0;
  for (const auto& row : sum)
    for (int64_t v : row) total += v;
  EXPECT_EQ(total, 3 * 64);
  // Only runs with other classes: nothing to draw.
  summed = left_out = 0;
  EXPECT_TRUE(SumConfusions(core, {{&other, &m_other}}, &summed, &left_out).empty());
  EXPECT_EQ(left_out, 1);
}

TEST(Report, TickLabelsNeverShowNegativeZero) {
  // Ticks of [-0.3, 0.3] (padded 8 %, step 0.1) accumulate to -2.8e-17 at zero: printed "0.00", not "-0.00".
  svg::Series s{"s", {-0.3, 0.3}, {}};
  std::string plot = svg::LinePlot("t", "x", "y", {"a", "b"}, {s});
  EXPECT_EQ(Count(plot, ">-0.00<"), 0u) << plot;
  EXPECT_EQ(Count(plot, ">0.00<"), 1u) << "the zero tick is there";
}

TEST(Report, FewShotColumnsBecomeACurveWithSpreadBars) {
  auto h = testing::MakeHandLedger(testing::TestDir() + "/l.db");
  auto& spec = h.protocol.tables[0];
  spec.columns = "budget";
  for (auto& j : h.protocol.jobs) j.attrs["budget"] = j.attrs["target"] == "emodb" ? "10%" : "50%";
  auto html = BuildReport(h.protocol, h.ledger.get(), {"hand.db"});
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("UA by label budget (bars: std)"), std::string::npos);
  // The table already draws this experiment's budget curve: not drawn a second time (issue 14, item 9).
  EXPECT_EQ(html->find("Few-shot curves"), std::string::npos);
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
  // good has a learning-rate grid (two points), mid one point: three matrices, none pooling the grid.
  for (const std::string model : {"good", "mid"})
    for (const std::string hp : {"train.lr=0.1", "train.lr=0.01"})
      for (const auto& src : corpora)
        for (const auto& tgt : corpora)
          for (uint64_t seed = 1; seed <= 2; ++seed) {
            if (model == "mid" && hp != "train.lr=0.1") continue;
            auto j = testing::MakeJob("xc", model, src + ">" + tgt + " " + hp, seed);
            j.attrs["kind"] = "cross_corpus";
            j.attrs["source"] = src;
            j.attrs["target"] = tgt;
            j.attrs["hp"] = hp;
            j.attrs["selection"] = "source_val";  // the same for all: not named in the titles
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
  fake.fail_always.insert(p.jobs[5].spec.id);  // one missing run shows as (n/N) in the table
  fake.fail_always.insert(p.jobs[36].spec.id);  // and as * in its cross-corpus matrix (good, lr=0.1)
  Executor exec = [&fake](const jobs::JobSpec& s, const jobs::JobContext& c) { return fake(s, c); };
  RunOptions o;
  o.progress = false;
  o.scheduler.max_attempts = 1;
  ASSERT_TRUE(RunSweep(p, ledger.get(), exec, o).ok());
  auto html = BuildReport(p, ledger.get(), {"demo.db"});
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  if (const char* out = std::getenv("EMOSWEEP_REPORT_OUT")) ASSERT_TRUE(WriteFileAtomic(out, *html).ok());
  EXPECT_NE(html->find("Cross-corpus matrices"), std::string::npos);
  EXPECT_EQ(Count(*html, "train (source)"), 3u) << "one matrix per model and grid point";
  EXPECT_EQ(Count(*html, "aria-label=\"xc / good (hp=train.lr=0.1): test UA (%), mean over seeds and folds\""), 1u);
  EXPECT_EQ(Count(*html, "aria-label=\"xc / good (hp=train.lr=0.01): test UA (%), mean over seeds and folds\""), 1u);
  EXPECT_EQ(Count(*html, "aria-label=\"xc / mid (hp=train.lr=0.1): test UA (%), mean over seeds and folds\""), 1u);
  EXPECT_EQ(Count(*html, "* = not every planned run finished"), 1u) << "only good lr=0.1 lost a run";
  // Every hatch pattern has its own id (a page holds several heatmaps).
  std::set<std::string> ids;
  size_t patterns = 0;
  for (size_t at = html->find("<pattern id=\""); at != std::string::npos; at = html->find("<pattern id=\"", at + 1)) {
    ++patterns;
    ids.insert(html->substr(at, html->find('"', at + 13) - at));
  }
  EXPECT_GE(patterns, 4u);
  EXPECT_EQ(ids.size(), patterns);
  EXPECT_EQ(Count(*html, ">-0.00<") + Count(*html, ">-0.0<"), 0u) << "no negative-zero tick labels";
  EXPECT_NE(html->find("Few-shot curves"), std::string::npos);
  EXPECT_NE(html->find("1 failed"), std::string::npos);
  EXPECT_NE(html->find("simulated crash"), std::string::npos) << "the failure is listed with its error";
  // SOURCE_DATE_EPOCH fixes the "generated" time: two reports of one ledger are then byte-identical.
  ::setenv("SOURCE_DATE_EPOCH", "1000000000", 1);
  auto a = BuildReport(p, ledger.get(), {"demo.db"}), b = BuildReport(p, ledger.get(), {"demo.db"});
  ::unsetenv("SOURCE_DATE_EPOCH");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(a->find("generated 2001-09-09 01:46 UTC"), std::string::npos);
}

}  // namespace
}  // namespace emosweep::orchestrator

namespace emosweep::orchestrator {
namespace {

// An adapt experiment whose jobs recorded DA diagnostics: the caption carries the jobs' warnings per row (with
// the run counts) and the report plots λ, the discriminator's accuracy and the target class distribution.
TEST(Report, DomainAdaptationWarningsAndDiagnosticPlots) {
  protocols::Protocol p;
  p.name = "da";
  p.path = "da.toml";
  for (const std::string variant : {"none", "dann_ganin", "dann_tllib"})
    for (uint64_t seed = 1; seed <= 2; ++seed) {
      auto j = testing::MakeJob("da", "concat_mlp", "synth_b", seed);
      j.attrs["variant"] = variant;
      j.spec.kind = variant == "none" ? "supervised" : "adapt";
      j.spec.target_unlabeled = {{"b.h5", "", {"u1", "u2"}}};
      if (variant != "none") j.spec.adapt = {{"variant", variant}};
      j.spec.id = j.spec.ComputeId();
      p.jobs.push_back(j);
    }
  protocols::TableSpec t;
  t.name = "da";
  t.experiment = "da";
  t.rows = "variant";
  t.columns = "target";
  t.metrics = {"ua"};
  p.tables.push_back(t);
  auto ledger = std::move(Ledger::Open(testing::TestDir() + "/da.db")).value();
  int64_t sweep = *ledger->BeginSweep({"da", "da.toml", "h", {{"name", "da"}}, {}});
  ASSERT_TRUE(ledger->RegisterJobs(sweep, p.jobs).ok());
  const std::string me = ThisOwner();
  for (const auto& j : p.jobs) {
    jobs::JobResult r = testing::FakeResult(j.spec);
    const std::string v = j.attrs.at("variant");
    const bool collapsed = v == "dann_ganin" && j.spec.seed == 2;
    r.curve.clear();
    for (int e = 0; e < 3; ++e) {
      jobs::EpochRecord rec;
      rec.epoch = e;
      nlohmann::json da = {{"target_dist", collapsed && e == 2 ? std::vector<double>{1, 0, 0, 0}
                                                              : std::vector<double>{0.25, 0.25, 0.3, 0.2}},
                           {"target_max_share", collapsed && e == 2 ? 1.0 : 0.3}};
      if (v != "none") {
        da["lambda"] = v == "dann_ganin" ? 0.4 * e : 0.01 * e;
        da["disc_acc"] = 0.6 + 0.1 * e;
      }
      rec.val_metrics = {{"ua", 0.9}, {"da", da}};
      r.curve.push_back(rec);
    }
    r.selected_epoch = 2;
    r.info["da_selected"] = r.curve.back().val_metrics["da"];
    nlohmann::json w = nlohmann::json::array();
    if (collapsed) w.push_back({{"code", "target_collapse"}, {"message", "collapse"}});
    if (v == "dann_tllib") w.push_back({{"code", "short_schedule"}, {"message", "short"}});
    if (v == "dann_tllib") w.push_back({{"code", "dev_undefined"}, {"message", "dev undefined"}});
    if (!w.empty()) r.info["warnings"] = w;
    ASSERT_TRUE(ledger->Claim(j.spec.id, me, {}).ok());
    ASSERT_TRUE(ledger->Complete(j.spec.id, me, r, {}).ok());
  }
  auto table = BuildTable(p, p.tables[0], ledger.get());
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  const std::string& cap = table->caption;
  EXPECT_NE(cap.find("WARNING: DEV was undefined"), std::string::npos) << cap;
  EXPECT_NE(cap.find("; the GRL schedule never exceeded 10% of its maximum"), std::string::npos) << cap;
  EXPECT_NE(cap.find("in dann_tllib (2 of 2 runs)"), std::string::npos) << cap;
  EXPECT_NE(cap.find("target predictions collapsed"), std::string::npos) << cap;
  EXPECT_NE(cap.find("in dann_ganin (1 of 2 runs)"), std::string::npos) << cap;
  EXPECT_EQ(cap.find("none ("), std::string::npos) << "no warning for the clean row: " << cap;
  EXPECT_NE(cap.find("DEV was undefined at the selected epoch"), std::string::npos) << "in words, not the code: " << cap;
  EXPECT_EQ(cap.find("dev_undefined"), std::string::npos) << cap;
  auto html = BuildReport(p, ledger.get(), {"da.db"});
  ASSERT_TRUE(html.ok()) << html.status().ToString();
  if (const char* out = std::getenv("EMOSWEEP_REPORT_OUT")) ASSERT_TRUE(WriteFileAtomic(out, *html).ok());
  EXPECT_NE(html->find("Domain adaptation: what the adaptation did"), std::string::npos);
  EXPECT_NE(html->find("GRL coefficient"), std::string::npos);
  EXPECT_NE(html->find("domain discriminator accuracy"), std::string::npos);
  EXPECT_NE(html->find("predicted class share (%) on the unlabeled target at the selected epoch"), std::string::npos);
  EXPECT_NE(html->find("dann_ganin (2 runs)"), std::string::npos) << "the distribution heatmap has a row per variant";
  EXPECT_NE(html->find("<span class=\"warn\">WARNING:"), std::string::npos);
}

}  // namespace
}  // namespace emosweep::orchestrator
