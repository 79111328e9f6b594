// Flat parameter buffer + fused optimizers against torch::optim over many steps.
#include <torch/torch.h>

#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"

namespace emosweep::worker {
namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    a = register_module("a", torch::nn::Linear(7, 16));
    b = register_module("b", torch::nn::Linear(16, 3));
    unused = register_module("unused", torch::nn::Linear(2, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return b(torch::tanh(a(x))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, unused{nullptr};
};
TORCH_MODULE(Net);

// Two identical nets; `steps` updates with random data; returns max |Δparam|.
template <typename MakeRef>
double MaxDiffAfter(const TrainConfig& c, MakeRef make_ref, int steps, bool cycle_beta1 = false,
                    bool tensor_path = false) {
  torch::manual_seed(3);
  Net fused, ref;
  {
    torch::NoGradGuard g;
    auto src = fused->parameters();
    auto dst = ref->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  auto flat = FlatParameters::Build(*fused, {});
  EXPECT_TRUE(flat.ok());
  FusedOptimizer opt(&*flat, c);
  EXPECT_FALSE(opt.tensor_path());  // host memory: the loops
  opt.set_tensor_path(tensor_path);
  auto ref_opt = make_ref(ref->parameters());
  torch::Tensor target = torch::randn({32, 3});
  for (int s = 0; s < steps; ++s) {
    torch::Tensor x = torch::randn({32, 7});
    if (cycle_beta1) {
      const double b1 = 0.85 + 0.1 * (s % 5) / 4.0;
      opt.set_momentum(b1);
      auto& o = static_cast<torch::optim::AdamWOptions&>(ref_opt->param_groups()[0].options());
      o.betas(std::make_tuple(b1, c.beta2));
    }
    flat->ZeroGrad();
    torch::mse_loss(fused->forward(x), target).backward();
    flat->SyncGrads();
    opt.Step();
    ref_opt->zero_grad();
    torch::mse_loss(ref->forward(x), target).backward();
    // torch::optim skips parameters without a gradient; the flat path treats
    // them as zero-gradient, so give the reference explicit zeros to compare.
    for (auto& p : ref->unused->parameters()) p.mutable_grad() = torch::zeros_like(p);
    ref_opt->step();
  }
  double diff = 0;
  auto p1 = fused->parameters(), p2 = ref->parameters();
  for (size_t i = 0; i < p1.size(); ++i) diff = std::max(diff, (p1[i] - p2[i]).abs().max().item<double>());
  return diff;
}

TrainConfig Config(const nlohmann::json& j) {
  auto c = ParseTrainConfig(j, "test");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

TEST(FlatParameters, ParametersAndGradsAreViewsOfOneBuffer) {
  Net net;
  auto flat = FlatParameters::Build(*net, {});
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->numel(), 7 * 16 + 16 + 16 * 3 + 3 + 2 * 2 + 2);
  const float* base = flat->params().data_ptr<float>();
  for (auto& p : net->parameters()) {
    const float* d = p.data_ptr<float>();
    EXPECT_TRUE(d >= base && d < base + flat->numel());
  }
  flat->ZeroGrad();
  net->forward(torch::randn({4, 7})).sum().backward();
  flat->SyncGrads();
  EXPECT_GT(flat->grads().abs().sum().item<double>(), 0);
  // The gradient of a.weight is found at offset 0 of the flat gradient.
  EXPECT_TRUE(torch::equal(net->a->weight.grad().flatten(), flat->grads().narrow(0, 0, 7 * 16)));
}

// ZeroGrad resets the .grads (autograd then hands over its gradient tensors) instead of zeroing the buffer
// for autograd to add into; after SyncGrads the buffer must hold bitwise what zero + accumulate gave
// (the old formulation, computed here on a twin net with plain zeroed .grads), with zeros for the
// unused layer although the buffer held garbage, a parameter used twice summed, and every .grad a view
// of the buffer again; also over two backward calls in one step (accumulation).
TEST(FlatParameters, ZeroGradSyncGradsEqualZeroAndAccumulate) {
  torch::manual_seed(5);
  Net net, twin;
  {
    torch::NoGradGuard g;
    auto src = net->parameters();
    auto dst = twin->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  auto flat = FlatParameters::Build(*net, {});
  ASSERT_TRUE(flat.ok());
  auto loss = [](Net& n, const torch::Tensor& x) {  // b is applied twice: its gradient is a sum of two
    return n->b(torch::tanh(n->a(x))).pow(2).sum() + n->b(torch::tanh(n->a(x * 0.5))).sum();
  };
  for (int step = 0; step < 3; ++step) {
    {
      torch::NoGradGuard g;
      flat->grads().fill_(7.0f);  // stale values from a previous step must not survive
    }
    torch::Tensor x = torch::randn({5, 7}), x2 = torch::randn({3, 7});
    flat->ZeroGrad();
    loss(net, x).backward();
    if (step == 2) loss(net, x2).backward();
    flat->SyncGrads();
    for (auto& p : twin->parameters()) p.mutable_grad() = torch::zeros_like(p);
    loss(twin, x).backward();
    if (step == 2) loss(twin, x2).backward();
    std::vector<torch::Tensor> ref;
    for (auto& p : twin->parameters()) ref.push_back(p.grad().flatten());
    EXPECT_TRUE(torch::equal(flat->grads(), torch::cat(ref))) << "step " << step;
    const float* base = flat->grads().data_ptr<float>();
    for (auto& p : net->parameters()) {
      const float* d = p.grad().data_ptr<float>();
      EXPECT_TRUE(d >= base && d < base + flat->numel());
    }
    EXPECT_EQ(net->unused->weight.grad().abs().sum().item<float>(), 0.0f);
  }
}

TEST(FlatParameters, FrozenPrefixIsExcluded) {
  Net net;
  auto flat = FlatParameters::Build(*net, {"a."});
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->numel(), 16 * 3 + 3 + 2 * 2 + 2);
  EXPECT_FALSE(net->a->weight.requires_grad());
}

TEST(FlatParameters, SpanOfAModuleIsItsContiguousSlice) {
  // The trainer clips the "model." span only (not a domain discriminator registered after it).
  auto root = std::make_shared<torch::nn::Module>("job");
  Net model, adapter;
  root->register_module("model", model.ptr());
  root->register_module("adapter", adapter.ptr());
  auto flat = FlatParameters::Build(*root, {"model.a."});
  ASSERT_TRUE(flat.ok());
  const int64_t per_net = 7 * 16 + 16 + 16 * 3 + 3 + 2 * 2 + 2, frozen = 7 * 16 + 16;
  EXPECT_EQ(flat->numel(), 2 * per_net - frozen);
  EXPECT_EQ(flat->Span("model."), std::make_pair(int64_t{0}, per_net - frozen));
  EXPECT_EQ(flat->Span("adapter."), std::make_pair(per_net - frozen, per_net));
  EXPECT_EQ(flat->Span("nothing."), std::make_pair(int64_t{0}, int64_t{0}));
  // The span's gradient is the model's: a loss of the adapter alone leaves it zero.
  flat->ZeroGrad();
  adapter->forward(torch::randn({4, 7})).sum().backward();
  flat->SyncGrads();
  const auto [off, n] = flat->Span("model.");
  EXPECT_EQ(flat->grads().narrow(0, off, n).abs().sum().item<double>(), 0.0);
  EXPECT_GT(flat->grads().narrow(0, n, per_net).abs().sum().item<double>(), 0.0);
}

// The Adam loop is compiled for several instruction sets (AVX-512, AVX2, baseline); whichever this
// machine runs must equal the plain scalar loop bitwise, for AdamW and Adam, over a length that leaves
// vector tails, for several steps (bias corrections change per step).
TEST(FusedOptimizer, AdamLoopEqualsScalarReferenceBitwise) {
  for (const char* kind : {"adamw", "adam"}) {
    torch::manual_seed(11);
    torch::nn::Module mod;
    auto w = mod.register_parameter("w", torch::randn({100003}));
    auto flat = FlatParameters::Build(mod, {});
    ASSERT_TRUE(flat.ok());
    TrainConfig c = Config({{"optimizer", kind}, {"lr", 3e-3}, {"weight_decay", 0.05}});
    FusedOptimizer opt(&*flat, c);
    torch::Tensor p = flat->params().clone(), m = torch::zeros_like(p), v = torch::zeros_like(p);
    for (int s = 1; s <= 5; ++s) {
      flat->grads().copy_(torch::randn_like(p) * (s == 3 ? 1e-6 : 1.0));
      opt.Step();
      const double bc1 = 1 - std::pow(c.beta1, s), bc2 = 1 - std::pow(c.beta2, s);
      AdamReferenceStep(p.data_ptr<float>(), flat->grads().data_ptr<float>(), m.data_ptr<float>(),
                        v.data_ptr<float>(), p.numel(), static_cast<float>(c.beta1), static_cast<float>(1 - c.beta1),
                        static_cast<float>(c.beta2), static_cast<float>(1 - c.beta2),
                        static_cast<float>(std::sqrt(bc2)), static_cast<float>(c.eps),
                        static_cast<float>(-c.lr / bc1), static_cast<float>(1 - c.lr * c.weight_decay),
                        static_cast<float>(c.weight_decay), std::string(kind) == "adamw");
      ASSERT_TRUE(torch::equal(flat->params(), p)) << kind << " step " << s << ": max |diff| "
                                                    << (flat->params() - p).abs().max().item<float>();
    }
  }
}

// The AVX-512 loop that prefetches (the default on such a CPU) must step bitwise as the compiled loop
// (prefetch 0), for AdamW and Adam, over lengths around its 16-element blocks and prefetch distance, in
// pieces that start off any 64-byte line (short pieces, as intra-op threads cut the buffer), with a
// clipping scale over part of it, and with prefetch distances shorter and longer than a piece.
TEST(FusedOptimizer, AdamPrefetchLoopEqualsCompiledLoopBitwise) {
  for (const char* kind : {"adamw", "adam"}) {
    TrainConfig c = Config({{"optimizer", kind}, {"lr", 3e-3}, {"weight_decay", 0.05}});
    for (const int64_t n : {1, 15, 16, 17, 33, 511, 512, 513, 1000, 4099, 100003}) {
      for (const int64_t piece : {int64_t{997}, int64_t{1} << 40}) {
        for (const int64_t ahead : {int64_t{16}, FusedOptimizer::kPrefetchAhead}) {
          torch::manual_seed(23);
          torch::Tensor p0 = torch::randn({n});
          FlatParameters fa = FlatParameters::OverBuffers(p0.clone(), torch::zeros({n}));
          FlatParameters fb = FlatParameters::OverBuffers(p0.clone(), torch::zeros({n}));
          FusedOptimizer oa(&fa, c), ob(&fb, c);
          oa.set_prefetch(0);
          ob.set_prefetch(ahead);
          oa.set_max_piece_for_test(piece);
          ob.set_max_piece_for_test(piece);
          for (int s = 1; s <= 4; ++s) {
            torch::Tensor g = torch::randn({n}) * (s == 3 ? 1e-6 : 1.0);
            fa.grads().copy_(g);
            fb.grads().copy_(g);
            GradScale scale;
            scale.coef = s % 2 ? 0.37f : 1.0f;
            scale.offset = n / 3;
            scale.count = n / 2;
            oa.Step(scale);
            ob.Step(scale);
            const std::string where = std::string(kind) + " n " + std::to_string(n) + " piece " +
                                      std::to_string(piece) + " ahead " + std::to_string(ahead) + " step " +
                                      std::to_string(s);
            ASSERT_TRUE(torch::equal(fa.params(), fb.params()))
                << where << ": max |diff| " << (fa.params() - fb.params()).abs().max().item<float>();
            auto sa = oa.StateTensors(), sb = ob.StateTensors();
            for (size_t i = 0; i < sa.size(); ++i) ASSERT_TRUE(torch::equal(sa[i].second, sb[i].second)) << where;
          }
        }
      }
    }
  }
}

// Clipping folded into the step (GradScale): ClipScale + Step(scale) must give bitwise the parameters and
// optimizer state of ClipGradNorm over the slice + Step() (what the trainer did), for every optimizer, over
// a clipped slice that starts and ends off any vector or thread-chunk boundary, with steps where the
// coefficient is < 1 and where it is 1, on one and on two intra-op threads; and the gradient is left
// unscaled. A coefficient applied twice, not at all, or outside the slice fails it.
TEST(FusedOptimizer, ClipScaleInStepEqualsClipGradNormThenStepBitwise) {
  const int threads = at::get_num_threads();
  for (int nt : {1, 2}) {
    at::set_num_threads(nt);
    for (const char* kind : {"adamw", "adam", "sgd", "sgd_nesterov", "sgd_plain"}) {
      nlohmann::json j = {{"lr", 3e-3}, {"weight_decay", 0.05}};
      const std::string k = kind;
      j["optimizer"] = k.rfind("sgd", 0) == 0 ? "sgd" : k;
      if (k == "sgd" || k == "sgd_nesterov") j["momentum"] = 0.9;
      if (k == "sgd_nesterov") j["nesterov"] = true;
      TrainConfig c = Config(j);
      torch::manual_seed(17);
      torch::nn::Module ma, mb;
      torch::Tensor w0 = torch::randn({100003});
      ma.register_parameter("w", w0.clone());
      mb.register_parameter("w", w0.clone());
      auto fa = FlatParameters::Build(ma, {});
      auto fb = FlatParameters::Build(mb, {});
      ASSERT_TRUE(fa.ok() && fb.ok());
      FusedOptimizer oa(&*fa, c), ob(&*fb, c);
      ob.set_max_piece_for_test(nt == 1 ? 997 : 32768);  // pieces that start inside the span, as threads cut it
      const int64_t off = 12345, count = 70001;  // to 82346: inside the second 32768-element chunk
      for (int s = 1; s <= 6; ++s) {
        // Steps 1-4 and 6 clip (norm ~ 265 > 1); step 5's gradient is small enough to pass unscaled.
        torch::Tensor g = torch::randn({100003}) * (s == 5 ? 1e-4 : 1.0);
        fa->grads().copy_(g);
        fb->grads().copy_(g);
        torch::Tensor slice = fa->grads().narrow(0, off, count);
        const double norm_a = ClipGradNorm(slice, 1.0);
        at::set_num_threads(1);  // the reference in one piece: no chunk boundary inside the slice
        oa.Step();
        at::set_num_threads(nt);
        double norm_b = 0;
        const GradScale scale = ClipScale(fb->grads(), off, count, 1.0, &norm_b);
        EXPECT_EQ(norm_a, norm_b);
        if (s == 5) EXPECT_EQ(scale.coef, 1.0f);
        else EXPECT_LT(scale.coef, 1.0f);
        ob.Step(scale);
        EXPECT_TRUE(torch::equal(fb->grads(), g)) << kind << ": the gradient was rewritten";
        ASSERT_TRUE(torch::equal(fa->params(), fb->params()))
            << kind << " threads " << nt << " step " << s << ": max |diff| "
            << (fa->params() - fb->params()).abs().max().item<float>();
        auto sa = oa.StateTensors(), sb = ob.StateTensors();
        ASSERT_EQ(sa.size(), sb.size());
        for (size_t i = 0; i < sa.size(); ++i) ASSERT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
      }
    }
  }
  at::set_num_threads(threads);
}

// The device formulation (tensor path) applies the same scale to the gradient before its kernels.
TEST(FusedOptimizer, ClipScaleOnTensorPathEqualsClipGradNormThenStep) {
  TrainConfig c = Config({{"optimizer", "adamw"}, {"lr", 3e-3}, {"weight_decay", 0.05}});
  torch::manual_seed(19);
  torch::nn::Module ma, mb;
  torch::Tensor w0 = torch::randn({1003});
  ma.register_parameter("w", w0.clone());
  mb.register_parameter("w", w0.clone());
  auto fa = FlatParameters::Build(ma, {});
  auto fb = FlatParameters::Build(mb, {});
  FusedOptimizer oa(&*fa, c), ob(&*fb, c);
  oa.set_tensor_path(true);
  ob.set_tensor_path(true);
  for (int s = 0; s < 3; ++s) {
    torch::Tensor g = torch::randn({1003});
    fa->grads().copy_(g);
    fb->grads().copy_(g);
    torch::Tensor slice = fa->grads().narrow(0, 100, 800);
    ClipGradNorm(slice, 1.0);
    oa.Step();
    ob.Step(ClipScale(fb->grads(), 100, 800, 1.0));
    ASSERT_TRUE(torch::equal(fa->params(), fb->params())) << "step " << s;
  }
}

// The update reading each .grad in place (FlatParameters::GradRanges, no copy into the flat buffer) must
// step bitwise as SyncGrads + Step() does, on a twin net: with a parameter that gets no gradient (zero,
// while the buffer holds garbage), one used twice, a parameter larger than a thread chunk so that ranges
// cross piece ends (short pieces on one thread, chunks on two; the reference steps in one piece), for
// every optimizer and together with a clipping scale.
TEST(FusedOptimizer, StepOverGradRangesEqualsSyncGradsThenStepBitwise) {
  struct BigImpl : torch::nn::Module {
    BigImpl() {
      a = register_module("a", torch::nn::Linear(300, 301));  // 90300 weights: three 32768-element chunks
      b = register_module("b", torch::nn::Linear(301, 5));
      unused = register_module("unused", torch::nn::Linear(3, 3));
    }
    torch::Tensor forward(const torch::Tensor& x) { return b(torch::tanh(a(x)) + a(x).pow(2) * 0.01); }
    torch::nn::Linear a{nullptr}, b{nullptr}, unused{nullptr};
  };
  const int threads = at::get_num_threads();
  for (int nt : {1, 2}) {
    at::set_num_threads(nt);
    for (const char* kind : {"adamw", "adam", "sgd"}) {
      nlohmann::json j = {{"optimizer", kind}, {"lr", 1e-2}, {"weight_decay", 0.05}};
      if (std::string(kind) == "sgd") j["momentum"] = 0.9;
      TrainConfig c = Config(j);
      torch::manual_seed(23);
      auto na = std::make_shared<BigImpl>(), nb = std::make_shared<BigImpl>();
      {
        torch::NoGradGuard g;
        for (size_t i = 0; i < na->parameters().size(); ++i) nb->parameters()[i].copy_(na->parameters()[i]);
      }
      auto fa = FlatParameters::Build(*na, {});
      auto fb = FlatParameters::Build(*nb, {});
      ASSERT_TRUE(fa.ok() && fb.ok());
      FusedOptimizer oa(&*fa, c), ob(&*fb, c);
      ob.set_max_piece_for_test(nt == 1 ? 997 : 32768);  // pieces that start inside a range, as threads cut it
      torch::Tensor target = torch::randn({16, 5});
      for (int s = 0; s < 4; ++s) {
        torch::Tensor x = torch::randn({16, 300});
        fa->ZeroGrad();
        torch::mse_loss(na->forward(x), target).backward();
        fa->SyncGrads();
        fb->ZeroGrad();
        fb->grads().fill_(7.0f);  // stale values a range must not read
        torch::mse_loss(nb->forward(x), target).backward();
        const std::vector<GradRange>& ranges = fb->GradRanges();
        ASSERT_EQ(ranges.size(), fb->num_tensors());
        // a.weight's range is autograd's own gradient tensor, not a copy.
        EXPECT_EQ(ranges[0].data, nb->a->weight.grad().data_ptr<float>());
        // The reference steps the flat buffer in one piece (one thread: no chunk boundary inside a range).
        if (s < 2) {
          at::set_num_threads(1);
          oa.Step();
          at::set_num_threads(nt);
          ob.Step(ranges);
        } else {  // with a clipping scale over a slice that starts inside a.weight and ends inside b.weight
          torch::Tensor slice = fa->grads().narrow(0, 40000, 51000);
          torch::Tensor ref = slice.clone();
          ClipGradNorm(slice, 0.01);
          at::set_num_threads(1);
          oa.Step();
          at::set_num_threads(nt);
          const double norm = ref.norm().item<double>();
          GradScale scale;
          scale.offset = 40000;
          scale.count = 51000;
          scale.coef = static_cast<float>(0.01 / (norm + 1e-6));
          ASSERT_LT(scale.coef, 1.0f);
          ob.Step(ranges, scale);
        }
        ASSERT_TRUE(torch::equal(fa->params(), fb->params()))
            << kind << " threads " << nt << " step " << s << ": max |diff| "
            << (fa->params() - fb->params()).abs().max().item<float>();
      }
      // SyncGrads after the ranges brings the buffer up to date (the unused layer's slice zeroed).
      fb->SyncGrads();
      // (before the clipped slice, which the reference rewrote)
      EXPECT_TRUE(torch::equal(fa->grads().narrow(0, 0, 40000), fb->grads().narrow(0, 0, 40000)));
      EXPECT_EQ(nb->unused->weight.grad().abs().sum().item<float>(), 0.0f);
    }
  }
  at::set_num_threads(threads);
}

TEST(FusedOptimizer, AdamWMatchesTorchOptimOver200Steps) {
  TrainConfig c = Config({{"optimizer", "adamw"}, {"lr", 1e-2}, {"weight_decay", 0.01}});
  double d = MaxDiffAfter(c, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(1e-2).weight_decay(0.01));
  }, 200);
  EXPECT_LT(d, 1e-6);
}

TEST(FusedOptimizer, AdamWWithCycledBeta1MatchesTorchOptim) {
  TrainConfig c = Config({{"optimizer", "adamw"}, {"lr", 3e-3}, {"weight_decay", 0.1}});
  double d = MaxDiffAfter(c, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(3e-3).weight_decay(0.1));
  }, 100, /*cycle_beta1=*/true);
  EXPECT_LT(d, 1e-6);
}

