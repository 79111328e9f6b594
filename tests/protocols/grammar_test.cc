// tests/protocols/grammar_test.cc: every grammar error names the file and the
// line (one test per bad-input case), and valid files parse without stores.
#include <gtest/gtest.h>

#include <chrono>

#include "protocols/expand.h"
#include "tests/protocols/protocol_test_util.h"

namespace emosweep::protocols {
namespace {

using testing::TestDir;

// A valid protocol; `extra_exp` is appended inside the experiment table,
// `tail` after it. Line numbers below refer to this layout.
std::string Proto(const std::string& extra_exp = "", const std::string& tail = "",
                  const std::string& selection = "selection = \"source_val\"\n") {
  return "version = 1\n"                                   // 1
         "name = \"t\"\n"                                  // 2
         "[corpora.a]\n"                                   // 3
         "store = \"a.h5\"\n"                              // 4
         "[corpora.b]\n"                                   // 5
         "store = \"b.h5\"\n"                              // 6
         "[defaults]\n"                                    // 7
         "labels = \"core4\"\n"                            // 8
         "features = {audio = \"feat\"}\n"                 // 9
         "seeds = [1, 2]\n"                                // 10
         "[[experiment]]\n"                                // 11
         "name = \"e\"\n"                                  // 12
         "kind = \"in_domain\"\n"                          // 13
         "corpora = [\"a\"]\n"                             // 14
         "models = [\"concat_mlp\"]\n" +                   // 15
         selection + extra_exp + tail;                     // 16..
}

Status LoadError(const TestDir& dir, const std::string& text) {
  std::string path = dir.Write("p.toml", text);
  auto p = LoadProtocol(path);
  EXPECT_FALSE(p.ok()) << "expected an error for:\n" << text;
  return p.ok() ? Status::Ok() : p.status();
}

void ExpectAt(const Status& s, const TestDir& dir, int line, const std::string& what) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(dir.File("p.toml") + " line " + std::to_string(line)), std::string::npos)
      << "expected line " << line << " in: " << s.message();
  EXPECT_NE(s.message().find(what), std::string::npos) << "expected '" << what << "' in: " << s.message();
}

TEST(Grammar, ValidProtocolParsesWithoutStores) {
  TestDir dir;
  auto p = LoadProtocol(dir.Write("p.toml", Proto()));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->name, "t");
  ASSERT_EQ(p->experiments.size(), 1u);
  EXPECT_FALSE(p->experiments[0].expanded);
  EXPECT_NE(p->experiments[0].reason.find("missing store"), std::string::npos);
  EXPECT_EQ(p->missing_inputs.size(), 1u);  // only corpus a is used
  EXPECT_TRUE(p->jobs.empty());
}

TEST(Grammar, UnknownTopLevelKeyNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, "colour = 3\n" + Proto()), dir, 1, "unknown key 'colour'");
}

TEST(Grammar, UnknownExperimentKeyNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("epochs = 3\n")), dir, 17, "unknown key 'epochs'");
}

TEST(Grammar, KindSpecificKeyOnWrongKindIsUnknown) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("budgets = [\"10%\"]\n")), dir, 17, "unknown key 'budgets'");
}

TEST(Grammar, WrongTypeNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("seeds = \"1\"\n")), dir, 17, "'seeds' must be a non-empty list");
}

TEST(Grammar, MissingSelectionNamesExperiment) {
  TestDir dir;
  Status s = LoadError(dir, Proto("", "", ""));
  ExpectAt(s, dir, 11, "no model-selection policy");
  EXPECT_NE(s.message().find("'e'"), std::string::npos) << s.message();
}

TEST(Grammar, UnknownSelectionPolicy) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("", "", "selection = \"best_test\"\n")), dir, 16, "not one of source_val");
}

TEST(Grammar, OracleMustNameItsEvalSet) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("", "", "selection = \"oracle\"\n")), dir, 16, "oracle_eval");
}

TEST(Grammar, TargetValNeedsATarget) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("", "", "selection = \"target_val\"\n")), dir, 16, "needs a target corpus");
}

