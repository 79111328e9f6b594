// The counter-based dropout stream (models/counter_dropout.h): a pack's batched noise is, member by member,
// bitwise the noise its job draws alone; the generator advances by one key a draw (none for p = 0 or 1);
// the masks keep 1 - p of the elements with no measurable correlation between draws, positions or streams;
// the CPU path stays at::dropout's unless the tests' hook is on.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "models/counter_dropout.h"
#include "models/dropout.h"
#include "models/layers.h"
#include "models/packed_mlp.h"
#include "tests/models/fake_philox_generator.h"

namespace emosweep::models {
namespace {

using testing::FakePhiloxGenerator;

bool SameBits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  torch::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel()) * ca.element_size()) == 0;
}

struct CounterOnCpu {
  CounterOnCpu() { SetCounterDropoutOnCpuForTest(true); }
  ~CounterOnCpu() { SetCounterDropoutOnCpuForTest(false); }
};

// Pearson correlation of two 0/1 vectors.
double Corr(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor x = a.to(torch::kDouble).flatten(), y = b.to(torch::kDouble).flatten();
  x = x - x.mean();
  y = y - y.mean();
  return (x * y).sum().item<double>() / std::sqrt((x * x).sum().item<double>() * (y * y).sum().item<double>());
}

PhiloxState StateOf(at::Generator& g) { return ReadPhiloxState(g.get_state()); }

TEST(CounterDropout, PhiloxStateLayout) {
  // CUDA's get_state: 16 bytes, seed then offset; an older layout ends with the same two fields.
  for (int64_t size : {16, 16 + 200 * 4120}) {
    torch::Tensor state = torch::zeros({size}, torch::kByte);
    const uint64_t seed = 0x0123456789abcdefULL, offset = 40;
    std::memcpy(state.data_ptr<uint8_t>() + size - 16, &seed, 8);
    std::memcpy(state.data_ptr<uint8_t>() + size - 8, &offset, 8);
    PhiloxState s = ReadPhiloxState(state);
    EXPECT_EQ(s.seed, seed);
    EXPECT_EQ(s.offset, offset);
    WritePhiloxOffset(state, 44);
    EXPECT_EQ(ReadPhiloxState(state).seed, seed);
    EXPECT_EQ(ReadPhiloxState(state).offset, 44u);
  }
  EXPECT_THROW(ReadPhiloxState(torch::zeros({8}, torch::kByte)), c10::Error);
  EXPECT_THROW(ReadPhiloxState(torch::zeros({16}, torch::kFloat)), c10::Error);
  // Keys of neighbouring offsets and seeds differ.
  EXPECT_NE(PhiloxKey(1, 0), PhiloxKey(1, 4));
  EXPECT_NE(PhiloxKey(1, 0), PhiloxKey(2, 0));
  EXPECT_EQ(PhiloxKey(7, 8), PhiloxKey(7, 8));
}

TEST(CounterDropout, ACpuGeneratorGivesOneDrawAKey) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  auto ref = at::make_generator<at::CPUGeneratorImpl>(5);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(NextDropoutKey(g), ref.get<at::CPUGeneratorImpl>()->random());
  EXPECT_TRUE(SameBits(g.get_state(), ref.get_state()));
}

// Member j's slice of a pack's noise is bitwise its noise alone (the m = 1 path, scalar operands), whatever
// the other members' p; p = 0 is all ones, p = 1 all zeros; float and double.
TEST(CounterDropout, PackedNoiseIsEachMembersNoiseAlone) {
  const std::vector<uint32_t> keys = {11, 0, 0xdeadbeefu, 7, 0x80000000u};
  const std::vector<double> p = {0.3, 0.0, 0.5, 1.0, 0.1};
  for (torch::ScalarType dt : {torch::kFloat, torch::kDouble}) {
    torch::Tensor all = CounterNoise(keys, p, {9, 33}, dt, torch::kCPU);
    ASSERT_EQ(all.sizes(), torch::IntArrayRef({5, 9, 33}));
    EXPECT_EQ(all.scalar_type(), dt);
    for (size_t j = 0; j < keys.size(); ++j) {
      torch::Tensor one = CounterNoise({keys[j]}, {p[j]}, {9, 33}, dt, torch::kCPU);
      EXPECT_TRUE(SameBits(all[static_cast<int64_t>(j)], one[0])) << j;
    }
    EXPECT_TRUE(all[1].eq(1).all().item<bool>());
    EXPECT_TRUE(all[3].eq(0).all().item<bool>());
    const double kept = dt == torch::kFloat ? static_cast<double>(1.f / 0.7f) : 1 / 0.7;
    EXPECT_TRUE(torch::logical_or(all[0].eq(0), all[0].eq(kept)).all().item<bool>());
    // A smaller draw is the prefix of a larger one with the same key (the mask is a function of position).
    torch::Tensor big = CounterNoise({keys[0]}, {p[0]}, {20, 33}, dt, torch::kCPU);
    EXPECT_TRUE(SameBits(big[0].narrow(0, 0, 9), all[0]));
  }
}

