// orchestrator/placement.h: which device and how many threads a rank of
// `mpirun emosweep run` uses on its host (issue 6, "packing").
//
// Policy (docs/design/distributed.md, "Placement"):
//  - Worker ranks of a host are numbered 0..W-1 in world-rank order (the
//    coordinator, world rank 0, takes no slot).
//  - CPU: W × threads must not exceed the host's cores, unless oversubscribing
//    was asked for (a benchmark of scheduling overhead wants it; a real sweep
//    would only slow down).
//  - device "cuda": worker i gets cuda:(i mod gpus), round robin, so the G
//    consecutive ranks of a data-parallel group land on G different GPUs
//    (NCCL needs one GPU per rank of a communicator). At most `jobs_per_gpu`
//    workers share one GPU (packing several small jobs); more is an error
//    naming the numbers. A group with more ranks on one host than the host
//    has GPUs is an error (a group may span hosts; the host's ranks are taken
//    to be a block of consecutive world ranks, as mpirun --map-by slot and
//    Slurm's block distribution place them).
//  - device "cuda:N": every worker of the host uses GPU N (explicit packing);
//    a data-parallel group of more than one rank per host is then an error.
//    Any CUDA device with no GPU visible is a FailedPrecondition.
//  - The coordinator always computes on nothing and gets "cpu".
// Pure function: no MPI, no CUDA; the caller supplies the host's facts.
#pragma once

#include <string>

#include "core/status.h"

namespace emosweep::orchestrator {

struct PlacementInput {
  std::string device = "cpu";  // --device: cpu | cuda | cuda:N
  std::string host;            // for messages
  int world_rank = 0;
  int local_rank = 0;           // among all ranks on this host
  int local_size = 1;
  bool host_has_coordinator = true;
  int group_size = 1;
  int threads = 1;              // intra-op threads per job
  int cores = 1;                // of this host
  int gpus = 0;                 // CUDA devices visible on this host
  int jobs_per_gpu = 1;
  bool allow_oversubscribe = false;
};

struct Placement {
  std::string device = "cpu";
  int worker_index = -1;   // among the host's workers; -1 for the coordinator
  int workers_on_host = 0;
};

Result<Placement> PlaceRank(const PlacementInput& in);

}  // namespace emosweep::orchestrator