TEST(FusedOptimizer, AdamL2MatchesTorchOptim) {
  TrainConfig c = Config({{"optimizer", "adam"}, {"lr", 1e-3}, {"weight_decay", 5e-4}});
  double d = MaxDiffAfter(c, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(1e-3).weight_decay(5e-4));
  }, 200);
  EXPECT_LT(d, 1e-6);
}

TEST(FusedOptimizer, SgdNesterovMatchesTorchOptim) {
  TrainConfig c = Config({{"optimizer", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}, {"nesterov", true},
                          {"weight_decay", 1e-3}});
  double d = MaxDiffAfter(c, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::SGD>(
        p, torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-3));
  }, 200);
  EXPECT_LT(d, 1e-6);
}

TEST(FusedOptimizer, PlainSgdMatchesTorchOptim) {
  TrainConfig c = Config({{"optimizer", "sgd"}, {"lr", 0.1}, {"weight_decay", 0.0}});
  double d = MaxDiffAfter(c, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.1));
  }, 100);
  EXPECT_LT(d, 1e-6);
}

// The whole-buffer tensor path (what a CUDA buffer uses), run on CPU against the same references.
TEST(FusedOptimizer, TensorPathMatchesTorchOptim) {
  TrainConfig adamw = Config({{"optimizer", "adamw"}, {"lr", 3e-3}, {"weight_decay", 0.1}});
  EXPECT_LT(MaxDiffAfter(adamw, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(3e-3).weight_decay(0.1));
  }, 100, /*cycle_beta1=*/true, /*tensor_path=*/true), 1e-6);
  TrainConfig adam = Config({{"optimizer", "adam"}, {"lr", 1e-3}, {"weight_decay", 5e-4}});
  EXPECT_LT(MaxDiffAfter(adam, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(1e-3).weight_decay(5e-4));
  }, 200, false, true), 1e-6);
  TrainConfig nesterov = Config({{"optimizer", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}, {"nesterov", true},
                                 {"weight_decay", 1e-3}});
  EXPECT_LT(MaxDiffAfter(nesterov, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::SGD>(
        p, torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-3));
  }, 200, false, true), 1e-6);
  TrainConfig plain = Config({{"optimizer", "sgd"}, {"lr", 0.1}, {"weight_decay", 1e-2}});
  EXPECT_LT(MaxDiffAfter(plain, [&](std::vector<torch::Tensor> p) {
    return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.1).weight_decay(1e-2));
  }, 100, false, true), 1e-6);
}

