// End-to-end: `emosweep train --config JOB.toml [--json] [--work-dir DIR]` run as a subprocess on
// stores written by `emosweep data synth`: both [data] forms, sensible metrics, determinism,
// resume after SIGINT/SIGTERM with bitwise the same numbers, bad input exits 2 naming the file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Ran {
  int code = -1;
  std::string out, err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A job over the synth stores; `data` is the [data] section body, `train` extra [train] keys.
std::string Job(const std::string& data, const std::string& train, const std::string& model = "concat_mlp",
                const std::string& top = "") {
  return top + "seed = 7\nlabel_set = \"core4\"\n\n[features]\naudio = \"synth_audio\"\ntext = \"synth_text\"\n\n[data]\n" +
         data + "\n\n[model]\nname = \"" + model + "\"\n\n[train]\n" + train + "\n";
}

const char* kSplitData = "store = \"s/synth_a.h5\"\nsplit = \"s/a.split.json\"\nfold = 0\n[data.eval]\nother = \"s/synth_b.h5\"";
const char* kStoresData = "train = [\"s/synth_a.h5\"]\nval = \"s/synth_b.h5\"\n[data.eval]\ntest = \"s/synth_c.h5\"";

class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One set of stores for every test: three corpora without domain shift, so a model trained
    // on one separates the classes of the others too.
    suite_dir_ = fs::path(::testing::TempDir()) / ("emosweep_train_cli_" + std::to_string(getpid()));
    fs::remove_all(suite_dir_);
    fs::create_directories(suite_dir_);
    const std::string s = (suite_dir_ / "s").string();
    ASSERT_EQ(std::system((std::string(EMOSWEEP_BINARY) + " data synth --out " + s +
                           " --corpora 3 --speakers 6 --per-speaker 24 --shift 0 --seed 3 --log-level warn >/dev/null")
                              .c_str()),
              0);
    ASSERT_EQ(std::system((std::string(EMOSWEEP_BINARY) + " data split " + s + "/synth_a.h5 --k 3 --out " + s +
                           "/a.split.json --log-level warn >/dev/null")
                              .c_str()),
              0);
  }
  static void TearDownTestSuite() { fs::remove_all(suite_dir_); }

  void SetUp() override {
    dir_ = suite_dir_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
    fs::create_directory_symlink(suite_dir_ / "s", dir_ / "s");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return P(name);
  }

  Ran Run(const std::string& args) const {
    const std::string err = P("stderr.txt");
    const std::string cmd = std::string(EMOSWEEP_BINARY) + " " + args + " 2>" + err;
    Ran r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int st = pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.err = Slurp(err);
    return r;
  }

  // Starts `emosweep train` in the background, waits until its stderr shows epoch `after`
  // finished, sends `sig`, and returns the exit code.
  int RunAndSignal(const std::string& args, int after, int sig, std::string* err_text) const {
    // A fresh file per call: a stale one from an earlier run would match the marker at once.
    const std::string err = P("bg_stderr_" + std::to_string(sig) + ".txt"), out = P("bg_stdout.txt");
    fs::remove(err);
    const pid_t pid = fork();
    if (pid == 0) {
      const std::string cmd = "exec " + std::string(EMOSWEEP_BINARY) + " " + args + " >" + out + " 2>" + err;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const std::string marker = "] epoch " + std::to_string(after) + " ";
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 3000 && !exited; ++i) {  // at most 30 s
      if (Slurp(err).find(marker) != std::string::npos) break;
      exited = waitpid(pid, &status, WNOHANG) == pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!exited) {
      kill(pid, sig);
      waitpid(pid, &status, 0);
    }
    *err_text = Slurp(err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static fs::path suite_dir_;
  fs::path dir_;
};
fs::path TrainCli::suite_dir_;

void ExpectSensible(const json& m, int64_t n, const std::string& set) {
  SCOPED_TRACE(set);
  EXPECT_EQ(m["n"].get<int64_t>(), n);
  for (const char* k : {"ua", "wa", "macro_f1", "weighted_f1"}) {
    ASSERT_TRUE(m[k].is_number()) << k;
    EXPECT_GE(m[k].get<double>(), 0.0) << k;
    EXPECT_LE(m[k].get<double>(), 1.0) << k;
  }
  // Separable synthetic classes: far above chance (0.25 for four balanced classes).
  EXPECT_GT(m["ua"].get<double>(), 0.6);
  int64_t total = 0, diag = 0;
  ASSERT_EQ(m["confusion"].size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j) {
      total += m["confusion"][i][j].get<int64_t>();
      if (i == j) diag += m["confusion"][i][j].get<int64_t>();
    }
  EXPECT_EQ(total, n);
  EXPECT_NEAR(m["wa"].get<double>(), static_cast<double>(diag) / n, 1e-12);
}

TEST_F(TrainCli, SplitFormPrintsOneJsonDocumentWithSensibleMetrics) {
  const std::string cfg = Write("job.toml", Job(kSplitData, "epochs = 15"));
  Ran r = Run("train --config " + cfg + " --json --log-level warn");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);  // throws (fails the test) unless exactly one document
  ASSERT_EQ(j["job_id"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["job"]["model"]["name"], "concat_mlp");
  EXPECT_EQ(j["job"]["model"]["hidden_dims"], json::array({384, 192}));  // effective model config
  const json& res = j["result"];
  ASSERT_TRUE(res["evals"].contains("test") && res["evals"].contains("other") && res["evals"].contains("val"));
  // The split has 3 speaker folds of 6 speakers x 24 utterances: test = 2 speakers.
  ExpectSensible(res["evals"]["test"]["metrics"], 48, "test");
  ExpectSensible(res["evals"]["other"]["metrics"], 144, "other");
  EXPECT_EQ(res["evals"]["other"]["predictions"].size(), 144u);
  EXPECT_EQ(res["curve"].size(), 15u);
  EXPECT_EQ(res["info"]["epochs_run"], 15);
  EXPECT_GE(res["selected_epoch"].get<int>(), 0);
  EXPECT_LT(res["selected_epoch"].get<int>(), 15);
  // The loss goes down.
  EXPECT_LT(res["curve"][14]["train_loss"].get<double>(), res["curve"][0]["train_loss"].get<double>());

  // Same seed: bitwise the same metrics and predictions; another seed: different ones.
  Ran again = Run("train --config " + cfg + " --json --log-level warn");
  ASSERT_EQ(again.code, 0) << again.err;
  const json j2 = json::parse(again.out);
  EXPECT_EQ(j2["job_id"], j["job_id"]);
  EXPECT_EQ(j2["result"]["evals"].dump(), res["evals"].dump());
  const std::string other_seed = Write("job9.toml", Job(kSplitData, "epochs = 15", "concat_mlp").replace(0, 8, "seed = 9"));
  Ran r9 = Run("train --config " + other_seed + " --json --log-level warn");
  ASSERT_EQ(r9.code, 0) << r9.err;
  EXPECT_NE(json::parse(r9.out)["result"]["evals"].dump(), res["evals"].dump());
}

TEST_F(TrainCli, WholeStoresFormAndTextTable) {
  const std::string cfg = Write("job.toml", Job(kStoresData, "epochs = 10"));
  Ran r = Run("train --config " + cfg + " --json --log-level warn");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["job"]["train"].size(), 1u);
  EXPECT_EQ(j["job"]["train"][0]["ids"].size(), 144u);
  ExpectSensible(j["result"]["evals"]["test"]["metrics"], 144, "test");
  ExpectSensible(j["result"]["evals"]["val"]["metrics"], 144, "val");

  Ran text = Run("train --config " + cfg);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("model concat_mlp"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("test         144"), std::string::npos) << text.out;
  EXPECT_NE(text.err.find("] epoch 9 "), std::string::npos) << "per-epoch progress on stderr:\n" << text.err;
}

