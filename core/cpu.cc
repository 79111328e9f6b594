// core/cpu.cc: see cpu.h.
#include "core/cpu.h"

#include <sched.h>
#include <unistd.h>

#include <cstdio>
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

}  // namespace emosweep
