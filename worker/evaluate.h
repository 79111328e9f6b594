// worker/evaluate.h: running a model over a Split in eval mode.
//
// Batches are contiguous row ranges (views, no copies on CPU); transductive
// models see the whole split as one batch (their graph spans the split).
// Returns the standard metrics, the mean loss (the model's own composite
// loss, as the seeds use for their schedulers) and, when asked, one
// Prediction per utterance (for significance tests).
// Thread-safety: uses the model; one caller at a time per model.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/status.h"
#include "models/model.h"
#include "worker/dataset.h"
#include "worker/job.h"
#include "worker/job.h"

namespace emosweep::worker {

struct EvalOutput {
  ClassificationMetrics metrics;
  double loss = 0;
  // Every batch held only classes of class weight 0 (classes absent from the training data, with class
  // weights): the weighted loss is 0/0, so `loss` is NaN and is not recorded (RecordLoss).
  bool loss_undefined = false;
  std::vector<Prediction> predictions;  // empty unless keep_predictions
};

// Whether rows with these labels weigh nothing under `class_weights` (defined, Σ w[label] = 0): their weighted
// cross-entropy is 0/0. Such an eval batch adds nothing to the split's loss (helper-72: a class-sorted test
// set of a class the training data lacks failed the whole job on "metric 'loss' is not finite").
bool WeighsNothing(const torch::Tensor& class_weights, const torch::Tensor& labels);

// `metrics["loss"] = e.loss`, unless the loss is undefined (above): then no "loss" key.
void RecordLoss(const EvalOutput& e, nlohmann::json* metrics);

// Rows [begin, end) of `split` as a Batch on `device`.
models::Batch SliceBatch(const Split& split, int64_t begin, int64_t end, const torch::Device& device);

Result<EvalOutput> Evaluate(models::FusionModelImpl& model, const Split& split, int64_t batch_size,
                            const models::LossContext& ctx, int num_classes, bool keep_predictions,
                            const torch::Device& device);

}  // namespace emosweep::worker
