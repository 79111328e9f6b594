// models/slot_linear.cc: Linear with its weight gradient written into a slot (see slot_linear.h).
#include "models/slot_linear.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ExpandUtils.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/anomaly_mode.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/graph_task.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <cstring>
#include <map>
#include <set>

#include "models/outer_sum.h"
#include "models/short_gemm.h"

namespace emosweep::models {
namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// OuterSum is used for dW = dY^T·X only where OpenBLAS's sgemm takes its blocked path with the whole
// reduction (the batch) in one K block: a large product (its small-matrix kernel stops at M·N·K = 10^6)
// and a short batch. Once per process it is compared with at::mm on such shapes (with exact zeros, as
// dropout and ReLU give); if any bit differs (another BLAS, another kernel) at::mm_out is used instead.
constexpr int64_t kOuterMaxBatch = 64;
constexpr double kOuterMinWork = 2e6;

bool OuterSumMatchesBlas() {
  static const bool ok = [] {
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(12345);
    const int64_t shapes[][3] = {{16, 1536, 384}, {16, 384, 1536}, {16, 384, 384}, {13, 384, 768},
                                 {1, 1536, 1537}, {64, 333, 517},  {7, 1027, 389}, {32, 384, 192}};
    for (const auto& s : shapes) {
      const int64_t k = s[0], m = s[1], n = s[2];
      torch::Tensor a = torch::randn({k, m}, gen), b = torch::randn({k, n}, gen);
      a.masked_fill_(torch::rand({k, m}, gen) < 0.2, 0.0f);  // dropped / ReLU-zero rows
      b.masked_fill_(torch::rand({k, n}, gen) < 0.2, -0.0f);
      b.select(0, 0).fill_(0.0f);
      torch::Tensor ref = at::mm(a.t(), b), mine = torch::empty({m, n});
      OuterSum(a.data_ptr<float>(), m, b.data_ptr<float>(), n, mine.data_ptr<float>(), n, k, m, n);
      if (std::memcmp(ref.data_ptr<float>(), mine.data_ptr<float>(), sizeof(float) * m * n) != 0) return false;
    }
    return true;
  }();
  return ok;
}

// slot = dY^T·X, bitwise what at::mm(dY.t(), X) gives.
void WeightGradInto(torch::Tensor& slot, const torch::Tensor& dy, const torch::Tensor& x) {
  const int64_t k = dy.size(0), m = dy.size(1), n = x.size(1);
  const bool host = slot.is_cpu() && dy.is_cpu() && x.is_cpu() && dy.scalar_type() == torch::kFloat &&
                    x.scalar_type() == torch::kFloat && slot.scalar_type() == torch::kFloat;
  const bool rows = host && dy.stride(1) == 1 && x.stride(1) == 1 && slot.is_contiguous();
  // One intra-op thread only: OuterSum is serial, the BLAS splits the product's rows over threads (the
  // same bits either way).
  if (rows && k >= 1 && k <= kOuterMaxBatch && static_cast<double>(k * m * n) >= kOuterMinWork &&
      at::get_num_threads() == 1 && OuterSumMatchesBlas()) {
    // Named for profilers and bench/seed_epoch_bench's product census (the product at::mm would have run).
    RECORD_FUNCTION("emosweep::outer_sum_mm", std::vector<c10::IValue>({dy.t(), x}));
    OuterSum(dy.data_ptr<float>(), dy.stride(0), x.data_ptr<float>(), x.stride(0), slot.data_ptr<float>(), n, k, m,
             n);
  } else {
    at::mm_out(slot, dy.t(), x);
  }
}

// ShortLinearForward / ShortLinearInputGrad replace at::linear's addmm and dY·W over a short batch (2..16 rows,
// msr's 16 and an epoch's last 15) where OpenBLAS would take its blocked driver, whose arithmetic they
// reproduce without packing W. Once per process each is compared with torch on such shapes (K in one to four
// blocks, odd widths, exact zeros); if any bit differs (another BLAS or version, another core) torch's product
// is used instead.
constexpr int64_t kShortMinBatch = 2;

bool ShortShapeOk(int64_t batch, int64_t in, int64_t out) {
  return batch >= kShortMinBatch && batch <= kShortGemmMaxBatch && in >= 1 && out >= 1;
}

struct ShortProbeShape {
  int64_t batch, in, out;
};
constexpr ShortProbeShape kShortProbeShapes[] = {{16, 1536, 384}, {16, 384, 1536}, {15, 1000, 389},
                                                 {7, 3000, 100},  {2, 517, 1031},  {16, 384, 128}};

// Operands with dropped / ReLU-zero entries (+0 and -0), as the models give them.
torch::Tensor ProbeOperand(int64_t rows, int64_t cols, at::Generator& gen) {
  torch::Tensor t = torch::randn({rows, cols}, gen);
  t.masked_fill_(torch::rand({rows, cols}, gen) < 0.2, 0.0f);
  t.masked_fill_(torch::rand({rows, cols}, gen) < 0.05, -0.0f);
  return t;
}

bool SameFloats(const torch::Tensor& a, const torch::Tensor& b) {
  return std::memcmp(a.data_ptr<float>(), b.data_ptr<float>(), sizeof(float) * a.numel()) == 0;
}

// The short forward against at::linear on every probe shape, with the K block BlasGemmQ() as set now.
bool ShortForwardProbePasses() {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(23456);
  for (const ShortProbeShape& s : kShortProbeShapes) {
    if (!BlasBlockedPath(true, false, s.out, s.batch, s.in)) return false;  // a probe shape must be one we use
    torch::Tensor x = ProbeOperand(s.batch, s.in, gen), w = torch::randn({s.out, s.in}, gen);
    torch::Tensor b = torch::randn({s.out}, gen);
    for (bool with_bias : {true, false}) {
      torch::Tensor ref = at::linear(x, w, with_bias ? b : torch::Tensor()), mine = torch::empty({s.batch, s.out});
      ShortLinearForward(x.data_ptr<float>(), s.in, w.data_ptr<float>(), with_bias ? b.data_ptr<float>() : nullptr,
                         mine.data_ptr<float>(), s.batch, s.in, s.out);
      if (!SameFloats(ref, mine)) return false;
    }
  }
  return true;
}

}  // namespace

