// jobs/shared_id.h: a job id that the jobs naming it share (JobSpec::init_from and
// PlannedJob::deps of eval and fine-tune jobs).
//
// Every eval job of a trained job (cross-corpus, joint, source pools) and every
// fine-tune job of a pre-training job named its parent twice, in `init_from` and
// in `deps`, each a copied 64-character id: ~190 bytes a job with the deps
// vector, the largest part of an eval job's memory at 10^5 jobs after its data
// references were shared (issue 15). A SharedId is one pointer to a reference-
// counted copy: copying it copies the pointer, so the dependents of one job hold
// one copy of its id between them. Unlike a PooledString it is freed with its
// last holder (a plan names as many parents as it has trained jobs).
//
// It reads like a const std::string (a conversion to const std::string&, c_str,
// size, empty, substr, comparisons with strings, `+` with strings, `<<`) and is
// built implicitly from a std::string or a C string, so code written for a
// std::string member compiles unchanged; assigning a new value re-points it.
// Thread-safety: a SharedId is a value (copies may be used from any thread; one
// object is not written from two threads).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json_fwd.hpp>

namespace emosweep::jobs {

class SharedId {
 public:
  SharedId() = default;
  SharedId(std::string s) : rep_(s.empty() ? nullptr : new Rep{{1}, std::move(s)}) {}  // NOLINT: implicit by design
  SharedId(const char* s) : SharedId(std::string(s)) {}                                // NOLINT: implicit by design
  explicit SharedId(std::string_view s) : SharedId(std::string(s)) {}
  SharedId(const SharedId& o) : rep_(o.rep_) { Ref(); }
  SharedId(SharedId&& o) noexcept : rep_(std::exchange(o.rep_, nullptr)) {}
  SharedId& operator=(const SharedId& o) {
    SharedId(o).swap(*this);
    return *this;
  }
  SharedId& operator=(SharedId&& o) noexcept {
    SharedId(std::move(o)).swap(*this);
    return *this;
  }
  ~SharedId() { Unref(); }
  void swap(SharedId& o) noexcept { std::swap(rep_, o.rep_); }

  void clear() { SharedId().swap(*this); }
  const std::string& str() const { return rep_ ? rep_->s : Empty(); }
  operator const std::string&() const { return str(); }  // NOLINT: implicit by design
  std::string_view view() const { return str(); }
  const char* c_str() const { return str().c_str(); }
  const char* data() const { return str().data(); }
  size_t size() const { return str().size(); }
  size_t length() const { return str().size(); }
  bool empty() const { return rep_ == nullptr; }
  std::string::const_iterator begin() const { return str().begin(); }
  std::string::const_iterator end() const { return str().end(); }
  std::string substr(size_t pos = 0, size_t n = std::string::npos) const { return str().substr(pos, n); }
  int compare(std::string_view o) const { return view().compare(o); }

  // The copy this value shares (nullptr when empty): equal pointers, one id in memory.
  const void* shared() const { return rep_; }

  friend bool operator==(const SharedId& a, const SharedId& b) { return a.rep_ == b.rep_ || a.str() == b.str(); }
  friend bool operator!=(const SharedId& a, const SharedId& b) { return !(a == b); }
  friend bool operator<(const SharedId& a, const SharedId& b) { return a.str() < b.str(); }
  friend bool operator==(const SharedId& a, const std::string& b) { return a.str() == b; }
  friend bool operator!=(const SharedId& a, const std::string& b) { return a.str() != b; }
  friend bool operator==(const std::string& a, const SharedId& b) { return a == b.str(); }
  friend bool operator!=(const std::string& a, const SharedId& b) { return a != b.str(); }
  friend bool operator==(const SharedId& a, const char* b) { return a.str() == b; }
  friend bool operator!=(const SharedId& a, const char* b) { return a.str() != b; }
  friend bool operator==(const char* a, const SharedId& b) { return a == b.str(); }
  friend bool operator!=(const char* a, const SharedId& b) { return a != b.str(); }
  friend std::string operator+(const std::string& a, const SharedId& b) { return a + b.str(); }
  friend std::string operator+(std::string&& a, const SharedId& b) { return std::move(a) + b.str(); }
  friend std::string operator+(const SharedId& a, const std::string& b) { return a.str() + b; }
  friend std::string operator+(const char* a, const SharedId& b) { return a + b.str(); }
  friend std::string operator+(const SharedId& a, const char* b) { return a.str() + b; }
  friend std::string& operator+=(std::string& a, const SharedId& b) { return a += b.str(); }

 private:
  struct Rep {
    std::atomic<uint32_t> refs;
    const std::string s;  // never empty
  };
  static const std::string& Empty();
  void Ref() {
    if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void Unref() {
    if (rep_ && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete rep_;
  }
  Rep* rep_ = nullptr;  // nullptr: the empty id
};

std::ostream& operator<<(std::ostream& os, const SharedId& s);
void to_json(nlohmann::json& j, const SharedId& s);    // NOLINT: nlohmann's ADL name
void from_json(const nlohmann::json& j, SharedId& s);  // NOLINT: nlohmann's ADL name

}  // namespace emosweep::jobs
