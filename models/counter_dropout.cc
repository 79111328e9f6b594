// models/counter_dropout.cc: dropout masks from a counter-based stream (see counter_dropout.h).
#include "models/counter_dropout.h"

#include <ATen/CPUGeneratorImpl.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "models/host_to_device.h"

namespace emosweep::models {
namespace {

std::atomic<bool> g_on_cpu{false};

// Values stay below 2^32 in int64 tensors: a product of such a value and a multiplier below 2^31 stays
// below 2^63 (no overflow), and the mask keeps its low 32 bits.
constexpr int64_t kMask = 0xffffffff;
constexpr int64_t kMul1 = 0x7feb352dLL;  // lowbias32's first multiplier
constexpr int64_t kMul2 = 0x5bd1e995LL;  // MurmurHash2's multiplier (below 2^31, unlike lowbias32's second)

// x <- a bijective 32-bit mix of x (xorshift-multiply, lowbias32's shape): 8 element-wise ops in place. The
// trailing xorshift of lowbias32 is left out: it moves high bits down, and the mask compares u with a
// threshold, which its high bits decide.
void Mix32_(torch::Tensor& x) {
  x.bitwise_xor_(at::__rshift__(x, 16));
  x.mul_(kMul1).bitwise_and_(kMask);
  x.bitwise_xor_(at::__rshift__(x, 15));
  x.mul_(kMul2).bitwise_and_(kMask);
}

uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// PositionHash(i) = Mix32(i ^ 0x9e3779b9) for i < n, as int64 on `device`: computed once per device (grown
// when a larger mask is asked for; the values do not depend on the size) and kept for the process.
torch::Tensor PositionHashes(int64_t n, torch::Device device) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, torch::Tensor> cache;
  std::lock_guard<std::mutex> lock(mu);
  torch::Tensor& t = cache[{static_cast<int>(device.type()), static_cast<int>(device.index())}];
  if (!t.defined() || t.numel() < n) {
    const int64_t cap = std::max<int64_t>(n, t.defined() ? 2 * t.numel() : 4096);
    torch::NoGradGuard no_grad;
    torch::Tensor h = torch::arange(cap, torch::TensorOptions().dtype(torch::kLong).device(device));
    h.bitwise_xor_(static_cast<int64_t>(0x9e3779b9LL));
    Mix32_(h);
    t = h;
  }
  return t.narrow(0, 0, n);
}

// Kept iff u < Threshold(p): P(kept) = floor((1 - p) · 2^32) / 2^32.
int64_t Threshold(double p) {
  if (p <= 0) return int64_t{1} << 32;
  if (p >= 1) return 0;
  return static_cast<int64_t>(std::ldexp(1 - p, 32));
}

// The kept value: 1/(1 - p) in the noise's type, as torch's dropout scales (p == 1: nothing is kept).
double Scale(double p, torch::ScalarType dtype) {
  if (p >= 1) return 0;
  if (dtype == torch::kFloat) return static_cast<double>(1.f / static_cast<float>(1 - p));
  return 1 / (1 - p);
}

}  // namespace

PhiloxState ReadPhiloxState(const torch::Tensor& state) {
  TORCH_CHECK(state.device().is_cpu() && state.scalar_type() == torch::kByte && state.is_contiguous() &&
                  state.numel() >= 16,
              "counter dropout: a Philox generator state is a CPU byte tensor ending in seed and offset (got ",
              state.numel(), " elements)");
  const uint8_t* d = state.data_ptr<uint8_t>() + state.numel() - 16;
  PhiloxState s;
  std::memcpy(&s.seed, d, 8);
  std::memcpy(&s.offset, d + 8, 8);
  return s;
}

void WritePhiloxOffset(torch::Tensor& state, uint64_t offset) {
  (void)ReadPhiloxState(state);  // the same checks
  std::memcpy(state.data_ptr<uint8_t>() + state.numel() - 8, &offset, 8);
}

uint32_t PhiloxKey(uint64_t seed, uint64_t offset) {
  return static_cast<uint32_t>(SplitMix64(seed ^ SplitMix64(offset)) >> 32);
}

uint32_t NextDropoutKey(at::Generator& gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  if (gen.device().is_cpu()) return gen.get<at::CPUGeneratorImpl>()->random();
  torch::Tensor state = gen.get_state();
  const PhiloxState s = ReadPhiloxState(state);
  WritePhiloxOffset(state, s.offset + 4);
  gen.set_state(state);
  return PhiloxKey(s.seed, s.offset);
}

torch::Tensor CounterNoise(const std::vector<uint32_t>& keys, const std::vector<double>& p,
                           at::IntArrayRef member_shape, torch::ScalarType dtype, torch::Device device) {
  TORCH_CHECK(!keys.empty() && keys.size() == p.size(), "counter dropout: ", keys.size(), " keys for ", p.size(),
              " probabilities");
  int64_t n = 1;
  for (int64_t s : member_shape) n *= s;
  TORCH_CHECK(n < (int64_t{1} << 32), "counter dropout: a mask of ", n, " elements (at most 2^32)");
  torch::NoGradGuard no_grad;
  const torch::Tensor h = PositionHashes(n, device);
  const int64_t m = static_cast<int64_t>(keys.size());
  std::vector<int64_t> shape = {m};
  shape.insert(shape.end(), member_shape.begin(), member_shape.end());
  torch::Tensor noise;
  if (m == 1) {
    torch::Tensor a = at::bitwise_xor(h, static_cast<int64_t>(keys[0]));
    Mix32_(a);
    torch::Tensor keep = a.lt(Threshold(p[0]));
    const double scale = Scale(p[0], dtype);
    noise = dtype == torch::kFloat ? at::mul(keep, scale) : keep.to(dtype).mul_(scale);
    return noise.view(shape);
  }
  std::vector<int64_t> kt(static_cast<size_t>(2 * m));
  std::vector<double> st(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) {
    kt[static_cast<size_t>(j)] = keys[static_cast<size_t>(j)];
    kt[static_cast<size_t>(m + j)] = Threshold(p[static_cast<size_t>(j)]);
    st[static_cast<size_t>(j)] = Scale(p[static_cast<size_t>(j)], dtype);
  }
  torch::Tensor k = torch::from_blob(kt.data(), {2, m, 1}, torch::kLong);
  torch::Tensor s = torch::from_blob(st.data(), {m, 1}, torch::kDouble).to(dtype);
  k = HostToDevice(k, device);  // on the CPU: the host tensors themselves, used before they go
  s = HostToDevice(s, device);
  torch::Tensor a = at::bitwise_xor(h.view({1, n}), k[0]);
  Mix32_(a);
  noise = at::mul(a.lt(k[1]), s);
  return noise.view(shape);
}

torch::Tensor CounterDropout(torch::Tensor input, double p, bool train, bool inplace, at::Generator gen) {
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability has to be between 0 and 1, but got ", p);
  if (p == 0 || !train || input.numel() == 0) return input;
  if (p == 1) {
    torch::Tensor zero = at::zeros({}, input.options());
    return inplace ? input.mul_(zero) : input * zero;
  }
  const uint32_t key = NextDropoutKey(gen);
  torch::Tensor noise = CounterNoise({key}, {p}, input.sizes(), input.scalar_type(), input.device());
  noise = noise.view(input.sizes());
  return inplace ? input.mul_(noise) : input * noise;
}

void SetCounterDropoutOnCpuForTest(bool on) { g_on_cpu = on; }
bool CounterDropoutOnCpu() { return g_on_cpu; }

}  // namespace emosweep::models
