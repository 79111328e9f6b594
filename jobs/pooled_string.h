// jobs/pooled_string.h: an immutable string interned in a process-wide pool
// (DataRef::store and DataRef::corpus_hash; JobSpec::kind, selection, oracle_eval).
//
// Every data reference of a corpus repeats the same store path (~40 bytes) and
// content hash (64 bytes); as std::strings they cost ~130 bytes of heap per
// reference, several references a job: most of a lean job's memory at 10^6 jobs
// (issue 15). A PooledString is one pointer to the pool's copy: copying it copies
// the pointer, and equal strings are one string in memory. Pooled strings are
// never freed (a process sees a few distinct store paths and hashes).
//
// It reads like a const std::string (a conversion to const std::string&, c_str,
// size, empty, find, rfind, substr, comparisons with strings, `+` with strings,
// `<<`) and is built implicitly from a std::string or a C string, so code written
// for a std::string member compiles unchanged; assigning a new value (or clear) re-points it.
// Thread-safety: a PooledString is a value; the pool is thread-safe.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace emosweep::jobs {

class PooledString {
 public:
  PooledString() : s_(&Empty()) {}
  PooledString(const std::string& s) : s_(Intern(s)) {}  // NOLINT: implicit by design
  PooledString(const char* s) : s_(Intern(s)) {}          // NOLINT: implicit by design
  explicit PooledString(std::string_view s) : s_(Intern(s)) {}

  void clear() { s_ = &Empty(); }
  const std::string& str() const { return *s_; }
  operator const std::string&() const { return *s_; }  // NOLINT: implicit by design
  const char* c_str() const { return s_->c_str(); }
  const char* data() const { return s_->data(); }
  size_t size() const { return s_->size(); }
  size_t length() const { return s_->size(); }
  bool empty() const { return s_->empty(); }
  std::string::const_iterator begin() const { return s_->begin(); }
  std::string::const_iterator end() const { return s_->end(); }
  size_t find(std::string_view what, size_t pos = 0) const { return std::string_view(*s_).find(what, pos); }
  size_t rfind(std::string_view what, size_t pos = std::string::npos) const {
    return std::string_view(*s_).rfind(what, pos);
  }
  size_t find(char c, size_t pos = 0) const { return s_->find(c, pos); }
  size_t rfind(char c, size_t pos = std::string::npos) const { return s_->rfind(c, pos); }
  std::string substr(size_t pos = 0, size_t n = std::string::npos) const { return s_->substr(pos, n); }
  int compare(std::string_view o) const { return std::string_view(*s_).compare(o); }

  // The pool's string this value points to: equal pointers, one string in memory.
  const void* shared() const { return s_; }

  friend bool operator==(const PooledString& a, const PooledString& b) { return a.s_ == b.s_; }
  friend bool operator!=(const PooledString& a, const PooledString& b) { return a.s_ != b.s_; }
  friend bool operator<(const PooledString& a, const PooledString& b) { return *a.s_ < *b.s_; }
  friend bool operator==(const PooledString& a, const std::string& b) { return *a.s_ == b; }
  friend bool operator!=(const PooledString& a, const std::string& b) { return *a.s_ != b; }
  friend bool operator==(const std::string& a, const PooledString& b) { return a == *b.s_; }
  friend bool operator!=(const std::string& a, const PooledString& b) { return a != *b.s_; }
  friend bool operator==(const PooledString& a, const char* b) { return *a.s_ == b; }
  friend bool operator!=(const PooledString& a, const char* b) { return *a.s_ != b; }
  friend bool operator==(const char* a, const PooledString& b) { return a == *b.s_; }
  friend bool operator!=(const char* a, const PooledString& b) { return a != *b.s_; }
  friend std::string operator+(const std::string& a, const PooledString& b) { return a + *b.s_; }
  friend std::string operator+(std::string&& a, const PooledString& b) { return std::move(a) + *b.s_; }
  friend std::string operator+(const PooledString& a, const std::string& b) { return *a.s_ + b; }
  friend std::string operator+(const char* a, const PooledString& b) { return a + *b.s_; }
  friend std::string operator+(const PooledString& a, const char* b) { return *a.s_ + b; }
  friend std::string& operator+=(std::string& a, const PooledString& b) { return a += *b.s_; }

 private:
  static const std::string& Empty();
  static const std::string* Intern(std::string_view s);
  const std::string* s_;  // into the pool, never null
};

std::ostream& operator<<(std::ostream& os, const PooledString& s);
void to_json(nlohmann::json& j, const PooledString& s);    // NOLINT: nlohmann's ADL name
void from_json(const nlohmann::json& j, PooledString& s);  // NOLINT: nlohmann's ADL name

}  // namespace emosweep::jobs
