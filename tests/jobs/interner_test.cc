// tests/jobs/interner_test.cc: jobs::Interner, the weak-reference table behind
// SharedJson, IdList and FeatureMap (issue 15): one object per distinct value,
// freed with its last holder and its slot reused, Eq (not the hash) tells values
// apart, one object per value under concurrent interning; and a value interned
// at the moment the table sweeps stays in the table (it once did not).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "jobs/feature_map.h"
#include "jobs/id_list.h"
#include "jobs/interner.h"
#include "jobs/shared_json.h"

namespace emosweep::jobs {
namespace {

struct StrHash {
  uint64_t operator()(const std::string& s) const { return std::hash<std::string>{}(s); }
};
struct ConstHash {  // every value collides
  uint64_t operator()(const std::string&) const { return 7; }
};
struct Mod16Hash {  // many collisions, several buckets
  uint64_t operator()(const std::string& s) const { return std::hash<std::string>{}(s) % 16; }
};
struct StrEq {
  bool operator()(const std::string& a, const std::string& b) const { return a == b; }
};

TEST(Interner, OneValueInternedTwiceIsOneObject) {
  Interner<std::string, StrHash, StrEq> table;
  auto a = table.Intern(std::string("alpha"));
  auto b = table.Intern(std::string("alpha"));
  auto c = table.Intern(std::string("beta"));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(*a, "alpha");
  EXPECT_EQ(*c, "beta");
  EXPECT_EQ(table.size(), 2u);
}

TEST(Interner, FinishRunsOnceOnANewObjectOnly) {
  Interner<std::string, StrHash, StrEq> table;
  int calls = 0;
  const std::string* finished = nullptr;
  auto finish = [&](std::string& s) { ++calls, finished = &s; };
  auto a = table.Intern(std::string("x"), finish);
  auto b = table.Intern(std::string("x"), finish);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(finished, a.get());  // the object handed out, not the argument
  EXPECT_EQ(calls, 1);
  table.Intern(std::string("y"), finish);
  EXPECT_EQ(calls, 2);
}

TEST(Interner, FreedValueSlotIsReusedAndTheTableStaysBounded) {
  Interner<std::string, StrHash, StrEq> table;
  std::weak_ptr<const std::string> first;
  {
    auto a = table.Intern(std::string("gone"));
    first = a;
  }
  EXPECT_TRUE(first.expired());  // the table holds no strong reference
  EXPECT_EQ(table.size(), 1u);
  // One value made and dropped many times: its one slot is reused.
  for (int i = 0; i < 5000; ++i) {
    auto a = table.Intern(std::string("gone"));
    ASSERT_EQ(*a, "gone");
  }
  EXPECT_EQ(table.size(), 1u);
  // Many distinct values, none held: swept, the table never passes the threshold.
  constexpr size_t kBound = Interner<std::string, StrHash, StrEq>::kMinSweepAt;
  for (int i = 0; i < 10000; ++i) {
    table.Intern("tmp-" + std::to_string(i));
    ASSERT_LE(table.size(), kBound) << "after " << i;
  }
  // Distinct values of one hash, each dropped: each reuses the previous one's slot.
  Interner<std::string, ConstHash, StrEq> colliding;
  for (int i = 0; i < 5000; ++i) colliding.Intern("c-" + std::to_string(i));
  EXPECT_EQ(colliding.size(), 1u);
}

TEST(Interner, HashCollisionsStillGiveDistinctObjects) {
  Interner<std::string, ConstHash, StrEq> table;
  std::vector<std::shared_ptr<const std::string>> held;
  for (int i = 0; i < 50; ++i) held.push_back(table.Intern("v" + std::to_string(i)));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(*held[i], "v" + std::to_string(i));
    for (int j = 0; j < i; ++j) EXPECT_NE(held[i].get(), held[j].get());
    EXPECT_EQ(table.Intern("v" + std::to_string(i)).get(), held[i].get());
  }
  EXPECT_EQ(table.size(), 50u);
}

// A value whose own dead slot is there when the table sweeps: the sweep erases that
// slot, and the new object must still go into the table (it once went through the
// erased slot's dangling iterator, so the next Intern made a second copy).
TEST(Interner, ValueInternedAtASweepStaysInTheTable) {
  Interner<std::string, StrHash, StrEq> table;
  for (int i = 0; i < 3000; ++i) {
    {
      auto a = table.Intern(std::string("x"));
      auto b = table.Intern(std::string("x"));
      ASSERT_EQ(a.get(), b.get()) << "round " << i;
    }
    table.Intern("filler-" + std::to_string(i));
  }
}

TEST(Interner, ConcurrentInterningGivesOneObjectPerValue) {
  using Table = Interner<std::string, Mod16Hash, StrEq>;
  Table table;
  constexpr int kThreads = 4, kValues = 400, kRounds = 20;
  // Thread t interns values [t*100, t*100 + kValues): neighbours overlap by 300.
  std::vector<std::vector<std::shared_ptr<const std::string>>> held(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int r = 0; r < kRounds; ++r) {
        // Drop the previous round's objects (other threads may still hold them) and
        // intern again: lookups, inserts, dead-slot reuse and sweeps all race.
        held[t].clear();
        for (int v = 0; v < kValues; ++v) {
          held[t].push_back(table.Intern("k" + std::to_string(t * 100 + v)));
          table.Intern("t" + std::to_string(t) + "-r" + std::to_string(r) + "-" + std::to_string(v));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    for (int v = 0; v < kValues; ++v) ASSERT_EQ(*held[t][v], "k" + std::to_string(t * 100 + v));
  // Every value held at the end by several threads is one object.
  for (int t = 1; t < kThreads; ++t)
    for (int v = 0; v < kValues - 100; ++v)
      ASSERT_EQ(held[t - 1][v + 100].get(), held[t][v].get()) << "value k" << t * 100 + v;
  for (int t = 0; t < kThreads; ++t)
    for (int v = 0; v < kValues; ++v)
      ASSERT_EQ(table.Intern("k" + std::to_string(t * 100 + v)).get(), held[t][v].get());
}

// The same sweep case through the three value types.
TEST(InternerSweep, IdListKeepsAListInternedAtASweep) {
  for (int i = 0; i < 3000; ++i) {
    {
      IdList a = IdList::Intern({"sweep-x"});
      IdList b = IdList::Intern({"sweep-x"});
      ASSERT_EQ(a.shared(), b.shared()) << "round " << i;
    }
    IdList::Intern({"sweep-filler-" + std::to_string(i)});
  }
}

TEST(InternerSweep, FeatureMapKeepsAMapInternedAtASweep) {
  for (int i = 0; i < 3000; ++i) {
    {
      FeatureMap a = FeatureMap::Intern({{"audio", "sweep-x"}});
      FeatureMap b = FeatureMap::Intern({{"audio", "sweep-x"}});
      ASSERT_EQ(a.shared(), b.shared()) << "round " << i;
    }
    FeatureMap::Intern({{"audio", "sweep-filler-" + std::to_string(i)}});
  }
}

TEST(InternerSweep, SharedJsonKeepsATreeInternedAtASweep) {
  for (int i = 0; i < 3000; ++i) {
    {
      SharedJson a = SharedJson::Intern(nlohmann::json{{"sweep", "x"}});
      SharedJson b = SharedJson::Intern(nlohmann::json{{"sweep", "x"}});
      ASSERT_EQ(a.shared(), b.shared()) << "round " << i;
    }
    SharedJson::Intern(nlohmann::json{{"sweep", "filler-" + std::to_string(i)}});
  }
}

}  // namespace
}  // namespace emosweep::jobs