// The masks are Bernoulli(1 - p) to the eye of these checks: the keep rate, and no correlation between
// consecutive draws of one stream (keys from consecutive Philox offsets, as on a GPU; and from a CPU
// generator), between streams of consecutive seeds, between neighbouring positions, or between keys one bit
// apart (the case a weak mix gets wrong). Bounds: 5 standard deviations.
TEST(CounterDropout, MasksLookIndependent) {
  const int64_t t = 256, n = 4096;
  const double p = 0.3, q = 1 - p;
  auto masks = [&](auto key_of) {
    std::vector<uint32_t> keys;
    for (int64_t i = 0; i < t; ++i) keys.push_back(key_of(i));
    return CounterNoise(keys, std::vector<double>(t, p), {n}, torch::kFloat, torch::kCPU).ne(0);
  };
  auto g = at::make_generator<at::CPUGeneratorImpl>(42);
  const std::vector<std::pair<std::string, torch::Tensor>> sets = {
      {"philox offsets", masks([](int64_t i) { return PhiloxKey(1234, 4 * static_cast<uint64_t>(i)); })},
      {"philox seeds", masks([](int64_t i) { return PhiloxKey(1000 + static_cast<uint64_t>(i), 0); })},
      {"cpu generator", masks([&](int64_t) { return NextDropoutKey(g); })}};
  const double sd_pair = 1 / std::sqrt(static_cast<double>((t - 1) * n));
  for (const auto& [name, m] : sets) {
    const double rate = m.to(torch::kDouble).mean().item<double>();
    EXPECT_NEAR(rate, q, 5 * std::sqrt(p * q / static_cast<double>(t * n))) << name;
    EXPECT_LT(std::fabs(Corr(m.narrow(0, 0, t - 1), m.narrow(0, 1, t - 1))), 5 * sd_pair) << name << ": draws";
    EXPECT_LT(std::fabs(Corr(m.narrow(1, 0, n - 1), m.narrow(1, 1, n - 1))), 5 * sd_pair) << name << ": positions";
    // Each position's keep count over the draws is Binomial(t, q): their spread matches.
    const double var = m.to(torch::kDouble).mean(0).var().item<double>();
    EXPECT_NEAR(var, p * q / t, 0.15 * p * q / t) << name;
  }
  const int64_t big = 1 << 20;
  const double sd_big = 1 / std::sqrt(static_cast<double>(big));
  for (int bit : {0, 7, 15, 16, 24, 31}) {
    const uint32_t k = 0x6a09e667u;
    torch::Tensor a = CounterNoise({k}, {0.5}, {big}, torch::kFloat, torch::kCPU).ne(0);
    torch::Tensor b = CounterNoise({k ^ (1u << bit)}, {0.5}, {big}, torch::kFloat, torch::kCPU).ne(0);
    EXPECT_LT(std::fabs(Corr(a, b)), 5 * sd_big) << "keys one bit apart: " << bit;
  }
}

// A Philox generator's stream: NextDropoutKey takes the key of its (seed, offset) and moves it by 4; a member's
// CounterGenerator makes the same keys keeping the position on the host, and get() hands the generator back where
// the stream is, whatever happens to it in between (a state restored, another draw through it).
TEST(CounterDropout, PhiloxGeneratorsKeyAndAdvanceByFour) {
  at::Generator a = at::make_generator<FakePhiloxGenerator>(31);
  at::Generator b = at::make_generator<FakePhiloxGenerator>(31);
  CounterGenerator cb(b);
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(NextDropoutKey(a), PhiloxKey(31, 4 * i));
    EXPECT_EQ(cb.NextKey(), PhiloxKey(31, 4 * i));
  }
  EXPECT_EQ(StateOf(a).offset, 20u);
  EXPECT_EQ(StateOf(b).offset, 0u) << "the position stays on the host until get()";
  EXPECT_EQ(StateOf(cb.get()).offset, 20u);
  // Someone else draws through the generator (a discriminator's dropout under the swap: offset + 8), then keys.
  {
    at::Generator& g = cb.get();
    torch::Tensor st = g.get_state();
    WritePhiloxOffset(st, 28);
    g.set_state(st);
  }
  EXPECT_EQ(cb.NextKey(), PhiloxKey(31, 28));
  // A restored state (resume): the next key is the restored position's.
  {
    at::Generator& g = cb.get();
    EXPECT_EQ(StateOf(g).offset, 32u);
    torch::Tensor st = g.get_state();
    WritePhiloxOffset(st, 8);
    g.set_state(st);
  }
  EXPECT_EQ(cb.NextKey(), PhiloxKey(31, 8));
  EXPECT_EQ(StateOf(cb.get()).offset, 12u);
  // A job alone: CounterDropout on a Philox generator = the noise at its position, and the position moves by 4.
  at::Generator alone = at::make_generator<FakePhiloxGenerator>(5);
  const torch::Tensor x = torch::randn({8, 12});
  for (uint64_t i = 0; i < 3; ++i) {
    const torch::Tensor y = CounterDropout(x, 0.25, true, false, alone);
    const torch::Tensor want = x * CounterNoise({PhiloxKey(5, 4 * i)}, {0.25}, {8, 12}, torch::kFloat, torch::kCPU)[0];
    EXPECT_TRUE(SameBits(y, want)) << i;
  }
  EXPECT_EQ(StateOf(alone).offset, 12u);
}