// An adapt job prints its DA diagnostics per epoch, and TLlib's 1000-step horizon in a 10-step run is flagged.
TEST_F(TrainCli, AdaptJobPrintsDiagnosticsAndTheShortScheduleWarning) {
  std::string data = "train = [\"s/synth_a.h5\"]\nval = \"s/synth_b.h5\"\ntarget_unlabeled = \"s/synth_c.h5\"\n"
                     "[data.eval]\ntest = \"s/synth_c.h5\"";
  std::string job = Job(data, "epochs = 2\nbatch_size = 32", "concat_mlp", "kind = \"adapt\"\n");
  job += "\n[adapt]\nvariant = \"dann_tllib\"\nweight = 0.3\n";
  const std::string cfg = Write("adapt.toml", job);
  Ran text = Run("train --config " + cfg);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.err.find("] epoch 1 da lambda "), std::string::npos) << text.err;
  EXPECT_NE(text.err.find(" disc_acc "), std::string::npos) << text.err;
  EXPECT_NE(text.err.find(" target_dist ["), std::string::npos) << text.err;
  EXPECT_NE(text.out.find("WARNING: schedule: the GRL lambda never exceeded"), std::string::npos) << text.out;
  Ran js = Run("train --config " + cfg + " --json --log-level warn");
  ASSERT_EQ(js.code, 0) << js.err;
  const json j = json::parse(js.out);
  const json& da = j["result"]["curve"][1]["val_metrics"]["da"];
  ASSERT_TRUE(da.is_object()) << j["result"]["curve"].dump();
  EXPECT_EQ(da["target_dist"].size(), 4u);
  EXPECT_GT(da["lambda"].get<double>(), 0.0);
  EXPECT_LT(da["lambda"].get<double>(), 0.03);
  EXPECT_EQ(j["result"]["info"]["warnings"][0]["code"], "short_schedule");
  // The horizon set to the run: no warning.
  const std::string fitted = Write("adapt2.toml", job + "grl_horizon = \"1 run\"\n");
  Ran ok = Run("train --config " + fitted + " --json --log-level warn");
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_FALSE(json::parse(ok.out)["result"]["info"].contains("warnings")) << ok.out.substr(0, 400);
}