TEST(FusedOptimizer, SgdWithZeroMomentumFollowsOneCyclesMomentum) {
  // OneCycle cycles SGD's momentum even when the configured momentum is 0 (torch's OneCycleLR does the same);
  // the buffer must exist then (this used to dereference an empty tensor). Reference: torch::optim::SGD whose
  // momentum is set to the same value before each step.
  TrainConfig c = Config({{"optimizer", "sgd"}, {"lr", 0.05}, {"momentum", 0.0}, {"weight_decay", 0.0}});
  torch::manual_seed(4);
  Net fused, ref;
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < fused->parameters().size(); ++i) ref->parameters()[i].copy_(fused->parameters()[i]);
  }
  auto flat = FlatParameters::Build(*fused, {});
  ASSERT_TRUE(flat.ok());
  FusedOptimizer opt(&*flat, c);
  torch::optim::SGD ref_opt(ref->parameters(), torch::optim::SGDOptions(0.05));
  for (int s = 0; s < 40; ++s) {
    const double mom = s < 3 ? 0.0 : 0.85 + 0.1 * (s % 7) / 6.0;  // starts at 0, then cycles
    opt.set_momentum(mom);
    static_cast<torch::optim::SGDOptions&>(ref_opt.param_groups()[0].options()).momentum(mom);
    torch::Tensor x = torch::randn({16, 7});
    flat->ZeroGrad();
    fused->forward(x).pow(2).mean().backward();
    flat->SyncGrads();
    opt.Step();
    ref_opt.zero_grad();
    ref->forward(x).pow(2).mean().backward();
    for (auto& p : ref->unused->parameters()) p.mutable_grad() = torch::zeros_like(p);
    ref_opt.step();
  }
  double diff = 0;
  for (size_t i = 0; i < fused->parameters().size(); ++i)
    diff = std::max(diff, (fused->parameters()[i] - ref->parameters()[i]).abs().max().item<double>());
  EXPECT_LT(diff, 1e-6);
}