TEST(Grammar, UnsupervisedDaSelectionNeedsAnAdaptExperiment) {
  TestDir dir;
  for (const char* sel : {"dev", "im", "snd"})
    ExpectAt(LoadError(dir, Proto("", "", std::string("selection = \"") + sel + "\"\n")), dir, 16,
             "selects on the unlabeled target of an adapt experiment");
}

TEST(Grammar, UnknownModelNamesLine) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("\"concat_mlp\""), 12, "\"resnet9000\"");
  ExpectAt(LoadError(dir, text), dir, 15, "unknown model 'resnet9000'");
}

TEST(Grammar, UnknownModelConfigKeyNamesLine) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("[\"concat_mlp\"]"), 14, "[{name = \"concat_mlp\", wings = 2}]");
  ExpectAt(LoadError(dir, text), dir, 15, "unknown key 'wings'");
}

TEST(Grammar, UnknownTrainKeyNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("train = {learning_rate = 0.1}\n")), dir, 17, "unknown key 'learning_rate'");
}

TEST(Grammar, TrainValueOutOfBoundsNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("train = {lr = -1.0}\n")), dir, 17, "'lr'");
}

TEST(Grammar, UnknownDaVariantNamesLine) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("kind = \"in_domain\""), 18, "kind = \"adapt\"");
  text.replace(text.find("corpora = [\"a\"]"), 15, "source = \"a\"\ntarget = \"b\"");
  // the replacement adds one line: experiment keys shift by one
  ExpectAt(LoadError(dir, text + "variants = [\"dann_ganin\", \"dann_magic\"]\n"), dir, 18, "dann_magic");
}

TEST(Grammar, BadBudgetNamesLine) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("kind = \"in_domain\""), 18, "kind = \"fewshot\"");
  text.replace(text.find("corpora = [\"a\"]"), 15, "source = \"a\"\ntarget = \"b\"");
  ExpectAt(LoadError(dir, text + "budgets = [\"10%\", \"120%\"]\n"), dir, 18, "120%");
}

// Session 17's audit: repeated budgets and variants were merged into one without a word; a model reading a
// modality the experiment declares no features for passed `plan` and failed every job in `run`.
TEST(Grammar, RepeatedBudgetOrVariantNamesLine) {
  TestDir dir;
  std::string fs = Proto();
  fs.replace(fs.find("kind = \"in_domain\""), 18, "kind = \"fewshot\"");
  fs.replace(fs.find("corpora = [\"a\"]"), 15, "source = \"a\"\ntarget = \"b\"");
  ExpectAt(LoadError(dir, fs + "budgets = [\"50%\", \"50%\"]\n"), dir, 18, "budget '50%' is listed twice");
  // One budget written two ways (helper-62: taken as two).
  ExpectAt(LoadError(dir, fs + "budgets = [\"70%\", 0.7]\n"), dir, 18, "is listed twice (also as '70%')");
  std::string da = Proto();
  da.replace(da.find("kind = \"in_domain\""), 18, "kind = \"adapt\"");
  da.replace(da.find("corpora = [\"a\"]"), 15, "source = \"a\"\ntarget = \"b\"");
  ExpectAt(LoadError(dir, da + "variants = [\"mmd_rbf\", \"mmd_rbf\"]\n"), dir, 18, "variant 'mmd_rbf' is listed twice");
}

TEST(Grammar, ModelReadingAnUndeclaredModalityNamesItsLine) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("models = [\"concat_mlp\"]"), 23, "models = [{name = \"unimodal_mlp\", modality = \"text\"}]");
  ExpectAt(LoadError(dir, text), dir, 15, "model 'unimodal_mlp' reads modality 'text', but the experiment's features declare only audio");
  std::string two = Proto();
  two.replace(two.find("models = [\"concat_mlp\"]"), 23, "models = [\"glomer\"]");
  ExpectAt(LoadError(dir, two), dir, 15, "model 'glomer' reads modality");
  std::string ok = Proto();  // the same model on the modality declared
  ok.replace(ok.find("models = [\"concat_mlp\"]"), 23, "models = [{name = \"unimodal_mlp\", modality = \"audio\"}]");
  EXPECT_TRUE(LoadProtocol(dir.Write("p.toml", ok)).ok());
}

TEST(Grammar, UnknownCorpusNamesLine) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("corpora = [\"a\"]"), 15, "corpora = [\"zz\"]");
  ExpectAt(LoadError(dir, text), dir, 14, "corpus 'zz' is not declared");
}

