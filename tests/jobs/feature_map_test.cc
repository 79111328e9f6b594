// tests/jobs/feature_map_test.cc: the shared feature map of a JobSpec (issue 15):
// interning gives one map per content, writes never reach other holders, it reads
// like a const std::map, and the job identity is the same whether the map is
// interned or not.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "jobs/job.h"

namespace emosweep::jobs {
namespace {

TEST(FeatureMap, ReadsLikeAConstMap) {
  FeatureMap m = {{"text", "bert"}, {"audio", "egemaps"}};
  const std::map<std::string, std::string>& as_map = m;
  EXPECT_EQ(m.size(), 2u);
  EXPECT_FALSE(m.empty());
  EXPECT_EQ(m.begin()->first, "audio");  // ordered like the map
  EXPECT_EQ(m.at("text"), "bert");
  EXPECT_EQ(m.count("video"), 0u);
  EXPECT_EQ(m.find("video"), m.end());
  EXPECT_EQ(as_map, (std::map<std::string, std::string>{{"audio", "egemaps"}, {"text", "bert"}}));
  EXPECT_EQ(nlohmann::json(m).dump(), R"({"audio":"egemaps","text":"bert"})");
  EXPECT_TRUE(FeatureMap().empty());
  EXPECT_EQ(FeatureMap().begin(), FeatureMap().end());
}

TEST(FeatureMap, InternSharesOneMapPerContentAndWritesCopyFirst) {
  FeatureMap a = FeatureMap::Intern({{"audio", "x"}});
  FeatureMap b = FeatureMap::Intern({{"audio", "x"}});
  FeatureMap c = FeatureMap::Intern({{"audio", "y"}});
  EXPECT_TRUE(a.interned());
  EXPECT_EQ(a.shared(), b.shared());
  EXPECT_NE(a.shared(), c.shared());
  FeatureMap d = a;
  d["text"] = "bert";  // copy on write
  EXPECT_NE(d.shared(), a.shared());
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(d.size(), 2u);
  EXPECT_FALSE(d.interned());
  d.erase("text");
  EXPECT_EQ(d, a);
  d.MakeInterned();
  EXPECT_EQ(d.shared(), a.shared());
  d.clear();
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(a.size(), 1u);
}

TEST(FeatureMap, CanonicalJsonIsNlohmannsDumpInternedOrNot) {
  std::map<std::string, std::string> raw = {{"audio", "a\"b"}, {"text", "t\xc3\xa9"}};
  const std::string want = nlohmann::json(raw).dump();
  std::string scratch;
  EXPECT_EQ(FeatureMap(raw).CanonicalJson(&scratch), want);
  EXPECT_EQ(FeatureMap::Intern(raw).CanonicalJson(&scratch), want);
  JobSpec s;
  s.kind = "supervised";
  s.labels = {"anger", "sadness"};
  s.features = raw;
  const std::string id = s.ComputeId();
  s.features.MakeInterned();
  s.labels.MakeInterned();
  EXPECT_EQ(s.ComputeId(), id);
  EXPECT_EQ(id, HashJson({{"identity_version", 1}, {"job", s.ToJson()}}));  // no data references
}

}  // namespace
}  // namespace emosweep::jobs