// A job alone on a GPU takes its noise through PhiloxNoise's blocks: whatever the order of the asks (two layers
// of different widths alternating along the stream, a smaller last batch, a wider draw, a step back as after a
// resume, another stream, probability or type in between), each is bitwise the draw computed on its own.
TEST(CounterDropout, PhiloxNoiseBlocksEqualEachDrawComputedAlone) {
  struct Ask {
    uint64_t seed, offset;
    double p;
    std::vector<int64_t> shape;
    torch::ScalarType dtype;
  };
  std::vector<Ask> asks;
  for (uint64_t i = 0; i < 80; ++i)
    asks.push_back({77, 4 * i, 0.3, i % 2 ? std::vector<int64_t>{32, 8} : std::vector<int64_t>{32, 16}, torch::kFloat});
  asks.push_back({77, 320, 0.3, {5, 16}, torch::kFloat});
  asks.push_back({78, 0, 0.3, {32, 16}, torch::kFloat});
  asks.push_back({77, 324, 0.3, {64, 16}, torch::kFloat});  // wider than the block
  asks.push_back({77, 328, 0.3, {32, 16}, torch::kFloat});
  asks.push_back({77, 8, 0.3, {32, 16}, torch::kFloat});  // back to an earlier position
  asks.push_back({77, 332, 0.5, {32, 16}, torch::kFloat});
  asks.push_back({77, 336, 0.3, {32, 16}, torch::kDouble});
  asks.push_back({78, 4, 0.3, {32, 16}, torch::kFloat});
  asks.push_back({77, 12, 0.3, {32, 16}, torch::kFloat});
  for (size_t i = 0; i < asks.size(); ++i) {
    const Ask& a = asks[i];
    torch::Tensor got = PhiloxNoise(a.seed, a.offset, a.p, a.shape, a.dtype, torch::kCPU);
    torch::Tensor want = CounterNoise({PhiloxKey(a.seed, a.offset)}, {a.p}, a.shape, a.dtype, torch::kCPU)[0];
    ASSERT_TRUE(SameBits(got, want)) << "ask " << i << " at offset " << a.offset;
  }
}

TEST(CounterDropout, DropoutDrawsOneKeyAndMultipliesByTheNoise) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(9);
  auto ref = at::make_generator<at::CPUGeneratorImpl>(9);
  torch::Tensor x = torch::randn({6, 10}).requires_grad_(true);
  torch::Tensor y = CounterDropout(x, 0.4, /*train=*/true, /*inplace=*/false, g);
  const uint32_t key = NextDropoutKey(ref);
  torch::Tensor noise = CounterNoise({key}, {0.4}, {6, 10}, torch::kFloat, torch::kCPU)[0];
  EXPECT_TRUE(SameBits(y, x * noise));
  y.sum().backward();
  EXPECT_TRUE(SameBits(x.grad(), noise));
  EXPECT_TRUE(SameBits(g.get_state(), ref.get_state()));
  // p = 0, eval mode and empty inputs return the input; p = 1 zeros it; none of them draws.
  EXPECT_TRUE(CounterDropout(x, 0.0, true, false, g).is_same(x));
  EXPECT_TRUE(CounterDropout(x, 0.4, false, false, g).is_same(x));
  torch::Tensor e = torch::empty({0, 3});
  EXPECT_TRUE(CounterDropout(e, 0.4, true, false, g).is_same(e));
  EXPECT_TRUE(CounterDropout(x, 1.0, true, false, g).eq(0).all().item<bool>());
  EXPECT_TRUE(SameBits(g.get_state(), ref.get_state()));
  torch::Tensor z = x.detach().clone();
  torch::Tensor r = CounterDropout(z, 0.4, true, /*inplace=*/true, g);
  EXPECT_TRUE(r.is_same(z));
  EXPECT_THROW(CounterDropout(x, 1.5, true, false, g), c10::Error);
}

