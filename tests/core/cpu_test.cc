// tests/core/cpu_test.cc: the idle-core meter counts this process tree's own CPU as available
// (issue 13: a worker that just finished a job must not make the host look busy).
#include "core/cpu.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace emosweep {
namespace {

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Burns this process's CPU until it has used `seconds` more (however loaded the machine is).
void Burn(double seconds) {
  const double until = ProcessCpuSeconds() + seconds;
  volatile unsigned long long x = 0;
  while (ProcessCpuSeconds() < until)
    for (int i = 0; i < 100000; ++i) x = x + static_cast<unsigned long long>(i);
}

TEST(Cpu, AvailableCoresAddsOwnUseToIdleAndCapsAtTheCores) {
  // 2 CPUs over 100 jiffies each (dt = 200): all busy, half of it ours -> one core available.
  EXPECT_DOUBLE_EQ(AvailableCores(0, 100, 200, 2), 1.0);
  EXPECT_DOUBLE_EQ(AvailableCores(0, 0, 200, 2), 0.0);         // busy with others' work only
  EXPECT_DOUBLE_EQ(AvailableCores(100, 0, 200, 2), 1.0);       // one idle core
  EXPECT_DOUBLE_EQ(AvailableCores(100, 100, 200, 2), 2.0);     // one idle, one ours
  EXPECT_DOUBLE_EQ(AvailableCores(150, 100, 200, 2), 2.0);     // tick skew: never more than the cores
  EXPECT_DOUBLE_EQ(AvailableCores(0, 0, 0, 4), 4.0);           // no time passed: assume free
}

TEST(Cpu, ProcessCpuTicksGrowWithThisProcessesAndAChildsWork) {
  const long long self0 = ProcessCpuTicks(0);
  ASSERT_GE(self0, 0);
  Burn(0.15);
  const long long self1 = ProcessCpuTicks(0);
  EXPECT_GE(self1 - self0, 10) << "150 ms of CPU are at least 10 ticks of 10 ms";
  // A child's ticks, read by its pid; a pid that is gone reads -1.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Burn(0.15);
    _exit(0);
  }
  long long seen = 0;
  for (int i = 0; i < 400; ++i) {  // the child burns 150 ms of CPU however long that takes
    const long long t = ProcessCpuTicks(child);
    if (t >= 0) seen = std::max(seen, t);
    int status = 0;
    if (waitpid(child, &status, WNOHANG) == child) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_GE(seen, 5) << "the child's ticks were read while it ran";
  EXPECT_EQ(ProcessCpuTicks(child), -1) << "a reaped child reads as gone";
}

TEST(Cpu, MeterCountsOwnWorkAsAvailable) {
  // While this process burns CPU, SampleAvailable() (idle + ours) exceeds the idle capacity of the
  // same interval (Sample() right after returns that interval's idle part) by what we burnt: our
  // own work does not make the host look busy. 0.3 s of CPU is at least 0.2 of a core over any
  // interval this suite sees (the interval is as long as the burn takes).
  IdleCoreMeter meter;
  meter.Start();
  Burn(0.3);
  const double available = meter.SampleAvailable({});
  const double idle = meter.Sample();  // within 250 ms: the same interval's reading
  const int cores = UsableCores();
  ASSERT_GE(available, 0);
  ASSERT_GE(idle, 0);
  EXPECT_LE(available, cores + 1e-9);
  EXPECT_GE(available, std::min<double>(cores, idle + 0.2)) << "idle " << idle << " available " << available;
}

}  // namespace
}  // namespace emosweep
