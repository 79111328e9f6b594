// worker/huge_pages: the training state's large buffers (flat parameters and gradients, the fused optimizer's
// state) sit on 2 MB aligned mappings the kernel may back with huge pages, hold zeros (or the copied
// parameters) like the torch::zeros they replace, and are unmapped when the last tensor goes.
#include <torch/torch.h>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "jobs/train_config.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"
#include "worker/huge_pages.h"

namespace emosweep::worker {
namespace {

bool Aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kHugePageBytes == 0; }

int MappingCount() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

TEST(HugePages, LargeBufferIsAlignedAdvisedAndZero) {
  const int64_t n = 3 << 20;  // 12 MB of floats
  torch::Tensor t = HugePageZeros({n}, torch::TensorOptions().dtype(torch::kFloat));
  ASSERT_EQ(t.numel(), n);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_TRUE(Aligned(t.data_ptr()));
  EXPECT_EQ(HugePageEligible(t.data_ptr()), HugePagesAllowed()) << "THP mode '" << TransparentHugePageMode() << "'";
  EXPECT_EQ(HugePageEligible(t.data_ptr<float>() + n - 1), HugePagesAllowed());
  EXPECT_EQ(t.abs().max().item<float>(), 0.0f);
  t.fill_(1.5f);  // the whole mapping is writable
  EXPECT_EQ(t.sum().item<double>(), 1.5 * n);
}

TEST(HugePages, ShapesAndDtypesOfTheTorchZerosTheyReplace) {
  torch::Tensor t = HugePageZeros({4, 1 << 18}, torch::TensorOptions().dtype(torch::kDouble));
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{4, 1 << 18}));
  EXPECT_EQ(t.scalar_type(), torch::kDouble);
  EXPECT_TRUE(Aligned(t.data_ptr()));
  EXPECT_TRUE(torch::equal(t, torch::zeros({4, 1 << 18}, torch::kDouble)));
  // Under one huge page: an ordinary tensor.
  torch::Tensor small = HugePageZeros({1000}, torch::TensorOptions().dtype(torch::kFloat));
  EXPECT_TRUE(torch::equal(small, torch::zeros({1000})));
}

// A process that opted out of THP (prctl PR_SET_THP_DISABLE, as a parent may have done for it) gets none,
// and HugePagesAllowed says so; the tests above then expect small pages.
TEST(HugePages, AProcessThatOptedOutIsNotAllowed) {
  const std::string mode = TransparentHugePageMode();
  const bool system = mode == "always" || mode == "madvise";
  if (!system) EXPECT_FALSE(HugePagesAllowed());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) _exit(3);
    _exit(HugePagesAllowed() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "opted out, still allowed (1) or prctl failed (3)";
}

TEST(HugePages, MappingsAreReleasedWithTheirTensors) {
  { torch::Tensor warm = HugePageZeros({1 << 20}, torch::TensorOptions().dtype(torch::kFloat)); }
  const int before = MappingCount();
  for (int i = 0; i < 64; ++i) {
    torch::Tensor t = HugePageZeros({(1 << 20) + i * 4096}, torch::TensorOptions().dtype(torch::kFloat));
    torch::Tensor view = t.narrow(0, 16, 1 << 19);  // a view keeps the mapping; both go at the end of the scope
    view.fill_(1.0f);
  }
  EXPECT_LE(MappingCount(), before + 2);  // not 64 more
}

struct WideNet : torch::nn::Module {
  WideNet() {
    a = register_module("a", torch::nn::Linear(1024, 1024));  // 4 MB of weights: two huge pages
    b = register_module("b", torch::nn::Linear(1024, 3));
  }
  torch::nn::Linear a{nullptr}, b{nullptr};
};

TEST(HugePages, FlatParametersGradientsAndAdamStateLiveOnThem) {
  torch::manual_seed(5);
  WideNet net;
  const torch::Tensor weight_before = net.a->weight.detach().clone();
  auto flat = FlatParameters::Build(net, {});
  ASSERT_TRUE(flat.ok());
  for (const torch::Tensor* buf : {&flat->params(), &flat->grads()}) {
    EXPECT_TRUE(Aligned(buf->data_ptr()));
    EXPECT_EQ(HugePageEligible(buf->data_ptr()), HugePagesAllowed());
  }
  // The parameters were copied in and alias the buffer; the gradient starts at zero.
  EXPECT_TRUE(torch::equal(net.a->weight, weight_before));
  EXPECT_EQ(net.a->weight.data_ptr<float>(), flat->params().data_ptr<float>());
  EXPECT_EQ(flat->grads().abs().max().item<float>(), 0.0f);

  auto cfg = jobs::ParseTrainConfig({{"optimizer", "adamw"}, {"lr", 1e-3}}, "test");
  ASSERT_TRUE(cfg.ok());
  FusedOptimizer opt(&*flat, *cfg);
  const auto state = opt.StateTensors();
  ASSERT_EQ(state.size(), 2u);
  for (const auto& [name, t] : state) {
    EXPECT_TRUE(Aligned(t.data_ptr())) << name;
    EXPECT_EQ(HugePageEligible(t.data_ptr()), HugePagesAllowed()) << name;
    EXPECT_EQ(t.abs().max().item<float>(), 0.0f) << name;
  }
}

}  // namespace
}  // namespace emosweep::worker
