// jobs/id_list.cc: see id_list.h. The interner is a process-wide jobs::Interner
// (jobs/interner.h) keyed by a 64-bit content hash: a list lives as long as some
// job holds it, and the table forgets it (lazily) after that.
#include "jobs/id_list.h"

#include <cstdint>

#include "jobs/interner.h"

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

static_assert(sizeof(IdList) == sizeof(std::shared_ptr<void>), "an IdList is one shared pointer (issue 15)");

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

IdList IdList::Intern(std::vector<std::string> ids) {
  // Local classes: they may name the private Rep. Equal content, not just an equal hash.
  struct Hash {
    uint64_t operator()(const Rep& r) const { return ContentHash(r.ids); }
  };
  struct Eq {
    bool operator()(const Rep& a, const Rep& b) const { return a.ids == b.ids; }
  };
  IdList out;
  if (ids.empty()) return out;
  static auto* table = new Interner<Rep, Hash, Eq>();  // never destroyed: lists may outlive static destruction
  // An interned Rep is never written (push_back copies it first), so the const is only dropped.
  out.rep_ = std::const_pointer_cast<Rep>(table->Intern(
      Rep{std::move(ids), true, {}}, [](Rep& r) { AppendJsonStrings(&r.canonical, r.ids); }));
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
