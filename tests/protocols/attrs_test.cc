// tests/protocols/attrs_test.cc: a job's attributes as an interned flat value (issue 15):
// the std::map reading it replaced (order, lookups, [] insertion), equality, the pool,
// JSON and the expansion cache's sorted construction.
#include "protocols/attrs.h"
#include "protocols/grammar_util.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace emosweep::protocols {
namespace {

const std::map<std::string, std::string> kMap = {
    {"experiment", "loco"}, {"seed", "2"}, {"hp", "train.lr=0.001"}, {"target", "emovo"}, {"B", "upper"}, {"", "e"}};

TEST(Attrs, IteratesInTheMapsKeyOrder) {
  Attrs a;
  for (auto it = kMap.rbegin(); it != kMap.rend(); ++it) a[it->first] = it->second;  // reverse insertion
  std::vector<std::pair<std::string, std::string>> got, want(kMap.begin(), kMap.end());
  for (const auto& [k, v] : a) got.emplace_back(k, v);
  EXPECT_EQ(got, want);
  EXPECT_EQ(a.size(), kMap.size());
  EXPECT_EQ(a.ToMap(), kMap);
  EXPECT_EQ(Attrs(kMap).ToMap(), kMap);
}

TEST(Attrs, LooksUpLikeTheMap) {
  const Attrs a(kMap);
  for (const auto& [k, v] : kMap) {
    ASSERT_NE(a.find(k), a.end()) << k;
    EXPECT_EQ(a.find(k)->first, k);
    EXPECT_EQ(a.find(k)->second, v);
    EXPECT_EQ(a.at(k), v);
    EXPECT_EQ(a.count(k), 1u);
    EXPECT_EQ(a.Get(k), v);
  }
  for (const char* absent : {"fold", "experimen", "experimentt", "a", "zzz"}) {
    EXPECT_EQ(a.find(absent), a.end()) << absent;
    EXPECT_EQ(a.count(absent), 0u);
    EXPECT_EQ(a.Get(absent), "");
    EXPECT_THROW(a.at(absent), std::out_of_range);
  }
  EXPECT_TRUE(Attrs().empty());
  EXPECT_EQ(Attrs().begin(), Attrs().end());
}

TEST(Attrs, SubscriptInsertsAndAssignsLikeTheMap) {
  Attrs a{{"experiment", "xc"}};
  const std::string c = "emodb";
  a["corpus"] = a["source"] = a["target"] = c;  // the expanders' chained form
  EXPECT_EQ(a.at("corpus"), "emodb");
  EXPECT_EQ(a.at("source"), "emodb");
  EXPECT_EQ(a.at("target"), "emodb");
  EXPECT_TRUE(a["target"] == "emodb");
  EXPECT_FALSE(a["target"] != "emodb");
  a["budget"] = a["target"] == "emodb" ? "10%" : "50%";
  EXPECT_EQ(a.at("budget"), "10%");
  EXPECT_EQ(a.count("fold"), 0u);
  const std::string read = a["fold"];  // reading an absent key inserts "", as std::map::operator[]
  EXPECT_EQ(read, "");
  EXPECT_EQ(a.count("fold"), 1u);
  a["target"] = std::string("ravdess");
  EXPECT_EQ(a.at("target"), "ravdess");
  EXPECT_EQ(a.at("source"), "emodb") << "a copied value, not a shared slot";
  a.Erase("fold");
  EXPECT_EQ(a.count("fold"), 0u);
  EXPECT_EQ(a.size(), 5u);
  Attrs later{{"k", "1"}, {"k", "2"}};
  EXPECT_EQ(later.at("k"), "2") << "a later pair of a key wins";
}

TEST(Attrs, EqualityIsContentAndEqualPairsAreOnePooledPair) {
  Attrs a(kMap), b;
  for (const auto& [k, v] : kMap) b.Set(k, v);
  EXPECT_EQ(a, b);
  EXPECT_FALSE(a != b);
  b["seed"] = "3";
  EXPECT_NE(a, b);
  b["seed"] = "2";
  EXPECT_EQ(a, b);
  b["fold"] = "0";
  EXPECT_NE(a, b) << "an extra key";
  EXPECT_EQ(Attrs::Intern("seed", "2"), Attrs::Intern(std::string("seed"), std::string("2")));
  EXPECT_NE(Attrs::Intern("seed", "2"), Attrs::Intern("seed", "3"));
  EXPECT_NE(Attrs::Intern("ab", "c"), Attrs::Intern("a", "bc")) << "key and value are kept apart";
  EXPECT_EQ(&*a.find("seed"), Attrs::Intern("seed", "2")) << "one pooled pair, however many jobs hold it";
  EXPECT_EQ(a.entries().size() * sizeof(Attrs::Entry), a.size() * 8) << "8 bytes an attribute";
}

TEST(Attrs, JsonRoundTripIsTheMapsJson) {
  const Attrs a(kMap);
  const nlohmann::json j = a;
  EXPECT_EQ(j, nlohmann::json(kMap));
  EXPECT_EQ(j.dump(), nlohmann::json(kMap).dump()) << "byte-identical attrs_json in the ledger";
  EXPECT_EQ(j.get<Attrs>(), a);
  EXPECT_EQ(nlohmann::json(Attrs()).dump(), "{}");
}

TEST(Attrs, FromSortedTakesOnlyStrictlyIncreasingKeys) {
  Attrs a;
  ASSERT_TRUE(Attrs::FromSorted({Attrs::Intern("a", "1"), Attrs::Intern("b", "2")}, &a));
  EXPECT_EQ(a, (Attrs{{"a", "1"}, {"b", "2"}}));
  Attrs untouched{{"x", "y"}};
  EXPECT_FALSE(Attrs::FromSorted({Attrs::Intern("b", "2"), Attrs::Intern("a", "1")}, &untouched));
  EXPECT_FALSE(Attrs::FromSorted({Attrs::Intern("a", "1"), Attrs::Intern("a", "2")}, &untouched));
  EXPECT_EQ(untouched, (Attrs{{"x", "y"}}));
}

}  // namespace
}  // namespace emosweep::protocols

namespace emosweep::protocols {
namespace {

// helper-67: a 2000-seed few-shot grid printed 2000 "is identical" warnings. Warnings that differ only in what
// they name (bracketed jobs, quoted names, numbers) show three at a time, then how many more.
TEST(CondenseWarnings, RepeatsOfOneShapeAreCountedNotPrinted) {
  std::vector<std::string> w;
  for (int i = 0; i < 7; ++i)
    w.push_back("job [fs seed=" + std::to_string(i) + "] is identical to job [fs seed=" + std::to_string(i + 100) +
                "] (same identity): it runs once");
  w.push_back("table 'x': something else");
  w.push_back("job [a] is identical to job [b] (same identity): it runs once");
  const auto c = CondenseWarnings(w);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0], w[0]);
  EXPECT_EQ(c[2], w[2]);
  EXPECT_EQ(c[3], "... and 5 more like it (plan --json lists them all)");
  EXPECT_EQ(c[4], w[7]);
  EXPECT_EQ(CondenseWarnings({w[0], w[7]}), (std::vector<std::string>{w[0], w[7]}));
}

}  // namespace
}  // namespace emosweep::protocols
