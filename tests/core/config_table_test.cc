#include "core/config_table.h"

#include <gtest/gtest.h>

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

TEST(TomlJson, SyntaxErrorNamesFileAndLine) {
  auto r = ParseTomlString("a = 1\nb = [1, 2\n", "p.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.toml line"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace emosweep