TEST(Grammar, UnknownLabelNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("labels = [\"anger\", \"grumpy\"]\n")), dir, 17, "'grumpy' is not a canonical label");
}

TEST(Grammar, GridKeyMustBeTrainOrModel) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("grid = {lr = [0.1]}\n")), dir, 17, "must be train.<key>");
}

TEST(Grammar, GridValueValidatedAgainstTrainTable) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("grid = {\"train.optimizer\" = [\"adamw\", \"rmsprop\"]}\n")), dir, 17, "rmsprop");
}

TEST(Grammar, VersionIsRequiredAndChecked) {
  TestDir dir;
  std::string text = Proto();
  ExpectAt(LoadError(dir, "version = 2" + text.substr(text.find('\n'))), dir, 1, "version 2 is not supported");
  Status s = LoadError(dir, text.substr(text.find('\n') + 1));
  EXPECT_NE(s.message().find("'version' is missing"), std::string::npos) << s.message();
}

TEST(Grammar, TomlSyntaxErrorNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("models = [\n")), dir, 17, "");
}

TEST(Grammar, TableSpreadIsRequired) {
  TestDir dir;
  std::string table = "[[table]]\nname = \"t1\"\nexperiment = \"e\"\nrows = \"model\"\ncolumns = \"corpus\"\n"
                      "metrics = [\"ua\"]\n";
  ExpectAt(LoadError(dir, Proto("", table)), dir, 17, "'spread' is missing");
}

TEST(Grammar, TableUnknownAttributeNamesLine) {
  TestDir dir;
  std::string table = "[[table]]\nname = \"t1\"\nexperiment = \"e\"\nrows = \"model\"\ncolumns = \"planet\"\n"
                      "metrics = [\"ua\"]\nspread = \"std\"\n";
  ExpectAt(LoadError(dir, Proto("", table)), dir, 21, "'planet' is not an attribute");
}

TEST(Grammar, PublishedValuesNeedTolerance) {
  TestDir dir;
  std::string table = "[[table]]\nname = \"t1\"\nexperiment = \"e\"\nrows = \"model\"\ncolumns = \"corpus\"\n"
                      "metrics = [\"ua\"]\nspread = \"std\"\npublished = {\"concat_mlp|a\" = 61.2}\n";
  ExpectAt(LoadError(dir, Proto("", table)), dir, 24, "tolerance");
}

// Session 18's audit: "row|column|metric" keys were documented and handled by --reproduce but refused here.
TEST(Grammar, PublishedKeysMayNameTheMetric) {
  TestDir dir;
  std::string table = "[[table]]\nname = \"t1\"\nexperiment = \"e\"\nrows = \"model\"\ncolumns = \"corpus\"\n"
                      "metrics = [\"ua\", \"wa\"]\nspread = \"std\"\ntolerance = 1.0\n"
                      "published = {\"concat_mlp|a\" = 61.2, \"concat_mlp|a|wa\" = 63.0}\n";
  auto p = LoadProtocol(dir.Write("p.toml", Proto("", table)));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->tables[0].published.at("concat_mlp|a|wa"), 63.0);
  std::string other = "[[table]]\nname = \"t1\"\nexperiment = \"e\"\nrows = \"model\"\ncolumns = \"corpus\"\n"
                      "metrics = [\"ua\"]\nspread = \"std\"\ntolerance = 1.0\npublished = {\"concat_mlp|a|wa\" = 63.0}\n";
  ExpectAt(LoadError(dir, Proto("", other)), dir, 25, "names metric 'wa', which the table does not show");
  std::string bars = "[[table]]\nname = \"t1\"\nexperiment = \"e\"\nrows = \"model\"\ncolumns = \"corpus\"\n"
                     "metrics = [\"ua\"]\nspread = \"std\"\ntolerance = 1.0\npublished = {\"a|b|ua|x\" = 63.0}\n";
  ExpectAt(LoadError(dir, Proto("", bars)), dir, 25, "must be \"row|column\" or \"row|column|metric\"");
}

