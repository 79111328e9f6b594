// Issue 14 tables: several experiments in one table (row keys over several attributes), the average column,
// run counts in cells, "best" only when significant, and grid selection (training domain, LODO, oracle).
#include <gtest/gtest.h>

#include "orchestrator/tables.h"
#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/hand_ledger.h"

namespace emosweep::orchestrator {
namespace {

size_t Col(const TableData& t, const std::string& name) {
  auto it = std::find(t.cols.begin(), t.cols.end(), name);
  EXPECT_NE(it, t.cols.end()) << name;
  return static_cast<size_t>(it - t.cols.begin());
}

class MultiTable : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = testing::MakeMultiExperimentLedger(testing::TestDir() + "/l.db");
    auto t = BuildTable(h_.protocol, h_.protocol.tables[0], h_.ledger.get());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    t_ = std::move(t).value();
    ASSERT_EQ(t_.rows.size(), 3u);
    ASSERT_EQ(t_.cols.size(), 3u);
  }
  testing::HandLedger h_;
  TableData t_;
};

TEST_F(MultiTable, RowsComeFromEveryListedExperimentAndOnlyThose) {
  EXPECT_EQ(t_.rows, (std::vector<std::string>{"zeroshot", "adapt / dann", "adapt / mmd"})) << "no row of 'other'";
  EXPECT_EQ(t_.cols, (std::vector<std::string>{"emodb", "ravdess", "average"}));
  EXPECT_EQ(t_.average_col, 2);
  EXPECT_EQ(CellText(t_, t_.at(0, 0, 0)), "52.0 ± 2.0");
  EXPECT_EQ(CellText(t_, t_.at(1, 1, 0)), "45.0 ± 2.0");
  EXPECT_EQ(t_.planned_jobs, 18) << "3 rows x 2 targets x 3 seeds; 'other' is not planned here";
  EXPECT_EQ(t_.finished_jobs, 17);
  EXPECT_NE(t_.caption.find("Experiments: zeroshot, adapt."), std::string::npos) << t_.caption;
}

TEST_F(MultiTable, MissingRunsAreCountedInTheCell) {
  EXPECT_EQ(CellText(t_, t_.at(2, 1, 0)), "71.0 ± 1.4 (2/3)");
  EXPECT_FALSE(t_.at(2, 1, 0).complete());
  EXPECT_NE(t_.caption.find("(n/N): n of N planned runs finished"), std::string::npos) << t_.caption;
}

TEST_F(MultiTable, AverageIsTheMeanOfTargetMeansOnlyForCompleteRows) {
  // zeroshot: (52 + 41) / 2; ± over the seeds' averages 45, 46.5, 48.
  EXPECT_EQ(CellText(t_, t_.at(0, 2, 0)), "46.5 ± 1.5");
  // dann: (61.33 + 45) / 2 = 53.17; seeds' averages 52.5, 55, 52.
  EXPECT_NEAR(t_.at(1, 2, 0).summary.mean, (184.0 / 3 + 45.0) / 2, 1e-9);
  EXPECT_EQ(CellText(t_, t_.at(1, 2, 0)), "53.2 ± 1.6");
  // mmd misses a ravdess run: no average.
  EXPECT_TRUE(t_.at(2, 2, 0).values.empty());
  EXPECT_EQ(CellText(t_, t_.at(2, 2, 0)), "—");
  EXPECT_NE(t_.caption.find("average: the mean over the 2 target columns of their cell means, shown only when every "
                            "one of them is complete"),
            std::string::npos)
      << t_.caption;
}

