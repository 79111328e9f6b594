// worker/packed_trainer.h: the batched trainer behind worker::RunPack (issue 16).
//
// K jobs of the MLP family (concat_mlp, unimodal_mlp) train as one model whose
// parameters carry a leading K dimension: one flat [K, P] buffer (member k's
// row is exactly its single job's flat parameter buffer, worker/flat_params.h),
// each layer a strided [K, out, in] view into it, linear layers as batched
// matrix products (baddbmm). Every member keeps its own data order, sampling,
// dropout generator, loss (its model's own Loss on its logits), optimizer
// state, schedule, early stopping, epoch selection, checkpoints and result, so
// that on CPU each member's JobResult is bitwise the one RunJob gives it alone
// (docs/design/packing.md, "The batched trainer"); on a GPU (every member's
// device the same cuda:N) the pack's buffers, pools and batches live there and each
// member draws its dropout as its job alone does there (results within the GPU
// tolerance, "Packs on a GPU"). A member that fails or diverges fails alone. Members whose set-up fails run through RunJob instead
// (which reports the same error).
// Thread-safety: one call per thread; libtorch's thread count is process-wide.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "worker/job.h"

namespace emosweep::worker {

// Whether the batched trainer takes this pack; otherwise `why` says what it does not support
// (RunPack then runs the members one after another through RunJob).
bool PackedTrainerSupports(const std::vector<JobSpec>& members, const std::vector<JobContext>& contexts,
                           std::string* why);

// Tests: run a pack's GPU code path on the CPU too (the batched loss, clipping and update; the dropout masks
// follow models::UsesCounterDropout, so add models::SetCounterDropoutOnCpuForTest for the GPU's masks).
// Process-wide; off by default.
void SetPackedDevicePathForTest(bool on);

// The batched trainer (exceptions propagate; RunPack guards it). One result per member.
std::vector<Result<JobResult>> RunPackedTrainer(const std::vector<JobSpec>& members,
                                                const std::vector<JobContext>& contexts);

}  // namespace emosweep::worker
