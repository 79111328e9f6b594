// orchestrator/id_index.h: the position of a job id in a list, found by a hash (issue 15).
//
// `table` over 10^6 jobs looked every ledger row's job up in std::maps keyed by
// the 64-character id (string compares were its largest single cost). An
// IdIndex is an open-addressing table of positions (4 bytes a slot, at most
// half full) over a list of ids that outlives it; a lookup hashes the id once
// and compares it with the one or two ids its probe meets.
// Thread-safety: const after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace emosweep::orchestrator {

class IdIndex {
 public:
  static constexpr size_t npos = static_cast<size_t>(-1);

  // `ids` (and what they view) must outlive the index. A repeated id is found at its
  // first position; Next() walks its other positions.
  explicit IdIndex(const std::vector<std::string_view>& ids) : ids_(&ids) {
    size_t cap = 16;
    while (cap < ids.size() * 2) cap *= 2;
    slots_.assign(cap, 0);
    mask_ = cap - 1;
    std::vector<uint32_t> last;  // per first position: the last position of that id seen so far
    for (size_t i = 0; i < ids.size(); ++i) {
      size_t s = Hash(ids[i]) & mask_;
      for (; slots_[s]; s = (s + 1) & mask_)
        if (ids[slots_[s] - 1] == ids[i]) break;
      if (!slots_[s]) {
        slots_[s] = static_cast<uint32_t>(i + 1);
        continue;
      }
      if (next_.empty()) next_.assign(ids.size(), 0), last.assign(ids.size(), 0);
      const uint32_t first = slots_[s] - 1;
      const uint32_t tail = last[first] ? last[first] - 1 : first;
      next_[tail] = static_cast<uint32_t>(i + 1);
      last[first] = static_cast<uint32_t>(i + 1);
    }
  }

  // Position of `id` in the list, or npos.
  size_t Find(std::string_view id) const {
    for (size_t s = Hash(id) & mask_; slots_[s]; s = (s + 1) & mask_)
      if ((*ids_)[slots_[s] - 1] == id) return slots_[s] - 1;
    return npos;
  }
  // The next position of the id at `pos`, or npos.
  size_t Next(size_t pos) const { return next_.empty() || !next_[pos] ? npos : next_[pos] - 1; }

 private:
  static size_t Hash(std::string_view id) { return std::hash<std::string_view>()(id); }
  const std::vector<std::string_view>* ids_;
  std::vector<uint32_t> slots_;  // position + 1; 0 = empty
  std::vector<uint32_t> next_;   // position + 1 of the id's next occurrence; empty when no id repeats
  size_t mask_ = 0;
};

}  // namespace emosweep::orchestrator
