// protocols/attrs.h: a job's table coordinates ("experiment" -> "loco",
// "seed" -> "2", "hp" -> "train.lr=0.001", ...) as a small flat value (issue 15).
//
// A PlannedJob's attributes were a std::map<std::string, std::string>: ~11
// nodes and ~1.1 KB a job, most of `table`'s memory at 10^6 jobs and much of
// its time (building and freeing the maps). Every job of a protocol repeats
// a few distinct (key, value) pairs, so an Attrs holds a sorted vector of
// pointers to interned pairs: 8 bytes an attribute. Interned pairs live in one
// process-wide pool and are never freed (their number is the number of
// distinct (key, value) pairs the process has seen: a few thousand for a
// 10^6-job protocol, whose seeds are the most varied values).
//
// It reads like a const std::map<std::string, std::string>: find, count, at
// (std::out_of_range when absent, as the map), begin/end in key order (byte
// order, as std::string's <), size, empty, ==; its elements are
// std::pair<const std::string, std::string> (structured bindings, ->first,
// ->second work unchanged). operator[] inserts an empty value when the key is
// absent (as the map) and returns a proxy that reads as the value and assigns
// through Set(), so `j.attrs["target"] = c` compiles unchanged. It converts
// implicitly from a std::map and from a braced list of pairs.
// Thread-safety: an Attrs is a plain value; the pool behind Intern() is
// thread-safe.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace emosweep::protocols {

class Attrs {
 public:
  using key_type = std::string;
  using mapped_type = std::string;
  using value_type = std::pair<const std::string, std::string>;
  using size_type = size_t;
  using Entry = const value_type*;  // an interned pair; equal pairs are one pointer

  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = Attrs::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;
    const_iterator() = default;
    explicit const_iterator(const Entry* p) : p_(p) {}
    reference operator*() const { return **p_; }
    pointer operator->() const { return *p_; }
    const_iterator& operator++() { return ++p_, *this; }
    const_iterator operator++(int) { const_iterator t = *this; ++p_; return t; }
    const_iterator& operator--() { return --p_, *this; }
    const_iterator operator--(int) { const_iterator t = *this; --p_; return t; }
    bool operator==(const const_iterator& o) const { return p_ == o.p_; }
    bool operator!=(const const_iterator& o) const { return p_ != o.p_; }

   private:
    const Entry* p_ = nullptr;
  };
  using iterator = const_iterator;

  // `attrs["k"]`: reads as the value, assigns through Set().
  class Ref {
   public:
    Ref(Attrs* owner, std::string_view key) : owner_(owner), key_(key) {}
    Ref(const Ref&) = default;
    Ref& operator=(const std::string& v) { return owner_->Set(key_, v), *this; }
    Ref& operator=(const char* v) { return owner_->Set(key_, v), *this; }
    Ref& operator=(std::string_view v) { return owner_->Set(key_, v), *this; }
    Ref& operator=(const Ref& o) { return *this = o.str(); }  // copies the value (a = b = c)
    const std::string& str() const { return owner_->at(key_); }
    operator const std::string&() const { return str(); }  // NOLINT: reads as the value
    bool empty() const { return str().empty(); }
    friend bool operator==(const Ref& a, std::string_view b) { return a.str() == b; }
    friend bool operator!=(const Ref& a, std::string_view b) { return a.str() != b; }
    friend bool operator==(std::string_view a, const Ref& b) { return a == b.str(); }
    friend bool operator!=(std::string_view a, const Ref& b) { return a != b.str(); }

   private:
    Attrs* owner_;
    std::string key_;
  };

  Attrs() = default;
  Attrs(const std::map<std::string, std::string>& m);                       // NOLINT: implicit by design
  Attrs(std::initializer_list<std::pair<std::string, std::string>> pairs);  // later pairs of a key win

  // The pool's one pair (key, value).
  static Entry Intern(std::string_view key, std::string_view value);
  // From interned pairs whose keys are strictly increasing (the expansion cache's
  // records); false, *out untouched, when they are not.
  static bool FromSorted(std::vector<Entry> entries, Attrs* out);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const_iterator begin() const { return const_iterator(entries_.data()); }
  const_iterator end() const { return const_iterator(entries_.data() + entries_.size()); }
  const_iterator find(std::string_view key) const;
  size_t count(std::string_view key) const { return find(key) != end(); }
  const std::string& at(std::string_view key) const;  // std::out_of_range when absent
  // The value, or "" when absent.
  const std::string& Get(std::string_view key) const;
  const std::vector<Entry>& entries() const { return entries_; }

  Ref operator[](std::string_view key);  // inserts "" when absent, as std::map does
  void Set(std::string_view key, std::string_view value);
  void Erase(std::string_view key);

  std::map<std::string, std::string> ToMap() const;
  nlohmann::json ToJson() const;  // {"key": "value", ...}, keys in order

  friend bool operator==(const Attrs& a, const Attrs& b) { return a.entries_ == b.entries_; }
  friend bool operator!=(const Attrs& a, const Attrs& b) { return a.entries_ != b.entries_; }

 private:
  std::vector<Entry>::iterator LowerBound(std::string_view key);
  std::vector<Entry> entries_;  // sorted by key, keys unique
};

void to_json(nlohmann::json& j, const Attrs& a);    // NOLINT: nlohmann's ADL name
void from_json(const nlohmann::json& j, Attrs& a);  // NOLINT: string values only (others dumped)

}  // namespace emosweep::protocols
