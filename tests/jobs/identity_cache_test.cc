// jobs::ComputeJobId with an IdentityCache (midstates of the leading adapt, eval
// and features bytes) must give exactly JobSpec::ComputeId's ids, whatever
// varies between the jobs that share a cache (issue 15).
#include <gtest/gtest.h>

#include <set>

#include "jobs/identity.h"

namespace emosweep::jobs {
namespace {

std::vector<std::string> Utts(const std::string& prefix, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(prefix + "_" + std::to_string(i));
  return ids;
}

TEST(IdentityCache, CachedIdsEqualComputeIdOverVariedJobs) {
  const IdList test_a = IdList::Intern(Utts("a", 50)), test_b = IdList::Intern(Utts("b", 40));
  const IdList train = IdList::Intern(Utts("t", 120)), val = IdList::Intern(Utts("v", 20));
  const IdList loose = IdList(Utts("a", 50));  // same content as test_a, not interned
  const IdList empty;
  std::vector<std::map<std::string, std::vector<DataRef>>> evals = {
      {},
      {{"test", {{"/a.h5", "ha", test_a}}}},
      {{"test", {{"/a.h5", "ha", test_b}}}},                     // other list, same hash
      {{"test", {{"/a.h5", "hx", test_a}}}},                     // same list, other corpus hash
      {{"test", {{"/elsewhere/a.h5", "ha", test_a}}}},           // other store path: same identity
      {{"test", {{"/a.h5", "ha", test_a}}}, {"test_in", {{"/b.h5", "hb", test_b}, {"/a.h5", "ha", empty}}}},
      {{"test_in", {{"/a.h5", "ha", test_a}}}},                  // other name
      {{"test", {{"/a.h5", "ha", loose}}}},                      // not interned: hashed without the cache
      {{"test", {{"/a.h5", "ha", test_a}, {"/b.h5", "hb", test_b}}}},
  };
  const std::vector<SharedJson> adapts = {SharedJson::Intern(nlohmann::json::object()),
                                          SharedJson::Intern({{"variant", "dann_ganin"}, {"weight", 0.3}}),
                                          nlohmann::json{{"variant", "mmd_rbf"}}};
  const std::vector<std::map<std::string, std::string>> features = {{{"audio", "mfcc"}},
                                                                    {{"audio", "mfcc"}, {"text", "bert"}}};
  IdentityCache cache;
  std::set<std::string> ids;
  size_t jobs = 0;
  for (const auto& eval : evals)
    for (const auto& adapt : adapts)
      for (const auto& feats : features)
        for (const char* kind : {"supervised", "eval"})
          for (uint64_t seed : {1, 2})
            for (const char* init_from : {"", "0123abcd"}) {
              JobSpec s;
              s.kind = kind;
              s.eval = eval;
              s.adapt = adapt;
              s.features = feats;
              s.seed = seed;
              s.init_from = init_from;
              s.labels = {"neutral", "angry"};
              s.model = SharedJson::Intern({{"name", "concat_mlp"}, {"hidden", 64}});
              s.train_config = {{"lr", 0.001 * seed}};
              if (std::string(kind) == "supervised") {
                s.train = {{"/t.h5", "ht", train}};
                s.val = {{"/t.h5", "ht", val}};
              }
              const std::string want = s.ComputeId();
              EXPECT_EQ(ComputeJobId(s, &cache), want) << "job " << jobs;
              EXPECT_EQ(ComputeJobId(s, &cache), want) << "job " << jobs << ", again (a hit)";
              EXPECT_EQ(ComputeJobId(s, nullptr), want);
              ids.insert(want);
              ++jobs;
            }
  // Every job differs from every other except by the store path (evals[4] is evals[1])
  // or by the list's sharing (evals[7] is evals[1] too).
  EXPECT_EQ(ids.size(), jobs - 2 * jobs / evals.size());
  // The cache was used: one miss per distinct (adapt, eval, features) with interned lists.
  const size_t prefixes = (evals.size() - 2) * adapts.size() * features.size();  // [4] = [1]; [7] uncached
  EXPECT_EQ(cache.misses(), prefixes);
  EXPECT_EQ(cache.size(), prefixes);
  EXPECT_EQ(cache.hits(), 2 * jobs - jobs / evals.size() * 2 - cache.misses());
}

// The key names an eval list by its address: a cached entry keeps its lists alive, so
// a list made after another was dropped cannot take its address and its midstate.
// (Today the interner's weak references also keep a dropped list's block, so this
// passes without the entry's copies too; it checks the ids over many dropped lists.)
TEST(IdentityCache, DroppedListsCannotLendTheirAddressToAnother) {
  IdentityCache cache;
  for (int round = 0; round < 50; ++round) {
    JobSpec s;
    s.eval["test"] = {{"/a.h5", "h", IdList::Intern(Utts("r" + std::to_string(round), 3))}};
    const std::string want = s.ComputeId();
    EXPECT_EQ(ComputeJobId(s, &cache), want) << "round " << round;
  }
  EXPECT_EQ(cache.misses(), 50u);
  EXPECT_EQ(cache.hits(), 0u);
}

TEST(IdentityCache, AFullCacheStartsAfreshAndStaysCorrect) {
  IdentityCache cache(4);
  std::vector<IdList> lists;
  for (int i = 0; i < 10; ++i) lists.push_back(IdList::Intern(Utts("l" + std::to_string(i), 2)));
  for (int pass = 0; pass < 3; ++pass)
    for (const auto& l : lists) {
      JobSpec s;
      s.seed = pass;
      s.eval["test"] = {{"/a.h5", "h", l}};
      EXPECT_EQ(ComputeJobId(s, &cache), s.ComputeId());
      EXPECT_LE(cache.size(), 4u);
    }
}

}  // namespace
}  // namespace emosweep::jobs
