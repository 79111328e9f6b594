// Tables: golden outputs of every format on a hand-filled ledger, reproduce, compare.
#include "orchestrator/tables.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/files.h"
#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/hand_ledger.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

// Compares with tests/orchestrator/golden/<name>; EMOSWEEP_UPDATE_GOLDEN=1 rewrites it
// (then read the diff: a golden file is only as good as the reading it got).
void ExpectGolden(const std::string& name, const std::string& actual) {
  std::string path = std::string(EMOSWEEP_SOURCE_DIR) + "/tests/orchestrator/golden/" + name;
  if (std::getenv("EMOSWEEP_UPDATE_GOLDEN")) {
    ASSERT_TRUE(WriteFileAtomic(path, actual).ok());
    return;
  }
  auto want = ReadFile(path);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  EXPECT_EQ(actual, *want) << "golden " << name << " differs";
}

class Tables : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = testing::MakeHandLedger(testing::TestDir() + "/l.db");
    auto t = BuildTable(h_.protocol, h_.protocol.tables[0], h_.ledger.get());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    t_ = std::move(t).value();
  }
  testing::HandLedger h_;
  TableData t_;
};

TEST_F(Tables, CellsAreMeanAndSampleStdOverSeedsWithBestAndMissingMarked) {
  ASSERT_EQ(t_.rows, (std::vector<std::string>{"good", "mid"}));
  ASSERT_EQ(t_.cols, (std::vector<std::string>{"emodb", "ravdess"}));
  EXPECT_EQ(CellText(t_, t_.at(0, 0, 0)), "90.1 ± 1.4");
  EXPECT_EQ(CellText(t_, t_.at(1, 0, 0)), "75.1 ± 0.9");
  EXPECT_EQ(CellText(t_, t_.at(0, 1, 0)), "66.0 ± 1.4 (2/3)") << "2 of 3 planned runs";
  EXPECT_EQ(CellText(t_, t_.at(1, 1, 0)), "—");
  EXPECT_TRUE(t_.at(0, 0, 0).best) << "seed differences 15.9, 15.5, 13.6: paired t-test p < 0.05";
  EXPECT_FALSE(t_.at(1, 0, 0).best);
  EXPECT_FALSE(t_.at(0, 1, 0).best) << "incomplete (2 of 3 runs) and no runner-up";
  EXPECT_EQ(t_.planned_jobs, 12);
  EXPECT_EQ(t_.finished_jobs, 8);
  EXPECT_NE(t_.caption.find("std (ddof=1)"), std::string::npos) << t_.caption;
  EXPECT_NE(t_.caption.find("n = 2–3"), std::string::npos);
  EXPECT_NE(t_.caption.find("Seeds: 1, 2, 3"), std::string::npos);
  EXPECT_NE(t_.caption.find("Model selection: source_val"), std::string::npos);
  // Many seeds: a range, or the first ten and a count, not every number (a 2000-seed grid; helper-67).
  TableData many = t_;
  for (uint64_t s = 1; s <= 2000; ++s) many.seeds.insert(s);
  EXPECT_NE(TableCaption(many).find("Seeds: 1–2000 (2000). "), std::string::npos) << TableCaption(many);
  many.seeds.insert(5000);
  EXPECT_NE(TableCaption(many).find("Seeds: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 1991 more (2001). "), std::string::npos)
      << TableCaption(many);
  many.seeds = {3, 1, 12, 4, 5, 6, 7, 8, 9, 10, 11, 2};
  EXPECT_NE(TableCaption(many).find("Seeds: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12. "), std::string::npos);
}

TEST_F(Tables, GoldenMarkdown) { ExpectGolden("loco_ua.md", *RenderTable(t_, "markdown")); }
TEST_F(Tables, GoldenLatex) { ExpectGolden("loco_ua.tex", *RenderTable(t_, "latex")); }
TEST_F(Tables, GoldenCsv) { ExpectGolden("loco_ua.csv", *RenderTable(t_, "csv")); }
TEST_F(Tables, GoldenJson) { ExpectGolden("loco_ua.json", *RenderTable(t_, "json")); }