int64_t ProbedBlasGemmQ() {
  // Once per process (thread-safe static): each candidate K block in turn (models/short_gemm.h), the first with
  // which the short forward gives torch's bits on every probe shape is OpenBLAS's here; the probe shapes split
  // K differently under each candidate (one to four blocks), so a wrong one does not pass by chance.
  static const int64_t q = [] {
    if (!ShortGemmAvailable()) return int64_t{0};
    for (int64_t candidate : kBlasGemmQCandidates) {
      SetBlasGemmQ(candidate);
      if (ShortForwardProbePasses()) return candidate;
    }
    SetBlasGemmQ(kBlasGemmQCandidates[0]);
    return int64_t{0};
  }();
  return q;
}

namespace {

bool ShortForwardMatchesTorch() { return ProbedBlasGemmQ() != 0; }

bool ShortInputGradMatchesTorch() {
  static const bool ok = [] {
    if (ProbedBlasGemmQ() == 0) return false;
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(34567);
    for (const ShortProbeShape& s : kShortProbeShapes) {
      if (!BlasBlockedPath(false, false, s.in, s.batch, s.out)) continue;  // left to torch when used, too
      torch::Tensor dy = ProbeOperand(s.batch, s.out, gen), w = torch::randn({s.out, s.in}, gen);
      torch::Tensor ref = at::mm(dy, w), mine = torch::empty({s.batch, s.in});
      ShortLinearInputGrad(dy.data_ptr<float>(), s.out, w.data_ptr<float>(), mine.data_ptr<float>(), s.batch, s.out,
                           s.in);
      if (!SameFloats(ref, mine)) return false;
    }
    return true;
  }();
  return ok;
}

bool FloatCpu(const torch::Tensor& t) { return t.is_cpu() && t.scalar_type() == torch::kFloat; }

// y = x·W^T + b as at::linear gives it, or an undefined tensor where the short kernel does not apply.
torch::Tensor ShortForward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t batch = x.size(0), in = x.size(1), out = w.size(0);
  if (!ShortShapeOk(batch, in, out) || !FloatCpu(x) || !FloatCpu(w) || x.stride(1) != 1 || x.stride(0) < in ||
      !w.is_contiguous() || (b.defined() && (!FloatCpu(b) || !b.is_contiguous() || b.dim() != 1)) ||
      at::get_num_threads() != 1 || !BlasBlockedPath(true, false, out, batch, in) || !ShortForwardMatchesTorch())
    return torch::Tensor();
  torch::Tensor y = torch::empty({batch, out}, x.options());
  // Named for profilers and bench/seed_epoch_bench's product census (inputs as aten::addmm's: bias, x, W^T).
  RECORD_FUNCTION("emosweep::short_addmm", std::vector<c10::IValue>({b.defined() ? b : torch::Tensor(), x, w.t()}));
  ShortLinearForward(x.data_ptr<float>(), x.stride(0), w.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                     y.data_ptr<float>(), batch, in, out);
  return y;
}

