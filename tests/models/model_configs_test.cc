// Config tables of models and DA variants (torch-free).
#include <gtest/gtest.h>

#include <set>

#include "models/adapt_configs.h"
#include "models/model_configs.h"

namespace emosweep::models {
namespace {

TEST(ModelConfigs, EveryModelAppliesItsDefaults) {
  std::set<std::string> names;
  for (const auto& info : ModelInfos()) {
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate " << info.name;
    auto r = info.config.Apply(nlohmann::json::object(), info.name);
    ASSERT_TRUE(r.ok()) << info.name << ": " << r.status().ToString();
    EXPECT_EQ(r->size(), info.config.keys().size());
    EXPECT_FALSE(info.modalities.empty());
  }
  for (const char* n : {"unimodal_mlp", "concat_mlp", "cross_attention", "gated_unconstrained", "glomer", "mer_gfl",
                        "cemobam", "hemogat", "msr_a", "msr_b"})
    EXPECT_NE(FindModelInfo(n), nullptr) << n;
  EXPECT_EQ(FindModelInfo("nope"), nullptr);
}

TEST(ModelConfigs, SeedDefaults) {
  auto c = *FindModelInfo("cemobam")->config.Apply(nlohmann::json::object(), "t");
  EXPECT_EQ(c["k_text"], 7);
  EXPECT_EQ(c["k_audio"], 8);
  EXPECT_EQ(c["fusion"], "min");
  auto h = *FindModelInfo("hemogat")->config.Apply(nlohmann::json::object(), "t");
  EXPECT_EQ(h["k_text"], 2);
  auto g = *FindModelInfo("glomer")->config.Apply(nlohmann::json::object(), "t");
  EXPECT_DOUBLE_EQ(g["tau"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(g["alpha"].get<double>(), 0.3);
  auto m = *FindModelInfo("msr_a")->config.Apply(nlohmann::json::object(), "t");
  EXPECT_EQ(m["hidden_dim"], 384);
}

TEST(ModelConfigs, UnknownKeyAndBadChoiceAreErrors) {
  const auto& t = FindModelInfo("cemobam")->config;
  auto r = t.Apply({{"k_txt", 3}}, "job.toml [model]");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("k_txt"), std::string::npos);
  auto f = t.Apply({{"fusion", "sum"}}, "job.toml [model]");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("sum"), std::string::npos);
  EXPECT_FALSE(t.Apply({{"dropout", 1.5}}, "x").ok());
}

TEST(AdaptConfigs, VariantsOfDaVariantsMd) {
  for (const char* v : {"dann_ganin", "dann_tllib", "mmd_rbf", "mk_mmd_linear", "mk_mmd_quadratic", "coral_deep",
                        "coral_mean_cov"}) {
    auto r = ValidateAdaptConfig({{"variant", v}}, "job");
    ASSERT_TRUE(r.ok()) << v << ": " << r.status().ToString();
    EXPECT_DOUBLE_EQ((*r)["weight"].get<double>(), 0.1);
  }
  auto d = *ValidateAdaptConfig({{"variant", "dann_tllib"}}, "job");
  EXPECT_EQ(d["grl_max_iters"], 1000);
  EXPECT_EQ(d["loss_form"], "tllib");
  auto g = *ValidateAdaptConfig({{"variant", "dann_ganin"}}, "job");
  EXPECT_EQ(g["loss_form"], "seed");
  EXPECT_EQ(g["disc_hidden"], nlohmann::json::array({256, 128}));
}

TEST(AdaptConfigs, BadSectionsNameTheProblem) {
  auto unknown = ValidateAdaptConfig({{"variant", "dann"}}, "job.toml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("dann_ganin"), std::string::npos);
  auto missing = ValidateAdaptConfig({{"weight", 0.3}}, "job.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("variant"), std::string::npos);
  // A key of another variant is unknown here.
  auto foreign = ValidateAdaptConfig({{"variant", "coral_deep"}, {"gamma", 0.5}}, "job.toml");
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("gamma"), std::string::npos);
  EXPECT_TRUE(ValidateAdaptConfig(nlohmann::json::object(), "job")->empty());
}

}  // namespace
}  // namespace emosweep::models