TEST_F(TrainCli, UtterancesOutsideTheClassesAreLeftOut) {
  // Two of the four classes: the other two are left out of every labelled role.
  std::string job = Job(kStoresData, "epochs = 5");
  job.replace(job.find("label_set = \"core4\""), 19, "labels = [\"sadness\", \"anger\"]");
  Ran r = Run("train --config " + Write("job.toml", job) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["job"]["train"][0]["ids"].size(), 72u);
  EXPECT_EQ(j["result"]["evals"]["test"]["metrics"]["n"], 72);
  EXPECT_EQ(j["result"]["evals"]["test"]["metrics"]["confusion"].size(), 2u);
  EXPECT_NE(r.err.find("left out 72 utterances outside the job's classes (happiness 36, neutral 36)"),
            std::string::npos)
      << r.err;
}

TEST_F(TrainCli, InterruptedRunResumesToBitwiseTheSameNumbers) {
  // Long enough (batches of 8, 120 epochs) that the signal lands mid-training.
  const std::string cfg = Write("job.toml", Job(kStoresData, "epochs = 120\nbatch_size = 8"));
  Ran full = Run("train --config " + cfg + " --json --log-level warn");
  ASSERT_EQ(full.code, 0) << full.err;
  const json ref = json::parse(full.out)["result"];

  for (int sig : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGTERM");
    const std::string work = P(sig == SIGINT ? "work_int" : "work_term");
    const std::string args = "train --config " + cfg + " --json --work-dir " + work;
    std::string err;
    ASSERT_EQ(RunAndSignal(args, 3, sig, &err), 3) << "expected a stopped run (exit 3):\n" << err;
    EXPECT_NE(err.find("stopped on request after epoch"), std::string::npos) << err;
    const std::string id = json::parse(full.out)["job_id"];
    ASSERT_TRUE(fs::exists(work + "/" + id + "/state.ckpt")) << "no saved state in " << work;

    Ran resumed = Run(args + " --log-level warn");
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    const json res = json::parse(resumed.out)["result"];
    EXPECT_GT(res["info"]["resumed_from_epoch"].get<int>(), 0);
    EXPECT_EQ(res["evals"].dump(), ref["evals"].dump());  // metrics, confusion, predictions, probabilities
    EXPECT_EQ(res["selected_epoch"], ref["selected_epoch"]);
    ASSERT_EQ(res["curve"].size(), ref["curve"].size());
    for (size_t e = 0; e < ref["curve"].size(); ++e) {
      EXPECT_EQ(res["curve"][e]["train_loss"], ref["curve"][e]["train_loss"]) << "epoch " << e;
      EXPECT_EQ(res["curve"][e]["val_metrics"], ref["curve"][e]["val_metrics"]) << "epoch " << e;
    }
    EXPECT_FALSE(fs::exists(work + "/" + id + "/state.ckpt")) << "state left behind after a finished run";
  }
}

