// core/log.h: leveled, rank-prefixed logging to stderr.
//
// Messages look like "[emosweep r0 I 12:03:04] text". The rank prefix is set
// once per process (SetLogRank) by the cluster layer. stdout is reserved for
// command results (tables, --json documents), so logs never go there.
// Thread-safety: all functions are safe to call from any thread; one line is
// written atomically.
#pragma once

#include <sstream>
#include <string>

namespace emosweep {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void SetLogRank(int rank);
int GetLogRank();  // -1 = no rank prefix
// Parses "debug|info|warn|error|quiet"; returns false if unknown.
bool ParseLogLevel(const std::string& text, LogLevel* out);
void LogLine(LogLevel level, const std::string& text);
// A progress line on a terminal: rewritten in place ("\r", clear), ended by `final_line`; a log line written
// while one is open goes below it.
void WriteTerminalLine(const std::string& text, bool final_line);

namespace internal {
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { LogLine(level_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace emosweep

#define ES_LOG(level)                                                      \
  if (::emosweep::LogLevel::level < ::emosweep::GetLogLevel()) {           \
  } else                                                                   \
    ::emosweep::internal::LogMessage(::emosweep::LogLevel::level).stream()
#define LOG_DEBUG ES_LOG(kDebug)
#define LOG_INFO ES_LOG(kInfo)
#define LOG_WARN ES_LOG(kWarn)
#define LOG_ERROR ES_LOG(kError)

// CHECK is for broken invariants only (never for I/O or user input).
#define ES_CHECK(cond)                                                                  \
  do {                                                                                  \
    if (!(cond)) ::emosweep::internal::CheckFailed(#cond, __FILE__, __LINE__);           \
  } while (0)
namespace emosweep::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}