// The MLP family's dropout: on the CPU at::dropout's draws (FastDropout, bitwise and the same generator state)
// unless the hook is on; with it, the counter stream from the default generator. Other models never take it.
TEST(CounterDropout, OnlyTheMlpStackTakesItAndOnTheCpuOnlyUnderTheHook) {
  torch::nn::Sequential stack = MlpStack(5, {16, 8}, 0.3);
  const torch::Tensor x = torch::randn({4, 5});
  // By hand: linear, relu, then the dropout `drop` draws, per hidden layer.
  auto by_hand = [&](const std::function<torch::Tensor(torch::Tensor)>& drop) {
    torch::Tensor h = x;
    for (size_t i = 0; i < stack->size(); ++i) {
      std::shared_ptr<torch::nn::Module> mod = stack->ptr(i);
      if (auto* l = mod->as<torch::nn::Linear>())
        h = l->forward(h);
      else if (mod->as<torch::nn::ReLU>())
        h = torch::relu(h);
      else
        h = drop(h);
    }
    return h;
  };
  at::Generator def = at::detail::getDefaultCPUGenerator();
  torch::manual_seed(3);
  const torch::Tensor a = stack->forward(x);
  torch::manual_seed(3);
  EXPECT_TRUE(SameBits(a, by_hand([](torch::Tensor h) { return torch::dropout(h, 0.3, true); })))
      << "the CPU path changed";
  CounterOnCpu on;
  torch::manual_seed(3);
  const torch::Tensor b = stack->forward(x);
  EXPECT_FALSE(SameBits(a, b));
  torch::manual_seed(3);
  EXPECT_TRUE(SameBits(b, by_hand([&](torch::Tensor h) { return CounterDropout(h, 0.3, true, false, def); })));
  EXPECT_TRUE(UsesCounterDropout(torch::Device(torch::kCUDA, 0)));
  EXPECT_FALSE(UsesCounterDropout(torch::Device(torch::kMeta)));
  // A plain FastDropout (every other model) keeps at::dropout's draws under the hook.
  FastDropout plain(0.3);
  torch::manual_seed(4);
  const torch::Tensor c = plain(x);
  torch::manual_seed(4);
  EXPECT_TRUE(SameBits(c, torch::dropout(x, 0.3, true)));
}

// The pack's batched MLP with the counter stream: member j's output is bitwise what its rows give alone through
// the same layers (one member a forward), and each generator advances by one key per dropout layer (none for
// p = 0 or 1).
TEST(CounterDropout, PackedMlpMembersDrawAsAlone) {
  CounterOnCpu on;
  const int64_t k = 4, n = 7, d = 6, h = 33, c = 3;
  const std::vector<double> p = {0.3, 0.0, 0.5, 1.0};
  PackedMlp mlp;
  mlp.k = static_cast<int>(k);
  mlp.dropout = p;
  auto gen_w = at::make_generator<at::CPUGeneratorImpl>(3);
  for (auto [in, out] : {std::pair<int64_t, int64_t>{d, h}, {h, h}, {h, c}}) {
    PackedLayer l;
    l.in = in;
    l.out = out;
    l.w = at::randn({k, out, in}, gen_w);
    l.b = at::randn({k, out}, gen_w);
    mlp.layers.push_back(l);
  }
  const torch::Tensor x = at::randn({k, n, d}, gen_w);
  std::vector<CounterGenerator> gens;
  for (int64_t j = 0; j < k; ++j) gens.emplace_back(at::make_generator<at::CPUGeneratorImpl>(100 + j));
  std::vector<CounterGenerator*> ptrs;
  for (auto& g : gens) ptrs.push_back(&g);
  torch::NoGradGuard ng;
  const torch::Tensor all = mlp.Forward({0, 1, 2, 3}, x, /*training=*/true, ptrs);
  for (int64_t j = 0; j < k; ++j) {
    CounterGenerator cg(at::make_generator<at::CPUGeneratorImpl>(100 + j));
    const torch::Tensor one = mlp.Forward({static_cast<int>(j)}, x.narrow(0, j, 1), true, {&cg});
    at::Generator& g = cg.get();
    EXPECT_TRUE(SameBits(one[0], all[j])) << "member " << j;
    EXPECT_TRUE(SameBits(g.get_state(), gens[static_cast<size_t>(j)].get().get_state())) << "member " << j;
    auto fresh = at::make_generator<at::CPUGeneratorImpl>(100 + j);
    const bool drew = p[static_cast<size_t>(j)] > 0 && p[static_cast<size_t>(j)] < 1;
    if (drew) {
      (void)NextDropoutKey(fresh);
      (void)NextDropoutKey(fresh);  // two hidden layers
    }
    EXPECT_TRUE(SameBits(fresh.get_state(), g.get_state())) << "member " << j;
  }
}

}  // namespace
}  // namespace emosweep::models
