#include "core/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.h"

namespace emosweep {

Progress::Progress(std::string label, int64_t total, double interval_s)
    : label_(std::move(label)), total_(total), interval_s_(interval_s), tty_(::isatty(2) != 0) {
  // A terminal that cannot move the cursor (TERM=dumb: Emacs shells, some CI logs) gets log lines.
  const char* term = std::getenv("TERM");
  if (term && std::string(term) == "dumb") tty_ = false;
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { Finish(); }

void Progress::SetTotal(int64_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ = total;
}

void Progress::Add(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() >= interval_s_) {
    last_ = now;
    PrintLocked(false);
  }
}

void Progress::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  PrintLocked(true);
}

std::string Progress::FormatDuration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
  return buf;
}

void Progress::PrintLocked(bool final_line) {
  if (GetLogLevel() > LogLevel::kInfo) return;
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = el > 0 ? done_ / el : 0.0;
  // Jobs take seconds to hours: a rate below one per second reads per minute
  // or per hour ("0.0/s" told a person nothing).
  char rate_text[32];
  if (rate >= 1 || rate == 0) std::snprintf(rate_text, sizeof rate_text, "%.1f/s", rate);
  else if (rate * 60 >= 1) std::snprintf(rate_text, sizeof rate_text, "%.1f/min", rate * 60);
  else std::snprintf(rate_text, sizeof rate_text, "%.2f/h", rate * 3600);
  char buf[256];
  if (total_ > 0) {
    double pct = 100.0 * done_ / total_;
    // The last line of work that ended early (a stop) has no ETA and says "ended after", not "done in".
    std::string eta =
        (!final_line && rate > 0 && done_ < total_) ? " ETA " + FormatDuration((total_ - done_) / rate) : "";
    const std::string end = !final_line ? "" : (done_ >= total_ ? " done in " : " ended after ") + FormatDuration(el);
    std::snprintf(buf, sizeof buf, "%s: %lld/%lld (%.0f%%) %s%s%s", label_.c_str(),
                  static_cast<long long>(done_), static_cast<long long>(total_), pct, rate_text, eta.c_str(),
                  end.c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%s: %lld %s", label_.c_str(), static_cast<long long>(done_), rate_text);
  }
  if (tty_) {
    WriteTerminalLine(buf, final_line);
  } else {
    LogLine(LogLevel::kInfo, buf);
  }
}

}  // namespace emosweep
