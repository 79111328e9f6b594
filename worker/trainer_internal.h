// worker/trainer_internal.h: what the single-job trainer (trainer.cc) shares with the
// packed trainer (packed_trainer.cc), so that a pack member computes exactly what its
// job computes alone. Internal to worker/. Thread-safety: pure functions.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace emosweep::worker {

// The purposes DeriveSeed (trainer_state.h) mixes into a job's seed.
enum SeedPurpose : uint64_t { kTorchSeed = 0, kShuffleSeed = 1, kTargetSeed = 2 };

// Loss weights per class from the training labels (train.class_weights: "none" gives an
// undefined tensor; absent classes get 0).
torch::Tensor ClassWeights(const std::string& kind, const torch::Tensor& labels, int num_classes);

}  // namespace emosweep::worker
