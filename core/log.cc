#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace emosweep {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_rank{-1};
std::mutex g_mu;
}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
void SetLogRank(int rank) { g_rank = rank; }
int GetLogRank() { return g_rank.load(); }

bool ParseLogLevel(const std::string& text, LogLevel* out) {
  if (text == "debug") *out = LogLevel::kDebug;
  else if (text == "info") *out = LogLevel::kInfo;
  else if (text == "warn") *out = LogLevel::kWarn;
  else if (text == "error") *out = LogLevel::kError;
  else if (text == "quiet") *out = LogLevel::kQuiet;
  else return false;
  return true;
}

void LogLine(LogLevel level, const std::string& text) {
  static const char kTag[] = {'D', 'I', 'W', 'E', 'Q'};
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char ts[16];
  std::strftime(ts, sizeof ts, "%H:%M:%S", &tm);
  char rank[16] = "";
  if (g_rank.load() >= 0) std::snprintf(rank, sizeof rank, " r%d", g_rank.load());
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "[emosweep%s %c %s] %s\n", rank, kTag[static_cast<int>(level)], ts, text.c_str());
  std::fflush(stderr);
}

namespace internal {
void CheckFailed(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "emosweep: internal check failed: %s at %s:%d\n", cond, file, line);
  std::abort();
}
}  // namespace internal

}  // namespace emosweep
