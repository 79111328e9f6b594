// jobs/shared_json.cc: see shared_json.h. The interner is a process-wide
// jobs::Interner (jobs/interner.h, as IdList's) keyed by a 64-bit hash of the
// compact dump, trees being equal when their dumps are: a tree lives as long as
// some job holds it, and the table forgets it (lazily) after that. `null` and
// `{}` are two process-wide trees that every default or cleared config shares,
// so they cost no allocation per job.
#include "jobs/shared_json.h"

#include <cstdint>
#include <string_view>

#include "jobs/interner.h"

namespace emosweep::jobs {
namespace {

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

static_assert(sizeof(SharedJson) == sizeof(std::shared_ptr<void>), "a SharedJson is one shared pointer (issue 15)");

struct SharedJson::Interner {
  struct DumpHash {
    uint64_t operator()(const Rep& r) const { return Fnv1a(r.dump); }
  };
  struct DumpEq {  // equal compact dumps (so 1 and 1.0 are two trees, though json's == says equal)
    bool operator()(const Rep& a, const Rep& b) const { return a.dump == b.dump; }
  };
  ::emosweep::jobs::Interner<Rep, DumpHash, DumpEq> trees;
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
  if (j.is_null() || (j.is_object() && j.empty())) return SharedJson(std::move(j));  // the fixed null or {} tree
  Rep rep{std::move(j), true, {}};
  rep.dump = rep.j.dump();  // the key: hashed and compared outside and inside the lock
  SharedJson out;
  // An interned Rep is never written (mutable_tree copies it first), so the const is only dropped.
  out.rep_ = std::const_pointer_cast<Rep>(Table().trees.Intern(std::move(rep)));
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
