// `torchscript` model: modules written from C++ (no Python) are loaded, checked,
// initialised per seed and run like built-in models; bad files are refused with
// messages naming the file and what was expected.
#include <torch/script.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "models/model.h"
#include "models/model_configs.h"
#include "models/torchscript_reference.h"

namespace emosweep::models {
namespace {

namespace fs = std::filesystem;

class TorchScriptModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("es_ts_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& n) const { return (dir_ / n).string(); }

  ModelSpec Spec(const std::string& file) const {
    ModelSpec s;
    s.input_dims = {{"audio", 8}, {"text", 6}};
    s.num_classes = 3;
    s.config = {{"file", file}};
    return s;
  }
  // A module with one Linear over the concatenation and a forward given as source.
  std::string Save(const std::string& name, const std::string& forward, int64_t out = 3, bool params = true) {
    torch::jit::Module m("Custom");
    m.register_attribute("training", c10::BoolType::get(), true);
    if (params) {
      m.register_parameter("weight", torch::zeros({out, 14}), false);
      m.register_parameter("bias", torch::zeros({out}), false);
    }
    m.register_attribute("width", c10::IntType::get(), int64_t{14});
    m.register_attribute("kind", c10::StringType::get(), std::string("test"));
    m.define(forward);
    const std::string p = Path(name);
    m.save(p);
    return p;
  }
  static std::string Linear(const std::string& ret) {
    return "def forward(self, audio, text):\n    x = torch.cat([text, audio], 1)\n    y = torch.linear(x, "
           "self.weight, self.bias)\n    return " +
           ret + "\n";
  }

  fs::path dir_;
};

Batch MakeBatch(int64_t rows) {
  Batch b;
  b.inputs["audio"] = torch::randn({rows, 8});
  b.inputs["text"] = torch::randn({rows, 6});
  return b;
}

TEST_F(TorchScriptModelTest, LoadsRunsAndRecordsProvenance) {
  const std::string file = Save("ok.pt", Linear("(y, x)"));
  torch::manual_seed(1);
  auto m = CreateModel("torchscript", Spec(file));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto out = (*m)->Forward(MakeBatch(5));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{5, 14}));  // the returned embedding
  EXPECT_EQ((*m)->feature_dim(), 14);
  auto names = (*m)->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"}));
  const nlohmann::json pv = (*m)->Provenance();
  EXPECT_EQ(pv["file"], file);
  EXPECT_EQ(pv["input"], "positional");
  EXPECT_EQ(pv["embedding"], true);
  EXPECT_EQ(pv["init"], "rule");
  EXPECT_EQ(pv["attributes"]["width"], 14);
  EXPECT_EQ(pv["attributes"]["kind"], "test");
  // Gradients reach the registered parameters (the trainer's optimizer sees them).
  auto loss = out.logits.sum();
  loss.backward();
  ASSERT_TRUE((*m)->named_parameters()["weight"].grad().defined());
  EXPECT_GT((*m)->named_parameters()["weight"].grad().abs().sum().item<float>(), 0.f);
}

TEST_F(TorchScriptModelTest, RebindingAParameterIsSeenByTheScript) {
  // FlatParameters rebinds with set_data: the scripted forward must use the new storage.
  const std::string file = Save("ok.pt", Linear("y"));
  auto m = CreateModel("torchscript", Spec(file));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  torch::NoGradGuard ng;
  for (auto& p : (*m)->parameters()) p.set_data(torch::zeros_like(p));
  (*m)->eval();
  auto out = (*m)->Forward(MakeBatch(4));
  EXPECT_EQ(out.logits.abs().sum().item<float>(), 0.f);
  EXPECT_EQ(out.features.sizes(), out.logits.sizes());  // no embedding: features = logits
}

