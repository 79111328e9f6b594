// `torchscript` through the trainer: a scripted concat_mlp (written from C++, no
// Python) trains to exactly the built-in concat_mlp's result under the same seed
// (same init rule, same data order, same dropout draws), domain adaptation uses
// its embedding, the job info records the module, and CheckModelFiles refuses
// bad files before any job runs.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "data/feature_store.h"
#include "models/model_configs.h"
#include "models/torchscript_reference.h"
#include "worker/job_config.h"
#include "worker/job.h"
#include "tests/worker/worker_test_util.h"

namespace emosweep::worker {
namespace {

using testing::AudioShift;
using testing::Ids;
using testing::MakeCorpus;

class TorchScriptTrainTest : public testing::SynthStoreTest {
 protected:
  TorchScriptTrainTest() : SynthStoreTest("es_ts_train_", 7) {}
  void SetUp() override {
    SynthStoreTest::SetUp();
    if (HasFatalFailure()) return;
    file_ = (dir_ / "mlp.pt").string();
    ASSERT_TRUE(models::SaveScriptedConcatMlp(file_, {{"audio", 8}, {"text", 6}}, {32, 16}, 0.2, 3).ok());
  }

  JobSpec Spec(const nlohmann::json& model) {
    return SplitSpec(model, {{"epochs", 5}, {"batch_size", 16}, {"lr", 5e-3}, {"schedule", "onecycle"},
                             {"balanced_sampling", true}});
  }
  nlohmann::json Scripted() const { return {{"name", "torchscript"}, {"file", file_}, {"sha256", ""}}; }
  static nlohmann::json Builtin() { return {{"name", "concat_mlp"}, {"hidden_dims", {32, 16}}, {"dropout", 0.2}}; }

