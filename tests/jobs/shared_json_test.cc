// tests/jobs/shared_json_test.cc: the shared model/train/adapt config of a JobSpec
// (issue 15): copies share one tree, interning gives one tree per content, writes
// never reach other holders, it reads like a const json, and the job identity is
// the same whether the configs are interned or not.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "jobs/job.h"

namespace emosweep::jobs {
namespace {

nlohmann::json Cfg(double lr) { return {{"lr", lr}, {"epochs", 3}, {"optimizer", "adamw"}}; }

TEST(SharedJson, ReadsLikeAConstJson) {
  SharedJson a = {{"name", "concat_mlp"}, {"hidden_dims", {32, 16}}};
  const nlohmann::json& j = a;
  EXPECT_TRUE(j.is_object());
  EXPECT_TRUE(a.is_object());
  EXPECT_TRUE(a.contains("name"));
  EXPECT_EQ(a.value("name", ""), "concat_mlp");
  EXPECT_EQ(a.value("missing", 7), 7);
  EXPECT_EQ(a.at("hidden_dims").size(), 2u);
  EXPECT_NE(a.find("hidden_dims"), a.end());
  EXPECT_EQ(a.find("nope"), a.end());
  EXPECT_EQ(a.dump(), j.dump());
  EXPECT_EQ(a, (nlohmann::json{{"name", "concat_mlp"}, {"hidden_dims", {32, 16}}}));
  nlohmann::json copy = a;  // a copy of the tree (not an array of its values: a SharedJson has begin/end)
  EXPECT_EQ(copy, j);
  nlohmann::json assigned;
  assigned = a;  // as the worker does (ModelSpec::config = spec.model)
  EXPECT_EQ(assigned, j);
  nlohmann::json nested = {{"model", a}};
  EXPECT_EQ(nested["model"], j);
  SharedJson d;  // a JobSpec default: an empty object
  EXPECT_TRUE(d.is_object() && d.empty());
  SharedJson n = nlohmann::json();
  EXPECT_TRUE(n.is_null());
}

TEST(SharedJson, InterningGivesOneTreePerContent) {
  SharedJson a = SharedJson::Intern(Cfg(0.01));
  SharedJson b = SharedJson::Intern(Cfg(0.01));
  SharedJson c = SharedJson::Intern(Cfg(0.001));
  EXPECT_EQ(a.shared(), b.shared());
  EXPECT_NE(a.shared(), c.shared());
  EXPECT_TRUE(a.interned());
  SharedJson d = Cfg(0.01);  // not interned: its own tree
  EXPECT_NE(d.shared(), a.shared());
  d.MakeInterned();
  EXPECT_EQ(d.shared(), a.shared());
  // 1 and 1.0 dump differently (and so hash differently in a job identity): two trees.
  EXPECT_NE(SharedJson::Intern({{"x", 1}}).shared(), SharedJson::Intern({{"x", 1.0}}).shared());
}

TEST(SharedJson, WritesCopyFirst) {
  SharedJson a = SharedJson::Intern(Cfg(0.5));
  SharedJson b = a;
  b["epochs"] = 9;
  EXPECT_EQ(a.at("epochs"), 3);
  EXPECT_EQ(b.at("epochs"), 9);
  EXPECT_NE(a.shared(), b.shared());
  EXPECT_EQ(SharedJson::Intern(Cfg(0.5)).shared(), a.shared());  // the interned tree is unchanged
  SharedJson d;  // the shared empty object
  d["k"] = 1;
  EXPECT_TRUE(SharedJson().empty());
  SharedJson e = Cfg(0.25);  // sole holder, not interned: written in place
  const void* before = e.shared();
  e.mutable_tree()["lr"] = 0.3;
  EXPECT_EQ(e.shared(), before);
  EXPECT_DOUBLE_EQ(e.at("lr").get<double>(), 0.3);
}

TEST(SharedJson, IdentityIsTheSameInternedOrNot) {
  JobSpec s;
  s.kind = "supervised";
  s.labels = {"ang", "hap"};
  s.model = {{"name", "concat_mlp"}, {"dropout", 0.25}, {"nested", {{"z", 1}, {"a", {1, 2.5}}}}};
  s.train_config = Cfg(0.001);
  s.adapt = {{"variant", "dann_ganin"}, {"weight", 0.3}};
  s.train = {DataRef{"a.h5", "h", {"u1", "u2"}}};
  const std::string plain = s.ComputeId();
  JobSpec t = s;
  t.model.MakeInterned();
  t.train_config.MakeInterned();
  t.adapt.MakeInterned();
  EXPECT_EQ(t.ComputeId(), plain);
  EXPECT_EQ(HashJson({{"identity_version", 1}, {"job", [&] {
                        nlohmann::json j = s.ToJson();
                        j["train"][0].erase("store");
                        return j;
                      }()}}),
            plain);
}

TEST(SharedJson, FromJsonInternsConfigs) {
  JobSpec s;
  s.model = {{"name", "concat_mlp"}, {"hidden_dims", {8}}};
  s.train_config = Cfg(0.002);
  auto a = JobSpec::FromJson(s.ToJson(), "a");
  auto b = JobSpec::FromJson(s.ToJson(), "b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->model.shared(), b->model.shared());
  EXPECT_EQ(a->train_config.shared(), b->train_config.shared());
  EXPECT_EQ(a->model, s.model);
  EXPECT_EQ(a->ComputeId(), s.ComputeId());
}

}  // namespace
}  // namespace emosweep::jobs