// dX = dY·W as at::mm gives it for a row-major dY.
torch::Tensor InputGrad(const torch::Tensor& dy, const torch::Tensor& w) {
  const int64_t batch = dy.size(0), out = dy.size(1), in = w.size(1);
  if (ShortShapeOk(batch, in, out) && !torch::GradMode::is_enabled() && FloatCpu(dy) && FloatCpu(w) &&
      dy.stride(1) == 1 && dy.stride(0) >= out &&
      w.is_contiguous() && at::get_num_threads() == 1 && BlasBlockedPath(false, false, in, batch, out) &&
      ShortInputGradMatchesTorch()) {
    torch::Tensor dx = torch::empty({batch, in}, dy.options());
    // Named for profilers and bench/seed_epoch_bench's product census (inputs as aten::mm's: dY, W).
    RECORD_FUNCTION("emosweep::short_mm", std::vector<c10::IValue>({dy, w}));
    ShortLinearInputGrad(dy.data_ptr<float>(), dy.stride(0), w.data_ptr<float>(), dx.data_ptr<float>(), batch, out,
                         in);
    return dx;
  }
  return dy.mm(w);
}

// A later use's dW may be added into the slot only where no other thread can reach the weight's input buffer
// meanwhile: autograd runs CPU nodes on the thread that called backward, and a device's nodes (which could
// deliver another gradient of the weight, e.g. through w.to(cuda)) on that device's thread; with no CUDA
// device there are none. Anomaly mode checks each node's outputs: there, every gradient goes to autograd.
bool InPlaceSumSafe(const torch::Tensor& slot) {
  return slot.is_cpu() && !at::hasCUDA() && !torch::autograd::AnomalyMode::is_enabled();
}

// The backward of y = x·W^T + b (b optional) for a 2-D x: torch's AddmmBackward0 (MmBackward0 without a
// bias) followed by TBackward0 on W^T, in one node. Inputs in next-edge order: x, W, b.
struct SlotLinearBackward : public torch::autograd::Node {
  SavedVariable x_, w_;
  bool x_column_major_ = false;  // x's strides as torch's mm_mat1_backward tests them
  bool has_bias_ = false;
  std::vector<int64_t> bias_sizes_;
  std::shared_ptr<GradSlot> state_;

  std::string name() const override { return "SlotLinearBackward"; }
  void release_variables() override {
    x_.reset_data();
    w_.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    const torch::Tensor& dy = grads[0];
    variable_list out(has_bias_ ? 3 : 2);
    if (!dy.defined()) return out;
    if (task_should_compute_output(0)) {
      // mm_mat1_backward(grad, mat2 = W^T, ...): mat2.t() is W (W's sizes and strides).
      const torch::Tensor w = w_.unpack(shared_from_this());
      out[0] = x_column_major_ ? w.t().mm(dy.t()).t() : InputGrad(dy, w);
    }
    if (task_should_compute_output(1)) {
      // mm_mat2_backward for the column-major mat2 = W^T: (dY^T·X)^T; TBackward0 transposes it back to dY^T·X.
      const torch::Tensor x = x_.unpack();
      const torch::Tensor w = w_.unpack(shared_from_this());
      torch::Tensor& slot = state_->slot;
      const void* task = torch::autograd::get_current_graph_task_exec_info();  // this pass, or null
      // With create_graph (grad mode on in the pass) every gradient keeps its history: torch's products.
      const bool grad_mode = torch::GradMode::is_enabled();
      if (slot.defined() && !state_->claimed && !w.grad().defined() && !grad_mode) {
        state_->claimed = true;
        WeightGradInto(slot, dy, x);
        out[1] = slot.alias();  // one reference: AccumulateGrad makes it the .grad without a copy
        if (task && InPlaceSumSafe(slot)) {  // where a later use may add into the slot (below)
          // The pass's identity guards the alias's liveness: both end with the pass (its final callback).
          state_->task = task;
          state_->handed = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(out[1].getIntrusivePtr());
          torch::autograd::Engine::get_default_engine().queue_callback([s = state_] {
            s->task = nullptr;
            s->handed.reset();
          });
        }
      } else if (slot.defined() && task && state_->task == task && !state_->handed.expired() &&
                 !w.grad().defined() && !grad_mode && InPlaceSumSafe(slot)) {
        // A later use of the weight in the pass that wrote the slot (a shared projection, a DA job's second
        // forward). The weight's AccumulateGrad waits for every use, and the slot's alias is still alive, so
        // it is still alone in the weight's input buffer, where autograd would add this gradient to it: add
        // it into the slot instead (a + b == b + a, the same bits in either order, and in arrival order for
        // more uses) and hand autograd nothing. The .grad stays the slot: no fresh tensor, no buffer add, no
        // copy in SyncGrads. (Once another op's gradient of the weight reached the buffer, autograd summed
        // the two into a new tensor and dropped the alias: then this use's gradient goes to autograd too.)
        torch::Tensor& scratch = state_->scratch;
        if (!scratch.defined() || scratch.sizes() != slot.sizes() ||
            scratch.scalar_type() != slot.scalar_type() || scratch.device() != slot.device())
          scratch = torch::empty_like(slot, at::MemoryFormat::Contiguous);
        WeightGradInto(scratch, dy, x);  // dY^T·X as at::mm gives it
        slot.add_(scratch);
      } else {
        out[1] = dy.t().mm(x);
      }
    }
    if (has_bias_ && task_should_compute_output(2)) out[2] = at::sum_to(dy, bias_sizes_);
    return out;
  }
};

}  // namespace