// Issue 15: the trainer runs in the torch module (libemosweep_torch.so), which keeps its own copy of
// the log settings; --log-level must reach it (its "resuming at epoch" line is info), and the stop
// flag the signal sets in the executable must stop the trainer in the module.
TEST_F(TrainCli, TorchModuleFollowsTheLogLevelAndTheStopSignal) {
  const std::string cfg = Write("job.toml", Job(kStoresData, "epochs = 120\nbatch_size = 8"));
  const std::string args = "train --config " + cfg + " --json --work-dir " + P("work");
  for (const std::string level : {"warn", "info"}) {
    SCOPED_TRACE(level);
    std::string err;
    ASSERT_EQ(RunAndSignal(args, 3, SIGUSR1, &err), 3) << "expected a stopped run (exit 3):\n" << err;
    EXPECT_NE(err.find("stopped on request after epoch"), std::string::npos) << err;
    Ran resumed = Run(args + " --log-level " + level);
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    EXPECT_GT(json::parse(resumed.out)["result"]["info"]["resumed_from_epoch"].get<int>(), 0);
    const bool logged = resumed.err.find("resuming at epoch") != std::string::npos;
    EXPECT_EQ(logged, level == "info") << resumed.err;
  }
}

// Issue 13: without --work-dir there is nothing to save, so SIGINT/SIGTERM must end the
// run at once (exit 1, nothing on stdout), not after an epoch that may take minutes.
TEST_F(TrainCli, SignalWithoutWorkDirEndsTheRunPromptly) {
  // One epoch of 20000 single-row steps takes far longer than the 5 s allowed below.
  ASSERT_EQ(std::system((std::string(EMOSWEEP_BINARY) + " data synth --out " + P("big") +
                         " --corpora 1 --speakers 40 --per-speaker 500 --seed 3 --log-level warn >/dev/null")
                            .c_str()),
            0);
  std::string job = Job("train = [\"big/synth_a.h5\"]", "epochs = 3\nbatch_size = 1");
  job.replace(job.find("seed = 7\n"), 9, "seed = 7\nselection = \"last\"\n");
  const std::string cfg = Write("job.toml", job);
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGTERM");
    // Fresh files per signal: the last run's stderr would show the marker at once.
    const std::string out = P("out" + std::to_string(sig) + ".txt"), err = P("err" + std::to_string(sig) + ".txt");
    const pid_t pid = fork();
    if (pid == 0) {
      const std::string cmd = "exec " + std::string(EMOSWEEP_BINARY) + " train --config " + cfg + " --json >" + out +
                              " 2>" + err;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // Until training has started (the job line is logged after the stores load), then a moment more.
    for (int i = 0; i < 1000 && Slurp(err).find("model concat_mlp") == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    kill(pid, sig);
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 500 && !exited; ++i) {  // 5 s
      exited = waitpid(pid, &status, WNOHANG) == pid;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    ASSERT_TRUE(exited) << "still running 5 s after the signal:\n" << Slurp(err);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1) << Slurp(err);
    EXPECT_TRUE(Slurp(out).empty()) << "a result was printed: " << Slurp(out);
    EXPECT_NE(Slurp(err).find("interrupted"), std::string::npos) << Slurp(err);
  }
}

// --- bad input: exit 2, nothing on stdout, a message naming the file (and the line) ---

class TrainCliBadInput : public TrainCli {
 protected:
  void ExpectBad(const std::string& toml, const std::vector<std::string>& needles) {
    const std::string cfg = Write("bad.toml", toml);
    Ran r = Run("train --config " + cfg + " --json");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' not in: " << r.err;
  }
};

