// jobs/feature_map.h: an immutable, shared modality -> feature set map
// (JobSpec::features).
//
// Every job of an experiment reads the same few feature sets ({"audio":
// "egemaps", "text": "bert"}); as a std::map each job held its own tree nodes
// (~220 bytes a job at 10^5-10^6 jobs, issue 15). A FeatureMap is a pointer to
// one map that all its copies share: copying is a reference-count increment.
// Intern() returns the process's one map with given content, so the jobs of an
// expansion, or of JSON parsed job by job, hold one map per distinct set; an
// interned map also keeps its compact JSON, which the job identity hashes.
//
// It reads like a const std::map<std::string, std::string> (size, empty,
// begin/end, find, count, at, ==, and a conversion to the map) and is built
// implicitly from a map or a braced list, so code written for a map compiles
// unchanged. operator[], erase and clear copy the map first when it is shared or
// interned (copy on write): other holders never see a change.
// Thread-safety: a FeatureMap is a value (copies may be used from any thread;
// one object is not written from two threads); Intern() is thread-safe.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json_fwd.hpp>

namespace emosweep::jobs {

class FeatureMap {
 public:
  using Map = std::map<std::string, std::string>;
  using value_type = Map::value_type;
  using key_type = std::string;
  using mapped_type = std::string;
  using const_iterator = Map::const_iterator;
  using iterator = const_iterator;
  using size_type = size_t;

  FeatureMap() = default;
  FeatureMap(Map m);                                             // NOLINT: implicit by design
  FeatureMap(std::initializer_list<value_type> init) : FeatureMap(Map(init)) {}  // NOLINT: {{"audio", "x"}}

  // The process's shared map with this content (an equal map interned earlier, if one
  // is still held anywhere, else this one, interned from now on).
  static FeatureMap Intern(Map m);
  // Replaces this value by the interned map of equal content (nothing to do when it
  // already is; the map is moved, not copied, when this value is its only holder).
  void MakeInterned();

  size_t size() const { return rep_ ? rep_->m.size() : 0; }
  bool empty() const { return size() == 0; }
  const_iterator begin() const { return map().begin(); }
  const_iterator end() const { return map().end(); }
  const_iterator find(const std::string& key) const { return map().find(key); }
  size_t count(const std::string& key) const { return map().count(key); }
  const std::string& at(const std::string& key) const { return map().at(key); }
  const Map& map() const;
  operator const Map&() const { return map(); }  // NOLINT: implicit by design

  // Copy on write: a shared or interned map is copied before the change.
  std::string& operator[](const std::string& key) { return Mutable()[key]; }
  size_t erase(const std::string& key) { return Mutable().erase(key); }
  void clear() { rep_.reset(); }

  // The map as compact JSON (`{"audio":"x","text":"y"}`, as nlohmann's dump writes a
  // std::map), which the job identity hashes: kept by an interned map, made into
  // *scratch otherwise.
  std::string_view CanonicalJson(std::string* scratch) const;

  // The map this value shares (nullptr when empty): equal pointers, one map in memory.
  const void* shared() const { return rep_.get(); }
  bool interned() const { return rep_ && rep_->interned; }

  friend bool operator==(const FeatureMap& a, const FeatureMap& b) { return a.rep_ == b.rep_ || a.map() == b.map(); }
  friend bool operator!=(const FeatureMap& a, const FeatureMap& b) { return !(a == b); }
  friend bool operator==(const FeatureMap& a, const Map& b) { return a.map() == b; }
  friend bool operator==(const Map& a, const FeatureMap& b) { return a == b.map(); }
  friend bool operator!=(const FeatureMap& a, const Map& b) { return !(a == b); }
  friend bool operator!=(const Map& a, const FeatureMap& b) { return !(a == b); }

 private:
  struct Rep {
    Map m;
    bool interned = false;
    std::string canonical;  // CanonicalJson, set when interned
  };
  Map& Mutable();
  std::shared_ptr<Rep> rep_;  // never written through once shared or interned
};

void to_json(nlohmann::json& j, const FeatureMap& m);  // NOLINT: nlohmann's ADL name

}  // namespace emosweep::jobs
