// cluster/reducer.h: "what is reduced" for data-parallel training.
//
// A GradientReducer averages a flat float buffer (parameters' gradients laid
// out contiguously by the trainer) across the ranks of one worker group, in
// buckets (1 MiB first, then 25 MiB by default, as PyTorch DDP). Backends:
// local (world of one: no-op), MPI (host memory), NCCL (device memory,
// communicator bootstrapped over MPI). "Who talks" (the host Communicator,
// cluster/communicator.h) is separate from this.
// Thread-safety: one reducer per group per thread; calls are collective and
// must be made in the same order on every rank of the group.
#pragma once

#include <cstddef>
#include <memory>

#include "core/status.h"

namespace emosweep::cluster {

struct BucketConfig {
  size_t first_bucket_bytes = 1u << 20;
  size_t bucket_bytes = 25u << 20;
};

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "local" | "mpi" | "nccl"
  // In-place average over ranks of `n` floats at `data` (device memory for nccl).
  virtual Status AllreduceMean(float* data, size_t n) = 0;
  // In-place sum (used for metric counts).
  virtual Status AllreduceSum(float* data, size_t n) = 0;
  // Root's values to every rank (parameters at start).
  virtual Status Broadcast(float* data, size_t n, int root) = 0;
};

// World of one: every call succeeds without communication.
std::unique_ptr<GradientReducer> MakeLocalReducer();

}  // namespace emosweep::cluster
