// jobs::PooledString: one pooled copy per distinct string, read like a std::string.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "jobs/job.h"
#include "jobs/pooled_string.h"

namespace emosweep::jobs {
namespace {

TEST(PooledString, EqualStringsAreOneCopy) {
  std::string a = "/stores/" + std::string("emodb.h5"), b = "/stores/emodb.h5";
  PooledString x = a, y = b, z = "/stores/ravdess.h5";
  EXPECT_EQ(x.data(), y.data());
  EXPECT_EQ(x.shared(), y.shared());
  EXPECT_NE(x.data(), z.data());
  EXPECT_TRUE(x == y);
  EXPECT_FALSE(x == z);
  PooledString empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.data(), PooledString("").data());
}

TEST(PooledString, ReadsLikeAString) {
  PooledString s = "/a/b/emodb.h5";
  const std::string& ref = s;
  EXPECT_EQ(ref, "/a/b/emodb.h5");
  EXPECT_EQ(s.size(), 13u);
  EXPECT_EQ(s.find("emodb"), 5u);
  EXPECT_EQ(s.rfind('/'), 4u);
  EXPECT_EQ(s.substr(s.rfind('/') + 1), "emodb.h5");
  EXPECT_EQ("store " + s + "!", "store /a/b/emodb.h5!");
  EXPECT_EQ(std::string("x:") + s, "x:/a/b/emodb.h5");
  EXPECT_TRUE(s == std::string("/a/b/emodb.h5"));
  EXPECT_TRUE(s != "/a/b/other.h5");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "/a/b/emodb.h5");
  s = std::string("/c.h5");  // re-points
  EXPECT_EQ(s, "/c.h5");
}

TEST(PooledString, JsonRoundTripOfADataRefSharesTheStrings) {
  DataRef r{"/s/a.h5", "abc123", {"u1"}};
  nlohmann::json j = {{"store", r.store}, {"corpus_hash", r.corpus_hash}};
  EXPECT_EQ(j.dump(), R"({"corpus_hash":"abc123","store":"/s/a.h5"})");
  PooledString back = j["store"].get<PooledString>();
  EXPECT_EQ(back.data(), r.store.data());
  JobSpec s;
  s.train = {r};
  auto parsed = JobSpec::FromJson(s.ToJson(), "job");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->train[0].store.data(), r.store.data());
  EXPECT_EQ(parsed->train[0].corpus_hash.data(), r.corpus_hash.data());
  EXPECT_EQ(parsed->ComputeId(), s.ComputeId());
}

}  // namespace
}  // namespace emosweep::jobs