TEST_F(TorchScriptModelTest, SeedsGiveFreshDifferentInitialisations) {
  const std::string file = Save("ok.pt", Linear("y"));
  auto params = [&](uint64_t seed) {
    torch::manual_seed(seed);
    auto m = CreateModel("torchscript", Spec(file));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return torch::cat({(*m)->named_parameters()["weight"].flatten(), (*m)->named_parameters()["bias"]}).clone();
  };
  auto a = params(1), b = params(1), c = params(2);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_GT(a.abs().sum().item<float>(), 0.f);  // the saved zeros were replaced
  // PyTorch's Linear default: |w| <= 1/sqrt(fan_in) (kaiming_uniform a=sqrt(5)), |b| <= 1/sqrt(fan_in).
  EXPECT_LE(a.abs().max().item<float>(), 1.0 / std::sqrt(14.0) + 1e-6);
}

TEST_F(TorchScriptModelTest, InitRuleDrawsWhatConcatMlpDraws) {
  const std::string file = Path("mlp.pt");
  { Status st = SaveScriptedConcatMlp(file, {{"audio", 8}, {"text", 6}}, {16, 8}, 0.2, 3); ASSERT_TRUE(st.ok()) << st.ToString(); }
  torch::manual_seed(5);
  auto ts = CreateModel("torchscript", Spec(file));
  ASSERT_TRUE(ts.ok()) << ts.status().ToString();
  ModelSpec cs = Spec("");
  cs.config = {{"hidden_dims", {16, 8}}, {"dropout", 0.2}};
  torch::manual_seed(5);
  auto cm = CreateModel("concat_mlp", cs);
  ASSERT_TRUE(cm.ok());
  auto p1 = (*ts)->parameters(), p2 = (*cm)->parameters();
  ASSERT_EQ(p1.size(), p2.size());
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_TRUE(torch::equal(p1[i], p2[i])) << i;
  (*ts)->eval(), (*cm)->eval();
  Batch b = MakeBatch(7);
  auto o1 = (*ts)->Forward(b), o2 = (*cm)->Forward(b);
  EXPECT_TRUE(torch::equal(o1.logits, o2.logits));
  EXPECT_TRUE(torch::equal(o1.features, o2.features));
}

TEST_F(TorchScriptModelTest, ResetMethodIsUsedWhenExported) {
  torch::jit::Module m("WithReset");
  m.register_parameter("weight", torch::zeros({3, 14}), false);
  m.define(R"JIT(
def reset_parameters(self):
    self.weight.normal_(0.0, 0.02)
    self.weight[0, 0] = 7.0

def forward(self, audio, text):
    return torch.matmul(torch.cat([text, audio], 1), self.weight.t())
)JIT");
  m.save(Path("reset.pt"));
  torch::manual_seed(3);
  auto a = CreateModel("torchscript", Spec(Path("reset.pt")));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->Provenance()["init"], "reset_parameters()");
  auto w = (*a)->named_parameters()["weight"];
  EXPECT_EQ(w[0][0].item<float>(), 7.f);
  torch::manual_seed(4);
  auto b = CreateModel("torchscript", Spec(Path("reset.pt")));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(torch::equal(w, (*b)->named_parameters()["weight"]));
}

TEST_F(TorchScriptModelTest, DictInputAndDictOutput) {
  const std::string file = Path("gated.pt");
  ASSERT_TRUE(SaveScriptedGatedFusion(file, {{"audio", 8}, {"text", 6}}, 5, 0.1, 3).ok());
  auto m = CreateModel("torchscript", Spec(file));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->Provenance()["input"], "dict");
  EXPECT_EQ((*m)->Provenance()["attributes"]["hidden"], 5);
  EXPECT_EQ((*m)->feature_dim(), 5);
  auto out = (*m)->Forward(MakeBatch(4));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{4, 5}));
}

void ExpectRefused(const Result<ModelPtr>& r, const std::string& file, const std::string& what) {
  ASSERT_FALSE(r.ok()) << file;
  EXPECT_TRUE(r.status().IsBadInput()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
}

TEST_F(TorchScriptModelTest, BadFilesAreRefusedNamingTheFileAndTheExpectation) {
  {
    const std::string f = Path("not_ts.pt");
    std::ofstream(f) << "this is not a zip archive\n";
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "not a TorchScript module");
  }
  {
    const std::string f = Save("three_args.pt", "def forward(self, a, b, c):\n    return torch.linear(torch.cat([a, "
                                                "b], 1), self.weight, self.bias)\n");
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "expected forward(self, audio, text)");
  }
  {
    const std::string f = Save("shape.pt", Linear("y"), /*out=*/4);
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "expected [2, 3]");
  }
  {
    const std::string f = Save("nan.pt", Linear("y * float('nan')"));
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "NaN");
  }
  {
    const std::string f = Save("noparams.pt", "def forward(self, audio, text):\n    return audio[:, 0:3]\n", 3, false);
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "no parameters");
  }
  {
    const std::string f = Save("ok.pt", Linear("y"));
    ModelSpec s = Spec(f);
    s.config["sha256"] = std::string(64, '0');
    ExpectRefused(CreateModel("torchscript", s), f, "SHA-256");
  }
}