// Found by fuzz_job_toml (fuzz/regressions/job_toml/): a non-string store or
// split path threw a JSON type error out of the parser and aborted `train`.
TEST_F(TrainCliBadInput, NonStringStoreOrSplitNamesItsLine) {
  ExpectBad(Job("store = 5\nsplit = \"s/a.split.json\"", "epochs = 2"),
            {"bad.toml line 9: 'store' must be a store path (a string)"});
  ExpectBad(Job("store = \"s/synth_a.h5\"\nsplit = [1]", "epochs = 2"),
            {"bad.toml line 10: 'split' must be a split file path (a string)"});
}

TEST_F(TrainCliBadInput, UnknownTopLevelKeyNamesItsLine) {
  ExpectBad(Job(kSplitData, "epochs = 2", "concat_mlp", "colour = 1\n"),
            {"bad.toml line 1: unknown key 'colour'"});
}

TEST_F(TrainCliBadInput, UnknownTrainKeyNamesItsLine) {
  ExpectBad(Job(kSplitData, "epochs = 2\nlearning_rate = 1e-3"), {"bad.toml [train] line 20: unknown key 'learning_rate'"});
}

TEST_F(TrainCliBadInput, UnknownModelNamesFileAndLine) {
  ExpectBad(Job(kSplitData, "epochs = 2", "concat_mpl"), {"bad.toml line 16: unknown model 'concat_mpl'", "concat_mlp"});
}

TEST_F(TrainCliBadInput, UnknownModelKeyNamesFileAndLine) {
  std::string job = Job(kSplitData, "epochs = 2");
  job.replace(job.find("name = \"concat_mlp\""), 19, "name = \"concat_mlp\"\nhidden = [8]");
  ExpectBad(job, {"bad.toml [model] line 17: unknown key 'hidden'", "hidden_dims"});
}

TEST_F(TrainCliBadInput, MissingStoreNamesTheStoreAndTheLine) {
  ExpectBad(Job("train = \"s/nope.h5\"", "epochs = 2"), {"bad.toml line 9", "nope.h5"});
}

TEST_F(TrainCliBadInput, MissingSplitFileNamesIt) {
  ExpectBad(Job("store = \"s/synth_a.h5\"\nsplit = \"s/none.split.json\"", "epochs = 2"),
            {"bad.toml line 10", "none.split.json"});
}

TEST_F(TrainCliBadInput, SplitOfAnotherStoreIsRejected) {
  ExpectBad(Job("store = \"s/synth_b.h5\"\nsplit = \"s/a.split.json\"", "epochs = 2"),
            {"a.split.json: made for corpus hash", "synth_b.h5"});
}

// The adaptation set under [data.eval] would have been a labeled eval set of that name.
TEST_F(TrainCliBadInput, TargetUnlabeledUnderDataEvalNamesItsLine) {
  ExpectBad(Job("train = [\"s/synth_a.h5\"]\n[data.eval]\ntarget_unlabeled = \"s/synth_c.h5\"", "epochs = 2"),
            {"bad.toml line 11", "'target_unlabeled' (the unlabeled adaptation data) goes in [data], not [data.eval]"});
}

// Each of these was accepted and silently did something else (a docs/code audit, s16).
TEST_F(TrainCliBadInput, SplitFoldsTestReplacedByAnEvalSetNamesItsLine) {
  // The k-fold split has a test part: [data.eval] test would have replaced it.
  ExpectBad(Job("store = \"s/synth_a.h5\"\nsplit = \"s/a.split.json\"\nfold = 0\n[data.eval]\ntest = \"s/synth_c.h5\"",
                "epochs = 2"),
            {"bad.toml line 13", "'test' is the split fold's test part here"});
}

