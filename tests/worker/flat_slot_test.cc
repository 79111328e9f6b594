// FlatParameters with models::SlotLinear layers: Build binds each SlotLinear's weight to its own slice of
// the flat gradient buffer, backward writes the gradient there (no copy in SyncGrads), and the buffer
// then holds bitwise what the same net of torch::nn::Linear layers gives (ZeroGrad + SyncGrads), over
// several steps, with a layer used twice in one graph, two backwards in one step and a frozen layer.
#include <torch/torch.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "models/slot_linear.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"

namespace emosweep::worker {
namespace {

// Layer kinds alternate (slot, plain, slot, ...) so that a slice off by one parameter shows.
template <typename L>
struct NetImpl : torch::nn::Module {
  NetImpl() {
    a = register_module("a", L(7, 16));
    ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({16})));
    b = register_module("b", L(16, 16));
    plain = register_module("plain", torch::nn::Linear(16, 16));
    c = register_module("c", L(16, 5));
    frozen = register_module("frozen", L(7, 16));
  }
  torch::Tensor forward(const torch::Tensor& x, bool twice) {
    torch::Tensor h = torch::tanh(ln(a(x))) + frozen(x);
    torch::Tensor h2 = b(h);
    if (twice) h2 = h2 * b(torch::tanh(h2));  // b used twice: its gradient is a sum
    return c(plain(torch::gelu(h2)));
  }
  L a{nullptr}, b{nullptr}, c{nullptr}, frozen{nullptr};
  torch::nn::LayerNorm ln{nullptr};
  torch::nn::Linear plain{nullptr};
};

bool SameBits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  return std::memcmp(a.data_ptr(), b.data_ptr(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

TEST(FlatParameters, SlotLinearGradientsLandInTheirSliceBitwise) {
  torch::manual_seed(11);
  auto mine = std::make_shared<NetImpl<models::SlotLinear>>();
  auto ref = std::make_shared<NetImpl<torch::nn::Linear>>();
  {
    torch::NoGradGuard g;
    auto src = ref->parameters();
    auto dst = mine->parameters();
    ASSERT_EQ(src.size(), dst.size());
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  auto fm = FlatParameters::Build(*mine, {"frozen."});
  auto fr = FlatParameters::Build(*ref, {"frozen."});
  ASSERT_TRUE(fm.ok() && fr.ok());
  EXPECT_FALSE(mine->frozen->weight_grad_slot().defined());
  auto cfg_or = ParseTrainConfig({{"optimizer", "adamw"}, {"lr", 1e-2}, {"weight_decay", 0.01}}, "test");
  ASSERT_TRUE(cfg_or.ok());
  const TrainConfig& cfg = *cfg_or;
  FusedOptimizer om(&*fm, cfg), orf(&*fr, cfg);
  for (int step = 0; step < 4; ++step) {
    SCOPED_TRACE(step);
    {
      torch::NoGradGuard g;
      fm->grads().fill_(7.0f);  // stale values must not survive
      fr->grads().fill_(7.0f);
    }
    const bool twice = step % 2 == 1, two_backwards = step == 2;
    torch::Tensor x = torch::randn({6, 7}), x2 = torch::randn({3, 7});
    fm->ZeroGrad();
    fr->ZeroGrad();
    mine->forward(x, twice).pow(2).sum().backward();
    ref->forward(x, twice).pow(2).sum().backward();
    if (two_backwards) {
      mine->forward(x2, true).sum().backward();
      ref->forward(x2, true).sum().backward();
    }
    // Before SyncGrads: a slot weight's .grad already is its slice of the flat buffer (the first
    // backward wrote it; a second backward added into it in place). Not b's when it is used twice in one
    // graph: autograd sums its two gradients into a new tensor, which SyncGrads copies as before.
    const float* base = fm->grads().data_ptr<float>();
    for (const char* name : {"a.", "b.", "c."}) {
      if (twice && name[0] == 'b') continue;
      auto* lin = mine->named_modules()[std::string(name, 1)]->as<models::SlotLinear>();
      ASSERT_NE(lin, nullptr);
      const auto [off, n] = fm->Span(name);
      EXPECT_EQ(lin->weight.grad().data_ptr<float>(), base + off) << name;
      EXPECT_GT(n, lin->weight.numel());
    }
    fm->SyncGrads();
    fr->SyncGrads();
    EXPECT_TRUE(SameBits(fm->grads(), fr->grads()));
    GradScale clip = ClipScale(fm->grads(), 0, fm->numel(), 0.5);
    om.Step(clip);
    orf.Step(ClipScale(fr->grads(), 0, fr->numel(), 0.5));
    EXPECT_TRUE(SameBits(fm->params(), fr->params()));
  }
}

// The no-clipping single-process step reads the .grads in place (GradRanges): with slots they point into
// the flat buffer, with the same values. The net is not held in a shared_ptr here (Build must not need it).
TEST(FlatParameters, SlotLinearGradRangesEqualTorchLinearBitwise) {
  torch::manual_seed(12);
  NetImpl<models::SlotLinear> on_stack;
  NetImpl<models::SlotLinear>* mine = &on_stack;
  auto ref = std::make_shared<NetImpl<torch::nn::Linear>>();
  {
    torch::NoGradGuard g;
    auto src = ref->parameters();
    auto dst = mine->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  auto fm = FlatParameters::Build(*mine, {});
  auto fr = FlatParameters::Build(*ref, {});
  ASSERT_TRUE(fm.ok() && fr.ok());
  auto cfg_or = ParseTrainConfig({{"optimizer", "adamw"}, {"lr", 1e-2}, {"weight_decay", 0.01}}, "test");
  ASSERT_TRUE(cfg_or.ok());
  const TrainConfig& cfg = *cfg_or;
  FusedOptimizer om(&*fm, cfg), orf(&*fr, cfg);
  for (int step = 0; step < 3; ++step) {
    torch::Tensor x = torch::randn({4, 7});
    fm->ZeroGrad();
    fr->ZeroGrad();
    mine->forward(x, step == 1).sum().backward();
    ref->forward(x, step == 1).sum().backward();
    om.Step(fm->GradRanges());
    orf.Step(fr->GradRanges());
    EXPECT_TRUE(SameBits(fm->params(), fr->params())) << step;
  }
}

}  // namespace
}  // namespace emosweep::worker
