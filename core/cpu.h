// core/cpu.h: how many cores this process may use, and how busy the host is.
//
// `run` fills the cores it may use with jobs (one job per core, one intra-op
// thread each: docs/design/parallel-jobs.md). "May use" is the CPU affinity
// mask (taskset, Slurm's cgroup/cpuset, mpirun binding), not the host's
// total: a Slurm task given 4 of 64 cores must start 4 jobs, not 64.
// Thread-safety: all functions are safe to call from any thread.
#pragma once

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
