// tests/jobs/id_list_test.cc: the shared utterance-id list of a DataRef (issue 15):
// copies share one list, interning gives one list per content, writes never
// reach other holders, and it reads and serialises like a vector.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "jobs/job.h"

namespace emosweep::jobs {
namespace {

std::vector<std::string> Ids(const std::string& prefix, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}

TEST(IdList, ReadsLikeAVector) {
  IdList a = Ids("u", 3);
  const std::vector<std::string>& v = a;
  EXPECT_EQ(v, Ids("u", 3));
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a[1], "u1");
  EXPECT_EQ(std::vector<std::string>(a.begin(), a.end()), Ids("u", 3));
  EXPECT_TRUE(a == Ids("u", 3));
  EXPECT_TRUE(a != Ids("u", 2));
  IdList empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.begin(), empty.end());
  EXPECT_EQ(empty, IdList({}));
  IdList braced = {"x", "y"};
  EXPECT_EQ(braced, (std::vector<std::string>{"x", "y"}));
}

TEST(IdList, CopiesShareOneList) {
  IdList a = Ids("u", 100);
  IdList b = a;
  EXPECT_EQ(a.shared(), b.shared());
}

TEST(IdList, InternGivesOneListPerContent) {
  IdList a = IdList::Intern(Ids("intern-", 50));
  IdList b = IdList::Intern(Ids("intern-", 50));
  IdList c = IdList::Intern(Ids("intern-", 49));
  EXPECT_EQ(a.shared(), b.shared());
  EXPECT_NE(a.shared(), c.shared());
  EXPECT_TRUE(a.interned());
  IdList d = Ids("intern-", 50);
  EXPECT_NE(d.shared(), a.shared());
  d.MakeInterned();
  EXPECT_EQ(d.shared(), a.shared());
  // Same characters, other split into ids: not the same list.
  IdList e = IdList::Intern({"ab", "c"}), f = IdList::Intern({"a", "bc"});
  EXPECT_NE(e.shared(), f.shared());
  EXPECT_EQ(f, (std::vector<std::string>{"a", "bc"}));
}

TEST(IdList, InternForgetsListsNobodyHolds) {
  const void* first = nullptr;
  {
    IdList a = IdList::Intern(Ids("gone-", 5));
    first = a.shared();
  }
  // A new list with the same content is a fresh one (the old is freed), and correct.
  IdList b = IdList::Intern(Ids("gone-", 5));
  EXPECT_EQ(b, Ids("gone-", 5));
  (void)first;
  // Many distinct lists, none held: the table sweeps and stays correct.
  for (int i = 0; i < 5000; ++i) IdList::Intern(Ids("tmp" + std::to_string(i) + "-", 2));
  EXPECT_EQ(IdList::Intern(Ids("gone-", 5)).shared(), b.shared());
}

TEST(IdList, WritesCopyWhenShared) {
  IdList a = IdList::Intern(Ids("cow-", 3));
  IdList b = a;
  b.push_back("extra");
  EXPECT_EQ(a, Ids("cow-", 3));  // the interned list is untouched
  EXPECT_EQ(b.size(), 4u);
  EXPECT_EQ(IdList::Intern(Ids("cow-", 3)).shared(), a.shared());
  IdList c = a;
  c.clear();
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(a.size(), 3u);
  IdList own;
  for (int i = 0; i < 3; ++i) own.push_back("o" + std::to_string(i));
  EXPECT_EQ(own, (std::vector<std::string>{"o0", "o1", "o2"}));
}

TEST(IdList, JsonRoundTripShares) {
  JobSpec s;
  s.train = {DataRef{"a.h5", "h", Ids("json-", 20)}};
  s.eval["test"] = {DataRef{"a.h5", "h", Ids("json-test-", 7)}};
  const nlohmann::json j = s.ToJson();
  EXPECT_EQ(j["train"][0]["ids"], nlohmann::json(Ids("json-", 20)));
  auto x = JobSpec::FromJson(j, "x"), y = JobSpec::FromJson(j, "y");
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(x->train[0].ids, Ids("json-", 20));
  EXPECT_EQ(x->train[0].ids.shared(), y->train[0].ids.shared());
  EXPECT_EQ(x->eval.at("test")[0].ids.shared(), y->eval.at("test")[0].ids.shared());
  EXPECT_EQ(x->ComputeId(), s.ComputeId());
}

}  // namespace
}  // namespace emosweep::jobs
