// jobs/interner.h: the process-wide table behind the interned value types of
// jobs/ (SharedJson, IdList, FeatureMap; issue 15: one copy in memory per
// distinct value however many jobs hold it).
//
// Interner<T, Hash, Eq>::Intern(v) returns the live object equal to v (Eq) that
// the table holds under v's 64-bit hash (Hash), else a new shared object moved
// from v, which the table then hands out until its last holder lets it go. The
// table never keeps a value alive: its entries are weak references. A dead entry
// is reused by the next new value of the same hash (a value made and dropped job
// after job takes one slot), and dead entries of other hashes are swept lazily:
// when a new value finds the table at sweep_at entries (1024; after a sweep,
// twice the live count and at least 1024). Distinct values of one hash (a
// collision) are distinct objects: Eq decides.
//
// Hash: `uint64_t operator()(const T&) const`; Eq: `bool operator()(const T&,
// const T&) const`; both default-constructed. Intern's `finish(T&)` completes a
// new object (say, a cached serialisation) under the lock, before any other
// caller can see it; a found object is returned as is.
// Thread-safety: Intern and size may be called from any thread (one mutex; the
// hash is computed outside it). Objects handed out are never written by the table.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace emosweep::jobs {

template <typename T, typename Hash, typename Eq>
class Interner {
 public:
  static constexpr size_t kMinSweepAt = 1024;

  std::shared_ptr<const T> Intern(T&& value) {
    return Intern(std::move(value), [](T&) {});
  }

  template <typename Finish>
  std::shared_ptr<const T> Intern(T&& value, Finish&& finish) {
    const uint64_t h = Hash{}(static_cast<const T&>(value));
    std::lock_guard<std::mutex> lock(mu_);
    auto range = entries_.equal_range(h);
    auto dead = entries_.end();  // a forgotten value of this hash: its slot is reused
    for (auto it = range.first; it != range.second; ++it) {
      if (auto live = it->second.lock(); live && Eq{}(static_cast<const T&>(*live), static_cast<const T&>(value))) {
        return live;
      } else if (!live) {
        dead = it;
      }
    }
    if (entries_.size() >= sweep_at_) {
      for (auto it = entries_.begin(); it != entries_.end();)
        it = it->second.expired() ? entries_.erase(it) : std::next(it);
      sweep_at_ = std::max<size_t>(kMinSweepAt, 2 * entries_.size());
      dead = entries_.end();  // it was dead, so the sweep erased it
    }
    auto made = std::make_shared<T>(std::move(value));
    finish(*made);
    if (dead != entries_.end()) dead->second = made;
    else entries_.emplace(h, made);
    return made;
  }

  // Entries in the table, live or dead not yet swept.
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_multimap<uint64_t, std::weak_ptr<T>> entries_;
  size_t sweep_at_ = kMinSweepAt;
};

}  // namespace emosweep::jobs