TEST_F(TrainCliBadInput, UnknownKindOrModalityOrHorizonNamesItsLine) {
  ExpectBad(Job(kStoresData, "epochs = 2", "concat_mlp", "kind = \"evaluate\"\n"),
            {"bad.toml line 1", "'kind' must be one of supervised, pretrain, finetune, adapt, eval; got 'evaluate'"});
  std::string job = Job(kStoresData, "epochs = 2");
  job.replace(job.find("audio = "), 8, "audoi = ");
  ExpectBad(job, {"bad.toml line 5", "modality 'audoi' is not one of audio, text, video"});
  std::string adapt = Job("train = [\"s/synth_a.h5\"]\nval = \"s/synth_b.h5\"\ntarget_unlabeled = \"s/synth_c.h5\"",
                          "epochs = 2", "concat_mlp", "kind = \"adapt\"\n");
  adapt += "\n[adapt]\nvariant = \"dann_ganin\"\ngrl_horizon = \"3 fortnights\"\n";
  ExpectBad(adapt, {"bad.toml line 22: grl_horizon '3 fortnights' is not"});
}

TEST_F(TrainCliBadInput, UnknownFeatureSetNamesTheStore) {
  std::string job = Job(kStoresData, "epochs = 2");
  job.replace(job.find("\"synth_text\""), 12, "\"bert\"");
  ExpectBad(job, {"synth_a.h5", "feature set 'bert'"});
}

