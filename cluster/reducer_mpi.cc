// cluster/reducer_mpi.cc: bucketed MPI_Allreduce of host float buffers.
#include <algorithm>

#include "cluster/mpi_internal.h"

namespace emosweep::cluster::internal {
namespace {

class MpiReducer final : public GradientReducer {
 public:
  MpiReducer(MPI_Comm group, const BucketConfig& b) : group_(group), buckets_(b) {
    MPI_Comm_rank(group_, &rank_);
    MPI_Comm_size(group_, &size_);
  }
  ~MpiReducer() override = default;  // the group communicator is freed with MPI_Finalize
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }

  Status AllreduceSum(float* data, size_t n) override { return Reduce(data, n, false); }
  Status AllreduceMean(float* data, size_t n) override { return Reduce(data, n, true); }

  Status Broadcast(float* data, size_t n, int root) override {
    if (size_ == 1) return Status::Ok();
    std::lock_guard<std::mutex> lock(MpiMutex());
    size_t off = 0;
    while (off < n) {
      size_t count = std::min<size_t>(n - off, size_t{1} << 30);
      ES_RETURN_IF_ERROR(MpiStatus(MPI_Bcast(data + off, static_cast<int>(count), MPI_FLOAT, root, group_), "MPI_Bcast"));
      off += count;
    }
    return Status::Ok();
  }

 private:
  // Buckets as PyTorch DDP: the first bucket small (gradients of the last
  // layers are ready first in a backward pass), then large ones.
  Status Reduce(float* data, size_t n, bool mean) {
    if (size_ == 1) return Status::Ok();
    std::lock_guard<std::mutex> lock(MpiMutex());
    size_t off = 0;
    size_t bucket = std::max<size_t>(1, buckets_.first_bucket_bytes / sizeof(float));
    while (off < n) {
      size_t count = std::min(n - off, bucket);
      ES_RETURN_IF_ERROR(MpiStatus(
          MPI_Allreduce(MPI_IN_PLACE, data + off, static_cast<int>(count), MPI_FLOAT, MPI_SUM, group_), "MPI_Allreduce"));
      off += count;
      bucket = std::max<size_t>(1, buckets_.bucket_bytes / sizeof(float));
    }
    if (mean) {
      const float inv = 1.0f / static_cast<float>(size_);
      for (size_t i = 0; i < n; ++i) data[i] *= inv;
    }
    return Status::Ok();
  }

  MPI_Comm group_;
  BucketConfig buckets_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<GradientReducer> MakeMpiReducer(MPI_Comm group, const BucketConfig& buckets) {
  return std::make_unique<MpiReducer>(group, buckets);
}

}  // namespace emosweep::cluster::internal
