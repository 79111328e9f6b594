// core/cpu.cc: see cpu.h.
#include "core/cpu.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <algorithm>
#include <cstdlib>
#include <thread>

namespace emosweep {

const std::string& CpuModelName() {
  static const std::string name = [] {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("model name", 0) != 0) continue;
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      size_t b = line.find_first_not_of(" \t", colon + 1);
      return b == std::string::npos ? std::string() : line.substr(b);
    }
    return std::string();
  }();
  return name;
}

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

double LoadAverage1() {
  double l[1] = {0};
  return ::getloadavg(l, 1) == 1 ? l[0] : -1.0;
}

std::string BusyHostWarning() {
  const double load = LoadAverage1();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (load <= cores) return "";
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "this host is busy: load average %.1f on %d cores (other processes compete for the CPUs); jobs "
                "will run slower than on an idle machine, their numbers do not change",
                load, cores);
  return buf;
}

namespace {
// Sums idle (idle + iowait) and total jiffies over the CPUs in the affinity mask.
bool ReadCpuTimes(unsigned long long* idle, unsigned long long* total, int* ncpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const bool masked = ::sched_getaffinity(0, sizeof set, &set) == 0;
  std::ifstream in("/proc/stat");
  if (!in) return false;
  std::string line;
  *idle = *total = 0;
  *ncpu = 0;
  while (std::getline(in, line)) {
    if (line.compare(0, 3, "cpu") != 0 || line.size() < 4 || line[3] < '0' || line[3] > '9') continue;
    std::istringstream ss(line.substr(3));
    int cpu = -1;
    ss >> cpu;
    if (cpu < 0 || (masked && cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set))) continue;
    unsigned long long v[8] = {0};
    for (auto& x : v) ss >> x;
    *idle += v[3] + v[4];
    for (auto x : v) *total += x;
    ++*ncpu;
  }
  return *ncpu > 0;
}
}  // namespace

long long ProcessCpuTicks(int pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat") : "/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return -1;
  const size_t close = line.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return -1;
  std::istringstream ss(line.substr(close + 1));
  std::string field;
  long long utime = -1, stime = -1;
  for (int i = 3; i <= 15 && (ss >> field); ++i) {  // fields 14 and 15: utime, stime (clock ticks)
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return utime < 0 || stime < 0 ? -1 : utime + stime;
}

double AvailableCores(unsigned long long idle_jiffies, unsigned long long own_ticks, unsigned long long dt_jiffies,
                      int ncpu) {
  if (dt_jiffies == 0) return static_cast<double>(ncpu);
  const double v = static_cast<double>(ncpu) * static_cast<double>(idle_jiffies + own_ticks) /
                   static_cast<double>(dt_jiffies);
  return std::min(static_cast<double>(ncpu), v);
}

void IdleCoreMeter::ReadOwn(const std::vector<int>& pids, unsigned long long dt_jiffies, int ncpu) {
  std::map<int, unsigned long long> now;
  unsigned long long used = 0;
  std::vector<int> all = {0};
  all.insert(all.end(), pids.begin(), pids.end());
  for (int pid : all) {
    const long long t = ProcessCpuTicks(pid);
    if (t < 0) continue;  // gone: its last interval is lost (a worker that died)
    now[pid] = static_cast<unsigned long long>(t);
    auto it = own_ticks_.find(pid);
    // A worker first seen now started after the last reading: all its CPU time is in this interval.
    const unsigned long long before = it == own_ticks_.end() ? 0 : it->second;
    if (static_cast<unsigned long long>(t) > before) used += static_cast<unsigned long long>(t) - before;
  }
  own_ticks_ = std::move(now);
  own_ = dt_jiffies == 0 ? 0.0 : AvailableCores(0, used, dt_jiffies, ncpu);
}

double IdleCoreMeter::Sample() {
  std::vector<int> pids;  // the processes counted so far stay counted (none dropped, none counted twice)
  for (const auto& [pid, ticks] : own_ticks_)
    if (pid != 0) pids.push_back(pid);
  return SampleAvailable(pids) < 0 ? -1 : last_;
}

double IdleCoreMeter::SampleAvailable(const std::vector<int>& own_pids) {
  unsigned long long idle = 0, total = 0;
  int ncpu = 0;
  const auto now = std::chrono::steady_clock::now();
  // Closer than 0.25 s to the last sample: too few jiffies to tell; keep its answer.
  if (have_ && last_ >= 0 && now - at_ < std::chrono::milliseconds(250)) return std::min<double>(ncpu_, last_ + own_);
  if (!have_) {
    if (!ReadCpuTimes(&idle_, &total_, &ncpu)) return -1;
    ReadOwn(own_pids, 0, ncpu);
    have_ = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } else if (last_ < 0 && now - at_ < std::chrono::milliseconds(100)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100) - (now - at_));  // Start()ed just now
  }
  if (!ReadCpuTimes(&idle, &total, &ncpu)) return -1;
  const unsigned long long di = idle - idle_, dt = total - total_;
  idle_ = idle;
  total_ = total;
  ncpu_ = ncpu;
  ReadOwn(own_pids, dt, ncpu);
  at_ = std::chrono::steady_clock::now();
  last_ = AvailableCores(di, 0, dt, ncpu);
  return std::min<double>(ncpu, last_ + own_);
}

void IdleCoreMeter::Start() {
  int ncpu = 0;
  have_ = ReadCpuTimes(&idle_, &total_, &ncpu);
  if (have_) {
    ncpu_ = ncpu;
    ReadOwn({}, 0, ncpu);
  }
  last_ = -1;
  at_ = std::chrono::steady_clock::now();
}

}  // namespace emosweep
