// The `train` table: defaults, validation errors, parsing.
#include "jobs/train_config.h"

#include <gtest/gtest.h>

namespace emosweep::jobs {
namespace {

TEST(TrainConfig, DefaultsAreFilledAndParsed) {
  auto eff = EffectiveTrainConfig(nlohmann::json::object(), "job.toml [train]");
  ASSERT_TRUE(eff.ok()) << eff.status().ToString();
  EXPECT_EQ((*eff)["optimizer"], "adamw");
  EXPECT_EQ((*eff)["schedule"], "none");
  EXPECT_EQ((*eff)["patience"], 0);
  auto c = ParseTrainConfig(*eff, "job.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->beta1, 0.9);
  EXPECT_EQ(c->beta2, 0.999);
  EXPECT_EQ(c->cosine_t_max, c->epochs);  // 0 means "epochs"
}

TEST(TrainConfig, SeedProtocolParses) {
  // multimodal-ser §4.5.
  auto c = ParseTrainConfig({{"lr", 2e-5}, {"weight_decay", 0.01}, {"schedule", "onecycle"},
                             {"onecycle_pct_start", 0.1}, {"grad_clip", 1.0}, {"batch_size", 16},
                             {"drop_last", true}, {"epochs", 100}, {"patience", 15}, {"metric", "ua"},
                             {"label_smoothing", 0.1}, {"class_weights", "balanced"}},
                            "job.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->schedule, "onecycle");
  EXPECT_EQ(c->batch_size, 16);
  EXPECT_TRUE(c->drop_last);
}

TEST(TrainConfig, PlateauModeAutoFollowsMetric) {
  auto a = ParseTrainConfig({{"schedule", "plateau"}, {"plateau_metric", "ua"}}, "x");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->plateau_mode, "max");
  auto b = ParseTrainConfig({{"schedule", "plateau"}}, "x");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->plateau_mode, "min");
}

TEST(TrainConfig, UnknownKeyIsAnError) {
  auto c = ParseTrainConfig({{"learning_rate", 0.1}}, "job.toml [train]");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("unknown key 'learning_rate'"), std::string::npos);
}

TEST(TrainConfig, UnknownOptimizerIsAnError) {
  auto c = ParseTrainConfig({{"optimizer", "lion"}}, "job.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("lion"), std::string::npos);
}

// helper-61: beta = 1 made Adam's bias correction zero and the run "diverged"; refused before training now.
TEST(TrainConfig, AdamBetasOfOneAndAZeroOnecycleFactorAreRefused) {
  for (const nlohmann::json& betas : {nlohmann::json{1.0, 0.999}, nlohmann::json{0.9, 1.0}}) {
    auto c = EffectiveTrainConfig({{"optimizer", "adam"}, {"betas", betas}}, "job.toml [train]", {{"betas", 7}});
    ASSERT_FALSE(c.ok()) << betas.dump();
    EXPECT_NE(c.status().message().find("job.toml [train] line 7: 'betas' must be below 1 for adam"),
              std::string::npos)
        << c.status().message();
  }
  EXPECT_TRUE(EffectiveTrainConfig({{"optimizer", "sgd"}, {"betas", {1.0, 1.0}}}, "j").ok()) << "sgd reads no betas";
  auto m = EffectiveTrainConfig({{"schedule", "onecycle"}, {"onecycle_max_momentum", 1.0}}, "j");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("onecycle_max_momentum must be below 1 for adamw"), std::string::npos);
  EXPECT_TRUE(EffectiveTrainConfig({{"schedule", "onecycle"}, {"onecycle_max_momentum", 1.0},
                                    {"onecycle_cycle_momentum", false}},
                                   "j")
                  .ok());
  auto f = EffectiveTrainConfig({{"schedule", "onecycle"}, {"onecycle_max_lr_factor", 0.0}}, "j");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("onecycle_max_lr_factor must be above 0"), std::string::npos);
}

TEST(TrainConfig, BetasNeedTwoValues) {
  auto c = ParseTrainConfig({{"betas", {0.9}}}, "job.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("betas"), std::string::npos);
}

TEST(TrainConfig, NesterovNeedsMomentum) {
  auto c = ParseTrainConfig({{"optimizer", "sgd"}, {"nesterov", true}}, "job.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("nesterov"), std::string::npos);
}

TEST(TrainConfig, NegativeLrIsAnError) {
  auto c = ParseTrainConfig({{"lr", -1.0}}, "job.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("below the minimum"), std::string::npos);
}

}  // namespace
}  // namespace emosweep::jobs
