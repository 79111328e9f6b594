// core/cpu.cc: see cpu.h.
#include "core/cpu.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <cstdlib>
#include <thread>

namespace emosweep {

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

double IdleCoreMeter::Sample() {
  unsigned long long idle = 0, total = 0;
  int ncpu = 0;
  const auto now = std::chrono::steady_clock::now();
  // Closer than 0.25 s to the last sample: too few jiffies to tell; keep its answer.
  if (have_ && last_ >= 0 && now - at_ < std::chrono::milliseconds(250)) return last_;
  if (!have_) {
    if (!ReadCpuTimes(&idle_, &total_, &ncpu)) return -1;
    have_ = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } else if (last_ < 0 && now - at_ < std::chrono::milliseconds(100)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100) - (now - at_));  // Start()ed just now
  }
  if (!ReadCpuTimes(&idle, &total, &ncpu)) return -1;
  const unsigned long long di = idle - idle_, dt = total - total_;
  idle_ = idle;
  total_ = total;
  at_ = std::chrono::steady_clock::now();
  last_ = dt == 0 ? static_cast<double>(ncpu) : static_cast<double>(ncpu) * static_cast<double>(di) / static_cast<double>(dt);
  return last_;
}

void IdleCoreMeter::Start() {
  int ncpu = 0;
  have_ = ReadCpuTimes(&idle_, &total_, &ncpu);
  last_ = -1;
  at_ = std::chrono::steady_clock::now();
}

}  // namespace emosweep