// helper-64: argument names were never checked (a text model trained on audio, swapped names swapped the
// inputs); float64 and detached logits passed the check and failed every job in libtorch; a forward's own error
// was replaced by the interpreter's header.
TEST_F(TorchScriptModelTest, ModalityNamesLogitTypesAndGradientsAreCheckedBeforeTraining) {
  auto forward = [](const std::string& args, const std::string& ret) {
    return "def forward(self, " + args + "):\n    x = torch.cat([" + args.substr(args.find(',') + 2) + ", " +
           args.substr(0, args.find(',')) + "], 1)\n    y = torch.linear(x, self.weight, self.bias)\n    return " +
           ret + "\n";
  };
  {
    const std::string f = Save("swapped.pt", forward("text, audio", "y"));
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "would get the job's audio features as 'text'");
  }
  {
    const std::string f = Save("video.pt", forward("video, text", "y"));
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "would get the job's audio features as 'video'");
  }
  {
    // visual/vision/image name the video modality: in its place they are fine (helper-65: always refused).
    const std::string f = Save("visual.pt", forward("audio, visual", "y"));
    ModelSpec video = Spec(f);
    video.input_dims = {{"audio", 8}, {"video", 6}};
    auto m = CreateModel("torchscript", video);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "would get the job's text features as 'visual'");
  }
  {
    const std::string f = Save("generic.pt", forward("a, t", "y"));
    auto m = CreateModel("torchscript", Spec(f));
    EXPECT_TRUE(m.ok()) << "names that name no modality are taken in order: " << m.status().ToString();
  }
  {
    const std::string f = Save("double.pt", Linear("y.double()"));
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "logits of type Double; expected float32");
  }
  {
    const std::string f = Save("detached.pt", Linear("y.detach()"));
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "do not depend on the module's parameters");
  }
  {
    const std::string f =
        Save("raises.pt", "def forward(self, audio, text):\n    assert audio.size(0) == 0, "
                          "\"boom from the user's forward\"\n    return torch.linear(torch.cat([text, audio], 1), "
                          "self.weight, self.bias)\n");
    ExpectRefused(CreateModel("torchscript", Spec(f)), f, "boom from the user's forward");
  }
}

TEST(ModelFileResolution, RelativeToTheBaseDirAndHashed) {
  const fs::path dir = fs::temp_directory_path() / ("es_ts_res_" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "m.pt") << "abc";
  nlohmann::json cfg = {{"file", "sub/m.pt"}, {"sha256", ""}};
  ASSERT_TRUE(ResolveModelFile("torchscript", dir.string(), "p.toml line 3", &cfg).ok());
  EXPECT_EQ(cfg["file"], (dir / "sub" / "m.pt").string());
  EXPECT_EQ(cfg["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // SHA-256("abc")
  nlohmann::json missing = {{"file", "nope.pt"}};
  Status st = ResolveModelFile("torchscript", dir.string(), "p.toml line 3", &missing);
  EXPECT_TRUE(st.IsBadInput());
  EXPECT_NE(st.message().find("p.toml line 3"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find((dir / "nope.pt").string()), std::string::npos) << st.message();
  nlohmann::json pinned = {{"file", "sub/m.pt"}, {"sha256", "00"}};
  EXPECT_FALSE(ResolveModelFile("torchscript", dir.string(), "p", &pinned).ok());
  nlohmann::json other = {{"hidden_dims", {3}}};
  EXPECT_TRUE(ResolveModelFile("concat_mlp", dir.string(), "p", &other).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace emosweep::models
