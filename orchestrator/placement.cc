// orchestrator/placement.cc: see placement.h.
#include "orchestrator/placement.h"

#include <algorithm>
#include <cstdlib>

namespace emosweep::orchestrator {

namespace {
std::string N(int v) { return std::to_string(v); }
}  // namespace

Result<Placement> PlaceRank(const PlacementInput& in) {
  if (in.threads < 1) return Status::InvalidArgument("--threads must be at least 1");
  if (in.jobs_per_gpu < 1) return Status::InvalidArgument("--jobs-per-gpu must be at least 1");
  const std::string& d = in.device;
  const bool cuda_any = d == "cuda";
  const bool cuda_fixed = d.rfind("cuda:", 0) == 0;
  if (d != "cpu" && !cuda_any && !cuda_fixed)
    return Status::InvalidArgument("--device '" + d + "': expected cpu, cuda or cuda:N");
  Placement p;
  p.workers_on_host = in.local_size - (in.host_has_coordinator ? 1 : 0);
  if (in.world_rank == 0) return p;  // the coordinator
  p.worker_index = in.local_rank - (in.host_has_coordinator ? 1 : 0);
  const std::string where = "host " + (in.host.empty() ? std::string("?") : in.host) + ": ";
  if (!in.allow_oversubscribe && p.workers_on_host * in.threads > in.cores)
    return Status::InvalidArgument(where + N(p.workers_on_host) + " worker ranks x --threads " + N(in.threads) +
                                   " = " + N(p.workers_on_host * in.threads) + " threads exceed its " + N(in.cores) +
                                   " cores: start fewer ranks per host, lower --threads, or pass --oversubscribe "
                                   "(slower; for measuring scheduling overhead)");
  if (d == "cpu") return p;
  if (cuda_fixed) {
    const int dev = std::atoi(d.c_str() + 5);
    if (in.group_size > 1)
      return Status::InvalidArgument(where + "--device " + d + " puts every rank on one GPU, but --group-size " +
                                     N(in.group_size) + " trains data-parallel over NCCL, which needs one GPU per "
                                     "rank: use --device cuda (round robin over the host's GPUs)");
    if (in.gpus < 1)
      return Status::FailedPrecondition(where + "--device " + d + " but no CUDA device is visible "
                                        "(CUDA_VISIBLE_DEVICES, or a build without CUDA)");
    if (dev >= in.gpus)
      return Status::InvalidArgument(where + "--device " + d + " but the host has " + N(in.gpus) + " GPU(s)");
    if (p.workers_on_host > in.jobs_per_gpu)
      return Status::InvalidArgument(where + N(p.workers_on_host) + " worker ranks on " + d +
                                     " exceed --jobs-per-gpu " + N(in.jobs_per_gpu) +
                                     ": raise --jobs-per-gpu to pack them, or use --device cuda");
    p.device = d;
    return p;
  }
  if (in.gpus < 1)
    return Status::FailedPrecondition(where + "--device cuda but no CUDA device is visible (CUDA_VISIBLE_DEVICES, "
                                      "or a build without CUDA)");
  const int need = (p.workers_on_host + in.jobs_per_gpu - 1) / in.jobs_per_gpu;
  if (need > in.gpus)
    return Status::InvalidArgument(where + N(p.workers_on_host) + " worker ranks with --jobs-per-gpu " +
                                   N(in.jobs_per_gpu) + " need " + N(need) + " GPUs, the host has " + N(in.gpus) +
                                   ": start fewer ranks per host or raise --jobs-per-gpu");
  // The group's ranks on this host (consecutive world ranks; the host's ranks are taken to be the block
  // [world_rank - local_rank, +local_size), as mpirun --map-by slot and Slurm's block distribution place them)
  // get consecutive worker indices, hence distinct GPUs when they are at most as many as the GPUs.
  const int leader = 1 + (in.world_rank - 1) / in.group_size * in.group_size;
  const int host_lo = in.world_rank - in.local_rank, host_hi = host_lo + in.local_size;
  const int here = std::max(0, std::min(leader + in.group_size, host_hi) - std::max(leader, host_lo));
  if (here > in.gpus)
    return Status::InvalidArgument(where + N(here) + " ranks of a --group-size " + N(in.group_size) +
                                   " group run here and need one GPU per rank (NCCL), the host has " + N(in.gpus) +
                                   ": spread the group over more hosts or lower --group-size");
  p.device = "cuda:" + N(p.worker_index % in.gpus);
  return p;
}

}  // namespace emosweep::orchestrator
