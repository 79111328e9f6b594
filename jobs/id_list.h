// jobs/id_list.h: an immutable, shared list of utterance ids (DataRef::ids; also
// JobSpec::labels, the class order every job of an experiment shares).
//
// Every job of one split (a corpus's fold, its test share, a whole corpus)
// reads the same utterance ids; with seeds x grid points x models, 10^5 jobs
// held ~30 KB of copied ids each (issue 15). An IdList is a pointer to one
// list that all its copies share: copying is a reference-count increment.
// Intern() returns the process's one list with given content, so the jobs
// of an expansion, or of JSON parsed job by job, hold one list per split.
//
// It reads like a const std::vector<std::string> (size, empty, begin/end,
// operator[], ==, and a conversion to const std::vector<std::string>&) and is
// built implicitly from a vector or a braced list, so code written for a
// vector compiles unchanged. push_back/clear copy the list first when it is
// shared or interned (copy on write): other holders never see a change.
// Thread-safety: an IdList is a value (copies may be used from any thread;
// one object is not written from two threads); Intern() is thread-safe.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace emosweep::jobs {

class IdList {
 public:
  using value_type = std::string;
  using const_iterator = std::vector<std::string>::const_iterator;
  using iterator = const_iterator;
  using size_type = size_t;

  IdList() = default;
  IdList(std::vector<std::string> ids);                      // NOLINT: implicit by design
  IdList(std::initializer_list<std::string> ids) : IdList(std::vector<std::string>(ids)) {}

  // The process's shared list with this content (an equal list interned earlier, if
  // one is still held anywhere, else this one, interned from now on).
  static IdList Intern(std::vector<std::string> ids);
  // Replaces this value by the interned list of equal content (nothing to do when it
  // already is; the ids are moved, not copied, when this value is their only holder).
  void MakeInterned();

  size_t size() const { return rep_ ? rep_->ids.size() : 0; }
  bool empty() const { return size() == 0; }
  const_iterator begin() const { return vec().begin(); }
  const_iterator end() const { return vec().end(); }
  const std::string& operator[](size_t i) const { return vec()[i]; }
  const std::string& front() const { return vec().front(); }
  const std::string& back() const { return vec().back(); }
  const std::vector<std::string>& vec() const;
  operator const std::vector<std::string>&() const { return vec(); }  // NOLINT: implicit by design

  // Copy on write: a shared or interned list is copied before the change.
  void push_back(std::string id);
  void clear() { rep_.reset(); }

  // The list as compact JSON (`["a","b"]`, as nlohmann's dump writes it), which the job
  // identity hashes: kept by an interned list (made once, however many jobs hash it), made
  // into *scratch otherwise.
  std::string_view CanonicalJson(std::string* scratch) const;

  // The list this value shares (nullptr when empty): equal pointers, one list in memory.
  const void* shared() const { return rep_.get(); }
  bool interned() const { return rep_ && rep_->interned; }

  friend bool operator==(const IdList& a, const IdList& b) { return a.rep_ == b.rep_ || a.vec() == b.vec(); }
  friend bool operator!=(const IdList& a, const IdList& b) { return !(a == b); }
  friend bool operator==(const IdList& a, const std::vector<std::string>& b) { return a.vec() == b; }
  friend bool operator==(const std::vector<std::string>& a, const IdList& b) { return a == b.vec(); }
  friend bool operator!=(const IdList& a, const std::vector<std::string>& b) { return !(a == b); }
  friend bool operator!=(const std::vector<std::string>& a, const IdList& b) { return !(a == b); }

 private:
  struct Rep {
    std::vector<std::string> ids;
    bool interned = false;
    std::string canonical;  // CanonicalJson, set when interned
  };
  std::shared_ptr<Rep> rep_;  // never written through once shared or interned
};

void to_json(nlohmann::json& j, const IdList& ids);

// Appends s as compact JSON (a quoted string, escaped as nlohmann's dump escapes it).
void AppendJsonString(std::string* out, std::string_view s);
// Appends ids as a compact JSON array of strings.
void AppendJsonStrings(std::string* out, const std::vector<std::string>& ids);

}  // namespace emosweep::jobs
