// models/packed_mlp.h: the MLP family (MlpModel: [Linear, ReLU, Dropout]* + Linear head) as K
// stacked copies, for the packed trainer (worker/packed_trainer.h, docs/design/packing.md).
//
// Layer l's weight is [K, out, in] and its bias [K, out], views into the pack's flat parameter
// buffer; a forward runs the selected members ("slots") on their own rows x[j] with batched matrix
// products that are, member by member, the BLAS calls the single model makes, and draws each
// member's dropout mask from its own generator exactly as its model does alone: at::dropout's draws on
// the CPU, the counter-based stream (models/counter_dropout.h) on a GPU, all members' masks at once. The backward
// writes the weight and bias gradients straight into the views gw / gb of the pack's gradient buffer.
// Thread-safety: one pack per thread.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "models/counter_dropout.h"

namespace emosweep::models {

// The MLP as K stacked copies: layer l's weight [K, out, in] and bias [K, out].
struct PackedLayer {
  int64_t in = 0, out = 0;
  torch::Tensor w, b;    // [K, out, in], [K, out]: leaves (views of the packed buffer) or frozen copies
  torch::Tensor gw, gb;  // their gradients' views of the packed gradient buffer (undefined when frozen)
};

class PackedMlp {
 public:
  std::vector<PackedLayer> layers;
  std::vector<double> dropout;  // per slot (dropout may differ between members)
  int k = 0;

  // x: [m, n, D] (member slots[j]'s rows in x[j]; the layers' device); gens: the members' dropout generators
  // (training only; of x's device kind).
  // Returns the logits [m, n, C]; differentiable in the layers' leaves when training. `features`, when
  // given, receives the head's input [m, n, H] (the single model's ModelOutput::features: the last
  // hidden layer after its dropout, or x itself without hidden layers), for domain-adaptation losses.
  // `accumulate_grads`: the backward adds the weight and bias gradients to the gradient rows instead of
  // overwriting them (forwards whose gradients meet in one step, DANN's source and target batches; the caller
  // zeroes those rows first).
  torch::Tensor Forward(const std::vector<int>& slots, torch::Tensor x, bool training,
                        const std::vector<CounterGenerator*>& gens, torch::Tensor* features = nullptr,
                        bool accumulate_grads = false) const;
};

}  // namespace emosweep::models
