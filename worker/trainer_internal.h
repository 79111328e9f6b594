// worker/trainer_internal.h: what the single-job trainer (trainer*.cc) shares with the
// packed trainer (packed_*.cc), so that a pack member computes exactly what its
// job computes alone. Internal to worker/. Thread-safety: pure functions.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "models/model.h"
#include "worker/dataset.h"
#include "worker/job.h"

namespace emosweep::worker {

// The purposes DeriveSeed (trainer_state.h) mixes into a job's seed.
enum SeedPurpose : uint64_t { kTorchSeed = 0, kShuffleSeed = 1, kTargetSeed = 2 };

// Loss weights per class from the training labels (train.class_weights: "none" gives an
// undefined tensor; absent classes get 0).
torch::Tensor ClassWeights(const std::string& kind, const torch::Tensor& labels, int num_classes);

// A job's LossContext at `epoch`: where its schedule stands (step, steps per epoch) and its loss settings.
models::LossContext JobLossContext(const TrainConfig& cfg, int epoch, int64_t step, int64_t steps_per_epoch,
                                   const torch::Tensor& class_weights);

// init_from: loads the parent job's checkpoint (ctx.checkpoint_of, else the work dir's model file) into
// `model` and the input statistics it saved into *norm (docs/trainer.md).
Status LoadInitFrom(const JobSpec& spec, const JobContext& ctx, const std::string& where,
                    models::FusionModelImpl& model, ModalityStats* norm);

// train.feature_norm over a job's named splits: "train" standardises every split with *train_norm
// (filled from `train` unless an init_from checkpoint supplied it), "corpus" each corpus's rows with
// that store's statistics, "none" nothing.
Status NormalizeSplits(const std::string& mode, const std::vector<std::pair<std::string, Split*>>& splits,
                       const Split& train, const std::map<std::string, std::string>& features,
                       ModalityStats* train_norm, const std::string& where);

// A training batch (or a rank's shard of one) of a single row fails mid-run, at the epoch's last batch, for a
// model with BatchNorm layers (`has_batchnorm`) and for the adaptation variants that need two rows per domain
// (a covariance: coral_*; a pair: mk_mmd_*). Said up front instead, with the fix. n: training rows; world: ranks.
Status CheckOneRowBatches(const std::string& where, const std::string& model_name, bool has_batchnorm,
                          const std::string& adapt_variant, int64_t n, int64_t batch_size, bool drop_last,
                          int64_t world);

// The error of a job whose mean training loss became NaN or infinite in `epoch` (counted from 0, as
// info.curves and the selected epoch are).
Status DivergedError(const std::string& where, double train_loss, int epoch);

}  // namespace emosweep::worker
