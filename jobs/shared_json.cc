// jobs/shared_json.cc: see shared_json.h. The interner is a process-wide table
// from a 64-bit hash of the compact dump to weak references (as IdList's): a
// tree lives as long as some job holds it, and the table forgets it (lazily)
// after that. `null` and `{}` are two process-wide trees that every default or
// cleared config shares, so they cost no allocation per job.
#include "jobs/shared_json.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace emosweep::jobs {
namespace {

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

struct SharedJson::Interner {
  std::mutex mu;
  std::unordered_multimap<uint64_t, std::weak_ptr<Rep>> trees;
  size_t sweep_at = 1024;  // forget dead entries when the table grows past this
  std::shared_ptr<Rep> null_tree = Fixed(nullptr);
  std::shared_ptr<Rep> empty_object = Fixed(json::object());

  static std::shared_ptr<Rep> Fixed(json j) {  // interned, so never written
    auto r = std::make_shared<Rep>();
    r->j = std::move(j);
    r->interned = true;
    r->dump = r->j.dump();
    return r;
  }
};

SharedJson::Interner& SharedJson::Table() {
  static Interner* table = new Interner();  // never destroyed: trees may outlive static destruction
  return *table;
}

SharedJson::SharedJson() {
  Interner* table = &Table();
  rep_ = table->empty_object;
}

SharedJson::SharedJson(json j) {
  Interner* table = &Table();
  if (j.is_null()) {
    rep_ = table->null_tree;
  } else if (j.is_object() && j.empty()) {
    rep_ = table->empty_object;
  } else {
    rep_ = std::make_shared<Rep>();
    rep_->j = std::move(j);
  }
}

SharedJson SharedJson::Intern(json j) {
  SharedJson out(std::move(j));
  if (out.rep_->interned) return out;  // null or {}
  Interner* table = &Table();
  std::string dump = out.rep_->j.dump();
  const uint64_t h = Fnv1a(dump);
  std::lock_guard<std::mutex> lock(table->mu);
  auto range = table->trees.equal_range(h);
  auto dead = table->trees.end();  // a forgotten tree of this hash: its slot is reused (a config
                                   // made and dropped per job would otherwise pile up under one hash)
  for (auto it = range.first; it != range.second; ++it) {
    if (auto live = it->second.lock(); live && live->dump == dump) {
      out.rep_ = std::move(live);
      return out;
    } else if (!live) {
      dead = it;
    }
  }
  if (table->trees.size() >= table->sweep_at) {
    for (auto it = table->trees.begin(); it != table->trees.end();)
      it = it->second.expired() ? table->trees.erase(it) : std::next(it);
    table->sweep_at = std::max<size_t>(1024, 2 * table->trees.size());
    dead = table->trees.end();  // it was dead, so the sweep erased it
  }
  out.rep_->dump = std::move(dump);
  out.rep_->interned = true;  // out is its only holder: no one sees the flag change
  if (dead != table->trees.end()) dead->second = out.rep_;
  else table->trees.emplace(h, out.rep_);
  return out;
}

void SharedJson::MakeInterned() {
  if (rep_->interned) return;
  *this = Intern(rep_.use_count() == 1 ? std::move(rep_->j) : json(rep_->j));
}

void SharedJson::AppendDump(std::string* out) const {
  if (rep_->interned) {
    out->append(rep_->dump);
  } else {
    out->append(rep_->j.dump());
  }
}

std::string SharedJson::dump(int indent) const {
  if (indent < 0 && rep_->interned) return rep_->dump;
  return rep_->j.dump(indent);
}

nlohmann::json& SharedJson::mutable_tree() {
  if (rep_->interned || rep_.use_count() > 1) {
    auto copy = std::make_shared<Rep>();
    copy->j = rep_->j;
    rep_ = std::move(copy);
  }
  return rep_->j;
}

void to_json(nlohmann::json& j, const SharedJson& s) { j = s.tree(); }

}  // namespace emosweep::jobs
