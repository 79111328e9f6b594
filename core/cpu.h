// core/cpu.h: how many cores this process may use, and how busy the host is.
//
// `run` fills the cores it may use with jobs (one job per core, one intra-op
// thread each: docs/design/parallel-jobs.md). "May use" is the CPU affinity
// mask (taskset, Slurm's cgroup/cpuset, mpirun binding), not the host's
// total: a Slurm task given 4 of 64 cores must start 4 jobs, not 64.
// Thread-safety: all functions are safe to call from any thread.
#pragma once

#include <chrono>
#include <string>

namespace emosweep {

// Cores in this process's affinity mask (>= 1; falls back to the host's count).
int UsableCores();

// The 1-minute load average, or -1 when unavailable.
double LoadAverage1();

// A one-line warning when the 1-minute load average exceeds the host's cores
// (other processes compete for them: jobs run slower, their numbers do not
// change); "" otherwise.
std::string BusyHostWarning();

}  // namespace emosweep

namespace emosweep {

// Idle CPU capacity, in cores, of the CPUs in this process's affinity mask,
// measured from /proc/stat between consecutive calls (the first call measures
// over a short wait). `run` starts a job beside the one it is running only
// when at least about one core is idle: with other work keeping the cores busy
// (another user's session), a second worker process brings no CPU time (the
// kernel shares CPU time between sessions, sched_autogroup) and only costs its
// start-up. -1 when /proc/stat cannot be read.
// Thread-safety: IdleCoreMeter is not shared between threads without a lock.
class IdleCoreMeter {
 public:
  double Sample();
  // The first reading now, without the wait: the next Sample() measures from here (it
  // waits only for what is left of 100 ms), so the wait overlaps the caller's other work.
  void Start();

 private:
  bool have_ = false;
  unsigned long long idle_ = 0, total_ = 0;
  double last_ = -1;
  std::chrono::steady_clock::time_point at_;
};

}  // namespace emosweep