// Names researchers give rows, corpora and tables: each format keeps them readable and its syntax intact.
TEST_F(Tables, NamesWithSpecialCharactersKeepEveryFormatIntact) {
  TableData t = t_;
  t.spec.name = "in_domain 50%";
  t.rows[0] = "mlp|\"q\"<b>";
  t.cols[1] = "b&c_x ≥ 2";
  t.caption = "synth_a -> synth_b, \"raw\" features";
  const std::string tex = *RenderTable(t, "latex");
  EXPECT_NE(tex.find("\\label{tab:in-domain-50-}"), std::string::npos) << "a label is not TeX-escaped: " << tex;
  EXPECT_NE(tex.find("mlp$|$''q''$<$b$>$"), std::string::npos) << tex;
  EXPECT_NE(tex.find("b\\&c\\_x $\\geq$ 2"), std::string::npos) << tex;
  EXPECT_NE(tex.find("synth\\_a $\\rightarrow$ synth\\_b, ``raw'' features"), std::string::npos) << tex;
  const std::string md = *RenderTable(t, "markdown");
  EXPECT_NE(md.find("| mlp\\|\"q\"\\<b> | "), std::string::npos) << "'|' would split the cell: " << md;
  const std::string csv = *RenderTable(t, "csv");
  EXPECT_NE(csv.find("in_domain 50%,\"mlp|\"\"q\"\"<b>\",emodb,ua,"), std::string::npos) << csv;
}

// One CSV for every cell: the table's name, and whether the cell is final, on every row.
TEST_F(Tables, CsvRowsCarryTheTableAndWhetherTheCellIsComplete) {
  TableData t = t_;
  t.at(0, 0, 0).provisional = true;
  const std::string csv = *RenderTable(t, "csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), kTableCsvHeader);
  EXPECT_NE(csv.find("loco_ua,good,emodb,ua,90.1,1.4,std,3,3,0,1,"), std::string::npos) << "provisional: " << csv;
  EXPECT_NE(csv.find("loco_ua,good,ravdess,ua,66,1.414213562,std,2,3,0,0,"), std::string::npos) << "2 of 3: " << csv;
  EXPECT_NE(csv.find("loco_ua,mid,emodb,ua,75.1,0.9,std,3,3,1,0,"), std::string::npos) << csv;
}

TEST_F(Tables, ReproduceComparesCellByCellAtPrintedPrecision) {
  auto lines = Reproduce(t_);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 4u);
  std::map<std::string, ReproduceLine> by;
  for (const auto& l : *lines) by[l.row + "|" + l.col] = l;
  EXPECT_TRUE(by["good|emodb"].within);
  EXPECT_NEAR(by["good|emodb"].diff, 0.1, 1e-9);
  EXPECT_FALSE(by["mid|emodb"].within) << "75.1 vs 77.0 is outside ±1.0";
  EXPECT_FALSE(by["mid|ravdess"].have_ours);
  // 2 of 3 runs: 66.0 matches their mean, but a cell with runs missing is not a reproduction.
  EXPECT_TRUE(by["good|ravdess"].have_ours);
  EXPECT_NEAR(by["good|ravdess"].diff, 0.0, 1e-9);
  EXPECT_FALSE(by["good|ravdess"].complete);
  EXPECT_FALSE(by["good|ravdess"].within);
  EXPECT_EQ(by["good|ravdess"].n, 2);
  EXPECT_EQ(by["good|ravdess"].planned, 3);
  ExpectGolden("loco_ua_reproduce.md", *RenderReproduce(t_, *lines, "markdown"));
}

TEST_F(Tables, OracleSelectionIsFlaggedInTheCaption) {
  for (auto& j : h_.protocol.jobs) {
    j.spec.selection = "oracle";
    j.spec.oracle_eval = "test";
  }
  auto t = BuildTable(h_.protocol, h_.protocol.tables[0], h_.ledger.get());
  ASSERT_TRUE(t.ok());
  EXPECT_NE(t->caption.find("WARNING: oracle selection"), std::string::npos) << t->caption;
  EXPECT_NE(t->caption.find("'test'"), std::string::npos);
}

TEST_F(Tables, SeveralMetricsAndCi95SpreadAreLabelled) {
  auto spec = h_.protocol.tables[0];
  spec.metrics = {"ua", "wa"};
  spec.spread = "ci95";
  auto t = BuildTable(h_.protocol, spec, h_.ledger.get());
  ASSERT_TRUE(t.ok());
  auto md = *RenderTable(*t, "markdown");
  EXPECT_NE(md.find("| emodb UA | emodb WA |"), std::string::npos) << md;
  EXPECT_NE(md.find("95% CI half-width (Student t)"), std::string::npos);
  // 95% CI of {90.1, 91.5, 88.7}: 4.3027 * 1.4 / sqrt(3) = 3.48 -> "3.5".
  EXPECT_EQ(CellText(*t, t->at(0, 0, 0)), "90.1 ± 3.5");
  EXPECT_EQ(CellText(*t, t->at(0, 0, 1)), "89.1 ± 3.5");
}