  std::string file_;
};

// Tolerance: none. Same parameters, same ops (linear, relu, dropout), same RNG draws: the curves,
// the metrics and every probability are bitwise equal.
TEST_F(TorchScriptTrainTest, TrainsExactlyLikeTheBuiltInConcatMlp) {
  auto a = RunJob(Spec(Builtin()), JobContext{});
  auto b = RunJob(Spec(Scripted()), JobContext{});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(a->curve.size(), b->curve.size());
  for (size_t i = 0; i < a->curve.size(); ++i) {
    EXPECT_EQ(a->curve[i].train_loss, b->curve[i].train_loss) << "epoch " << i;
    EXPECT_EQ(a->curve[i].val_loss, b->curve[i].val_loss) << "epoch " << i;
  }
  EXPECT_EQ(a->selected_epoch, b->selected_epoch);
  EXPECT_EQ(a->evals["test"].metrics.dump(), b->evals["test"].metrics.dump());
  EXPECT_GT(a->evals["test"].metrics["ua"].get<double>(), 0.6);  // it learnt something
  ASSERT_EQ(a->evals["test"].predictions.size(), b->evals["test"].predictions.size());
  for (size_t i = 0; i < a->evals["test"].predictions.size(); ++i) {
    EXPECT_EQ(a->evals["test"].predictions[i].pred, b->evals["test"].predictions[i].pred) << i;
    ASSERT_EQ(a->evals["test"].predictions[i].probs, b->evals["test"].predictions[i].probs) << i;
  }
  EXPECT_EQ(a->info["parameters"], b->info["parameters"]);
  // Provenance: the module's attributes and how it was initialised.
  ASSERT_TRUE(b->info.contains("model")) << b->info.dump();
  EXPECT_EQ(b->info["model"]["file"], file_);
  EXPECT_EQ(b->info["model"]["init"], "rule");
  EXPECT_EQ(b->info["model"]["attributes"]["hidden_dims"], nlohmann::json({32, 16}));
  EXPECT_FALSE(a->info.contains("model"));
}

TEST_F(TorchScriptTrainTest, SeedsDiffer) {
  JobSpec s = Spec(Scripted());
  auto a = RunJob(s, JobContext{});
  s.seed = 43;
  s.id = s.ComputeId();
  auto b = RunJob(s, JobContext{});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->curve.front().train_loss, b->curve.front().train_loss);
  EXPECT_NE(a->evals["test"].predictions[0].probs, b->evals["test"].predictions[0].probs);
}

TEST_F(TorchScriptTrainTest, DomainAdaptationUsesTheEmbedding) {
  data::Corpus target = MakeCorpus("target", 20, 99, AudioShift(0.7));
  const std::string tpath = (dir_ / "target.h5").string();
  ASSERT_TRUE(data::WriteFeatureStore(tpath, target).ok());
  const std::string gated = (dir_ / "gated.pt").string();
  ASSERT_TRUE(models::SaveScriptedGatedFusion(gated, {{"audio", 8}, {"text", 6}}, 12, 0.1, 3).ok());
  JobSpec s = Spec({{"name", "torchscript"}, {"file", gated}});
  s.kind = "adapt";
  s.adapt = {{"variant", "dann_ganin"}, {"weight", 0.5}};
  s.target_unlabeled = {{tpath, "", Ids(target, 0, 20)}};
  s.eval["target"] = {{tpath, "", Ids(target, 0, 20)}};
  s.id = s.ComputeId();
  auto r = RunJob(s, JobContext{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(std::isfinite(r->curve.back().train_loss));
  EXPECT_EQ(r->info["model"]["feature_dim"], 12);  // the discriminator sat on the 12-wide embedding
  EXPECT_EQ(r->info["model"]["input"], "dict");
}

TEST_F(TorchScriptTrainTest, CheckModelFilesRefusesBadFilesBeforeAnyJob) {
  std::vector<JobSpec> jobs = {Spec(Builtin()), Spec(Scripted())};
  EXPECT_TRUE(CheckModelFiles(jobs).ok());
  // A module whose logits have the wrong width for the job's 3 classes.
  const std::string wide = (dir_ / "wide.pt").string();
  ASSERT_TRUE(models::SaveScriptedConcatMlp(wide, {{"audio", 8}, {"text", 6}}, {4}, 0.0, 5).ok());
  jobs.push_back(Spec({{"name", "torchscript"}, {"file", wide}}));
  Status st = CheckModelFiles(jobs);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsBadInput()) << st.ToString();
  EXPECT_NE(st.message().find(wide), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("expected [2, 3]"), std::string::npos) << st.message();
  // A module expecting other input widths (trained on other features) fails its dry run.
  const std::string narrow = (dir_ / "narrow.pt").string();
  ASSERT_TRUE(models::SaveScriptedConcatMlp(narrow, {{"audio", 5}, {"text", 6}}, {4}, 0.0, 3).ok());
  st = CheckModelFiles({Spec({{"name", "torchscript"}, {"file", narrow}})});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(narrow), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("audio [2, 8]"), std::string::npos) << st.message();
}

TEST_F(TorchScriptTrainTest, JobTomlResolvesAndHashesTheModelFile) {
  auto job = [&](const std::string& file) {
    std::ofstream(dir_ / "job.toml") << "labels = [\"anger\", \"happiness\", \"sadness\"]\n"
                                     << "[features]\naudio = \"a\"\ntext = \"t\"\n"
                                     << "[data]\ntrain = [\"synth.h5\"]\nval = \"synth.h5\"\n"
                                     << "[model]\nname = \"torchscript\"\nfile = \"" << file << "\"\n";
    return JobSpecFromTomlFile((dir_ / "job.toml").string());
  };
  auto s = job("mlp.pt");  // relative to the JOB.toml's directory
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->model["file"], file_);
  EXPECT_EQ(s->model["sha256"], *models::FileSha256(file_));
  auto missing = job("nope.pt");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsBadInput());
  EXPECT_NE(missing.status().message().find("job.toml line"), std::string::npos) << missing.status().message();
  EXPECT_NE(missing.status().message().find((dir_ / "nope.pt").string()), std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace emosweep::worker
