// tests/protocols/plan_cli_test.cc: `emosweep plan` as a subprocess: exit
// codes (0 valid, 2 malformed), the JSON document, missing stores listed.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "orchestrator/ledger.h"
#include "tests/protocols/protocol_test_util.h"

namespace emosweep::protocols {
namespace {

struct ExecResult {
  int code = -1;
  std::string out;
};

ExecResult Exec(const std::string& args) {
  ExecResult r;
  std::string cmd = std::string(EMOSWEEP_BINARY) + " " + args;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
  int status = pclose(f);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const char* kProto = R"(version = 1
name = "cli"
[corpora.a]
store = "${STORE_DIR}/a.h5"
[corpora.b]
store = "${STORE_DIR}/b.h5"
[defaults]
labels = "core4"
features = {audio = "feat"}
seeds = [1, 2]
selection = "source_val"
split = {method = "speaker_kfold", k = 3}
[[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b"]
models = ["concat_mlp"]
[[table]]
name = "matrix"
experiment = "xc"
rows = "source"
columns = "target"
metrics = ["ua"]
spread = "std"
)";

class PlanCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(EMOSWEEP_BINARY)) GTEST_SKIP() << "emosweep binary not built: " << EMOSWEEP_BINARY;
  }
  testing::TestDir dir_;
};

TEST_F(PlanCli, JsonDocumentWithJobCounts) {
  for (const char* n : {"a", "b"}) testing::WriteStore(dir_, testing::MakeCorpus(n));
  std::string proto = dir_.Write("p.toml", kProto);
  ExecResult r = Exec("plan " + proto + " --store-dir " + dir_.path() + " --json --jobs 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);  // exactly one JSON document
  EXPECT_EQ(j["protocol"], "cli");
  EXPECT_EQ(j["jobs_total"], 8);  // 2 trained × 2 seeds + 2 eval × 2 seeds
  EXPECT_EQ(j["jobs_by_kind"]["supervised"], 4);
  EXPECT_EQ(j["jobs_by_kind"]["eval"], 4);
  EXPECT_EQ(j["jobs"].size(), 8u);
  EXPECT_TRUE(j["missing_inputs"].empty());
}

TEST_F(PlanCli, MissingStoresListedExitZero) {
  std::string proto = dir_.Write("p.toml", kProto);
  ExecResult r = Exec("plan " + proto + " --store-dir " + dir_.path() + " 2>&1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("MISSING"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not expanded: missing store(s): a, b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(dir_.File("a.h5")), std::string::npos) << r.out;
}

TEST_F(PlanCli, MalformedProtocolExitsTwoNamingLine) {
  std::string text = kProto;
  text.replace(text.find("spread = \"std\""), 14, "spread = \"stddev\"");
  std::string proto = dir_.Write("p.toml", text);
  ExecResult r = Exec("plan " + proto + " --store-dir " + dir_.path() + " 2>&1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(proto + " line 24"), std::string::npos) << r.out;
}

TEST_F(PlanCli, LedgerCountsDoneFailedToRun) {
  for (const char* n : {"a", "b"}) testing::WriteStore(dir_, testing::MakeCorpus(n));
  std::string proto = dir_.Write("p.toml", kProto);
  std::string db = dir_.File("ledger.sqlite");
  // No ledger yet: everything is to run.
  ExecResult none = Exec("plan " + proto + " --store-dir " + dir_.path() + " --ledger " + db + " --json 2>/dev/null");
  ASSERT_EQ(none.code, 0) << none.out;
  EXPECT_EQ(nlohmann::json::parse(none.out)["ledger"]["counts"]["to_run"], 8);
  {
    LoadOptions o;
    o.store_dir = dir_.path();
    Protocol p = testing::MustLoad(proto, o);
    ASSERT_EQ(p.jobs.size(), 8u);
    auto ledger = orchestrator::Ledger::Open(db);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    auto sweep = (*ledger)->BeginSweep({p.name, p.path, "h", p.effective, nlohmann::json::object()});
    ASSERT_TRUE(sweep.ok()) << sweep.status().ToString();
    ASSERT_TRUE((*ledger)->RegisterJobs(*sweep, p.jobs).ok());
    orchestrator::ClaimOptions co;
    ASSERT_TRUE((*ledger)->Claim(p.jobs[0].spec.id, "test:1", co).ok());
    auto done = (*ledger)->Complete(p.jobs[0].spec.id, "test:1", jobs::JobResult{}, nlohmann::json::object());
    ASSERT_TRUE(done.ok() && *done) << done.status().ToString();
    ASSERT_TRUE((*ledger)->Claim(p.jobs[1].spec.id, "test:1", co).ok());
    ASSERT_TRUE((*ledger)->Fail(p.jobs[1].spec.id, "test:1", "boom", /*retry=*/false).ok());
  }
  ExecResult r = Exec("plan " + proto + " --store-dir " + dir_.path() + " --ledger " + db + " --json 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  auto counts = nlohmann::json::parse(r.out)["ledger"]["counts"];
  EXPECT_EQ(counts["done"], 1);
  EXPECT_EQ(counts["failed"], 1);
  EXPECT_EQ(counts["to_run"], 6);
  EXPECT_EQ(counts["running"], 0);
}

TEST_F(PlanCli, MaxJobsRefusesALargerProtocolWithItsCount) {
  // 2 (source, target) pairs x ... = 8 jobs: counted before anything is expanded, so no store is needed.
  std::string proto = dir_.Write("p.toml", kProto);
  ExecResult r = Exec("plan " + proto + " --store-dir " + dir_.path() + " --max-jobs 7 2>&1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(proto + " line 13"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("expands to at least 8 jobs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("more than --max-jobs 7"), std::string::npos) << r.out;
  EXPECT_EQ(Exec("plan " + proto + " --store-dir " + dir_.path() + " --max-jobs 8 >/dev/null 2>&1").code, 0);
}

TEST_F(PlanCli, HugeGridFailsFastInLittleMemory) {
  // A 60x60x60 grid once grew `plan` to 9 GB; now it is refused by the default --max-jobs
  // within 3 GB of address space (libtorch's mappings included) and well inside 60 s.
  std::string grid = "grid = {";
  for (const char* key : {"train.lr", "train.eps", "train.weight_decay"}) {
    grid += std::string(grid.size() > 8 ? ", " : "") + "\"" + key + "\" = [";
    for (int i = 1; i <= 60; ++i) grid += (i > 1 ? ", " : "") + std::to_string(i) + "e-5";
    grid += "]";
  }
  std::string text = kProto;
  text.replace(text.find("models = [\"concat_mlp\"]"), 0, grid + "}\n");
  std::string proto = dir_.Write("p.toml", text);
  // Exec prefixes the binary; run it under a shell with the limits instead.
  const std::string cmd = "ulimit -v 3000000; exec timeout 60 " + std::string(EMOSWEEP_BINARY) + " plan " + proto +
                          " --store-dir " + dir_.path() + " 2>&1";
  ExecResult r;
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) r.out.append(buf, n);
  const int status = pclose(f);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("expands to at least 1728000 jobs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--max-jobs 200000"), std::string::npos) << r.out;
}

TEST_F(PlanCli, RunRefusesBadProtocolsBeforeTouchingTheLedger) {
  // Issue 13 §3 through `run`: exit 2 naming the file and line, and no ledger is created.
  for (const char* n : {"a", "b"}) testing::WriteStore(dir_, testing::MakeCorpus(n));
  const std::string db = dir_.File("l.db");
  struct Case {
    std::string text, needle;
  };
  std::string nan = kProto, cycle = kProto;
  nan.replace(nan.find("models = [\"concat_mlp\"]"), 0, "train = {lr = nan}\n");
  cycle.replace(cycle.find("[corpora.a]"), 0, "[vars]\nX = \"${Y}\"\nY = \"${X}\"\n");
  cycle.replace(cycle.find("${STORE_DIR}/a.h5"), 17, "${X}/a.h5");
  for (const Case& c : std::vector<Case>{{nan, " line 17: 'lr' = nan"},
                                         {cycle, " line 5: [vars]: variable cycle ${X} -> ${Y} -> ${X}"},
                                         {kProto, "more than --max-jobs 7"}}) {
    std::string proto = dir_.Write("p.toml", c.text);
    ExecResult r = Exec("run " + proto + " --ledger " + db + " --store-dir " + dir_.path() +
                        " --max-jobs 7 --threads 1 2>&1");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(proto), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.needle), std::string::npos) << "'" << c.needle << "' not in: " << r.out;
    EXPECT_FALSE(std::filesystem::exists(db)) << "a ledger was created for a refused protocol";
  }
}

TEST_F(PlanCli, MissingProtocolFileExitsTwo) {
  ExecResult r = Exec("plan " + dir_.File("nope.toml") + " 2>&1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nope.toml"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace emosweep::protocols
