// models/counter_dropout.h: dropout masks from a counter-based stream, so that the masks of many jobs
// (a pack's members, each with its own generator) are drawn by one batched computation, and each equals
// the mask the job alone draws.
//
// Why (docs/design/packing.md "Packs on a GPU"): on a GPU torch's dropout draws from cuRAND Philox with
// the default generator's (seed, offset), one kernel per call; a member of a pack must draw its own mask
// from its own stream, so a pack of K paid K launches a dropout layer, the one per-member cost left on a
// GPU. Here element i of a draw's mask is a pure function of (key, i), where the key comes from the
// generator:
//   - a CUDA (Philox) generator: key = PhiloxKey(seed, offset) from its state; the offset then advances by 4
//     (Philox's granularity), so the state file's `rng.cuda` still holds the whole stream;
//   - a CPU generator (the MLP family on the CPU only under SetCounterDropoutOnCpuForTest, which the tests
//     and the launch-count census use): one 32-bit draw of its mt19937.
// The mask: u_i = Mix32(PositionHash(i) ^ key), kept iff u_i < floor((1 - p) · 2^32), kept values
// 1/float(1 - p) for float tensors as torch's dropout scales them (1/(1 - p) in the tensor's type otherwise).
// All integer arithmetic, exact on every device: the same key gives the same mask whatever the batch's
// layout, so a member's slice of a pack's [m, n, H] noise is bitwise the [n, H] noise its job draws alone.
// It costs ~11 element-wise ops a draw for any number of members (torch's fused dropout: 1 op a member).
// Where it is used: the MLP family's dropout (models::MlpStack, the packable models) on a CUDA device, and
// the pack's batched MLP there (models/packed_mlp.h). Every other model and device keeps torch's dropout.
// Thread-safety: keys are drawn under the generator's mutex; the position-hash and block caches are
// mutex-guarded (CounterGenerator: one thread).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace emosweep::models {

// A Philox generator's state (CUDA's get_state: seed then offset, 8 bytes each; older layouts end with
// the same two fields).
struct PhiloxState {
  uint64_t seed = 0, offset = 0;
};
PhiloxState ReadPhiloxState(const torch::Tensor& state);
// `state` (a CPU uint8 tensor as get_state returns it) with its offset set to `offset`, in place.
void WritePhiloxOffset(torch::Tensor& state, uint64_t offset);
// The 32-bit key of the draw at (seed, offset): SplitMix64 of both, high word.
uint32_t PhiloxKey(uint64_t seed, uint64_t offset);

// The next key of gen's dropout stream, advancing gen (see above). Locks gen's mutex.
uint32_t NextDropoutKey(at::Generator& gen);

// A pack member's dropout generator. Keys as NextDropoutKey draws them, but a Philox generator's position is
// read from its state once and then advanced on the host (a key every dropout layer and step: a get_state /
// set_state pair a draw, K of them a layer, would cost the host about what the pack saves in launches at large
// K). get() writes the position back and forgets it: every other use of the generator (its state file, a
// DANN discriminator's torch dropout under DefaultGeneratorSwap) goes through get(), so it sees where the
// stream is, and the next key reads the state again. A CPU generator is used directly (no position to keep).
// Not thread-safe (a member is trained by one thread).
class CounterGenerator {
 public:
  CounterGenerator() = default;
  explicit CounterGenerator(at::Generator gen) : gen_(std::move(gen)) {}
  uint32_t NextKey();
  at::Generator& get();

 private:
  at::Generator gen_;
  bool cached_ = false, moved_ = false;
  PhiloxState pos_;
};

// The noise of m draws: [m, shape...] of `dtype` on `device`, member j's slice from keys[j] and p[j]
// (p == 0: all 1, p == 1: all 0, whatever the key). m == 1 uses scalar operands (no host-to-device copy);
// the values are the same either way.
torch::Tensor CounterNoise(const std::vector<uint32_t>& keys, const std::vector<double>& p,
                           at::IntArrayRef member_shape, torch::ScalarType dtype, torch::Device device);

// The noise of the draw at (seed, offset) of a Philox generator's stream, [shape...]: bitwise
// CounterNoise({PhiloxKey(seed, offset)}, {p}, shape, ...)[0]. Memoised: a miss computes the next draws of
// that stream too (offsets offset, offset + 4, ...: up to 32, within 64 MiB of noise; computing a block takes
// about 4 times that for a moment; up to 8 blocks are kept for the process), so a job alone on a GPU pays
// the ~11 ops of a draw once per block rather than per draw; its layers' draws, which alternate along the
// stream with different sizes, share the block (a mask is a function of the position: a smaller draw is a
// prefix). Keyed by the stream position itself, so a reseed or a restored state needs no invalidation.
torch::Tensor PhiloxNoise(uint64_t seed, uint64_t offset, double p, at::IntArrayRef shape, torch::ScalarType dtype,
                          torch::Device device);

// Dropout of `input` with its mask from gen's counter stream; as at::dropout, p == 0, eval mode or an
// empty input return the input and p == 1 multiplies by 0, drawing no key. `inplace`: input.mul_(noise).
torch::Tensor CounterDropout(torch::Tensor input, double p, bool train, bool inplace, at::Generator gen);

// Whether the MLP family's dropout uses the counter stream for CPU tensors too (default: no, CPU dropout
// stays at::dropout's draws). For tests and the launch-count census (bench/pack_bench --count-ops).
void SetCounterDropoutOnCpuForTest(bool on);
bool CounterDropoutOnCpu();
// Whether a tensor on `device` takes the counter stream in the MLP family: CUDA (whose generator's state is the
// Philox seed and offset this reads), and the CPU under the hook. Other devices keep torch's dropout.
inline bool UsesCounterDropout(const torch::Device& device) {
  return device.is_cuda() || (device.is_cpu() && CounterDropoutOnCpu());
}

}  // namespace emosweep::models
