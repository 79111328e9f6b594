// cluster/mpi_internal.h: shared by the MPI backend files only.
//
// All MPI calls of this process go through MpiLock(): the world is initialised
// with MPI_THREAD_SERIALIZED and the heartbeat thread and the job thread both
// talk MPI, so we serialise them ourselves.
#pragma once

#include <mpi.h>

#include <memory>
#include <mutex>
#include <string>

#include "cluster/reducer.h"
#include "core/status.h"

namespace emosweep::cluster::internal {

std::mutex& MpiMutex();
Status MpiStatus(int rc, const std::string& what);
std::unique_ptr<GradientReducer> MakeMpiReducer(MPI_Comm group, const BucketConfig& buckets);
#if EMOSWEEP_HAVE_NCCL
Result<std::unique_ptr<GradientReducer>> MakeNcclReducer(MPI_Comm group, int device, const BucketConfig& buckets);
#endif

}  // namespace emosweep::cluster::internal