TEST_F(Tables, UnknownTableFormatOrSpreadAreErrors) {
  EXPECT_FALSE(RenderTable(t_, "html").ok());
  auto missing = FindTable(h_.protocol, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("loco_ua"), std::string::npos) << "lists the table names";
  auto spec = h_.protocol.tables[0];
  spec.spread = "variance";
  EXPECT_FALSE(BuildTable(h_.protocol, spec, h_.ledger.get()).ok());
}

// The table of testing::MakeTwoRowLedger (rows "top" and "next", column emodb, test UA per seed; a negative
// value: planned, never ran).
TableData BoldCase(const std::string& db, const std::map<uint64_t, double>& top, const std::map<uint64_t, double>& next) {
  auto h = testing::MakeTwoRowLedger(db, top, next);
  auto t = BuildTable(h.protocol, h.protocol.tables[0], h.ledger.get());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : TableData{};
}

// helper-55's audit: "top" ranks first on all its runs (a fourth seed at 1.00 that "next" lacks), but on the
// three runs that pair it is worse every time: the two-sided test is significant the wrong way round.
TEST(TablesBold, NeverBoldWhenTheMatchedRunsSayTheTopCellIsWorse) {
  TableData t = BoldCase(testing::TestDir() + "/rev.db", {{1, 0.80}, {2, 0.81}, {3, 0.82}, {4, 1.00}},
                         {{1, 0.83}, {2, 0.845}, {3, 0.85}, {4, -1}});
  ASSERT_EQ(t.rows, (std::vector<std::string>{"top", "next"}));
  EXPECT_TRUE(t.at(0, 0, 0).complete());
  EXPECT_GT(t.at(0, 0, 0).summary.mean, t.at(1, 0, 0).summary.mean);
  EXPECT_FALSE(t.at(0, 0, 0).best) << "significantly worse on the matched runs: " << t.caption;
  EXPECT_TRUE(t.untested.empty());
  // The same matched runs the right way round are bold.
  TableData ok = BoldCase(testing::TestDir() + "/ok.db", {{1, 0.83}, {2, 0.845}, {3, 0.85}, {4, 1.00}},
                          {{1, 0.80}, {2, 0.81}, {3, 0.82}, {4, -1}});
  EXPECT_TRUE(ok.at(0, 0, 0).best) << ok.caption;
}

// Runs that cannot be paired (disjoint seeds) or differences without spread: no test, no bold, and the caption
// names the column instead of describing a test that never ran.
TEST(TablesBold, UntestedColumnsAreNamedInTheCaption) {
  TableData disjoint = BoldCase(testing::TestDir() + "/disj.db", {{1, 0.80}, {2, 0.81}, {3, 0.82}},
                                {{4, 0.60}, {5, 0.61}, {6, 0.62}});
  EXPECT_FALSE(disjoint.at(0, 0, 0).best);
  EXPECT_EQ(disjoint.untested, (std::vector<std::string>{"emodb (0 matched)"}));
  EXPECT_NE(disjoint.caption.find("Not tested, so not bold, for lack of runs matched on (seed,fold) or with equal "
                                  "differences: emodb (0 matched)."),
            std::string::npos)
      << disjoint.caption;
  TableData equal = BoldCase(testing::TestDir() + "/eq.db", {{1, 0.75}, {2, 0.625}}, {{1, 0.5}, {2, 0.375}});
  EXPECT_FALSE(equal.at(0, 0, 0).best) << "two differences of exactly 25 points: no spread to test";
  EXPECT_EQ(equal.untested, (std::vector<std::string>{"emodb (equal differences)"}));
}

