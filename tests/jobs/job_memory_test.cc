// JobSpec memory (issue 15): what a job's evaluation sets hold, measured as live heap
// bytes (this binary's global operator new/delete count while a test asks them to).
#include <malloc.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "jobs/job.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_live{0};
}  // namespace

void* operator new(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  if (g_counting.load(std::memory_order_relaxed)) g_live += static_cast<long>(malloc_usable_size(p));
  return p;
}
void operator delete(void* p) noexcept {
  if (p && g_counting.load(std::memory_order_relaxed)) g_live -= static_cast<long>(malloc_usable_size(p));
  std::free(p);
}
void operator delete(void* p, size_t) noexcept { operator delete(p); }

namespace emosweep::jobs {
namespace {

// Most jobs have one evaluation set ("test", one data reference). As a std::map it cost a
// 48-byte map in the job and a ~96-byte tree node on the heap besides its references; the
// flat list holds the entry (name and references, 56 bytes) and the references only.
TEST(JobMemory, OneEvalSetHoldsNoTreeNode) {
  JobSpec spec;
  spec.eval["test"] = {DataRef{"/stores/a.h5", std::string(64, 'h'), IdList::Intern({"u1", "u2", "u3"})}};
  EXPECT_LE(sizeof(spec.eval), 24u);
  constexpr long kCopies = 1000;
  std::vector<decltype(spec.eval)> copies;
  copies.reserve(kCopies);
  g_counting = true;
  const long before = g_live.load();
  for (long i = 0; i < kCopies; ++i) copies.push_back(spec.eval);
  const long per_copy = (g_live.load() - before) / kCopies;
  g_counting = false;
  // The entry (56 bytes) and one 32-byte DataRef, each rounded up by malloc: 96 bytes.
  EXPECT_LT(per_copy, 112) << "bytes of heap a copied one-set eval holds";
  ASSERT_EQ(copies.back().size(), 1u);
  EXPECT_EQ(copies.back().at("test")[0].ids.shared(), spec.eval.at("test")[0].ids.shared());
}

// The sets read like a map: in name order, one entry per name, found by name.
TEST(JobMemory, EvalSetsKeepNameOrderAndOneEntryPerName) {
  decltype(JobSpec::eval) sets;  // (written so that it also builds against the std::map it replaced)
  sets["test_in"] = {DataRef{"/b.h5", "hb", {}}};
  sets["test"] = {DataRef{"/a.h5", "ha", {}}};
  sets["test:emodb"] = {};
  sets["test"].push_back(DataRef{"/c.h5", "hc", {}});
  std::vector<std::string> names;
  for (const auto& [name, refs] : sets) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"test", "test:emodb", "test_in"}));
  EXPECT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets.at("test").size(), 2u);
  EXPECT_EQ(sets.count("test_in"), 1u);
  EXPECT_EQ(sets.count("val"), 0u);
  EXPECT_EQ(sets.find("val"), sets.end());
  EXPECT_THROW(sets.at("val"), std::out_of_range);
  // Its JSON is the map's: names in order (the job identity hashes it).
  JobSpec spec;
  spec.eval = sets;
  auto j = spec.ToJson();
  EXPECT_EQ(j["eval"].size(), 3u);
  EXPECT_EQ(j["eval"].begin().key(), "test");
  auto parsed = JobSpec::FromJson(j, "job");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->eval.at("test").size(), 2u);
  EXPECT_EQ(parsed->ComputeId(), spec.ComputeId());
}

}  // namespace
}  // namespace emosweep::jobs
