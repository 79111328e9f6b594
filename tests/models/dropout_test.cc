// FillBernoulli and ApplyDropout / FastDropout against libtorch's own bernoulli_ and at::dropout: the
// same bits out, the same gradients, and the generator left in the same state (drawing on agrees).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Config.h>
#include <ATen/core/DistributionsHelper.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "models/dropout.h"
#include "models/fast_bernoulli.h"

namespace emosweep::models {
namespace {

bool SameBits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  torch::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel()) * ca.element_size()) == 0;
}

// What `t.bernoulli_(p, gen)` draws on this libtorch's CPU kernel without MKL. On a build with MKL
// bernoulli_ may draw MKL's stream (the callers of FillBernoulli use bernoulli_ itself there), so the
// reference is then the non-MKL kernel's loop (templates::cpu::bernoulli_kernel): one
// bernoulli_distribution<double> per element through the generator, under its mutex.
void KernelBernoulli(torch::Tensor& t, double p, at::Generator& gen) {
#if AT_MKL_ENABLED()
  auto* g = gen.get<at::CPUGeneratorImpl>();
  std::lock_guard<std::mutex> lock(g->mutex_);
  float* d = t.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    at::bernoulli_distribution<double> bernoulli(p);
    d[i] = static_cast<float>(bernoulli(g));
  }
#else
  t.bernoulli_(p, gen);
#endif
}

bool SameEngine(at::Generator& a, at::Generator& b) {
  const at::mt19937_data_pod x = a.get<at::CPUGeneratorImpl>()->engine().data();
  const at::mt19937_data_pod y = b.get<at::CPUGeneratorImpl>()->engine().data();
  return x.seed_ == y.seed_ && x.left_ == y.left_ && x.seeded_ == y.seeded_ && x.next_ == y.next_ &&
         x.state_ == y.state_;
}

// Sizes around the 624-word block (one draw = 2 words, so 312 draws empty a block), p at its edges, and
// starting points: a fresh engine (left_ = 1), then 1..1000 words already taken (odd ones split pairs
// across the twist).
TEST(FillBernoulli, EqualsTorchBernoulliAndLeavesTheSameEngine) {
  const std::vector<int64_t> sizes = {0, 1, 2, 311, 312, 313, 623, 624, 625, 1247, 100003};
  const std::vector<double> ps = {0, 1e-9, 0.1, 0.5, 0.9, 1 - 1e-12, 1};
  const std::vector<int> skips = {0, 1, 2, 3, 311, 622, 623, 624, 625, 1000};
  int cases = 0, ones_seen = 0;
  for (int64_t n : sizes)
    for (double p : ps)
      for (int skip : skips) {
        const uint64_t seed = 1000 + static_cast<uint64_t>(cases);
        at::Generator ref = at::make_generator<at::CPUGeneratorImpl>(seed);
        at::Generator fast = at::make_generator<at::CPUGeneratorImpl>(seed);
        for (int k = 0; k < skip; ++k) {
          ref.get<at::CPUGeneratorImpl>()->random();
          fast.get<at::CPUGeneratorImpl>()->random();
        }
        torch::Tensor want = torch::empty({n}, torch::kFloat);
        KernelBernoulli(want, p, ref);
        torch::Tensor got = torch::full({n}, 7.f);
        FillBernoulli(got.data_ptr<float>(), n, p, fast.get<at::CPUGeneratorImpl>());
        SCOPED_TRACE("n=" + std::to_string(n) + " p=" + std::to_string(p) + " skip=" + std::to_string(skip));
        ASSERT_TRUE(SameBits(got, want));
        ASSERT_TRUE(SameEngine(ref, fast));
        // Drawing on: the next bernoulli_ and the next raw words agree.
        torch::Tensor a = torch::empty({257}), b = torch::empty({257});
        KernelBernoulli(a, 0.5, ref);
        KernelBernoulli(b, 0.5, fast);
        ASSERT_TRUE(SameBits(a, b));
        for (int k = 0; k < 700; ++k)
          ASSERT_EQ(ref.get<at::CPUGeneratorImpl>()->random(), fast.get<at::CPUGeneratorImpl>()->random());
        ones_seen += static_cast<int>(got.sum().item<float>());
        ++cases;
      }
  EXPECT_GT(ones_seen, 0);
}

// Two fills in a row continue one stream: the same as one bernoulli_ over both.
TEST(FillBernoulli, ConsecutiveFillsContinueTheStream) {
  at::Generator ref = at::make_generator<at::CPUGeneratorImpl>(7);
  at::Generator fast = at::make_generator<at::CPUGeneratorImpl>(7);
  torch::Tensor want = torch::empty({3001});
  KernelBernoulli(want, 0.3, ref);
  torch::Tensor got = torch::empty({3001});
  float* d = got.data_ptr<float>();
  int64_t at = 0;
  for (int64_t piece : {1, 310, 1, 999, 624, 1066}) {
    FillBernoulli(d + at, piece, 0.3, fast.get<at::CPUGeneratorImpl>());
    at += piece;
  }
  ASSERT_EQ(at, 3001);
  EXPECT_TRUE(SameBits(got, want));
  EXPECT_TRUE(SameEngine(ref, fast));
}

TEST(FillBernoulli, RejectsPOutsideTheUnitInterval) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  float out[4];
  EXPECT_THROW(FillBernoulli(out, 4, -0.1, g.get<at::CPUGeneratorImpl>()), c10::Error);
  EXPECT_THROW(FillBernoulli(out, 4, 1.5, g.get<at::CPUGeneratorImpl>()), c10::Error);
  EXPECT_THROW(FillBernoulli(out, 4, std::nan(""), g.get<at::CPUGeneratorImpl>()), c10::Error);
}

