// The caption of a table names the transductive steps of its jobs (issue 14
// item 6; orchestrator/caption_notes.h), with where they are taken.
#include <gtest/gtest.h>

#include "orchestrator/caption_notes.h"
#include "orchestrator/tables.h"
#include "protocols/transductive.h"
#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/hand_ledger.h"

namespace emosweep::orchestrator {
namespace {

TEST(TablesCaption, NamesTransductiveStepsAndTheirRows) {
  auto h = testing::MakeHandLedger(testing::TestDir() + "/l.db");
  const auto& spec = h.protocol.tables[0];
  auto plain = BuildTable(h.protocol, spec, h.ledger.get());
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->caption.find("Transductive"), std::string::npos) << "no job takes a transductive step";
  // The row "good" standardises by each corpus's own statistics.
  for (auto& j : h.protocol.jobs)
    if (j.attrs.count(spec.rows) && j.attrs.at(spec.rows) == "good")
      j.attrs[protocols::kTransductiveAttr] = "feature_norm=corpus";
  auto t = BuildTable(h.protocol, spec, h.ledger.get());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_NE(t->caption.find("Transductive steps"), std::string::npos) << t->caption;
  EXPECT_NE(t->caption.find("inductive: feature_norm = \"train\"), in row good."), std::string::npos) << t->caption;
}

TEST(TransductiveNote, NamesStepsWhereTheyAreTakenAndTheInductiveAlternative) {
  auto job = [](const std::string& row, const std::string& col, const std::string& steps) {
    protocols::PlannedJob j;
    j.attrs["variant"] = row;
    j.attrs["train.feature_norm"] = col;
    if (!steps.empty()) j.attrs[protocols::kTransductiveAttr] = steps;
    return j;
  };
  auto note = [](const std::vector<protocols::PlannedJob>& jobs) {
    std::vector<CellJob> cells;
    for (const auto& j : jobs) cells.push_back({&j, &j.attrs.Get("variant"), &j.attrs.Get("train.feature_norm")});
    return TransductiveNote(cells, "variant", "train.feature_norm");
  };
  // Per-corpus standardisation in one column, adaptation in two rows (both columns).
  std::string n = note({job("none", "train", ""), job("none", "corpus", "feature_norm=corpus"),
                        job("dann_ganin", "train", "adapt"), job("dann_ganin", "corpus", "feature_norm=corpus,adapt"),
                        job("coral_deep", "train", "adapt"), job("coral_deep", "corpus", "feature_norm=corpus,adapt")});
  EXPECT_NE(n.find("(feature_norm = \"corpus\"; inductive: feature_norm = \"train\"), in column corpus;"),
            std::string::npos)
      << n;
  EXPECT_NE(n.find("domain adaptation on the target's unlabeled utterances (inductive: variant \"none\"), in rows "
                   "dann_ganin, coral_deep."),
            std::string::npos)
      << n;
  // Everywhere; and scattered cells named one by one.
  EXPECT_NE(note({job("a", "x", "adapt"), job("b", "x", "adapt")}).find("in every cell"), std::string::npos);
  std::string cells = note({job("a", "x", "adapt"), job("a", "y", ""), job("b", "x", ""), job("b", "y", "adapt")});
  EXPECT_NE(cells.find("in cells a / x, b / y"), std::string::npos) << cells;
  // A table without any transductive job gets no sentence.
  EXPECT_EQ(note({job("none", "train", "")}), "");
}

}  // namespace
}  // namespace emosweep::orchestrator

namespace emosweep::orchestrator {
namespace {

// UA and F1 average over a job's own classes: the caption names them, and where cells differ in them.
TEST(ClassesNote, NamesTheClassSetAndWhereCellsDiffer) {
  auto job = [](const std::string& row, const std::string& col, std::vector<std::string> labels) {
    protocols::PlannedJob j;
    j.attrs["model"] = row;
    j.attrs["target"] = col;
    j.spec.labels = jobs::IdList::Intern(std::move(labels));
    return j;
  };
  auto note = [](const std::vector<protocols::PlannedJob>& jobs) {
    std::vector<CellJob> cells;
    for (const auto& j : jobs) cells.push_back({&j, &j.attrs.Get("model"), &j.attrs.Get("target")});
    return ClassesNote(cells, "model", "target");
  };
  const std::vector<std::string> four = {"anger", "happiness", "neutral", "sadness"};
  const std::vector<std::string> seven = {"anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"};
  EXPECT_EQ(note({job("mlp", "emodb", four), job("mlp", "ravdess", four), job("xattn", "emodb", four)}),
            "Classes (4) anger, happiness, neutral, sadness.");
  EXPECT_EQ(note({job("mlp", "emodb", four), job("mlp", "tess", seven), job("xattn", "emodb", four),
                  job("xattn", "tess", seven)}),
            "Classes differ between cells (UA and F1 average over each job's own classes): (4) anger, happiness, "
            "neutral, sadness, in column emodb; (7) anger, disgust, fear, happiness, neutral, sadness, surprise, in "
            "column tess.");
  // The same classes in another order are the same set (printed in the order seen first).
  std::vector<std::string> reordered = {"sadness", "anger", "happiness", "neutral"};
  EXPECT_EQ(note({job("mlp", "emodb", four), job("mlp", "ravdess", reordered)}),
            "Classes (4) anger, happiness, neutral, sadness.");
  EXPECT_EQ(note({job("mlp", "emodb", reordered), job("mlp", "ravdess", four)}),
            "Classes (4) sadness, anger, happiness, neutral.");
  EXPECT_EQ(note({job("mlp", "emodb", {})}), "") << "no classes named: nothing said";
}

}  // namespace
}  // namespace emosweep::orchestrator