TEST_F(MultiTable, BestOnlyWhenSignificantlyBetterThanTheRunnerUpAndComplete) {
  // emodb: dann 61.3 vs mmd 61.0, seed differences +1, -1, +1: not significant.
  EXPECT_FALSE(t_.at(1, 0, 0).best);
  EXPECT_FALSE(t_.at(2, 0, 0).best);
  // ravdess: mmd is highest (71.0) but misses a run: never bold; nor is the runner-up.
  EXPECT_FALSE(t_.at(2, 1, 0).best);
  EXPECT_FALSE(t_.at(1, 1, 0).best);
  EXPECT_FALSE(t_.at(0, 1, 0).best);
  // average: dann 53.2 vs zeroshot 46.5, seed differences 7.5, 8.5, 4: paired t = 4.89, df 2, p = 0.039.
  EXPECT_TRUE(t_.at(1, 2, 0).best);
  EXPECT_FALSE(t_.at(0, 2, 0).best);
  EXPECT_NE(t_.caption.find("two-sided paired t-test over runs matched on (seed,fold)"), std::string::npos);
  EXPECT_NE(t_.caption.find("alpha = 0.05"), std::string::npos) << t_.caption;
  auto spec = h_.protocol.tables[0];
  spec.alpha = 0.01;
  auto strict = BuildTable(h_.protocol, spec, h_.ledger.get());
  ASSERT_TRUE(strict.ok());
  EXPECT_FALSE(strict->at(1, 2, 0).best) << "p = 0.039 is not below 0.01";
  EXPECT_NE(strict->caption.find("alpha = 0.01"), std::string::npos);
}

TEST_F(MultiTable, EveryFormatCarriesTheAverageAndTheCounts) {
  auto md = *RenderTable(t_, "markdown");
  EXPECT_NE(md.find("| experiment / variant | emodb | ravdess | average |"), std::string::npos) << md;
  EXPECT_NE(md.find("| adapt / dann | 61.3 ± 1.5 | 45.0 ± 2.0 | **53.2 ± 1.6** |"), std::string::npos) << md;
  auto tex = *RenderTable(t_, "latex");
  EXPECT_NE(tex.find("\\textbf{53.2 $\\pm$ 1.6}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("71.0 $\\pm$ 1.4 (2/3)"), std::string::npos) << tex;
  auto csv = *RenderTable(t_, "csv");
  EXPECT_NE(csv.find("adapt / dann,average,ua,53.1666666"), std::string::npos) << csv;
  auto json = TableJson(t_);
  EXPECT_EQ(json["experiments"], nlohmann::json({"zeroshot", "adapt"}));
  EXPECT_EQ(json["average_column"], "average");
  EXPECT_EQ(json["best_test"]["alpha"], 0.05);
  bool seen = false;
  for (const auto& c : json["cells"])
    if (c["row"] == "adapt / mmd" && c["column"] == "ravdess") {
      seen = true;
      EXPECT_EQ(c["text"], "71.0 ± 1.4 (2/3)");
      EXPECT_EQ(c["complete"], false);
    }
  EXPECT_TRUE(seen);
}

TEST_F(MultiTable, CompareTestsTheTargetColumnsNotTheAverage) {
  auto lines = Compare(t_, h_.ledger.get(), CompareOptions{"adapt / dann", "zeroshot", "permutation", 99, 5});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].col, "emodb");
  EXPECT_EQ((*lines)[1].col, "ravdess");
  EXPECT_EQ((*lines)[0].pairs, 3);
}

TEST_F(MultiTable, OneExperimentStillWorks) {
  auto spec = h_.protocol.tables[0];
  spec.experiments.clear();
  spec.experiment = "zeroshot";
  auto t = BuildTable(h_.protocol, spec, h_.ledger.get());
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->rows, (std::vector<std::string>{"zeroshot"}));
  ASSERT_FALSE(t->cols.empty());
  EXPECT_FALSE(t->at(0, 0, 0).best) << "no runner-up to be significantly better than";
}

// A hand ledger's first table built with a grid-selection rule (GridTable, AdaptGridTable).
class GridTableBase : public ::testing::Test {
 protected:
  TableData Build(const std::string& rule) {
    auto spec = h_.protocol.tables[0];
    spec.grid_selection = rule;
    auto t = BuildTable(h_.protocol, spec, h_.ledger.get());
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : TableData();
  }
  testing::HandLedger h_;
};

class GridTable : public GridTableBase {
 protected:
  void SetUp() override { h_ = testing::MakeGridLedger(testing::TestDir() + "/l.db"); }
};

