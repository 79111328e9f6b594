// core/progress.h: progress and ETA for long work (imports, sweeps).
//
// Writes "label: 120/535 (22%) 3.1/s ETA 1m52s" to stderr, at most once per
// `interval_s` (and always at the end). On a terminal the line is rewritten in
// place; otherwise (logs, CI) one line per update. Silent when the log level
// is above info.
// Thread-safety: Tick/Add may be called from several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace emosweep {

class Progress {
 public:
  Progress(std::string label, int64_t total, double interval_s = 2.0);
  ~Progress();
  void Add(int64_t n = 1);
  void SetTotal(int64_t total);
  void Finish();
  static std::string FormatDuration(double seconds);  // "1h02m", "3m05s", "12.3s"

 private:
  void PrintLocked(bool final_line);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  double interval_s_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
  std::mutex mu_;
};

}  // namespace emosweep