// Issue 14: tables over several experiments, rows over several attributes, grid selection.
const char* kSecond = "[[experiment]]\nname = \"f\"\nkind = \"loco\"\ncorpora = [\"a\", \"b\"]\n"
                      "models = [\"concat_mlp\"]\nselection = \"source_val\"\n";  // lines 17..22

TEST(Grammar, TableOverSeveralExperimentsWithCompositeRows) {
  TestDir dir;
  std::string table = std::string(kSecond) +
                      "[[table]]\nname = \"t1\"\nexperiments = [\"e\", \"f\"]\nrows = [\"experiment\", \"heldout\"]\n"
                      "columns = \"target\"\nmetrics = [\"ua\"]\nspread = \"std\"\naverage = true\nalpha = 0.01\n"
                      "grid_selection = \"training_domain\"\n";
  auto p = LoadProtocol(dir.Write("p.toml", Proto("", table)));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->tables.size(), 1u);
  const TableSpec& t = p->tables[0];
  EXPECT_EQ(t.experiments, (std::vector<std::string>{"e", "f"}));
  EXPECT_EQ(t.row_attrs, (std::vector<std::string>{"experiment", "heldout"}));
  EXPECT_EQ(t.rows, "experiment / heldout");
  EXPECT_TRUE(t.average);
  EXPECT_EQ(t.alpha, 0.01);
  EXPECT_EQ(t.grid_selection, "training_domain");
  EXPECT_EQ(t.seeds, (std::vector<uint64_t>{1, 2}));
}

TEST(Grammar, TableExperimentsErrorsNameTheLine) {
  TestDir dir;
  std::string head = std::string(kSecond) + "[[table]]\nname = \"t1\"\n";  // [[table]] at line 23
  std::string rest = "columns = \"target\"\nmetrics = [\"ua\"]\nspread = \"std\"\n";
  ExpectAt(LoadError(dir, Proto("", head + "experiments = [\"e\", \"nope\"]\nrows = \"model\"\n" + rest)), dir, 25,
           "experiment 'nope', which is not declared");
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"e\"\nexperiments = [\"f\"]\nrows = \"model\"\n" + rest)),
           dir, 26, "not both");
  ExpectAt(LoadError(dir, Proto("", head + "experiments = [\"e\", \"f\"]\nrows = [\"model\", \"planet\"]\n" + rest)),
           dir, 26, "'planet' is not an attribute");
  // heldout is an attribute of loco jobs, so of a table that reads f.
  EXPECT_TRUE(LoadProtocol(dir.Write("p.toml", Proto("", head + "experiments = [\"e\", \"f\"]\nrows = \"heldout\"\n" +
                                                             rest)))
                  .ok());
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"e\"\nrows = \"heldout\"\n" + rest)), dir, 26,
           "'heldout' is not an attribute of in_domain jobs");
}

TEST(Grammar, GridSelectionIsCheckedAgainstTheExperiments) {
  TestDir dir;
  std::string head = std::string(kSecond) + "[[table]]\nname = \"t1\"\nrows = \"model\"\ncolumns = \"target\"\n"
                     "metrics = [\"ua\"]\nspread = \"std\"\n";  // lines 23..28
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"f\"\ngrid_selection = \"best\"\n")), dir, 30,
           "not one of training_domain, lodo, oracle");
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"e\"\ngrid_selection = \"lodo\"\n")), dir, 30,
           "experiment 'e' is in_domain");
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"f\"\ngrid_selection = \"lodo\"\n")), dir, 30,
           "is loco over 2 corpora");
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"f\"\nalpha = 1.5\n")), dir, 30, "'alpha' must be in (0, 1)");
  // grid_selection_by: a rule per experiment, each checked; experiments with different rules need their own rows.
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"f\"\ngrid_selection_by = {g = \"oracle\"}\n")), dir, 30,
           "experiment 'g' does not feed this table");
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"f\"\ngrid_selection_by = {f = \"best\"}\n")), dir, 30,
           "grid selection 'best' for experiment 'f' is not one of");
  ExpectAt(LoadError(dir, Proto("", head + "experiments = [\"e\", \"f\"]\ngrid_selection_by = {f = \"oracle\"}\n")),
           dir, 30, "put 'experiment' in rows or columns");
  ExpectAt(LoadError(dir, Proto("", head + "experiment = \"f\"\ngrid_selection_by = {f = \"lodo\"}\n")), dir, 30,
           "is loco over 2 corpora");
  // Two models in one cell would be pooled under one grid point: the model must be a row or column.
  std::string two = "[[experiment]]\nname = \"f\"\nkind = \"loco\"\ncorpora = [\"a\", \"b\"]\n"
                    "models = [\"concat_mlp\", {name = \"concat_mlp\", label = \"wide\"}]\nselection = \"source_val\"\n"
                    "[[table]]\nname = \"t1\"\nexperiment = \"f\"\ncolumns = \"target\"\nmetrics = [\"ua\"]\n"
                    "spread = \"std\"\ngrid_selection = \"training_domain\"\n";  // grid_selection at line 29
  ExpectAt(LoadError(dir, Proto("", two + "rows = \"experiment\"\n")), dir, 29, "put 'model' in rows or columns");
  EXPECT_TRUE(LoadProtocol(dir.Write("p.toml", Proto("", two + "rows = [\"experiment\", \"model\"]\n"))).ok());
}