TEST_F(GridTable, TrainingDomainValidationPicksTheBestPooledSourceValidation) {
  TableData t = Build("training_domain");
  ASSERT_EQ(t.rows.size(), 1u);
  const TableCell& emodb = t.at(0, Col(t, "emodb"), 0);
  EXPECT_EQ(emodb.selected, "train.lr=0.1");
  EXPECT_EQ(CellText(t, emodb), "50.0 ± 1.0") << "the selected point's test runs only";
  EXPECT_EQ(emodb.values.size(), 3u);
  EXPECT_FALSE(emodb.provisional);
  EXPECT_NE(t.caption.find("training-domain validation"), std::string::npos) << t.caption;
  EXPECT_NE(t.caption.find("Epoch selection: source_val"), std::string::npos) << t.caption;
  EXPECT_EQ(t.caption.find("oracle"), std::string::npos);
}

TEST_F(GridTable, LeaveOneSourceOutPicksTheBestMeanOverLeftOutSources) {
  TableData t = Build("lodo");
  const TableCell& emodb = t.at(0, Col(t, "emodb"), 0);
  EXPECT_EQ(emodb.selected, "train.lr=0.01");
  EXPECT_EQ(CellText(t, emodb), "55.0 ± 1.0");
  EXPECT_FALSE(emodb.provisional);
  // ravdess: one LODO run of train.lr=0.1 never finished: same choice, flagged as not final.
  const TableCell& ravdess = t.at(0, Col(t, "ravdess"), 0);
  EXPECT_EQ(ravdess.selected, "train.lr=0.01");
  EXPECT_TRUE(ravdess.provisional);
  EXPECT_EQ(CellText(t, ravdess), "55.0 ± 1.0‡");
  EXPECT_FALSE(ravdess.complete());
  EXPECT_NE(t.caption.find("leave-one-source-out validation"), std::string::npos) << t.caption;
  EXPECT_NE(t.caption.find("‡: grid selection over unfinished runs"), std::string::npos) << t.caption;
  EXPECT_NE(RenderTable(t, "markdown")->find("Selected grid points (lodo): m / emodb: train.lr=0.01"),
            std::string::npos);
}

TEST_F(GridTable, OraclePicksTheBestTestScoreAndIsFlagged) {
  TableData t = Build("oracle");
  const TableCell& emodb = t.at(0, Col(t, "emodb"), 0);
  EXPECT_EQ(emodb.selected, "train.lr=0.001");
  EXPECT_EQ(CellText(t, emodb), "60.0 ± 1.0");
  EXPECT_NE(t.caption.find("WARNING: oracle grid selection"), std::string::npos) << t.caption;
  EXPECT_EQ(TableJson(t)["grid_selection"], "oracle");
}

// Grid selection on the unlabeled target (im, snd, dev at each run's selected epoch): no target labels.
class AdaptGridTable : public GridTableBase {
 protected:
  void SetUp() override { h_ = testing::MakeAdaptGridLedger(testing::TestDir() + "/l.db"); }
};

TEST_F(AdaptGridTable, InformationMaximisationPicksTheHighestMeanIm) {
  for (const std::string rule : {"im", "snd"}) {
    TableData t = Build(rule);
    ASSERT_EQ(t.rows.size(), 1u);
    const TableCell& cell = t.at(0, 0, 0);
    EXPECT_EQ(cell.selected, "adapt.weight=1") << rule;
    EXPECT_EQ(CellText(t, cell), "55.0 ± 1.0") << rule << ": the selected point's runs only";
    EXPECT_TRUE(cell.complete()) << rule;
    EXPECT_NE(t.caption.find(rule == "im" ? "highest mean information maximisation (im)"
                                          : "highest mean soft neighbourhood density (snd"),
              std::string::npos)
        << t.caption;
    EXPECT_NE(t.caption.find("the target's labels are not used"), std::string::npos) << t.caption;
    EXPECT_EQ(t.caption.find("highest mean UA"), std::string::npos) << "it does not rank by UA: " << t.caption;
    EXPECT_EQ(t.caption.find("did not count"), std::string::npos) << t.caption;
    EXPECT_NE(t.caption.find("Transductive steps (unlabeled data of the evaluated corpus used): grid points chosen "
                             "on the unlabeled target (grid_selection = \"" + rule + "\""),
              std::string::npos)
        << t.caption;
  }
  EXPECT_EQ(Build("oracle").caption.find("grid points chosen on the unlabeled target"), std::string::npos);
}

