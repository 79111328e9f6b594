// Scheduler memory (issue 15): what Scheduler::Create holds per job on a re-run of a
// registered job list, measured as the peak of live heap bytes (this binary's global
// operator new/delete count while a test asks them to).
#include <malloc.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "orchestrator/scheduler.h"
#include "tests/orchestrator/fake_jobs.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_live{0}, g_peak{0};

void Count(long delta) {
  const long now = g_live.fetch_add(delta) + delta;
  long peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

void* operator new(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  if (g_counting.load(std::memory_order_relaxed)) Count(static_cast<long>(malloc_usable_size(p)));
  return p;
}
void operator delete(void* p) noexcept {
  if (p && g_counting.load(std::memory_order_relaxed)) Count(-static_cast<long>(malloc_usable_size(p)));
  std::free(p);
}
void operator delete(void* p, size_t) noexcept { operator delete(p); }
// Every other form goes through the two above, so each allocation is freed by the allocator that made it (under
// ASan the library's nothrow / array forms would otherwise pair its new with this free; helper-75).
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  try {
    return operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return operator new(n, std::nothrow); }
void operator delete(void* p, const std::nothrow_t&) noexcept { operator delete(p); }
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete[](void* p, size_t) noexcept { operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { operator delete(p); }

namespace emosweep::orchestrator {
namespace {

// A second Create over the same jobs (every id already in the ledger: RegisterJobs
// inserts nothing) holds the node, index slot and transient state of each job, not a
// copy of every id (RegisterJobs and ResetFailed each made one: ~110 bytes a job) nor
// a hash-map node per job. Peak live bytes above the start, per job.
TEST(SchedulerMemory, CreateHoldsNoCopyOfEveryIdAtItsPeak) {
  std::vector<std::string> models, columns;
  for (int k = 0; k < 20; ++k) models.push_back("m" + std::to_string(k));
  for (int k = 0; k < 20; ++k) columns.push_back("c" + std::to_string(k));
  const auto jobs = testing::MakeGrid("e", models, columns, 5);  // 2000 jobs
  const std::string path = testing::TestDir() + "/l.db";
  auto ledger = std::move(Ledger::Open(path)).value();
  auto sweep = ledger->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(sweep.ok());
  ASSERT_TRUE(Scheduler::Create(ledger.get(), *sweep, jobs, {}).ok());
  auto again = ledger->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(again.ok());
  std::vector<protocols::PlannedJob> copy = jobs;
  g_live = 0, g_peak = 0;
  g_counting = true;
  auto s = Scheduler::Create(ledger.get(), *again, std::move(copy), {});
  g_counting = false;
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Counts().total, static_cast<int>(jobs.size()));
  const double per_job = static_cast<double>(g_peak.load()) / static_cast<double>(jobs.size());
  // Measured: ~196 bytes now (nodes, index slots, the registration's views and chunk
  // map), ~326 before (a 128-byte node, a hash-map node and buckets, copies of every id).
  EXPECT_LT(per_job, 260.0) << "peak live heap bytes a job during Scheduler::Create";
  RecordProperty("peak_bytes_per_job", std::to_string(per_job));
  std::printf("peak live heap bytes a job during Scheduler::Create: %.1f\n", per_job);
}

}  // namespace
}  // namespace emosweep::orchestrator
