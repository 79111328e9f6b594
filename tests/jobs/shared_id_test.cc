// jobs::SharedId: copies share one reference-counted id, read like a std::string.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "jobs/job.h"
#include "jobs/shared_id.h"

namespace emosweep::jobs {
namespace {

const std::string kId = std::string(64, 'a');

TEST(SharedId, CopiesShareOneIdAndOutliveTheOriginal) {
  std::vector<SharedId> copies;
  {
    SharedId id = kId;
    copies = {id, id};
    copies.push_back(copies[0]);
    SharedId moved = std::move(id);
    EXPECT_TRUE(id.empty());  // NOLINT: a moved-from SharedId is the empty id
    copies.push_back(moved);
  }
  for (const auto& c : copies) {
    EXPECT_EQ(c.shared(), copies[0].shared());
    EXPECT_EQ(c.data(), copies[0].data());
    EXPECT_EQ(c, kId);
  }
  SharedId other = kId;  // equal content, its own copy
  EXPECT_NE(other.shared(), copies[0].shared());
  EXPECT_TRUE(other == copies[0]);
  copies[1] = SharedId("b");
  EXPECT_EQ(copies[1], "b");
  EXPECT_EQ(copies[0], kId);
  copies[2].clear();
  EXPECT_TRUE(copies[2].empty());
  EXPECT_EQ(copies[3], kId);
}

TEST(SharedId, ReadsLikeAString) {
  SharedId s = kId;
  const std::string& ref = s;
  EXPECT_EQ(ref, kId);
  EXPECT_EQ(s.size(), 64u);
  EXPECT_EQ(s.substr(0, 12), kId.substr(0, 12));
  EXPECT_EQ("job " + s, "job " + kId);
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), kId);
  std::map<std::string, int> m;
  m[s] = 1;
  EXPECT_EQ(m.count(kId), 1u);
  SharedId empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty, "");
  EXPECT_EQ(empty.shared(), nullptr);
  EXPECT_TRUE(SharedId("").empty());
  EXPECT_EQ(nlohmann::json(std::vector<SharedId>{s, empty}).dump(), "[\"" + kId + "\",\"\"]");
  EXPECT_EQ(nlohmann::json(kId).get<SharedId>(), kId);
}

// init_from round-trips through the job's JSON and its identity is the string's.
TEST(SharedId, InitFromKeepsTheJobsIdentity) {
  JobSpec spec;
  spec.kind = "eval";
  spec.init_from = kId;
  auto parsed = JobSpec::FromJson(spec.ToJson(), "job");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->init_from, kId);
  EXPECT_EQ(parsed->ComputeId(), spec.ComputeId());
  spec.init_from = std::string(64, 'b');
  EXPECT_NE(parsed->ComputeId(), spec.ComputeId());
}

}  // namespace
}  // namespace emosweep::jobs
