// Every registered model: shapes, a few optimizer steps lower the loss, eval is
// deterministic; registry and config tables agree; bad specs give clear errors;
// the `faithful` switches change what they claim to change.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/model.h"
#include "models/model_configs.h"
#include "models/torchscript_reference.h"

#include <unistd.h>

#include <filesystem>

namespace emosweep::models {
namespace {

constexpr int64_t kB = 24, kC = 4;

ModelSpec Spec(nlohmann::json config = nlohmann::json::object(), bool video = false) {
  ModelSpec s;
  s.input_dims = {{"text", 12}, {"audio", 10}};
  if (video) s.input_dims["video"] = 8;
  s.num_classes = kC;
  s.labels = {"anger", "happiness", "neutral", "sadness"};
  s.config = std::move(config);
  return s;
}

// Class-dependent synthetic inputs: a per-class mean plus noise, so the task is learnable.
Batch SyntheticBatch(const ModelSpec& spec, uint64_t seed) {
  torch::manual_seed(seed);
  Batch b;
  b.labels = torch::arange(kB, torch::kLong).remainder(kC);
  for (const auto& [m, d] : spec.input_dims) {
    auto means = torch::randn({kC, d});
    b.inputs[m] = means.index_select(0, b.labels) + 0.3 * torch::randn({kB, d});
  }
  return b;
}

double EvalLoss(FusionModelImpl& m, const Batch& b) {
  torch::NoGradGuard g;
  m.eval();
  auto out = m.Forward(b);
  return m.Loss(out, b, LossContext{}).total.item<double>();
}

class EveryModel : public ::testing::TestWithParam<std::string> {};

// `torchscript` reads a file: the scripted concat_mlp over `spec`'s inputs (models/torchscript_reference.h).
nlohmann::json ScriptedConfig(const ModelSpec& spec) {
  const std::string file = (std::filesystem::temp_directory_path() /
                            ("es_models_test_" + std::to_string(::getpid()) + "_" +
                             std::to_string(spec.input_dims.size()) + ".pt"))
                               .string();
  EXPECT_TRUE(SaveScriptedConcatMlp(file, spec.input_dims, {32}, 0.1, spec.num_classes).ok());
  return {{"file", file}};
}

// Narrower widths for the training part keep the test quick; the defaults are run once above it.
nlohmann::json SmallConfig(const std::string& name) {
  if (name == "cemobam" || name == "hemogat") return {{"hidden_dim", 64}};
  if (name == "glomer") return {{"fusion_dim", 128}, {"projection_dim", 64}};
  if (name == "msr_a" || name == "msr_b") return {{"hidden_dim", 96}, {"ffn_dim", 192}};
  return nlohmann::json::object();
}

TEST_P(EveryModel, ShapesTrainingAndDeterministicEval) {
  const std::string name = GetParam();
  torch::manual_seed(0);
  const bool video = name == "mer_gfl" || name == "concat_mlp";
  auto spec = Spec(nlohmann::json::object(), video);
  if (name == "torchscript") spec.config = ScriptedConfig(spec);
  Batch batch = SyntheticBatch(spec, 1);
  {
    // Default config (the seed's sizes): builds and gives the right shapes.
    auto r = CreateModel(name, spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ModelPtr model = *r;
    model->train();
    auto out = model->Forward(batch);
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{kB, kC}));
    EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{kB, model->feature_dim()}));
    EXPECT_EQ(model->transductive(), name == "cemobam" || name == "hemogat");
    EXPECT_EQ(model->transductive(), FindModelInfo(name)->transductive) << "captions name the graph step from it";
  }
  if (name != "torchscript") spec.config = SmallConfig(name);
  auto r = CreateModel(name, spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ModelPtr model = *r;

  const double before = EvalLoss(*model, batch);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  for (int step = 0; step < 15; ++step) {
    model->train();
    opt.zero_grad();
    LossContext ctx;
    ctx.step = step;
    auto o = model->Forward(batch);
    auto terms = model->Loss(o, batch, ctx);
    ASSERT_EQ(terms.total.dim(), 0);
    ASSERT_FALSE(terms.parts.empty());
    terms.total.backward();
    opt.step();
  }
  const double after = EvalLoss(*model, batch);
  EXPECT_LT(after, before) << name;

  torch::NoGradGuard g;
  model->eval();
  auto a = model->Forward(batch), b = model->Forward(batch);
  EXPECT_TRUE(torch::equal(a.logits, b.logits)) << name;
  EXPECT_TRUE(torch::equal(a.features, b.features)) << name;
  if (name == "torchscript") std::filesystem::remove(spec.config["file"].get<std::string>());
}

