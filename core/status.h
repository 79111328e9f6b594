// core/status.h: the error model of the whole library.
//
// Every fallible library function returns Status or Result<T>; nothing in the
// library calls exit(), throws across a module boundary or asserts on I/O.
// Only cli/main picks exit codes, from Status::code() (see ExitCodeFor).
// Thread-safety: value types, safe to copy between threads.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace emosweep {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad user input: protocol, config, CLI value, label (exit 2)
  kNotFound,            // missing file, key, feature set (exit 2)
  kCorruption,          // file exists but its content is malformed (exit 2)
  kFailedPrecondition,  // valid input, wrong state (e.g. speaker overlap not allowed) (exit 2)
  kIoError,             // OS-level read/write failure (exit 1)
  kInternal,            // broken invariant or library failure (exit 1)
  kAborted,             // stopped on request (signal) with work left; re-running resumes (exit 3)
  kUnavailable,         // peer/rank unreachable, stall (exit 1)
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: store.h5: dataset /utt/id missing"
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>" (no-op when ok).
  Status WithContext(const std::string& context) const;
  // True for errors caused by the user's input (exit code 2).
  bool IsBadInput() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Exit code contract of the CLI: 0 success, 1 the work failed, 2 bad usage or bad input.
int ExitCodeFor(const Status& s);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                   // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {}            // NOLINT(implicit)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace emosweep

#define ES_CONCAT_INNER(a, b) a##b
#define ES_CONCAT(a, b) ES_CONCAT_INNER(a, b)

#define ES_RETURN_IF_ERROR(expr)                     \
  do {                                               \
    ::emosweep::Status es_status_ = (expr);          \
    if (!es_status_.ok()) return es_status_;         \
  } while (0)

#define ES_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#define ES_ASSIGN_OR_RETURN(lhs, expr) ES_ASSIGN_OR_RETURN_IMPL(ES_CONCAT(es_result_, __LINE__), lhs, expr)
