// protocols/attrs.cc: the interned pool and the sorted-vector operations of Attrs.
#include "protocols/attrs.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace emosweep::protocols {
namespace {

struct Pool {
  std::mutex mu;
  // "<key length>:<key><value>" -> the pair (unordered_map nodes never move).
  std::unordered_map<std::string, Attrs::value_type> pairs;
};

Pool& ThePool() {
  static Pool* pool = new Pool;  // never destroyed: Attrs in static objects may outlive main
  return *pool;
}

bool KeyLess(Attrs::Entry e, std::string_view key) { return std::string_view(e->first) < key; }

}  // namespace

Attrs::Entry Attrs::Intern(std::string_view key, std::string_view value) {
  std::string k = std::to_string(key.size());
  k.push_back(':');
  k.append(key).append(value);
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> lock(pool.mu);
  auto it = pool.pairs.find(k);
  if (it == pool.pairs.end())
    it = pool.pairs.emplace(std::move(k), value_type(std::string(key), std::string(value))).first;
  return &it->second;
}

bool Attrs::FromSorted(std::vector<Entry> entries, Attrs* out) {
  for (size_t i = 1; i < entries.size(); ++i)
    if (!(entries[i - 1]->first < entries[i]->first)) return false;
  out->entries_ = std::move(entries);
  return true;
}

Attrs::Attrs(const std::map<std::string, std::string>& m) {
  entries_.reserve(m.size());
  for (const auto& [k, v] : m) entries_.push_back(Intern(k, v));  // the map's order is ours
}

Attrs::Attrs(std::initializer_list<std::pair<std::string, std::string>> pairs) {
  for (const auto& [k, v] : pairs) Set(k, v);
}

std::vector<Attrs::Entry>::iterator Attrs::LowerBound(std::string_view key) {
  return std::lower_bound(entries_.begin(), entries_.end(), key, KeyLess);
}

Attrs::const_iterator Attrs::find(std::string_view key) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key, KeyLess);
  if (it == entries_.end() || (*it)->first != key) return end();
  return const_iterator(entries_.data() + (it - entries_.begin()));
}

const std::string& Attrs::at(std::string_view key) const {
  auto it = find(key);
  if (it == end()) throw std::out_of_range("Attrs::at: no attribute '" + std::string(key) + "'");
  return it->second;
}

const std::string& Attrs::Get(std::string_view key) const {
  static const std::string kEmpty;
  auto it = find(key);
  return it == end() ? kEmpty : it->second;
}

Attrs::Ref Attrs::operator[](std::string_view key) {
  auto it = LowerBound(key);
  if (it == entries_.end() || (*it)->first != key) entries_.insert(it, Intern(key, ""));
  return Ref(this, key);
}

void Attrs::Set(std::string_view key, std::string_view value) {
  auto it = LowerBound(key);
  Entry e = Intern(key, value);
  if (it != entries_.end() && (*it)->first == key) *it = e;
  else entries_.insert(it, e);
}

void Attrs::Erase(std::string_view key) {
  auto it = LowerBound(key);
  if (it != entries_.end() && (*it)->first == key) entries_.erase(it);
}

std::map<std::string, std::string> Attrs::ToMap() const {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : *this) out.emplace_hint(out.end(), k, v);
  return out;
}

nlohmann::json Attrs::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : *this) j[k] = v;
  return j;
}

void to_json(nlohmann::json& j, const Attrs& a) { j = a.ToJson(); }

void from_json(const nlohmann::json& j, Attrs& a) {
  a = Attrs();
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it)
    a.Set(it.key(), it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
}

}  // namespace emosweep::protocols