std::vector<std::string> AllNames() {
  std::vector<std::string> v;
  for (const auto& i : ModelInfos()) v.push_back(i.name);
  return v;
}
INSTANTIATE_TEST_SUITE_P(Registry, EveryModel, ::testing::ValuesIn(AllNames()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(Registry, UnknownNameAndBadSpecsAreClearErrors) {
  auto unknown = CreateModel("gloMER", Spec());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("glomer"), std::string::npos);  // lists the known names

  ModelSpec audio_only = Spec();
  audio_only.input_dims.erase("text");
  auto missing = CreateModel("cemobam", audio_only);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'text'"), std::string::npos);

  auto bad_key = CreateModel("glomer", Spec({{"fusion_dims", 64}}));
  ASSERT_FALSE(bad_key.ok());
  EXPECT_NE(bad_key.status().message().find("fusion_dims"), std::string::npos);

  // JobSpec.model carries "name" beside the keys: accepted.
  EXPECT_TRUE(CreateModel("concat_mlp", Spec({{"name", "concat_mlp"}, {"hidden_dims", nlohmann::json::array({16})}})).ok());
  ModelSpec one = Spec();
  one.num_classes = 1;
  EXPECT_FALSE(CreateModel("concat_mlp", one).ok());
  EXPECT_FALSE(CreateModel("mer_gfl", audio_only).ok());  // needs two modalities
  EXPECT_FALSE(CreateModel("unimodal_mlp", Spec({{"modality", "video"}})).ok());
}

TEST(Msr, VadTargetsByLabelNameAndOverrides) {
  const nlohmann::json small = {{"hidden_dim", 32}, {"ffn_dim", 64}};
  ModelSpec s = Spec(small);
  s.labels = {"anger", "calm", "neutral", "sadness"};
  auto r = CreateModel("msr_a", s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'calm'"), std::string::npos);
  s.config["vad_overrides"] = {{"calm", {0.3, -0.6, 0.1}}};
  auto ok = CreateModel("msr_a", s);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto vad = (*ok)->named_buffers()["vad_targets"];
  EXPECT_NEAR(vad[1][1].item<double>(), -0.6, 1e-6);
  EXPECT_NEAR(vad[0][0].item<double>(), -0.666, 1e-6);
  s.config["vad_weight"] = 0.0;
  EXPECT_TRUE(CreateModel("msr_b", s).ok());
  // Faithful (b): index lookup in the iemocap_4 table, whatever the names say.
  ModelSpec f = Spec(small);
  f.config["faithful"] = true;
  f.labels = {"anger", "happiness", "sadness", "neutral"};
  auto fb = *CreateModel("msr_b", f);
  EXPECT_NEAR(fb->named_buffers()["vad_targets"][2][0].item<double>(), -0.062, 1e-6);  // neutral's, at index 2
  auto cb = *CreateModel("msr_b", Spec(small));
  EXPECT_NEAR(cb->named_buffers()["vad_targets"][2][0].item<double>(), -0.062, 1e-6);
}

TEST(Faithful, GraphModelsShareBatchNormAndFlagTheEvalModeBug) {
  auto count_bn = [](const ModelPtr& m) {
    int n = 0;
    for (const auto& p : m->named_parameters())
      if (p.key().rfind("gat_bn", 0) == 0) ++n;
    return n;
  };
  auto correct = *CreateModel("cemobam", Spec({{"num_layers", 4}, {"hidden_dim", 32}}));
  auto faithful = *CreateModel("cemobam", Spec({{"num_layers", 4}, {"hidden_dim", 32}, {"faithful", true}}));
  EXPECT_EQ(count_bn(correct), 3 * 2);  // one BN (weight, bias) per conv1 + 2 middle blocks
  EXPECT_EQ(count_bn(faithful), 1 * 2);
  EXPECT_FALSE(correct->faithful_eval_mode_bug());
  EXPECT_TRUE(faithful->faithful_eval_mode_bug());
  EXPECT_TRUE((*CreateModel("hemogat", Spec({{"faithful", true}})))->faithful_eval_mode_bug());

  auto concat = CreateModel("cemobam", Spec({{"fusion", "concat"}, {"faithful", true}}));
  ASSERT_FALSE(concat.ok());
  EXPECT_NE(concat.status().message().find("concat"), std::string::npos);
  auto c = *CreateModel("cemobam", Spec({{"fusion", "concat"}, {"hidden_dim", 32}}));
  EXPECT_EQ(c->feature_dim(), 32 * 3);
}

TEST(Faithful, GraphIsBuiltOncePerSplitTensor) {
  auto m = *CreateModel("hemogat", Spec({{"hidden_dim", 16}}));
  auto spec = Spec();
  Batch b = SyntheticBatch(spec, 3);
  m->eval();
  torch::NoGradGuard g;
  auto e1 = m->Forward(b).aux.at("edge_index");
  auto e2 = m->Forward(b).aux.at("edge_index");
  EXPECT_TRUE(e1.is_same(e2));
  Batch other = SyntheticBatch(spec, 4);
  EXPECT_FALSE(m->Forward(other).aux.at("edge_index").is_same(e1));
  // A fresh view of the same data (how an evaluator slices a split) and a buffer
  // rewritten in place with the same content (how a trainer fills its batch) both hit.
  Batch view = b;
  for (auto& [mod, t] : view.inputs) t = t.narrow(0, 0, kB);
  EXPECT_TRUE(m->Forward(view).aux.at("edge_index").is_same(e1));
  Batch copy = b;
  for (auto& [mod, t] : copy.inputs) t = t.clone();
  EXPECT_TRUE(m->Forward(copy).aux.at("edge_index").is_same(e1));
  copy.inputs["text"].copy_(b.inputs["text"].flip(0));  // same buffer, new content: rebuilt
  EXPECT_FALSE(m->Forward(copy).aux.at("edge_index").is_same(e1));
  // Default k_text 2, k_audio 8 on 24 nodes: at least N·(1 + 8) edges, at most N·(1 + 2 + 8).
  EXPECT_GE(e1.size(1), kB * 9);
  EXPECT_LE(e1.size(1), kB * 11);
}

TEST(Faithful, GlomerDiversitySign) {
  auto spec = Spec({{"fusion_dim", 32}, {"projection_dim", 16}});
  Batch b = SyntheticBatch(spec, 5);
  for (bool faithful : {false, true}) {
    spec.config["faithful"] = faithful;
    auto m = *CreateModel("glomer", spec);
    m->eval();
    torch::NoGradGuard g;
    auto t = m->Loss(m->Forward(b), b, LossContext{});
    const double sign = faithful ? 1.0 : -1.0;
    const double expect = t.parts["ce"].item<double>() + t.parts["ntxent"].item<double>() +
                          0.3 * (sign * t.parts["diversity"].item<double>() + t.parts["consistency"].item<double>());
    EXPECT_NEAR(t.total.item<double>(), expect, 1e-5);
  }
}

TEST(MerGfl, PairsFollowThePresentModalities) {
  auto count_gfl = [](const ModelPtr& m) {
    int n = 0;
    for (const auto& c : m->named_children())
      if (c.key().rfind("gfl_", 0) == 0) ++n;
    return n;
  };
  auto three = *CreateModel("mer_gfl", Spec(nlohmann::json::object(), true));
  EXPECT_EQ(count_gfl(three), 3);
  EXPECT_TRUE(three->named_children().contains("gfl_audio_video"));
  EXPECT_TRUE(three->named_children().contains("gfl_text_audio"));
  // Two modalities: both orders, so that each is the second input (the (1 − z) side) of one GFL.
  auto two = *CreateModel("mer_gfl", Spec());
  EXPECT_EQ(count_gfl(two), 2);
  EXPECT_TRUE(two->named_children().contains("gfl_audio_text"));
  EXPECT_TRUE(two->named_children().contains("gfl_text_audio"));
}

// The softmax gate spreads z over the g dimensions (mean 1/g), so h ≈ h2: a single GFL(audio, text)
// fused almost only text (on the IEMOCAP seed features mer_gfl scored like text alone). Both
// modalities must move the fused features by comparable amounts.
TEST(MerGfl, BothModalitiesReachTheFusedFeaturesWithTheSoftmaxGate) {
  ModelSpec spec = Spec();
  spec.input_dims = {{"text", 16}, {"audio", 16}};
  torch::manual_seed(3);
  auto m = *CreateModel("mer_gfl", spec);
  m->eval();
  torch::NoGradGuard g;
  Batch b = SyntheticBatch(spec, 5);
  auto base = m->Forward(b).features;
  auto moved = [&](const char* modality) {
    Batch p = b;
    p.inputs[modality] = b.inputs[modality] + 0.5 * torch::randn_like(b.inputs[modality]);
    return (m->Forward(p).features - base).abs().mean().item<double>();
  };
  const double da = moved("audio"), dt = moved("text");
  ASSERT_GT(da, 0);
  ASSERT_GT(dt, 0);
  EXPECT_GT(std::min(da, dt) / std::max(da, dt), 0.3) << "audio " << da << ", text " << dt;
}

}  // namespace
}  // namespace emosweep::models
