// models/dropout.h: dropout whose mask is drawn by FillBernoulli (models/fast_bernoulli.h), computing
// exactly what at::dropout / torch::nn::Dropout compute on the CPU (same values, same gradients, the
// default CPU generator left in the same state), several times faster to draw.
//
// at::dropout on a CPU tensor (ATen/native/Dropout.cpp, _dropout_impl): p == 0, eval mode or an empty
// input returns the input itself; p == 1 returns input * zeros({}); otherwise noise = empty_like(input,
// contiguous), noise.bernoulli_(1 - p) from the default generator, noise.div_(1 - p), input * noise
// (mul_ when inplace). ApplyDropout does the same with the bernoulli_ replaced by FillBernoulli; inputs it
// does not cover (not float, not on the CPU, named, or a libtorch built with MKL, whose bernoulli_
// draws another stream) go through at::dropout itself.
// FastDropout is torch::nn::Dropout with that forward: it derives from DropoutImpl, so code that
// inspects a model (`as<torch::nn::Dropout>()`, options.p(), pretty_print) sees a Dropout. clone() gives a
// plain DropoutImpl (at::dropout's results on the CPU; it drops `counter_on_device`, below: not for a GPU MLP).
// With `counter_on_device` (the MLP family, models::MlpStack) the mask of a non-CPU tensor comes from the
// counter-based stream instead (models/counter_dropout.h), so that a pack's batched MLP draws every member's
// mask at once and each member equals its job alone; CPU tensors keep at::dropout's draws.
// Thread-safety: as at::dropout (the default generator's mutex is held while drawing).
#pragma once

#include <torch/torch.h>

namespace emosweep::models {

// at::dropout(input, p, train), or at::dropout_(input, p, train) when `inplace` (then returns `input`).
torch::Tensor ApplyDropout(torch::Tensor input, double p, bool train, bool inplace = false);

class FastDropoutImpl : public torch::nn::DropoutImpl {
 public:
  explicit FastDropoutImpl(double p) : torch::nn::DropoutImpl(torch::nn::DropoutOptions().p(p)) {}
  explicit FastDropoutImpl(const torch::nn::DropoutOptions& options = {}) : torch::nn::DropoutImpl(options) {}
  torch::Tensor forward(torch::Tensor input);
  // Set by the MLP family's stack (see above); no effect on CPU tensors outside the tests' hook.
  bool counter_on_device = false;
};
TORCH_MODULE(FastDropout);

}  // namespace emosweep::models
