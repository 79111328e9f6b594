// models/generator_swap.h: lend a generator's state to torch's default generator of a device for a while.
//
// Ops that take no generator argument (at::dropout, CUDA's fused dropout, a DANN discriminator's
// dropout) draw from the default generator of their tensor's device. A pack member (worker/packed_*.cc) keeps
// its own generator, seeded as its single job seeds the default one (its model's masks come from it directly,
// models/packed_mlp.h; a DANN discriminator's torch dropout through this swap); while a DefaultGeneratorSwap is
// alive the default generator holds the member's state, so such an op makes
// exactly the draws it would make alone. Restore() (or the destructor) hands the advanced state back to
// the member's generator and the default generator its own.
// Thread-safety: the default generator is process-wide; one swap at a time per device (the packed trainer
// runs one pack per process).
#pragma once

#include <torch/torch.h>

#include <mutex>

namespace emosweep::models {

class DefaultGeneratorSwap {
 public:
  // gen: the member's generator (nullptr: no-op); device: whose default generator (its index, if any,
  // names the GPU; the member's generator must be of the same kind).
  DefaultGeneratorSwap(at::Generator* gen, torch::Device device) : gen_(gen), device_(device) {
    if (!gen_) return;
    at::Generator def = Default();
    torch::Tensor mine;
    {
      std::lock_guard<std::mutex> lock(gen_->mutex());
      mine = gen_->get_state();
    }
    std::lock_guard<std::mutex> lock(def.mutex());
    saved_ = def.get_state();
    def.set_state(mine);
  }
  DefaultGeneratorSwap(const DefaultGeneratorSwap&) = delete;
  DefaultGeneratorSwap& operator=(const DefaultGeneratorSwap&) = delete;
  void Restore() {
    if (!gen_) return;
    at::Generator def = Default();
    torch::Tensor advanced;
    {
      std::lock_guard<std::mutex> lock(def.mutex());
      advanced = def.get_state();
      def.set_state(saved_);
    }
    std::lock_guard<std::mutex> lock(gen_->mutex());
    gen_->set_state(advanced);
    gen_ = nullptr;
  }
  ~DefaultGeneratorSwap() { Restore(); }

 private:
  at::Generator Default() const { return at::globalContext().defaultGenerator(device_); }
  at::Generator* gen_;
  torch::Device device_;
  torch::Tensor saved_;
};

// A new generator for `device`'s kind, seeded as torch::manual_seed(seed) seeds that device's default one
// (a CPU mt19937 for the CPU, a Philox seed and offset 0 for a GPU).
inline at::Generator NewGeneratorLike(torch::Device device, uint64_t seed) {
  at::Generator g = at::globalContext().defaultGenerator(device).clone();
  {
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(seed);
  }
  return g;
}

}  // namespace emosweep::models