TEST_F(TrainCliBadInput, TomlSyntaxErrorAndMissingFile) {
  ExpectBad("seed = [\n", {"bad.toml line 1"});
  Ran r = Run("train --config " + P("absent.toml"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("absent.toml"), std::string::npos) << r.err;
}

TEST_F(TrainCliBadInput, NoClassOfTheJobInTheStore) {
  std::string job = Job(kStoresData, "epochs = 2");
  job.replace(job.find("label_set = \"core4\""), 19, "labels = [\"fear\"]");
  ExpectBad(job, {"bad.toml line 2: class 'fear' is not a label of", "synth_a.h5"});
}

// Issue 13 §3: each of these exited 0 (and recorded a number) before.
TEST_F(TrainCliBadInput, LabelThatIsNotInTheStoreNamesItsLine) {
  // 'sadnes' used to become an empty class while 'sadness' was silently left out.
  std::string job = Job(kStoresData, "epochs = 2");
  job.replace(job.find("label_set = \"core4\""), 19, "labels = [\"anger\",\n  \"sadnes\"]");
  ExpectBad(job, {"bad.toml line 3: class 'sadnes' is not a label of", "synth_a.h5",
                  "anger, happiness, neutral, sadness"});
}

TEST_F(TrainCliBadInput, NanOrInfiniteFloatNamesItsLine) {
  for (const char* v : {"nan", "inf", "-inf"}) {
    SCOPED_TRACE(v);
    ExpectBad(Job(kSplitData, std::string("epochs = 2\nlr = ") + v), {"bad.toml line 20: 'lr' = ", "finite"});
  }
  ExpectBad(Job(kSplitData, "epochs = 2\nbetas = [0.9, nan]"), {"bad.toml line 20: 'betas' = nan"});
}

// Session 17's black-box audit: each of these was accepted (exit 0) or failed without naming the file/line.
TEST_F(TrainCliBadInput, RepeatedLabelAdaptWithoutAdaptAndSplitWithTrainNameTheirLines) {
  std::string dup = Job(kStoresData, "epochs = 2");
  dup.replace(dup.find("label_set = \"core4\""), 19, "labels = [\"anger\", \"anger\", \"neutral\"]");
  ExpectBad(dup, {"bad.toml line 2: label 'anger' is listed twice"});
  ExpectBad(Job(kStoresData, "epochs = 2", "concat_mlp", "kind = \"adapt\"\n"),
            {"bad.toml line 1: kind 'adapt' needs an [adapt] table"});
  std::string both = Job("store = \"s/synth_a.h5\"\nsplit = \"s/a.split.json\"\ntrain = [\"s/synth_b.h5\"]", "epochs = 2");
  ExpectBad(both, {"bad.toml line 11: 'train' and a split file both give the train rows"});
  std::string typed = Job(kStoresData, "epochs = 2");
  typed.replace(typed.find("audio = \"synth_audio\""), 21, "audio = 5");
  ExpectBad(typed, {"bad.toml line 5: 'audio' must name a feature set (a string), got 5"});
  ExpectBad(Job(kStoresData, "epochs = 2", "concat_mlp", "keep_checkpoint = \"yes\"\n"),
            {"bad.toml line 1: 'keep_checkpoint' must be true or false, got \"yes\""});
  ExpectBad(Job(kStoresData, "epochs = 2", "concat_mlp", "selection = 5\n"),
            {"bad.toml line 1: 'selection' must be a string, got 5"});
}

TEST_F(TrainCliBadInput, FinetuneWithoutInitFromAndIgnoredOracleEvalNameTheirLines) {
  ExpectBad(Job(kStoresData, "epochs = 2", "concat_mlp", "kind = \"finetune\"\n"),
            {"bad.toml line 1: kind 'finetune' needs 'init_from'"});
  ExpectBad(Job(kStoresData, "epochs = 2", "concat_mlp", "oracle_eval = \"test\"\n"),
            {"bad.toml line 1: 'oracle_eval' applies to selection = \"oracle\" only"});
}

TEST_F(TrainCliBadInput, ModelReadingAModalityWithoutFeaturesNamesItsLine) {
  std::string job = Job(kStoresData, "epochs = 2", "unimodal_mlp");
  job.replace(job.find("text = \"synth_text\"\n"), 20, "");
  job.replace(job.find("name = \"unimodal_mlp\""), 21, "name = \"unimodal_mlp\"\nmodality = \"text\"");
  ExpectBad(job, {"bad.toml line 15: model 'unimodal_mlp' reads modality 'text', but [features] gives only audio"});
}

TEST_F(TrainCliBadInput, IntegerBeyond32BitsNamesItsLine) {
  // 4294967297 was cut to 1 (one epoch trained), 2147483648 to a negative count (none, exit 0).
  for (const char* v : {"2147483648", "4294967297", "9223372036854775807"}) {
    SCOPED_TRACE(v);
    ExpectBad(Job(kSplitData, std::string("epochs = ") + v), {"bad.toml [train] line 19: 'epochs' = ", "out of range"});
  }
  std::string wide = Job(kSplitData, "epochs = 2");
  wide.replace(wide.find("name = \"concat_mlp\""), 19, "name = \"concat_mlp\"\nhidden_dims = [4294967304]");
  ExpectBad(wide, {"hidden_dims", "out of range"});
}

TEST_F(TrainCliBadInput, FreezePrefixOfNoParameterIsRefused) {
  ExpectBad(Job(kSplitData, "epochs = 2\nfreeze = [\"nonexistent\"]"),
            {"bad.toml", "freeze: 'nonexistent' is the prefix of no parameter", "its parameters:"});
}

TEST_F(TrainCliBadInput, DirectoryAsConfigAndUnknownSubcommandSaySo) {
  Ran d = Run("train --config " + P(""));
  EXPECT_EQ(d.code, 2) << d.err;
  EXPECT_NE(d.err.find("is a directory"), std::string::npos) << d.err;  // was "give exactly one of 'labels'..."
  Ran u = Run("data frob");
  EXPECT_EQ(u.code, 2);
  EXPECT_NE(u.err.find("unknown command 'data frob'"), std::string::npos) << u.err;
}

TEST_F(TrainCliBadInput, BadThreadsOrDeviceFlagExits2) {
  const std::string cfg = Write("ok.toml", Job(kSplitData, "epochs = 1"));
  for (const std::string flags : {"--threads 100000", "--threads 0", "--device tpu", "--device cuda:x"}) {
    SCOPED_TRACE(flags);
    Ran r = Run("train --config " + cfg + " " + flags);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find(flags.substr(0, flags.find(' '))), std::string::npos) << r.err;
  }
  // A CUDA device this build or machine does not have: one line naming it, not libtorch's dispatcher dump.
  Ran r = Run("train --config " + cfg + " --device cuda:7");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--device cuda:7"), std::string::npos) << r.err;
  EXPECT_LT(std::count(r.err.begin(), r.err.end(), '\n'), 3) << r.err;
}

TEST_F(TrainCliBadInput, NegativeSeedNamesItsLine) {
  std::string job = Job(kSplitData, "epochs = 2");
  job.replace(job.find("seed = 7"), 8, "seed = -1");
  ExpectBad(job, {"bad.toml line 1: 'seed' must be an integer >= 0, got -1"});
}

