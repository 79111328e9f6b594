// cluster/reducer_nccl.cc: bucketed ncclAllReduce of device float buffers.
//
// The NCCL communicator is bootstrapped over the group's MPI communicator
// (rank 0 creates the unique id and broadcasts it). Collectives are enqueued
// on the legacy default stream so they are ordered after the backward pass
// that libtorch enqueued there, and each call synchronises before returning
// so errors surface as a Status at the call.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>

#include "cluster/mpi_internal.h"

namespace emosweep::cluster::internal {
namespace {

Status Cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  return Status::Unavailable(std::string(what) + ": " + cudaGetErrorString(e));
}
Status Nccl(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return Status::Ok();
  return Status::Unavailable(std::string(what) + ": " + ncclGetErrorString(r));
}

class NcclReducer final : public GradientReducer {
 public:
  NcclReducer(ncclComm_t comm, int rank, int size, const BucketConfig& b) : comm_(comm), rank_(rank), size_(size), buckets_(b) {}
  ~NcclReducer() override { ncclCommDestroy(comm_); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }
  Status AllreduceMean(float* d, size_t n) override { return Reduce(d, n, ncclAvg); }
  Status AllreduceSum(float* d, size_t n) override { return Reduce(d, n, ncclSum); }
  Status Broadcast(float* d, size_t n, int root) override {
    ES_RETURN_IF_ERROR(Nccl(ncclBroadcast(d, d, n, ncclFloat, root, comm_, nullptr), "ncclBroadcast"));
    return Cuda(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize");
  }

 private:
  Status Reduce(float* d, size_t n, ncclRedOp_t op) {
    size_t off = 0;
    size_t bucket = std::max<size_t>(1, buckets_.first_bucket_bytes / sizeof(float));
    ES_RETURN_IF_ERROR(Nccl(ncclGroupStart(), "ncclGroupStart"));
    while (off < n) {
      size_t count = std::min(n - off, bucket);
      ncclResult_t r = ncclAllReduce(d + off, d + off, count, ncclFloat, op, comm_, nullptr);
      if (r != ncclSuccess) {
        ncclGroupEnd();
        return Nccl(r, "ncclAllReduce");
      }
      off += count;
      bucket = std::max<size_t>(1, buckets_.bucket_bytes / sizeof(float));
    }
    ES_RETURN_IF_ERROR(Nccl(ncclGroupEnd(), "ncclGroupEnd"));
    return Cuda(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize");
  }

  ncclComm_t comm_;
  int rank_, size_;
  BucketConfig buckets_;
};

}  // namespace

Result<std::unique_ptr<GradientReducer>> MakeNcclReducer(MPI_Comm group, int device, const BucketConfig& buckets) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  // Without a driver this returns cudaErrorInsufficientDriver and leaves n unset.
  if (e != cudaSuccess || n <= 0) return Status::FailedPrecondition("no CUDA device available for the NCCL reducer");
  ES_RETURN_IF_ERROR(Cuda(cudaSetDevice(device % n), "cudaSetDevice"));
  int rank = 0, size = 1;
  MPI_Comm_rank(group, &rank);
  MPI_Comm_size(group, &size);
  ncclUniqueId id;
  if (rank == 0) ES_RETURN_IF_ERROR(Nccl(ncclGetUniqueId(&id), "ncclGetUniqueId"));
  {
    std::lock_guard<std::mutex> lock(MpiMutex());
    ES_RETURN_IF_ERROR(MpiStatus(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, group), "MPI_Bcast(ncclUniqueId)"));
  }
  ncclComm_t comm;
  ES_RETURN_IF_ERROR(Nccl(ncclCommInitRank(&comm, size, id, rank), "ncclCommInitRank"));
  return std::unique_ptr<GradientReducer>(std::make_unique<NcclReducer>(comm, rank, size, buckets));
}

}  // namespace emosweep::cluster::internal