TEST(FusedOptimizer, StateRoundTripContinuesBitwise) {
  TrainConfig c = Config({{"optimizer", "adamw"}, {"lr", 1e-2}});
  torch::manual_seed(1);
  Net a, b;
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  auto fa = FlatParameters::Build(*a, {});
  auto fb = FlatParameters::Build(*b, {});
  FusedOptimizer oa(&*fa, c), ob(&*fb, c);
  auto step = [](Net& n, FlatParameters& f, FusedOptimizer& o, const torch::Tensor& x) {
    f.ZeroGrad();
    n->forward(x).pow(2).mean().backward();
    o.Step();
  };
  std::vector<torch::Tensor> xs;
  for (int i = 0; i < 6; ++i) xs.push_back(torch::randn({8, 7}));
  for (int i = 0; i < 3; ++i) step(a, *fa, oa, xs[i]);
  // b gets a's parameters and optimizer state, then both continue.
  fb->params().copy_(fa->params());
  std::vector<std::pair<std::string, torch::Tensor>> st;
  for (auto& [n, t] : oa.StateTensors()) st.emplace_back(n, t.clone());
  ASSERT_TRUE(ob.LoadState(oa.StateMeta(), st).ok());
  for (int i = 3; i < 6; ++i) {
    step(a, *fa, oa, xs[i]);
    step(b, *fb, ob, xs[i]);
  }
  EXPECT_TRUE(torch::equal(fa->params(), fb->params()));
}

TEST(FusedOptimizer, ClipGradNormScalesLikeTorch) {
  torch::Tensor g = torch::tensor({3.0f, 4.0f});
  double norm = ClipGradNorm(g, 1.0);
  EXPECT_NEAR(norm, 5.0, 1e-6);
  EXPECT_NEAR(g[0].item<float>(), 3.0 / (5 + 1e-6), 1e-6);
  torch::Tensor small = torch::tensor({0.3f, 0.4f});
  ClipGradNorm(small, 1.0);
  EXPECT_FLOAT_EQ(small[1].item<float>(), 0.4f);
}

}  // namespace
}  // namespace emosweep::worker