TEST_F(TrainCliBadInput, AbsurdBatchSizeNamesItsLine) {
  ExpectBad(Job(kSplitData, "epochs = 2\nbatch_size = 0"), {"bad.toml [train] line 20", "'batch_size'", "minimum"});
  ExpectBad(Job(kSplitData, "epochs = 2\nbatch_size = -5"), {"bad.toml [train] line 20", "'batch_size'"});
  ExpectBad(Job(kSplitData, "epochs = 2\nbatch_size = 100000000000"),
            {"bad.toml [train] line 20", "'batch_size'", "maximum"});
}

TEST_F(TrainCli, DivergedTrainingFailsAndPrintsNoResult) {
  // A learning rate that blows the weights up: the loss turns NaN/Inf within a few epochs.
  // Before, the job finished with exit 0 and chance-level metrics.
  const std::string cfg = Write("job.toml", Job(kStoresData, "epochs = 5\noptimizer = \"sgd\"\nlr = 1e30"));
  Ran r = Run("train --config " + cfg + " --json");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("training loss became"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("diverged"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(counted from 0, as in info.curves)"), std::string::npos) << r.err;
}

TEST_F(TrainCli, JobWithoutValidationLogsItsEpochs) {
  // Training data only, selection = "last": the per-epoch log line (info level) has no validation
  // metrics. Before, it threw "cannot use value() with null" and the job failed.
  const std::string cfg = Write("job.toml", Job("train = \"s/synth_a.h5\"\n[data.eval]\ntest = \"s/synth_b.h5\"",
                                                "epochs = 2", "concat_mlp", "selection = \"last\"\n"));
  Ran r = Run("train --config " + cfg + " --json --log-level info");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("epoch 1 train_loss"), std::string::npos) << r.err;
  EXPECT_EQ(json::parse(r.out)["result"]["evals"]["test"]["metrics"]["n"], 144);
}

TEST_F(TrainCli, RunRecordsADivergedJobAsFailedWithNoMetrics) {
  // The same divergence inside a sweep: each job is recorded as failed, no number is recorded.
  const std::string proto = Write("p.toml", R"(version = 1
name = "diverge"
[corpora.a]
store = "s/synth_a.h5"
[defaults]
labels = "core4"
features = {audio = "synth_audio"}
seeds = [1]
selection = "last"
split = {method = "speaker_kfold", k = 2}
train = {epochs = 3, optimizer = "sgd", lr = 1e30}
[[experiment]]
name = "e"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp"]
)");
  const std::string db = P("l.db");
  Ran r = Run("run " + proto + " --ledger " + db + " --parallel 1 --threads 1 --json --log-level warn");
  EXPECT_EQ(r.code, 1) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["total"], 2);
  EXPECT_EQ(j["failed"], 2);
  EXPECT_EQ(j["done"], 0);
  ASSERT_EQ(j["failures"].size(), 2u);
  EXPECT_NE(j["failures"][0]["error"].get<std::string>().find("training loss became"), std::string::npos) << r.out;
  Ran m = Run("ledger export --ledger " + db + " --what metrics --format csv");
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_EQ(std::count(m.out.begin(), m.out.end(), '\n'), 1) << "metrics recorded:\n" << m.out;  // header only
  // 22 failed jobs: the text summary and `ledger status` name 20 and say where the rest are (helper-67: 1000
  // diverged jobs printed 928 lines); --json above lists them all.
  std::string many = Slurp(proto);
  many.replace(many.find("seeds = [1]"), 11, "seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]");
  const std::string proto22 = Write("p22.toml", many);
  const std::string db22 = P("l22.db");
  Ran t = Run("run " + proto22 + " --ledger " + db22 + " --parallel 1 --threads 1 --pack off --log-level error");
  EXPECT_EQ(t.code, 1) << t.err;
  EXPECT_NE(t.out.find("22 failed"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("  ... and 2 more: emosweep ledger query --ledger " + db22 + " --status failed"), std::string::npos)
      << t.out;
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 22) << t.out;  // summary + 20 + the rest's line
  Ran st = Run("ledger status --ledger " + db22);
  EXPECT_NE(st.out.find("  ... and 2 more: emosweep ledger query"), std::string::npos) << st.out;
}

}  // namespace