TEST_F(AdaptGridTable, DeepEmbeddedValidationPicksTheLowestMeanRiskAndCountsUndefinedRuns) {
  TableData t = Build("dev");
  const TableCell& cell = t.at(0, 0, 0);
  // 0.1's defined runs average 0.295 (seed 3 undefined, left out), below 1's 0.50 and 10's 0.70.
  EXPECT_EQ(cell.selected, "adapt.weight=0.1");
  EXPECT_EQ(CellText(t, cell), "50.0 ± 1.0") << "every finished run of the chosen point feeds the cell";
  EXPECT_NE(t.caption.find("lowest mean deep-embedded-validation risk"), std::string::npos) << t.caption;
  EXPECT_NE(t.caption.find("(1 finished run without a dev value there did not count)"), std::string::npos)
      << t.caption;
  // The oracle on the same ledger picks another point: the rules are told apart.
  EXPECT_EQ(Build("oracle").at(0, 0, 0).selected, "adapt.weight=10");
}

TEST_F(AdaptGridTable, APointWithoutAnyCriterionValueCannotWin) {
  // Every run's DEV undefined: no point can be ranked, so no cell is chosen (blank, not a pooled grid).
  testing::HandLedger h = testing::MakeAdaptGridLedger(testing::TestDir() + "/none.db", /*no_dev=*/true);
  auto spec = h.protocol.tables[0];
  spec.grid_selection = "dev";
  auto t = BuildTable(h.protocol, spec, h.ledger.get());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->at(0, 0, 0).selected, "");
  EXPECT_EQ(CellText(*t, t->at(0, 0, 0)), t->spec.missing);
  EXPECT_NE(t->caption.find("(9 finished runs without a dev value there did not count)"), std::string::npos)
      << t->caption;
}

// grid_selection_by: the same grid under two experiment names, one row chosen by training-domain
// validation and one by LODO, in one table (issue 14: the held-out study's combined table).
TEST_F(GridTable, PerExperimentRulesPickEachRowsPointInOneTable) {
  protocols::Protocol p = h_.protocol;
  std::vector<protocols::PlannedJob> copies;
  for (const auto& j : p.jobs) {
    protocols::PlannedJob c = j;  // same job ids, so the same results in the ledger
    c.attrs["experiment"] = "loco_lodo";
    copies.push_back(c);
  }
  p.jobs.insert(p.jobs.end(), copies.begin(), copies.end());
  auto spec = p.tables[0];
  spec.experiment.clear();
  spec.experiments = {"loco", "loco_lodo"};
  spec.row_attrs = {"experiment", "model"};
  spec.rows = "experiment / model";
  spec.grid_selection_by = {{"loco", "training_domain"}, {"loco_lodo", "lodo"}};
  auto t = BuildTable(p, spec, h_.ledger.get());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->rows.size(), 2u);
  const size_t td = t->rows[0] == "loco / m" ? 0 : 1, lodo = 1 - td;
  EXPECT_EQ(t->rows[td], "loco / m");
  EXPECT_EQ(t->at(td, Col(*t, "emodb"), 0).selected, "train.lr=0.1");
  EXPECT_EQ(CellText(*t, t->at(td, Col(*t, "emodb"), 0)), "50.0 ± 1.0");
  EXPECT_EQ(t->at(lodo, Col(*t, "emodb"), 0).selected, "train.lr=0.01");
  EXPECT_EQ(CellText(*t, t->at(lodo, Col(*t, "emodb"), 0)), "55.0 ± 1.0");
  EXPECT_NE(t->caption.find("in rows of loco: on the training corpora's pooled validation share"), std::string::npos)
      << t->caption;
  EXPECT_NE(t->caption.find("in rows of loco_lodo: when each training corpus in turn is left out"), std::string::npos)
      << t->caption;
  EXPECT_NE(RenderTable(*t, "markdown")->find("Selected grid points (training_domain, lodo)"), std::string::npos);
}

TEST_F(GridTable, WithoutGridSelectionEveryPointIsPooled) {
  TableData t = Build("");
  const TableCell& emodb = t.at(0, Col(t, "emodb"), 0);
  EXPECT_EQ(emodb.values.size(), 9u);
  EXPECT_TRUE(emodb.selected.empty());
}

}  // namespace
}  // namespace emosweep::orchestrator
