// models/counter_dropout.cc: dropout masks from a counter-based stream (see counter_dropout.h).
#include "models/counter_dropout.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
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
  x.bitwise_xor_(at::bitwise_right_shift(x, 16));
  x.mul_(kMul1).bitwise_and_(kMask);
  x.bitwise_xor_(at::bitwise_right_shift(x, 15));
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
  // Leaked on purpose, like the blocks below: tensors freed by static destructors at exit may outlive the
  // allocator or the CUDA context they came from.
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<int, int>, torch::Tensor>;
  std::lock_guard<std::mutex> lock(mu);
  torch::Tensor& t = (*cache)[{static_cast<int>(device.type()), static_cast<int>(device.index())}];
  if (!t.defined() || t.numel() < n) {
    // Positions stay below 2^32 (CounterNoise refuses larger masks), and so the mix's products below 2^63.
    const int64_t cap = std::min<int64_t>(std::max<int64_t>(n, t.defined() ? 2 * t.numel() : 4096), int64_t{1} << 32);
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

namespace {

// A Philox generator's (seed, offset) before this draw; advances it by one draw (4).
PhiloxState TakePhiloxDraw(at::Generator& gen) {
  TORCH_CHECK(gen.device().is_cuda(), "counter dropout: a ", gen.device(), " generator has no Philox state this reads");
  std::lock_guard<std::mutex> lock(gen.mutex());
  torch::Tensor state = gen.get_state();
  const PhiloxState s = ReadPhiloxState(state);
  WritePhiloxOffset(state, s.offset + 4);
  gen.set_state(state);
  return s;
}

}  // namespace

uint32_t NextDropoutKey(at::Generator& gen) {
  if (gen.device().is_cpu()) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get<at::CPUGeneratorImpl>()->random();
  }
  const PhiloxState s = TakePhiloxDraw(gen);
  return PhiloxKey(s.seed, s.offset);
}

uint32_t CounterGenerator::NextKey() {
  if (gen_.device().is_cpu()) return NextDropoutKey(gen_);
  if (!cached_) {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    pos_ = ReadPhiloxState(gen_.get_state());
    cached_ = true;
  }
  const uint32_t key = PhiloxKey(pos_.seed, pos_.offset);
  pos_.offset += 4;
  moved_ = true;
  return key;
}

at::Generator& CounterGenerator::get() {
  if (cached_ && moved_) {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    torch::Tensor state = gen_.get_state();
    WritePhiloxOffset(state, pos_.offset);
    gen_.set_state(state);
  }
  cached_ = moved_ = false;
  return gen_;
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
    noise = at::mul(keep, Scale(p[0], dtype));  // the default type (float), exact for a float scale
    if (noise.scalar_type() != dtype) noise = keep.to(dtype).mul_(Scale(p[0], dtype));
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

torch::Tensor PhiloxNoise(uint64_t seed, uint64_t offset, double p, at::IntArrayRef shape, torch::ScalarType dtype,
                          torch::Device device) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  struct Block {
    uint64_t seed = 0, first = 0;
    int64_t count = 0, n = 0;
    double p = 0;
    torch::ScalarType dtype = torch::kFloat;
    torch::Device device{torch::kCPU};
    torch::Tensor noise;  // [count, n]: draw b at offset first + 4 b
  };
  constexpr size_t kBlocks = 8;             // streams x probabilities x types kept (most recent first)
  constexpr int64_t kMaxDraws = 32;         // draws a block
  constexpr int64_t kMaxBytes = 64 << 20;   // a block's noise at most
  static std::mutex mu;
  static auto* blocks_kept = new std::vector<Block>;  // never destroyed (see PositionHashes)
  std::vector<Block>& blocks = *blocks_kept;
  std::lock_guard<std::mutex> lock(mu);
  int64_t widest = n;  // a new block covers the widest draw seen on this stream
  for (size_t i = 0; i < blocks.size(); ++i) {
    Block& b = blocks[i];
    if (b.seed != seed || b.p != p || b.dtype != dtype || b.device != device) continue;
    widest = std::max(widest, b.n);
    if (offset < b.first || (offset - b.first) % 4 != 0 || n > b.n) continue;
    const uint64_t idx = (offset - b.first) / 4;
    if (idx >= static_cast<uint64_t>(b.count)) continue;
    torch::Tensor out = b.noise[static_cast<int64_t>(idx)].narrow(0, 0, n).view(shape);
    const auto it = blocks.begin() + static_cast<std::ptrdiff_t>(i);
    std::rotate(blocks.begin(), it, it + 1);  // most recent first
    return out;
  }
  Block b;
  b.seed = seed;
  b.first = offset;
  b.n = widest;
  b.p = p;
  b.dtype = dtype;
  b.device = device;
  b.count = std::max<int64_t>(1, std::min<int64_t>(kMaxDraws, kMaxBytes / (widest * c10::elementSize(dtype))));
  std::vector<uint32_t> keys;
  for (int64_t i = 0; i < b.count; ++i) keys.push_back(PhiloxKey(seed, offset + 4 * static_cast<uint64_t>(i)));
  b.noise = CounterNoise(keys, std::vector<double>(keys.size(), p), {widest}, dtype, device);
  torch::Tensor out = b.noise[0].narrow(0, 0, n).view(shape);
  // Replaces a block of the same stream (its draws are behind), else the least recently used.
  auto same = std::find_if(blocks.begin(), blocks.end(), [&](const Block& o) {
    return o.seed == seed && o.p == p && o.dtype == dtype && o.device == device;
  });
  if (same != blocks.end()) blocks.erase(same);
  else if (blocks.size() >= kBlocks) blocks.pop_back();
  blocks.insert(blocks.begin(), std::move(b));
  return out;
}

torch::Tensor CounterDropout(torch::Tensor input, double p, bool train, bool inplace, at::Generator gen) {
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability has to be between 0 and 1, but got ", p);
  if (p == 0 || !train || input.numel() == 0) return input;
  if (p == 1) {
    torch::Tensor zero = at::zeros({}, input.options());
    return inplace ? input.mul_(zero) : input * zero;
  }
  torch::Tensor noise;
  if (gen.device().is_cpu()) {
    noise = CounterNoise({NextDropoutKey(gen)}, {p}, input.sizes(), input.scalar_type(), input.device());
  } else {
    const PhiloxState s = TakePhiloxDraw(gen);
    noise = PhiloxNoise(s.seed, s.offset, p, input.sizes(), input.scalar_type(), input.device());
  }
  noise = noise.view(input.sizes());
  return inplace ? input.mul_(noise) : input * noise;
}

void SetCounterDropoutOnCpuForTest(bool on) { g_on_cpu = on; }
bool CounterDropoutOnCpu() { return g_on_cpu; }

}  // namespace emosweep::models