// Grid selection without target labels (im, snd, dev): only adaptation runs record the criteria, and snd/dev only
// when they select their epochs by them.
TEST(Grammar, GridSelectionOnTheUnlabeledTargetIsCheckedAgainstTheExperiment) {
  TestDir dir;
  auto adapt = [](const std::string& selection, const std::string& rule) {
    std::string text = Proto("", "", "selection = \"" + selection + "\"\n");
    text.replace(text.find("kind = \"in_domain\""), 18, "kind = \"adapt\"");
    text.replace(text.find("corpora = [\"a\"]"), 15, "source = \"a\"\ntarget = \"b\"");
    return text + "variants = [\"dann_ganin\"]\n" +  // line 18
           "[[table]]\nname = \"t1\"\nexperiment = \"e\"\nrows = \"model\"\ncolumns = \"target\"\n"
           "metrics = [\"ua\"]\nspread = \"std\"\ngrid_selection = \"" + rule + "\"\n";  // line 26
  };
  for (const char* sel : {"source_val", "im", "snd", "dev"}) {
    auto p = LoadProtocol(dir.Write("p.toml", adapt(sel, "im")));
    EXPECT_TRUE(p.ok()) << sel << ": " << p.status().ToString();
  }
  for (const char* rule : {"snd", "dev"}) {
    auto p = LoadProtocol(dir.Write("p.toml", adapt(rule, rule)));
    ASSERT_TRUE(p.ok()) << rule << ": " << p.status().ToString();
    EXPECT_EQ(p->tables[0].grid_selection, rule);
    ExpectAt(LoadError(dir, adapt("source_val", rule)), dir, 26,
             std::string("experiment 'e' has selection = \"source_val\" (set selection = \"") + rule + "\"");
  }
  // An experiment that never sees the unlabeled target cannot be ranked by it.
  std::string loco = std::string(kSecond) + "[[table]]\nname = \"t1\"\nrows = \"model\"\ncolumns = \"target\"\n"
                     "metrics = [\"ua\"]\nspread = \"std\"\nexperiment = \"f\"\ngrid_selection = \"im\"\n";
  ExpectAt(LoadError(dir, Proto("", loco)), dir, 30, "only adaptation runs record; experiment 'f' is loco");
}

TEST(Grammar, VarThatNothingUsesIsWarnedAbout) {
  TestDir dir;
  LoadOptions o;
  o.vars["STOER_DIR"] = "/x";  // a typo of a variable the protocol does not use
  auto p = LoadProtocol(dir.Write("p.toml", Proto()), o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  bool warned = false;
  for (const auto& w : p->warnings) warned |= w.find("--var STOER_DIR: the protocol uses no ${STOER_DIR}") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(Grammar, UndefinedVariableNamesLine) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("\"a.h5\""), 6, "\"${NOPE_NOT_SET_42}/a.h5\"");
  ExpectAt(LoadError(dir, text), dir, 4, "${NOPE_NOT_SET_42} is not defined");
}

