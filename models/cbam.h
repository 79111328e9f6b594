// models/cbam.h: the 1-D CBAM block of CemoBAM's xCBAM branch (seed-methods.md §2.3).
//
// Input: one d-vector per node, i.e. a [B, C=d, L=1] signal. Correct CBAM on that
// shape: channel gate c = σ(MLP(avg_L x) + MLP(max_L x)) = σ(2·MLP(x)); spatial
// gate over the length-1 axis from [mean_C x, max_C x] through Conv1d(2→1, k 7,
// pad 3) and σ (a per-node scalar). The seed (`faithful`) instead computes
// c = 2·σ(MLP(x)) (pools overwritten by x, sigmoid inside each branch) and runs
// the spatial conv over the d features as a length-d signal with input [x, x].
// Thread-safety: one instance per model.
#pragma once

#include <torch/torch.h>

namespace emosweep::models {

class Cbam1dImpl : public torch::nn::Module {
 public:
  Cbam1dImpl(int64_t dim, int64_t reduction, int64_t kernel, bool faithful);
  torch::Tensor forward(const torch::Tensor& x);  // [B, d] -> [B, d]

 private:
  bool faithful_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
  torch::nn::Conv1d conv_{nullptr};
};
TORCH_MODULE(Cbam1d);

}  // namespace emosweep::models
