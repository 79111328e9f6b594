// jobs/shared_json.h: an immutable, shared JSON tree (JobSpec::model,
// train_config, adapt).
//
// A protocol's jobs read a few model and train configs (one per grid point),
// yet every JobSpec held its own nlohmann::json trees: ~3.6 KB a running job
// (issue 15). A SharedJson is a pointer to one tree that all its copies share
// (copying is a reference-count increment); Intern() returns the process's one
// tree with given content, so the jobs of an expansion, or of JSON parsed job
// by job, hold one tree per distinct config. An interned tree also keeps its
// compact dump, which the job identity hashes (JobSpec::ComputeId), so a
// config shared by 10^5 jobs is serialised once.
//
// It reads like a `const nlohmann::json&` (converts to one implicitly; the
// read members the code uses are forwarded: is_object, contains, find, value,
// at, operator[], dump, get, ...) and is built implicitly from a json value or
// a braced initialiser, so code written for a json member compiles unchanged.
// Writes (non-const operator[], mutable_tree) copy the tree first when it is
// shared or interned (copy on write): other holders never see a change. A
// reference obtained from a write is valid until this value is next copied
// from or assigned.
// Thread-safety: a SharedJson is a value (copies may be read from any thread;
// one object is not written from two threads); Intern() is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace emosweep::jobs {

class SharedJson {
 public:
  using json = nlohmann::json;

  SharedJson();                                                 // {} (an empty object)
  SharedJson(json j);                                           // NOLINT: implicit by design
  SharedJson(json::initializer_list_t init) : SharedJson(json(init)) {}  // NOLINT: s.model = {{"name", "x"}}

  // The process's shared tree with this content (equal compact dumps), interned
  // earlier and still held somewhere, else this one, interned from now on.
  static SharedJson Intern(json j);
  // Replaces this value by the interned tree of equal content (nothing to do when it
  // already is; the tree is moved, not copied, when this value is its only holder).
  void MakeInterned();

  const json& tree() const { return rep_->j; }
  operator const json&() const { return rep_->j; }  // NOLINT: implicit by design
  // Compact dump (json::dump()), kept by an interned tree: appended without re-serialising.
  void AppendDump(std::string* out) const;

  // Reads, as on a const json.
  bool is_null() const { return tree().is_null(); }
  bool is_object() const { return tree().is_object(); }
  bool is_array() const { return tree().is_array(); }
  bool is_string() const { return tree().is_string(); }
  bool empty() const { return tree().empty(); }
  size_t size() const { return tree().size(); }
  json::const_iterator begin() const { return tree().begin(); }
  json::const_iterator end() const { return tree().end(); }
  template <typename K>
  bool contains(K&& key) const { return tree().contains(std::forward<K>(key)); }
  template <typename K>
  json::const_iterator find(K&& key) const { return tree().find(std::forward<K>(key)); }
  template <typename K>
  const json& at(K&& key) const { return tree().at(std::forward<K>(key)); }
  template <typename K>
  const json& operator[](K&& key) const { return tree()[std::forward<K>(key)]; }
  template <typename... A>
  auto value(A&&... a) const -> decltype(std::declval<const json&>().value(std::forward<A>(a)...)) {
    return tree().value(std::forward<A>(a)...);
  }
  template <typename T>
  T get() const { return tree().template get<T>(); }
  std::string dump(int indent = -1) const;

  // Writes: copy on write (a shared or interned tree is copied first).
  json& mutable_tree();
  template <typename K>
  json& operator[](K&& key) { return mutable_tree()[std::forward<K>(key)]; }

  // The tree this value shares: equal pointers, one tree in memory.
  const void* shared() const { return rep_.get(); }
  bool interned() const { return rep_->interned; }

  friend bool operator==(const SharedJson& a, const SharedJson& b) { return a.rep_ == b.rep_ || a.tree() == b.tree(); }
  friend bool operator!=(const SharedJson& a, const SharedJson& b) { return !(a == b); }
  friend bool operator==(const SharedJson& a, const json& b) { return a.tree() == b; }
  friend bool operator==(const json& a, const SharedJson& b) { return a == b.tree(); }
  friend bool operator!=(const SharedJson& a, const json& b) { return !(a == b); }
  friend bool operator!=(const json& a, const SharedJson& b) { return !(a == b); }

 private:
  struct Rep {
    json j;
    bool interned = false;
    std::string dump;  // j.dump(), set when interned
  };
  struct Interner;                // the process's table (shared_json.cc)
  static Interner& Table();
  std::shared_ptr<Rep> rep_;  // never null; never written through once shared or interned
};

// Converting to a json copies the tree (without this, nlohmann would take a SharedJson,
// which has begin/end, for a range and make an array of its values).
void to_json(nlohmann::json& j, const SharedJson& s);

}  // namespace emosweep::jobs
