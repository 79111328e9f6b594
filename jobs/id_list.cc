// jobs/id_list.cc: see id_list.h. The interner is a process-wide table from a
// 64-bit content hash to weak references: a list lives as long as some job
// holds it, and the table forgets it (lazily) after that.
#include "jobs/id_list.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace emosweep::jobs {
namespace {

const std::vector<std::string>& EmptyList() {
  static const std::vector<std::string> empty;
  return empty;
}

// FNV-1a over every id and its length (so ["ab","c"] and ["a","bc"] differ).
uint64_t ContentHash(const std::vector<std::string>& ids) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (const auto& s : ids) {
    for (unsigned char c : s) mix(c);
    for (size_t n = s.size(), k = 0; k < 4; ++k, n >>= 8) mix(static_cast<unsigned char>(n));
  }
  return h ^ ids.size();
}

}  // namespace

IdList::IdList(std::vector<std::string> ids) {
  if (!ids.empty()) rep_ = std::make_shared<Rep>(Rep{std::move(ids), false, {}});
}

const std::vector<std::string>& IdList::vec() const { return rep_ ? rep_->ids : EmptyList(); }

void IdList::push_back(std::string id) {
  if (!rep_) {
    rep_ = std::make_shared<Rep>();
  } else if (rep_->interned || rep_.use_count() > 1) {
    rep_ = std::make_shared<Rep>(Rep{rep_->ids, false, {}});
  }
  rep_->ids.push_back(std::move(id));
}

template <typename Rep>
struct Interner {
  std::mutex mu;
  std::unordered_multimap<uint64_t, std::weak_ptr<Rep>> lists;
  size_t sweep_at = 1024;  // forget dead entries when the table grows past this
};

IdList IdList::Intern(std::vector<std::string> ids) {
  IdList out;
  if (ids.empty()) return out;
  static Interner<Rep>* table = new Interner<Rep>();  // never destroyed: lists may outlive static destruction
  const uint64_t h = ContentHash(ids);
  std::lock_guard<std::mutex> lock(table->mu);
  auto range = table->lists.equal_range(h);
  auto dead = table->lists.end();  // a forgotten list of this hash: its slot is reused
  for (auto it = range.first; it != range.second; ++it) {
    if (auto live = it->second.lock(); live && live->ids == ids) {
      out.rep_ = std::move(live);
      return out;
    } else if (!live) {
      dead = it;
    }
  }
  if (table->lists.size() >= table->sweep_at) {
    for (auto it = table->lists.begin(); it != table->lists.end();)
      it = it->second.expired() ? table->lists.erase(it) : std::next(it);
    table->sweep_at = std::max<size_t>(1024, 2 * table->lists.size());
    dead = table->lists.end();  // it was dead, so the sweep erased it
  }
  out.rep_ = std::make_shared<Rep>(Rep{std::move(ids), true, {}});
  AppendJsonStrings(&out.rep_->canonical, out.rep_->ids);
  if (dead != table->lists.end()) dead->second = out.rep_;
  else table->lists.emplace(h, out.rep_);
  return out;
}

void IdList::MakeInterned() {
  if (!rep_ || rep_->interned) return;
  *this = Intern(rep_.use_count() == 1 ? std::move(rep_->ids) : std::vector<std::string>(rep_->ids));
}

std::string_view IdList::CanonicalJson(std::string* scratch) const {
  if (rep_ && rep_->interned) return rep_->canonical;
  scratch->clear();
  AppendJsonStrings(scratch, vec());
  return *scratch;
}

void to_json(nlohmann::json& j, const IdList& ids) { j = ids.vec(); }

// Printable ASCII is written as is, anything else goes through nlohmann's escaping.
void AppendJsonString(std::string* out, std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      *out += nlohmann::json(std::string(s)).dump();
      return;
    }
  }
  out->push_back('"');
  out->append(s);
  out->push_back('"');
}

void AppendJsonStrings(std::string* out, const std::vector<std::string>& ids) {
  out->push_back('[');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out->push_back(',');
    AppendJsonString(out, ids[i]);
  }
  out->push_back(']');
}

}  // namespace emosweep::jobs
