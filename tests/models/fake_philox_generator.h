// tests/models/fake_philox_generator.h: a stand-in for a CUDA generator on a CPU-only build, for the counter
// dropout stream's tests (models/counter_dropout.h): a Philox (seed, offset) in CUDA's 16-byte state layout
// (seed, then offset), naming a CUDA device so that the code takes its Philox paths; nothing here calls CUDA.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <cstring>

namespace emosweep::testing {

struct FakePhiloxGenerator : public c10::GeneratorImpl {
  explicit FakePhiloxGenerator(uint64_t seed = 0)
      : c10::GeneratorImpl(c10::Device(c10::DeviceType::CUDA, 0), c10::DispatchKeySet(c10::DispatchKey::CUDA)),
        seed_(seed) {}
  void set_current_seed(uint64_t seed) override {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t current_seed() const override { return seed_; }
  uint64_t seed() override { return seed_; }
  void set_offset(uint64_t offset) { offset_ = offset; }  // torch >= 2 declares these virtual (this test
  uint64_t get_offset() const { return offset_; }         // builds against 1.13 only: gpu-check skips tests)
  void set_state(const c10::TensorImpl& state) override {
    TORCH_CHECK(state.numel() == 16, "fake Philox state: 16 bytes");
    std::memcpy(&seed_, static_cast<const uint8_t*>(state.data()), 8);
    std::memcpy(&offset_, static_cast<const uint8_t*>(state.data()) + 8, 8);
  }
  c10::intrusive_ptr<c10::TensorImpl> get_state() const override {
    torch::Tensor t = torch::empty({16}, torch::kByte);
    std::memcpy(t.data_ptr<uint8_t>(), &seed_, 8);
    std::memcpy(t.data_ptr<uint8_t>() + 8, &offset_, 8);
    return t.getIntrusivePtr();
  }

 private:
  FakePhiloxGenerator* clone_impl() const override {
    auto* g = new FakePhiloxGenerator(seed_);
    g->offset_ = offset_;
    return g;
  }
  uint64_t seed_ = 0, offset_ = 0;
};

}  // namespace emosweep::testing