torch::Tensor SlotLinearImpl::forward(const torch::Tensor& input) {
  const bool plain = input.dim() != 2 || input.layout() != torch::kStrided || !weight.is_contiguous() ||
                     !torch::GradMode::is_enabled() || !weight.requires_grad();
  if (plain) return torch::nn::LinearImpl::forward(input);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;  // the product itself, without torch's nodes (ours is set below)
    y = ShortForward(input, weight, bias);
    if (!y.defined()) y = torch::nn::LinearImpl::forward(input);
  }
  auto node = std::shared_ptr<SlotLinearBackward>(new SlotLinearBackward(), torch::autograd::deleteNode);
  node->has_bias_ = bias.defined();
  if (node->has_bias_) {
    node->set_next_edges(torch::autograd::collect_next_edges(input, weight, bias));
    node->bias_sizes_ = bias.sizes().vec();
  } else {
    node->set_next_edges(torch::autograd::collect_next_edges(input, weight));
  }
  node->x_column_major_ = input.stride(0) == 1 && input.stride(1) == input.size(0);
  // Saved only for the products that need them (dW needs x, dX needs W), as torch saves mat1/mat2.
  node->x_ = SavedVariable(input, false);
  node->w_ = SavedVariable(weight, false);
  node->state_ = state_;
  state_->claimed = false;
  state_->task = nullptr;  // normally cleared when the pass ends; not after a pass that threw
  state_->handed.reset();
  torch::autograd::set_history(y, node);
  return y;
}

void SlotLinearImpl::set_weight_grad_slot(torch::Tensor slot) {
  const bool fits = slot.defined() && slot.sizes() == weight.sizes() && slot.scalar_type() == weight.scalar_type() &&
                    slot.device() == weight.device() && slot.is_contiguous();
  state_->slot = fits ? std::move(slot) : torch::Tensor();
  state_->claimed = false;
  state_->task = nullptr;
  state_->handed.reset();
  state_->scratch = torch::Tensor();
}

bool ShortForwardInUse() { return ShortForwardMatchesTorch(); }
bool ShortInputGradInUse() { return ShortInputGradMatchesTorch(); }
bool OuterSumInUse() { return OuterSumMatchesBlas(); }

void BindWeightGradSlots(torch::nn::Module& module, const std::vector<torch::Tensor>& weights,
                         const std::vector<torch::Tensor>& slots) {
  // apply(Module&) visits `module` itself without needing it in a shared_ptr (modules(true) would).
  module.apply([&](torch::nn::Module& m) {
    auto* lin = dynamic_cast<SlotLinearImpl*>(&m);
    if (!lin) return;
    torch::Tensor slot;
    for (size_t i = 0; i < weights.size() && i < slots.size(); ++i)
      if (weights[i].unsafeGetTensorImpl() == lin->weight.unsafeGetTensorImpl()) slot = slots[i];
    lin->set_weight_grad_slot(slot);
  });
  // Two SlotLinear modules sharing one weight would each claim the slot (each keeps its own state): neither is
  // bound, and autograd sums their gradients.
  // (One module reached under two names is one module.)
  std::map<const c10::TensorImpl*, std::set<SlotLinearImpl*>> by_weight;
  module.apply([&](torch::nn::Module& m) {
    if (auto* lin = dynamic_cast<SlotLinearImpl*>(&m)) by_weight[lin->weight.unsafeGetTensorImpl()].insert(lin);
  });
  for (auto& [impl, lins] : by_weight)
    if (lins.size() > 1)
      for (SlotLinearImpl* lin : lins) lin->set_weight_grad_slot(torch::Tensor());
}

}  // namespace emosweep::models
