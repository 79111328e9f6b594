// core/cpu.h: how many cores this process may use, and how busy the host is.
//
// `run` fills the cores it may use with jobs (one job per core, one intra-op
// thread each: docs/design/parallel-jobs.md). "May use" is the CPU affinity
// mask (taskset, Slurm's cgroup/cpuset, mpirun binding), not the host's
// total: a Slurm task given 4 of 64 cores must start 4 jobs, not 64.
// Thread-safety: all functions are safe to call from any thread.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace emosweep {

// Cores in this process's affinity mask (>= 1; falls back to the host's count).
int UsableCores();

// The 1-minute load average, or -1 when unavailable.
double LoadAverage1();

// The CPU's model name (/proc/cpuinfo "model name", e.g. "Intel(R) Xeon(R) ..."), "" when unknown; read once.
// Provenance records it: another CPU may pick other kernels (AVX-512 vs AVX2) and differ in the last digits.
const std::string& CpuModelName();

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
  // Cores available to this process tree: the idle capacity plus what this process and
  // `own_pids` (its worker processes) used over the same interval, so that its own jobs do
  // not make the host look busy (a worker that just finished a job still counts its core
  // as ours). -1 when /proc/stat cannot be read. Same interval rules as Sample().
  double SampleAvailable(const std::vector<int>& own_pids);
  // The first reading now, without the wait: the next Sample() measures from here (it
  // waits only for what is left of 100 ms), so the wait overlaps the caller's other work.
  void Start();

 private:
  bool have_ = false;
  unsigned long long idle_ = 0, total_ = 0;
  double last_ = -1;
  std::chrono::steady_clock::time_point at_;
  int ncpu_ = 1;
  double own_ = 0;                                  // cores this tree used over the last interval
  std::map<int, unsigned long long> own_ticks_;     // pid (0 = this process) -> CPU ticks at the last reading
  void ReadOwn(const std::vector<int>& pids, unsigned long long dt_jiffies, int ncpu);
};

// CPU time (user + system, clock ticks as /proc/stat counts them) of process `pid` (0 = this
// process, all threads); -1 when it cannot be read (the process is gone).
long long ProcessCpuTicks(int pid);
// Cores available to a process tree over an interval of dt jiffies summed over ncpu CPUs:
// ncpu * (idle + own) / dt, at most ncpu.
double AvailableCores(unsigned long long idle_jiffies, unsigned long long own_ticks, unsigned long long dt_jiffies,
                      int ncpu);

}  // namespace emosweep