TEST(Grammar, StoreDirSetsStoreDirVariable) {
  TestDir dir;
  std::string text = Proto();
  text.replace(text.find("\"a.h5\""), 6, "\"${STORE_DIR}/a.h5\"");
  LoadOptions o;
  o.store_dir = "/some/where";
  auto p = LoadProtocol(dir.Write("p.toml", text), o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->stores.at("a"), "/some/where/a.h5");
  EXPECT_EQ(p->stores.at("b"), dir.File("b.h5"));  // relative to the protocol's directory
  // --var STORE_DIR=... beats --store-dir, as the protocol format's priority list says.
  o.vars["STORE_DIR"] = "/by/var";
  auto q = LoadProtocol(dir.Write("q.toml", text), o);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->stores.at("a"), "/by/var/a.h5");
}

// [vars] after line 2: the protocol's lines from 3 on shift by the number of inserted lines.
std::string WithVars(const std::string& vars, const std::string& store_a) {
  std::string text = Proto();
  text.replace(text.find("[corpora.a]"), 0, "[vars]\n" + vars);
  text.replace(text.find("\"a.h5\""), 6, "\"" + store_a + "\"");
  return text;
}

TEST(Grammar, SelfReferencingVariableNamesTheCycleAndLine) {
  // Before: the store path kept a literal "${X}".
  TestDir dir;
  ExpectAt(LoadError(dir, WithVars("X = \"${X}/a\"\n", "${X}/a.h5")), dir, 4, "variable cycle ${X} -> ${X}");
}

TEST(Grammar, VariableCycleThroughOthersNamesEveryStep) {
  TestDir dir;
  Status s = LoadError(dir, WithVars("X = \"${Y}/a\"\nY = \"/r/${Z}\"\nZ = \"${X}\"\n", "${X}/a.h5"));
  ExpectAt(s, dir, 6, "variable cycle ${X} -> ${Y} -> ${Z} -> ${X}");
}

TEST(Grammar, UndefinedVariableInsideVarsNamesItsLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, WithVars("ROOT = \"/r\"\nX = \"${NOPE_NOT_SET_42}/s\"\n", "${ROOT}/a.h5")), dir, 5,
           "${NOPE_NOT_SET_42} used by X is not defined");
  ExpectAt(LoadError(dir, WithVars("X = \"${ROOT/s\"\n", "${X}/a.h5")), dir, 4, "unterminated");
}

TEST(Grammar, VariablesMayUseOtherVariables) {
  TestDir dir;
  auto p = LoadProtocol(dir.Write("p.toml", WithVars("ROOT = \"/r\"\nS = \"${ROOT}/stores\"\n", "${S}/a.h5")));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->stores.at("a"), "/r/stores/a.h5");
  // --var overrides ROOT; S follows it.
  LoadOptions o;
  o.vars["ROOT"] = "/elsewhere";
  auto q = LoadProtocol(dir.File("p.toml"), o);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->stores.at("a"), "/elsewhere/stores/a.h5");
}

TEST(Grammar, NanOrInfinityInTrainOrGridNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Proto("train = {lr = nan}\n")), dir, 17, "'lr' = nan");
  ExpectAt(LoadError(dir, Proto("grid = {\"train.lr\" = [0.1, inf]}\n")), dir, 17, "'train.lr' = inf");
  ExpectAt(LoadError(dir, Proto("", "[defaults.train]\nweight_decay = -inf\n")), dir, 18, "'weight_decay' = -inf");
}

// Grid values "0.001, 0.002, ..." (n of them) for a grid axis.
std::string Values(int n) {
  std::string v;
  for (int i = 1; i <= n; ++i) v += (i > 1 ? ", " : "") + std::to_string(i) + "e-4";
  return "[" + v + "]";
}

