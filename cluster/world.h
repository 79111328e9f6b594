// cluster/world.h: the process's view of the run: its rank, its control
// channel, and data-parallel groups.
//
// CreateWorld() picks the transport once, at start-up: MPI when the binary
// was built with MPI and launched by mpirun/srun (OMPI_/PMIX_/PMI_ variables
// present), otherwise a world of one (in-process). Nothing above this file
// branches on "distributed or not": a single process is a world of size 1.
// Finalize() is explicit (never in a destructor): it must not run on error
// paths where peers would block in it; use Communicator::Abort there.
// Thread-safety: CreateWorld once per process, from the main thread.
#pragma once

#include <memory>
#include <string>

#include "cluster/communicator.h"
#include "cluster/reducer.h"
#include "core/status.h"

namespace emosweep::cluster {

// Where this rank sits on its host: the ranks sharing the host (MPI_COMM_TYPE_SHARED), this
// rank's index among them (ordered by world rank), and whether world rank 0 (the coordinator)
// is one of them. Computed once when the world is created.
struct NodeLayout {
  int local_rank = 0;
  int local_size = 1;
  bool has_world_rank0 = true;
};

class World {
 public:
  virtual ~World() = default;
  virtual Communicator& comm() = 0;
  virtual NodeLayout node() const = 0;
  // Collective over every rank: ranks with the same `color` form one group
  // (ordered by world rank); returns this rank's reducer for its group.
  // `device` "cpu" gives the MPI reducer, "cuda:N" the NCCL one (when built).
  virtual Result<std::unique_ptr<GradientReducer>> MakeGroupReducer(int color, const std::string& device,
                                                                    const BucketConfig& buckets) = 0;
  virtual Status Finalize() = 0;
};

// True when this process was started by mpirun/srun with more than one rank.
bool LaunchedByMpi();
Result<std::unique_ptr<World>> CreateWorld(int* argc, char*** argv);

// A world of one, without MPI (tests, plain runs).
std::unique_ptr<World> MakeSingleProcessWorld();

}  // namespace emosweep::cluster
