// models/model.h: the interface every fusion model implements (libtorch).
//
// A model maps a Batch (one [B, D] tensor per modality) to logits plus a fused
// representation (the vector DA losses act on) and named auxiliary outputs,
// and defines its own training loss (seed models have composite losses:
// GloMER CE + NT-Xent + diversity + consistency, multimodal-ser CE + VAD +
// SupCon/MICL). The trainer adds DA losses on top and never needs to know the
// model. Transductive models (CemoBAM/HemoGAT) see a whole split as one batch.
// Non-torch code uses models/model_configs.h (names, config tables) instead.
// Thread-safety: a model instance belongs to one job/thread.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace emosweep::models {

struct Batch {
  std::map<std::string, torch::Tensor> inputs;  // modality -> [B, D] float32
  torch::Tensor labels;                          // [B] int64 class indices; undefined when unlabelled
};

struct ModelOutput {
  torch::Tensor logits;                          // [B, C]
  torch::Tensor features;                        // [B, F] fused representation (for DA losses)
  std::map<std::string, torch::Tensor> aux;      // model-specific outputs (projections, VAD, ...)
};

struct LossContext {
  int epoch = 0;                                 // 0-based
  int num_epochs = 1;
  int64_t step = 0;                              // global optimizer step
  int64_t steps_per_epoch = 0;                   // optimizer steps per epoch (0 = unknown)
  torch::Tensor class_weights;                   // [C] or undefined
  double class_weight_mean = 0.0;                // > 0: CrossEntropy's weight_mean (data-parallel shards)
  double label_smoothing = 0.0;
};

struct LossTerms {
  torch::Tensor total;                           // scalar, what backward() is called on
  std::map<std::string, torch::Tensor> parts;    // scalar tensors for logging ("ce", "ntxent", ...)
};

struct ModelSpec {
  std::map<std::string, int64_t> input_dims;     // modality -> D, for the modalities the job provides
  int64_t num_classes = 0;
  std::vector<std::string> labels;               // canonical class names in index order (VAD targets)
  nlohmann::json config;                         // validated against the model's ConfigTable
};

class FusionModelImpl : public torch::nn::Module {
 public:
  ~FusionModelImpl() override = default;
  virtual ModelOutput Forward(const Batch& batch) = 0;
  // Default: cross-entropy with ctx.class_weights and ctx.label_smoothing.
  virtual LossTerms Loss(const ModelOutput& out, const Batch& batch, const LossContext& ctx);
  // Full-batch over the split's graph (CemoBAM/HemoGAT).
  virtual bool transductive() const { return false; }
  virtual int64_t feature_dim() const = 0;
  // CemoBAM/HemoGAT with `faithful = true`: the seed trains in eval mode from its
  // second epoch on (train() once before the loop, eval() for validation, never
  // train() again). The trainer reproduces that when this returns true.
  virtual bool faithful_eval_mode_bug() const { return false; }
  // What the job's info records about the model beyond its config (`torchscript`: file, SHA-256,
  // signature, init, the module's attributes); null = nothing.
  virtual nlohmann::json Provenance() const { return nullptr; }
};

using ModelPtr = std::shared_ptr<FusionModelImpl>;

// Builds a registered model by name (see models/model_configs.h for the list).
Result<ModelPtr> CreateModel(const std::string& name, const ModelSpec& spec);

}  // namespace emosweep::models