TEST(Grammar, JobCountAboveMaxJobsIsRefusedBeforeExpanding) {
  TestDir dir;
  // 1 model x 3 lr x 1 corpus x 2 seeds = 6 jobs at least.
  const std::string text = Proto("grid = {\"train.lr\" = " + Values(3) + "}\n");
  LoadOptions o;
  o.max_jobs = 5;
  auto p = LoadProtocol(dir.Write("p.toml", text), o);
  ASSERT_FALSE(p.ok());
  ExpectAt(p.status(), dir, 17, "expands to at least 6 jobs");
  EXPECT_NE(p.status().message().find("--max-jobs 5"), std::string::npos) << p.status().message();
  o.max_jobs = 6;
  EXPECT_TRUE(LoadProtocol(dir.File("p.toml"), o).ok());
  // The default limit: a 60x60x60 grid (432000 jobs) fails at once, without making its points
  // (before, it made 216000 validated grid points and grew without bound).
  const std::string huge = Proto("grid = {\"train.lr\" = " + Values(60) + ", \"train.eps\" = " + Values(60) +
                                 ", \"train.weight_decay\" = " + Values(60) + "}\n");
  const auto t0 = std::chrono::steady_clock::now();
  auto h = LoadProtocol(dir.Write("p.toml", huge));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(h.ok());
  ExpectAt(h.status(), dir, 17, "expands to at least 432000 jobs");
  EXPECT_NE(h.status().message().find("--max-jobs 200000"), std::string::npos) << h.status().message();
  EXPECT_LT(seconds, 5.0);
}

TEST(Grammar, ExactJobCountAboveMaxJobsIsRefusedAfterExpanding) {
  // in_domain with k = 3 folds: the count before expansion knows 1 corpus x 2 seeds = 2;
  // the expansion makes 3 folds x 2 seeds = 6 jobs.
  TestDir dir;
  testing::WriteStore(dir, testing::MakeCorpus("a"));
  const std::string text = Proto("split = {method = \"speaker_kfold\", k = 3}\n");
  LoadOptions o;
  o.max_jobs = 4;
  auto p = LoadProtocol(dir.Write("p.toml", text), o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("expands to 6 jobs"), std::string::npos) << p.status().message();
  o.max_jobs = 6;
  auto ok = LoadProtocol(dir.File("p.toml"), o);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->jobs.size(), 6u);
}

TEST(Grammar, DuplicateExperimentName) {
  TestDir dir;
  std::string text = Proto();
  std::string exp = text.substr(text.find("[[experiment]]"));
  ExpectAt(LoadError(dir, text + exp), dir, 17, "used twice");
}


// Corpus roles and evaluation sets (issue 14): each new error names the file and the line.
// Roles(kind, keys): a protocol with corpora a, b, c; the experiment starts at line 15 and `keys` (one per
// line) at line 20, both one line later when `corpus_c` (one line, at line 10) is given.
std::string Roles(const std::string& kind, const std::string& keys, const std::string& corpus_c = "",
                  const std::string& selection = "source_val") {
  return "version = 1\n"                                   // 1
         "name = \"t\"\n"                                  // 2
         "[corpora.a]\n"                                   // 3
         "store = \"a.h5\"\n"                              // 4
         "[corpora.b]\n"                                   // 5
         "store = \"b.h5\"\n"                              // 6
         "[corpora.c]\n"                                   // 7
         "store = \"c.h5\"\n"                              // 8
         "# c\n" +                                         // 9
         corpus_c +                                        // 10 when given (shifts what follows)
         "[defaults]\n"                                    // 10 (+ lines of corpus_c)
         "labels = \"core4\"\n"                            // 11
         "features = {audio = \"feat\"}\n"                 // 12
         "seeds = [1]\n"                                   // 13
         "selection = \"" + selection + "\"\n"             // 14
         "[[experiment]]\n"                                // 15
         "name = \"e\"\n"                                  // 16
         "kind = \"" + kind + "\"\n"                        // 17
         "models = [\"concat_mlp\"]\n"                     // 18
         "description = \"roles\"\n" +                     // 19
         keys;                                             // 20..
}

TEST(GrammarRoles, EvaluateOnMustBeTestOrWhole) {
  TestDir dir;
  std::string text = Roles("loco", "corpora = [\"a\", \"b\"]\n", "evaluate_on = \"val\"\n");
  ExpectAt(LoadError(dir, text), dir, 10, "evaluate_on 'val' is not");
}

TEST(GrammarRoles, HeldoutUndeclaredCorpusNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("loco", "corpora = [\"a\", \"b\"]\nheldout = [\"zz\"]\n")), dir, 21,
           "corpus 'zz' is not declared");
}

TEST(GrammarRoles, HeldoutListedTwiceNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("loco", "corpora = [\"a\", \"b\"]\nheldout = [\"c\", \"c\"]\n")), dir, 21,
           "listed twice");
}

