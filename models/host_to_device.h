// models/host_to_device.h: small host tensors (row indices, per-member scalars) onto a GPU without stalling it.
//
// A plain `.to(cuda)` of pageable host memory is a synchronous copy: it waits for every kernel queued before it,
// which on a pack's step (several such copies) keeps the host from queueing ahead. HostToDevice stages the values
// in pinned memory (libtorch's caching host allocator keeps that block until the copy has run) and copies them
// asynchronously on the current stream, after the kernels already queued and before the ones queued next.
// The host tensor may be freed as soon as this returns. On the CPU it returns `host` itself.
#pragma once

#include <torch/torch.h>

namespace emosweep::models {

inline torch::Tensor HostToDevice(const torch::Tensor& host, torch::Device device) {
  if (device.is_cpu()) return host;
  return host.pin_memory().to(torch::TensorOptions().device(device), /*non_blocking=*/true);
}

}  // namespace emosweep::models
