// models/dropout.cc: at::dropout with FillBernoulli's mask (see dropout.h).
#include "models/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Config.h>

#include "models/counter_dropout.h"
#include "models/fast_bernoulli.h"

namespace emosweep::models {
namespace {

bool Covered(const torch::Tensor& input) {
#if AT_MKL_ENABLED()
  (void)input;
  return false;  // bernoulli_ draws MKL's stream there
#else
  return input.device().is_cpu() && input.layout() == torch::kStrided && input.scalar_type() == torch::kFloat &&
         !input.has_names();
#endif
}

}  // namespace

torch::Tensor ApplyDropout(torch::Tensor input, double p, bool train, bool inplace) {
  if (!Covered(input)) return inplace ? torch::dropout_(input, p, train) : torch::dropout(input, p, train);
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability has to be between 0 and 1, but got ", p);
  if (p == 0 || !train || input.numel() == 0) return input;
  if (p == 1) {
    torch::Tensor zero = at::zeros({}, input.options());
    return inplace ? input.mul_(zero) : input * zero;
  }
  torch::Tensor noise = at::empty_like(input, at::MemoryFormat::Contiguous);
  {
    // at::dropout's noise.div_(1 - p) divides each 1.f and 0.f draw by the scalar converted to float (a wrapped
    // scalar does not take part in type promotion): the kept entries become 1.f / float(1 - p), correctly
    // rounded as the division is, the dropped ones +0. Written by the draw itself, without the pass and the
    // scalar's dispatch (msr: ~940 calls an epoch).
    const float kept = 1.f / static_cast<float>(1 - p);
    auto* gen = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
    FillBernoulli(noise.data_ptr<float>(), noise.numel(), 1 - p, gen, kept);
  }
  return inplace ? input.mul_(noise) : input * noise;
}

torch::Tensor FastDropoutImpl::forward(torch::Tensor input) {
  if (counter_on_device && UsesCounterDropout(input.device()))
    return CounterDropout(std::move(input), options.p(), is_training(), options.inplace(),
                          at::globalContext().defaultGenerator(input.device()));
  return ApplyDropout(std::move(input), options.p(), is_training(), options.inplace());
}

}  // namespace emosweep::models