TEST(GrammarRoles, HeldoutWithoutTrainingCorpusNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("loco", "corpora = [\"a\"]\nheldout = [\"a\"]\n")), dir, 21,
           "leaves no training corpus");
}

TEST(GrammarRoles, HeldoutOnlyOnLoco) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("joint", "corpora = [\"a\", \"b\"]\nheldout = [\"c\"]\n")), dir, 21,
           "unknown key 'heldout'");
}

TEST(GrammarRoles, TargetAndTargetsTogetherNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("adapt", "source = \"a\"\ntarget = \"b\"\ntargets = [\"c\"]\nvariants = [\"none\"]\n")),
           dir, 22, "either 'target'");
}

TEST(GrammarRoles, MissingTargetNamesExperiment) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("adapt", "source = [\"a\", \"b\"]\nvariants = [\"none\"]\n")), dir, 15,
           "'target' (or 'targets");
}

TEST(GrammarRoles, TargetAmongSourcesNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("adapt", "source = [\"a\", \"b\"]\ntargets = [\"c\", \"b\"]\nvariants = [\"none\"]\n")),
           dir, 21, "corpus 'b' is both a source and a target");
}

TEST(GrammarRoles, EmptySourceListNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("fewshot", "source = []\ntarget = \"c\"\nshots = [1]\n")), dir, 20,
           "'source' must list at least one corpus");
}

TEST(GrammarRoles, SourceListedTwiceNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("fewshot", "source = [\"a\", \"a\"]\ntarget = \"c\"\nshots = [1]\n")), dir, 20,
           "listed twice");
}

TEST(GrammarRoles, BadPoolNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("adapt", "source = [\"a\", \"b\"]\ntarget = \"c\"\npool = \"some\"\nvariants = [\"none\"]\n")),
           dir, 22, "'pool' must be");
  ExpectAt(LoadError(dir, Roles("adapt", "source = [\"a\", \"b\"]\ntarget = \"c\"\npool = [\"each\", \"each\"]\n"
                                         "variants = [\"none\"]\n")),
           dir, 22, "'pool' must be");
}

TEST(GrammarRoles, CrossCorpusCorporaAndSourceTogetherNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("cross_corpus", "corpora = [\"a\", \"b\"]\nsource = \"a\"\ntarget = \"c\"\n")), dir,
           21, "either 'corpora'");
}

TEST(GrammarRoles, CrossCorpusPoolNeedsTheSourceForm) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("cross_corpus", "corpora = [\"a\", \"b\"]\npool = \"each\"\n")), dir, 21,
           "belongs to the source form");
}

TEST(GrammarRoles, CrossCorpusTargetsOnlyTheSourceNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir, Roles("cross_corpus", "corpora = [\"a\"]\ntargets = [\"a\"]\n")), dir, 21,
           "no target other than the source");
}

TEST(GrammarRoles, FewshotOnAWholeCorpusTargetNamesBothLines) {
  TestDir dir;
  Status s = LoadError(dir, Roles("fewshot", "source = \"a\"\ntarget = \"c\"\nshots = [1]\n",
                                  "evaluate_on = \"whole\"\n"));
  ExpectAt(s, dir, 22, "evaluated on the whole corpus");
  EXPECT_NE(s.message().find("line 10"), std::string::npos) << "names the evaluate_on line: " << s.message();
}

TEST(GrammarRoles, TargetValOnAWholeCorpusTargetNamesLine) {
  TestDir dir;
  ExpectAt(LoadError(dir,
                     Roles("adapt", "source = \"a\"\ntarget = \"c\"\nvariants = [\"none\"]\nselection = \"target_val\"\n",
                           "evaluate_on = \"whole\"\n")),
           dir, 24, "would select on test labels");
}

TEST(GrammarRoles, ValidRolesParseAndListEveryCorpus) {
  TestDir dir;
  auto p = LoadProtocol(dir.Write("p.toml", Roles("adapt", "source = [\"a\", \"b\"]\ntarget = \"c\"\n"
                                                           "pool = [\"each\", \"all\"]\nvariants = [\"none\"]\n",
                                                  "evaluate_on = \"test\"\n")));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->experiments.size(), 1u);
  EXPECT_EQ(p->experiments[0].corpora, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(p->missing_inputs.size(), 3u);
}

}  // namespace
}  // namespace emosweep::protocols
