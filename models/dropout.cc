// models/dropout.cc: at::dropout with FillBernoulli's mask (see dropout.h).
#include "models/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Config.h>

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
    auto* gen = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
    FillBernoulli(noise.data_ptr<float>(), noise.numel(), 1 - p, gen);
  }
  noise.div_(1 - p);
  return inplace ? input.mul_(noise) : input * noise;
}

}  // namespace emosweep::models