TEST_F(Tables, CompareRunsAPairedTestPerColumn) {
  CompareOptions o{"good", "mid", "permutation", 999, 5};
  auto lines = Compare(t_, h_.ledger.get(), o);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  ASSERT_EQ(lines->size(), 2u);
  const auto& emodb = (*lines)[0];
  EXPECT_EQ(emodb.pairs, 3) << "seeds 1..3 of both rows";
  EXPECT_EQ(emodb.result.n_items, 120);
  EXPECT_NEAR(emodb.result.delta, (36 + 37 + 35 - 30 - 30 - 30) / 40.0 / 3, 1e-12);
  EXPECT_LT(emodb.result.p_value, 0.01);
  EXPECT_EQ((*lines)[1].note, "missing runs") << "mid never ran on ravdess";
  auto md = RenderCompare(t_, o, *lines, "markdown");
  EXPECT_NE(md->find("Paired permutation test of good vs mid"), std::string::npos);
  auto self = Compare(t_, h_.ledger.get(), CompareOptions{"good", "good", "permutation", 99, 5});
  EXPECT_EQ((*self)[0].result.p_value, 1.0);
  EXPECT_FALSE(Compare(t_, h_.ledger.get(), CompareOptions{"good", "nope"}).ok());
}

}  // namespace
}  // namespace emosweep::orchestrator

namespace emosweep::orchestrator {
namespace {

// A job's identity does not cover the emosweep build (docs/trainer.md, "Determinism"): a table whose runs come
// from several builds says which, with the cells that mix them; a ledger of one build reads no provenance for it.
TEST(TablesCaption, RunsOfSeveralBuildsAreNamedWithTheCellsThatMixThem) {
  const std::string path = testing::TestDir() + "/l.db";
  auto h = testing::MakeHandLedger(path);
  auto one = BuildTable(h.protocol, h.protocol.tables[0], h.ledger.get());
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->caption.find("emosweep builds"), std::string::npos) << "no build recorded: " << one->caption;
  // Every result of build "aaaa111", then one run of cell good / emodb of "bbbb222".
  testing::RawExec(path, "UPDATE provenance SET git_revision = 'aaaa111'; INSERT OR IGNORE INTO meta(key, value) "
                         "VALUES ('result_build:aaaa111', '')");
  auto single = BuildTable(h.protocol, h.protocol.tables[0], h.ledger.get());
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->caption, one->caption) << "one build: nothing to say";
  const auto& cell = one->at(0, 0, 0);
  ASSERT_EQ(one->rows[0] + " / " + one->cols[0], "good / emodb");
  ASSERT_EQ(cell.jobs.size(), 3u);
  testing::RawExec(path, "UPDATE provenance SET git_revision = 'bbbb222' WHERE job_id = '" + cell.jobs[1]->spec.id +
                             "'; INSERT OR IGNORE INTO meta(key, value) VALUES ('result_build:bbbb222', '')");
  auto mixed = BuildTable(h.protocol, h.protocol.tables[0], h.ledger.get());
  ASSERT_TRUE(mixed.ok());
  EXPECT_NE(mixed->caption.find("Runs of 2 emosweep builds (provenance.git_revision): aaaa111 (7 runs), bbbb222 (1 "
                                "run); 1 cell mixes them: good / emodb. A job's identity does not cover the build"),
            std::string::npos)
      << mixed->caption;
  EXPECT_EQ(mixed->caption.rfind(one->caption, 0), 0u) << "the note comes last";
  // A whole column of another build: no cell mixes them.
  testing::RawExec(path, "UPDATE provenance SET git_revision = 'aaaa111'");
  std::string ids;
  for (size_t r = 0; r < one->rows.size(); ++r)
    for (const auto* j : one->at(r, 1, 0).jobs) ids += std::string(ids.empty() ? "'" : ",'") + j->spec.id + "'";
  testing::RawExec(path, "UPDATE provenance SET git_revision = 'bbbb222' WHERE job_id IN (" + ids + ")");
  auto columns = BuildTable(h.protocol, h.protocol.tables[0], h.ledger.get());
  ASSERT_TRUE(columns.ok());
  EXPECT_NE(columns->caption.find("aaaa111 (6 runs), bbbb222 (2 runs); no cell mixes them."), std::string::npos)
      << columns->caption;
}

TEST(TablesCaption, UserCaptionComesFirstAsItsOwnSentence) {
  auto h = testing::MakeHandLedger(testing::TestDir() + "/l.db");
  auto spec = h.protocol.tables[0];
  spec.caption = "LOCO over two corpora";
  auto t = BuildTable(h.protocol, spec, h.ledger.get());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->caption.rfind("LOCO over two corpora. UA on the 'test' set", 0), 0u) << t->caption;
}

}  // namespace
}  // namespace emosweep::orchestrator

