// jobs/feature_map.cc: see feature_map.h. The interner is a process-wide
// jobs::Interner (jobs/interner.h, as IdList's) keyed by a 64-bit content hash:
// a map lives as long as some job holds it, and the table forgets it (lazily)
// after that.
#include "jobs/feature_map.h"

#include <cstdint>

#include "jobs/interner.h"

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

static_assert(sizeof(FeatureMap) == sizeof(std::shared_ptr<void>), "a FeatureMap is one shared pointer (issue 15)");

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
  // Local classes: they may name the private Rep. Equal content, not just an equal hash.
  struct Hash {
    uint64_t operator()(const Rep& r) const { return ContentHash(r.m); }
  };
  struct Eq {
    bool operator()(const Rep& a, const Rep& b) const { return a.m == b.m; }
  };
  FeatureMap out;
  if (m.empty()) return out;
  static auto* table = new Interner<Rep, Hash, Eq>();  // never destroyed: maps may outlive static destruction
  // An interned Rep is never written (Mutable copies it first), so the const is only dropped.
  out.rep_ = std::const_pointer_cast<Rep>(table->Intern(
      Rep{std::move(m), true, {}}, [](Rep& r) { r.canonical = nlohmann::json(r.m).dump(); }));
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
