// jobs/feature_map.cc: see feature_map.h. The interner is a process-wide table
// from a 64-bit content hash to weak references (as IdList's): a map lives as
// long as some job holds it, and the table forgets it (lazily) after that.
#include "jobs/feature_map.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace emosweep::jobs {
namespace {

const FeatureMap::Map& EmptyMap() {
  static const FeatureMap::Map empty;
  return empty;
}

// FNV-1a over every key and value and their lengths (so {"ab":"c"} and {"a":"bc"} differ).
uint64_t ContentHash(const FeatureMap::Map& m) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  auto add = [&mix](const std::string& s) {
    for (unsigned char c : s) mix(c);
    for (size_t n = s.size(), k = 0; k < 4; ++k, n >>= 8) mix(static_cast<unsigned char>(n));
  };
  for (const auto& [k, v] : m) add(k), add(v);
  return h ^ m.size();
}

}  // namespace

FeatureMap::FeatureMap(Map m) {
  if (!m.empty()) rep_ = std::make_shared<Rep>(Rep{std::move(m), false, {}});
}

const FeatureMap::Map& FeatureMap::map() const { return rep_ ? rep_->m : EmptyMap(); }

FeatureMap::Map& FeatureMap::Mutable() {
  if (!rep_) {
    rep_ = std::make_shared<Rep>();
  } else if (rep_->interned || rep_.use_count() > 1) {
    rep_ = std::make_shared<Rep>(Rep{rep_->m, false, {}});
  }
  return rep_->m;
}

FeatureMap FeatureMap::Intern(Map m) {
  struct Table {
    std::mutex mu;
    std::unordered_multimap<uint64_t, std::weak_ptr<Rep>> maps;
    size_t sweep_at = 1024;  // forget dead entries when the table grows past this
  };
  FeatureMap out;
  if (m.empty()) return out;
  static Table* table = new Table();  // never destroyed: maps may outlive static destruction
  const uint64_t h = ContentHash(m);
  std::lock_guard<std::mutex> lock(table->mu);
  auto range = table->maps.equal_range(h);
  auto dead = table->maps.end();  // a forgotten map of this hash: its slot is reused
  for (auto it = range.first; it != range.second; ++it) {
    if (auto live = it->second.lock(); live && live->m == m) {
      out.rep_ = std::move(live);
      return out;
    } else if (!live) {
      dead = it;
    }
  }
  if (table->maps.size() >= table->sweep_at) {
    for (auto it = table->maps.begin(); it != table->maps.end();)
      it = it->second.expired() ? table->maps.erase(it) : std::next(it);
    table->sweep_at = std::max<size_t>(1024, 2 * table->maps.size());
    dead = table->maps.end();  // it was dead, so the sweep erased it
  }
  out.rep_ = std::make_shared<Rep>(Rep{std::move(m), true, {}});
  out.rep_->canonical = nlohmann::json(out.rep_->m).dump();
  if (dead != table->maps.end()) dead->second = out.rep_;
  else table->maps.emplace(h, out.rep_);
  return out;
}

void FeatureMap::MakeInterned() {
  if (!rep_ || rep_->interned) return;
  *this = Intern(rep_.use_count() == 1 ? std::move(rep_->m) : Map(rep_->m));
}

std::string_view FeatureMap::CanonicalJson(std::string* scratch) const {
  if (rep_ && rep_->interned) return rep_->canonical;
  *scratch = nlohmann::json(map()).dump();
  return *scratch;
}

void to_json(nlohmann::json& j, const FeatureMap& m) { j = m.map(); }

}  // namespace emosweep::jobs