namespace emosweep::orchestrator {
namespace {

// Issue 15: `table --all` read every job's status (a scan of the status index from 1 000
// ids on) and metrics once per table, into maps keyed by the id. The command reads them
// once for all its tables (ReadTableInputs) and builds each table from those arrays with
// no ledger at hand; the tables are the ones a table built on its own gives.
TEST(TableInputs, EveryTableOfACommandReadsTheLedgerOnce) {
  auto h = testing::MakeGridLedger(testing::TestDir() + "/l.db");
  std::vector<protocols::TableSpec> specs(4, h.protocol.tables[0]);
  specs[1].name = "td", specs[1].grid_selection = "training_domain";
  specs[2].name = "lodo", specs[2].grid_selection = "lodo";
  specs[3].name = "wa", specs[3].metrics = {"ua", "wa"};
  auto reads = [&](const std::vector<const protocols::TableSpec*>& which) {
    const int64_t before = h.ledger->statements_prepared();
    auto in = ReadTableInputs(h.protocol, which, h.ledger.get());
    EXPECT_TRUE(in.ok()) << in.status().ToString();
    return h.ledger->statements_prepared() - before;
  };
  // The training-domain table alone: it also asks which of its jobs evaluate another job's model (their
  // validation metric is that model's), once.
  const int64_t one = reads({&specs[1]});
  const int64_t all = reads({&specs[0], &specs[1], &specs[2], &specs[3]});
  EXPECT_GT(one, 0);
  EXPECT_EQ(all, one) << "status, metrics and infos are read once however many tables the command prints";
  auto in = ReadTableInputs(h.protocol, {&specs[0], &specs[1], &specs[2], &specs[3]}, h.ledger.get());
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->done.size(), h.protocol.jobs.size());
  for (const auto& spec : specs) {
    auto shared = BuildTable(h.protocol, spec, *in);
    auto alone = BuildTable(h.protocol, spec, h.ledger.get());
    ASSERT_TRUE(shared.ok() && alone.ok()) << spec.name;
    EXPECT_EQ(*RenderTable(*shared, "json"), *RenderTable(*alone, "json")) << spec.name;
    EXPECT_EQ(*RenderTable(*shared, "markdown"), *RenderTable(*alone, "markdown")) << spec.name;
  }
}

// The status read of `table` is index-only: jobs_by_id_state holds (id, kind, status), so no
// job row (whose status sits behind kilobytes of config, in overflow pages) is read.
TEST(TableInputs, StatusListReadsTheCoveringIndexAndRepeatsAgree) {
  auto h = testing::MakeHandLedger(testing::TestDir() + "/l.db");
  std::vector<std::string> ids;
  for (const auto& j : h.protocol.jobs) ids.push_back(j.spec.id);
  ids.push_back("no-such-job");
  ids.push_back(ids.front());  // a repeated id gets its status at both places
  auto list = h.ledger->StatusList(ids);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  auto map = h.ledger->StatusOf(ids);
  ASSERT_TRUE(map.ok());
  ASSERT_EQ(list->size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = map->find(ids[i]);
    ASSERT_EQ((*list)[i].has_value(), it != map->end()) << ids[i];
    if (it != map->end()) EXPECT_EQ(*(*list)[i], it->second) << ids[i];
  }
  EXPECT_FALSE((*list)[ids.size() - 2].has_value());
  int64_t rows = 0;
  auto st = h.ledger->ForEachMetric({ids.front(), "no-such-job", ids.front()}, {"test"}, {"ua"},
                                    [&](size_t i, size_t e, size_t m, double v) {
                                      EXPECT_TRUE(i == 0 || i == 2);
                                      EXPECT_EQ(e, 0u);
                                      EXPECT_EQ(m, 0u);
                                      EXPECT_GT(v, 0);
                                      ++rows;
                                    });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(rows, 2) << "the repeated id gets the row at both positions";
  // Every job's rows, as the map-building read gives them (two passes: index, then values by rowid).
  std::vector<std::string> all(ids.begin(), ids.end() - 2);
  const std::vector<std::string> evals = {"test", "val"}, names = {"wa", "ua"};
  Ledger::MetricMap got;
  ASSERT_TRUE(h.ledger
                  ->ForEachMetric(std::vector<std::string_view>(all.begin(), all.end()), evals, names,
                                  [&](size_t i, size_t e, size_t m, double v) { got[all[i]][evals[e]][names[m]] = v; })
                  .ok());
  auto want = h.ledger->Metrics(all, evals, names);
  ASSERT_TRUE(want.ok());
  EXPECT_FALSE(want->empty());
  EXPECT_EQ(got, *want);
}

}  // namespace
}  // namespace emosweep::orchestrator