// ApplyDropout against at::dropout from the same default-generator state: values, input gradients and the
// generator afterwards, in training and eval mode, at p = 0 and 1 and in between, on empty, odd-sized and
// non-contiguous inputs.
TEST(FastDropout, EqualsAtDropoutWithGradients) {
  at::Generator data = at::make_generator<at::CPUGeneratorImpl>(3);
  const std::vector<std::vector<int64_t>> shapes = {{0, 5}, {1}, {7, 3, 5}, {32, 256}, {495, 2048}};
  int cases = 0;
  for (const auto& shape : shapes)
    for (double p : {0.0, 0.1, 0.3, 0.5, 0.9, 1.0, 1.0 / 3, 0.123456789, 0.7, 0.999, 1e-7, 0.99999994})
      for (bool train : {true, false})
        for (bool transposed : {false, true}) {
          if (transposed && shape.size() < 2) continue;
          torch::Tensor x0 = at::randn(shape, data);
          if (transposed) x0 = x0.transpose(0, 1);  // a non-contiguous input: noise is still contiguous
          torch::Tensor up = at::randn(x0.sizes(), data);
          SCOPED_TRACE("case " + std::to_string(cases) + " p=" + std::to_string(p) + " train=" +
                       std::to_string(train) + " transposed=" + std::to_string(transposed));
          torch::manual_seed(100 + cases);
          torch::Tensor xa = x0.detach().clone().requires_grad_(true);
          torch::Tensor ya = torch::dropout(xa, p, train);
          (ya * up).sum().backward();
          torch::Tensor after_a = torch::rand({5});
          torch::manual_seed(100 + cases);
          torch::Tensor xb = x0.detach().clone().requires_grad_(true);
          torch::Tensor yb = ApplyDropout(xb, p, train);
          (yb * up).sum().backward();
          torch::Tensor after_b = torch::rand({5});
          ASSERT_TRUE(SameBits(ya, yb));
          ASSERT_TRUE(SameBits(xa.grad(), xb.grad()));
          ASSERT_TRUE(SameBits(after_a, after_b));
          ++cases;
        }
  EXPECT_GT(cases, 100);
}

TEST(FastDropout, InplaceEqualsAtDropoutInplace) {
  at::Generator data = at::make_generator<at::CPUGeneratorImpl>(4);
  for (double p : {0.0, 0.25, 1.0}) {
    torch::Tensor x0 = at::randn({33, 17}, data);
    torch::manual_seed(5);
    torch::Tensor a = x0.clone();
    torch::dropout_(a, p, true);
    torch::manual_seed(5);
    torch::Tensor b = x0.clone();
    torch::Tensor r = ApplyDropout(b, p, true, /*inplace=*/true);
    EXPECT_TRUE(SameBits(a, b)) << p;
    EXPECT_TRUE(r.is_same(b)) << p;
  }
}

// Inputs FillBernoulli does not cover (here double) go through at::dropout itself.
TEST(FastDropout, DoubleInputEqualsAtDropout) {
  at::Generator data = at::make_generator<at::CPUGeneratorImpl>(6);
  torch::Tensor x0 = at::randn({40, 30}, data).to(torch::kDouble);
  torch::manual_seed(8);
  torch::Tensor a = torch::dropout(x0, 0.4, true);
  torch::manual_seed(8);
  torch::Tensor b = ApplyDropout(x0, 0.4, true);
  EXPECT_TRUE(SameBits(a, b));
  EXPECT_GT((b == 0).sum().item<int64_t>(), 0);
}

// The module: torch::nn::Dropout's results and gradients, and still a Dropout to code that inspects the
// model (the packed trainer reads options.p() through as<torch::nn::Dropout>()).
TEST(FastDropout, ModuleEqualsNnDropout) {
  at::Generator data = at::make_generator<at::CPUGeneratorImpl>(5);
  torch::Tensor x0 = at::randn({64, 128}, data);
  torch::nn::Dropout ref(0.3);
  FastDropout fast(0.3);
  torch::nn::Module& as_module = *fast;
  ASSERT_NE(as_module.as<torch::nn::Dropout>(), nullptr);
  EXPECT_EQ(as_module.as<torch::nn::Dropout>()->options.p(), 0.3);
  torch::nn::Sequential seq(torch::nn::Linear(128, 16), FastDropout(0.3));
  torch::nn::Sequential seq_ref(torch::nn::Linear(128, 16), torch::nn::Dropout(0.3));
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < 2; ++i) seq_ref->parameters()[i].copy_(seq->parameters()[i]);
  }
  for (bool train : {true, false}) {
    ref->train(train);
    fast->train(train);
    seq->train(train);
    seq_ref->train(train);
    torch::manual_seed(9);
    torch::Tensor a = ref(x0);
    torch::Tensor sa = seq_ref->forward(x0);
    sa.sum().backward();
    torch::manual_seed(9);
    torch::Tensor b = fast(x0);
    torch::Tensor sb = seq->forward(x0);
    sb.sum().backward();
    EXPECT_TRUE(SameBits(a, b)) << train;
    EXPECT_TRUE(SameBits(sa, sb)) << train;
    EXPECT_TRUE(SameBits(seq_ref->parameters()[0].grad(), seq->parameters()[0].grad())) << train;
    if (!train) EXPECT_TRUE(SameBits(b, x0));
  }
}

}  // namespace
}  // namespace emosweep::models
