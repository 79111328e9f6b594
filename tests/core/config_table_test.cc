#include "core/config_table.h"

#include <gtest/gtest.h>

#include <limits>

#include "core/toml_json.h"

namespace emosweep {
namespace {

ConfigTable Table() {
  return ConfigTable("train", {
                                  {"lr", ConfigType::kDouble, 1e-3, "learning rate", 0.0, 10.0, {}},
                                  {"epochs", ConfigType::kInt, 10, "epochs", 1.0, {}, {}},
                                  {"optimizer", ConfigType::kString, "adamw", "optimizer", {}, {}, {"adamw", "sgd"}},
                                  {"model", ConfigType::kString, nullptr, "model name", {}, {}, {}},
                              });
}

TEST(ConfigTable, FillsDefaultsAndCoercesInts) {
  auto r = Table().Apply(nlohmann::json{{"model", "mlp"}, {"lr", 1}}, "job.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ((*r)["lr"].get<double>(), 1.0);
  EXPECT_TRUE((*r)["lr"].is_number_float());
  EXPECT_EQ((*r)["epochs"], 10);
  EXPECT_EQ((*r)["optimizer"], "adamw");
}

TEST(ConfigTable, UnknownKeyNamesTheLine) {
  auto doc = ParseTomlString("[train]\nmodel = \"mlp\"\n\nlearning_rate = 0.1\n", "job.toml");
  ASSERT_TRUE(doc.ok());
  std::map<std::string, int> lines;
  for (const auto& [ptr, line] : doc->lines)
    if (ptr.rfind("/train/", 0) == 0) lines[ptr.substr(7)] = line;
  auto r = Table().Apply(doc->value["train"], "job.toml", lines);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("job.toml line 4: unknown key 'learning_rate'"), std::string::npos)
      << r.status().message();
}

TEST(ConfigTable, RejectsOutOfBoundsWrongTypeBadChoiceAndMissingRequired) {
  EXPECT_FALSE(Table().Apply(nlohmann::json{{"model", "m"}, {"lr", -1.0}}, "x").ok());
  EXPECT_FALSE(Table().Apply(nlohmann::json{{"model", "m"}, {"epochs", 1.5}}, "x").ok());
  EXPECT_FALSE(Table().Apply(nlohmann::json{{"model", "m"}, {"optimizer", "lion"}}, "x").ok());
  auto r = Table().Apply(nlohmann::json::object(), "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("required key 'model'"), std::string::npos);
  EXPECT_NE(Table().RenderHelp().find("lr (float, default 0.001"), std::string::npos) << Table().RenderHelp();
}

TEST(ConfigTable, BoundMessagesPrintNumbersAsWritten) {
  auto r = Table().Apply(nlohmann::json{{"model", "m"}, {"lr", 12.5}}, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'lr' = 12.5 is above the maximum 10"), std::string::npos) << r.status().message();
  auto e = Table().Apply(nlohmann::json{{"model", "m"}, {"epochs", 0}}, "x");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("'epochs' = 0 is below the minimum 1"), std::string::npos) << e.status().message();
}

TEST(ConfigTable, RefusesNanAndInfinityEvenWithoutBounds) {
  // 'lr' has bounds [0, 10] (NaN compares false against both); 'epochs' only a min.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (double bad : {nan, inf, -inf}) {
    auto r = Table().Apply(nlohmann::json{{"model", "m"}, {"lr", bad}}, "job.toml", {{"lr", 7}});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("job.toml line 7: 'lr'"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("finite"), std::string::npos) << r.status().message();
  }
  ConfigTable unbounded("t", {{"w", ConfigType::kDouble, 0.5, "", {}, {}, {}},
                              {"ws", ConfigType::kDoubleList, nlohmann::json::array(), "", {}, {}, {}}});
  EXPECT_FALSE(unbounded.Apply(nlohmann::json{{"w", inf}}, "x").ok());
  EXPECT_FALSE(unbounded.Apply(nlohmann::json{{"ws", {1.0, nan}}}, "x").ok());
  EXPECT_TRUE(unbounded.Apply(nlohmann::json{{"w", 1e300}}, "x").ok());
}

TEST(TomlJson, RefusesNanAndInfinityNamingKeyAndLine) {
  for (const char* v : {"nan", "+nan", "-nan", "inf", "+inf", "-inf"}) {
    auto r = ParseTomlString(std::string("[train]\nepochs = 3\nlr = ") + v + "\n", "JOB.toml");
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("JOB.toml line 3: 'lr' = "), std::string::npos) << r.status().message();
  }
  auto in_list = ParseTomlString("[grid]\n\"train.lr\" = [0.1,\n  nan]\n", "p.toml");
  ASSERT_FALSE(in_list.ok());
  EXPECT_NE(in_list.status().message().find("p.toml line 3"), std::string::npos) << in_list.status().message();
  EXPECT_TRUE(ParseTomlString("lr = 1e-300\nx = -2.5\n", "ok.toml").ok());
}

TEST(TomlJson, SyntaxErrorNamesFileAndLine) {
  auto r = ParseTomlString("a = 1\nb = [1, 2\n", "p.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.toml line"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace emosweep
