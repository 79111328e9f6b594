#include "core/status.h"

namespace emosweep {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "Invalid argument";
    case StatusCode::kNotFound: return "Not found";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kFailedPrecondition: return "Failed precondition";
    case StatusCode::kIoError: return "I/O error";
    case StatusCode::kInternal: return "Internal error";
    case StatusCode::kAborted: return "Aborted";
    case StatusCode::kUnavailable: return "Unavailable";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

bool Status::IsBadInput() const {
  return code_ == StatusCode::kInvalidArgument || code_ == StatusCode::kNotFound ||
         code_ == StatusCode::kCorruption || code_ == StatusCode::kFailedPrecondition;
}

int ExitCodeFor(const Status& s) {
  if (s.ok()) return 0;
  if (s.code() == StatusCode::kAborted) return 3;  // stopped on request, resumable: re-run the same command
  return s.IsBadInput() ? 2 : 1;
}

}  // namespace emosweep
