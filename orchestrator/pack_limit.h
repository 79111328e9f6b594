// orchestrator/pack_limit.h: how many jobs one pack may hold (`run --pack auto|off|K`, issue 16).
//
// `off` is 1 (single jobs, today's path); K is K; `auto` is the smallest of
//   - the device's useful width: 32 members on CPU (a pack amortises the
//     per-step dispatch of small models; it needs no more cores), 256 on a GPU;
//   - the memory: a member's estimate (PackMemberBytes) times K, for every
//     parallel worker, within kPackMemoryFraction of MemAvailable.
// On CPU each pack key also gets a cache cap (CpuPackCap, from the key's
// parameter count): big members' optimizer state beyond a cache budget makes a
// pack slower per job than smaller packs. Ready jobs are then shared among all
// workers at each hand-out (Scheduler::NextPack's `share`), so a pack never
// takes every ready job of its key while another worker would be left without.
// docs/design/packing.md, "Scheduling packs".
// Thread-safety: pure functions (MemAvailableBytes reads /proc/meminfo).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"
#include "jobs/job.h"

namespace emosweep::orchestrator {

inline constexpr int kPackOff = 1;
inline constexpr int kPackAuto = 0;
inline constexpr int kPackMaxCpu = 32;
inline constexpr int kPackMaxGpu = 256;
inline constexpr double kPackMemoryFraction = 0.5;

// "off" -> kPackOff, "auto" -> kPackAuto, "K" (1..4096) -> K; anything else InvalidArgument naming --pack.
Result<int> ParsePack(const std::string& text);

// Bytes one member needs while it trains (an over- rather than an under-estimate): its
// parameters with gradients and Adam state (input_dim -> spec.model's hidden sizes ->
// classes; 2 x 512 when the model names none), a batch of activations, and its rows of
// features (train + val + eval + target_unlabeled utterances x input_dim floats), times 1.5 for the rest.
// input_dim: the sum of the dims of the spec's feature sets.
int64_t PackMemberBytes(const jobs::JobSpec& spec, int64_t input_dim);
// The member's trainable parameters as PackMemberBytes counts them (its MLP chain's
// weights and biases).
int64_t PackMemberParams(const jobs::JobSpec& spec, int64_t input_dim);

// CPU packs (measured on the project's 2-core machine, docs/design/packing.md "Scheduling
// packs"): the members' optimizer state (parameters, gradients and Adam's two moments:
// parameters x 16 bytes) one pack should keep within. Beyond it a pack runs slower per job
// than two smaller ones.
inline constexpr int64_t kPackCacheBudgetCpu = int64_t{12} << 20;
// The most members of one key a CPU pack holds: max(2, budget / (params x 16)), at most
// kPackMaxCpu.
int CpuPackCap(int64_t params, int64_t budget = kPackCacheBudgetCpu);

// MemAvailable of /proc/meminfo in bytes; 0 when unknown.
int64_t MemAvailableBytes();

struct AutoPackInput {
  int64_t member_bytes = 0;   // the largest PackMemberBytes of the packable jobs
  int64_t mem_available = 0;  // 0 = unknown: the device limit alone
  int parallel = 1;           // workers that may each hold a pack at once
  bool gpu = false;
};
int AutoPackLimit(const AutoPackInput& in);

}  // namespace emosweep::orchestrator
