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
bool g_line_open = false;  // a progress line without its newline is on stderr (g_mu)
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
  // Below a progress line left open on the terminal, not appended to it (helper-69: "ETA 1.2s[emosweep I ...]").
  if (g_line_open) std::fputc('\n', stderr);
  g_line_open = false;
  std::fprintf(stderr, "[emosweep%s %c %s] %s\n", rank, kTag[static_cast<int>(level)], ts, text.c_str());
  std::fflush(stderr);
}

void WriteTerminalLine(const std::string& text, bool final_line) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "\r\033[K%s%s", text.c_str(), final_line ? "\n" : "");
  std::fflush(stderr);
  g_line_open = !final_line;
}

namespace internal {
void CheckFailed(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "emosweep: internal check failed: %s at %s:%d\n", cond, file, line);
  std::abort();
}
}  // namespace internal

}  // namespace emosweep
