// models/slot_linear.h: torch::nn::Linear whose backward can write the weight gradient straight into a
// slot the trainer owns (its slice of the flat gradient buffer, worker/flat_params.h), so that the step
// has no gradient to copy for that weight (issue 16, single step: on msr_a/b the copy was ~0.2 s of a
// 1.5 s epoch).
//
// Same numbers as torch::nn::Linear, bitwise: the forward is at::linear itself; the backward of a 2-D
// input computes what torch's AddmmBackward0/MmBackward0 + TBackward0 compute, with the same products
// (libtorch 1.13, FunctionsManual.cpp: dX = dY·W (or (W^T·dY^T)^T for a column-major X), dW = dY^T·X,
// db = sum_to(dY, [out])); only dW's output is the slot instead of a fresh tensor. A large dW over a
// short batch is computed by models::OuterSum (k outer products in order, one fused multiply-add per
// term: OpenBLAS's kernel arithmetic without its packing copies and the memset of the output), where
// it matched at::mm bitwise on a probe once per process, with one intra-op thread; otherwise by
// at::mm_out into the slot. The
// gradient handed to autograd is a view of the slot, so AccumulateGrad takes it as the weight's .grad
// and the flat buffer already holds it.
// The slot is used by the first backward of the weight after a forward, only while the weight's .grad is
// undefined (FlatParameters::ZeroGrad). A weight used twice in one graph (glomer's shared projections, a DA
// job's second forward): within the backward pass that wrote the slot, while the slot's alias still waits
// alone in the weight's input buffer, a later use's dW is added into the slot in place (the same bits as
// autograd's buffer sum, in the same order) and the .grad stays the slot. Otherwise (another op's gradient
// of the weight reached the buffer first, a retained graph's later pass, a second backward onto the
// gradients) later gradients are fresh tensors that autograd adds exactly as it adds torch's (same order),
// so the sum is the same too (a new tensor, which SyncGrads then copies; a second backward adds into the
// slot). The in-place sum runs only on the CPU with no CUDA device and outside anomaly mode. Under
// create_graph no slot is used: every gradient is torch's product with its history. Two SlotLinear modules
// tying one weight are not bound (BindWeightGradSlots).
// With grad, over a short batch (2..16 rows) and one intra-op thread, the forward product and dX are
// models/short_gemm.h's kernels (OpenBLAS's arithmetic without its packing copies of W) where they matched
// torch bitwise on a probe once per process; otherwise torch's addmm / mm.
// Inputs of another rank than 2, and the no-grad / frozen cases, go through torch's own Linear.
// SlotLinearImpl derives from LinearImpl (like FastDropout from DropoutImpl): `as<torch::nn::Linear>()`,
// init, options and parameter names are Linear's; clone() gives a plain LinearImpl.
// Thread-safety: one model per thread (the slot state is the module's).
#pragma once

#include <torch/torch.h>

#include <memory>

namespace emosweep::models {

// Shared by a SlotLinear and the backward nodes of its forwards.
struct GradSlot {
  torch::Tensor slot;    // the weight's shape, or undefined (no slot: torch's path)
  bool claimed = false;  // a backward since the last forward already wrote the slot
  // The backward pass (its graph task) whose node wrote the slot, until that pass ends: while it runs, the
  // slot's alias waits in the weight's input buffer, so a later use's gradient is added into the slot.
  const void* task = nullptr;
  // The slot's alias handed to autograd in that pass: alive while the input buffer holds it (autograd drops it
  // when it adds another gradient of the weight, say from an op that is not this layer, into a new tensor).
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> handed{torch::Tensor().getIntrusivePtr()};
  torch::Tensor scratch;  // a later use's dW before it is added (the weight's shape, kept)
};

class SlotLinearImpl : public torch::nn::LinearImpl {
 public:
  SlotLinearImpl(int64_t in, int64_t out) : torch::nn::LinearImpl(torch::nn::LinearOptions(in, out)) {}
  explicit SlotLinearImpl(const torch::nn::LinearOptions& options) : torch::nn::LinearImpl(options) {}
  torch::Tensor forward(const torch::Tensor& input);
  // Where the weight's gradient goes (a tensor of weight's shape, dtype and device, e.g. a view of the flat
  // gradient buffer); an undefined tensor unbinds. A slot that does not match is ignored.
  void set_weight_grad_slot(torch::Tensor slot);
  const torch::Tensor& weight_grad_slot() const { return state_->slot; }

 private:
  std::shared_ptr<GradSlot> state_ = std::make_shared<GradSlot>();
};
TORCH_MODULE(SlotLinear);

// Whether SlotLinear computes its forward / its input gradient over a short batch with the kernels of
// models/short_gemm.h in this process: they reproduce OpenBLAS 0.3.21's SkylakeX core, and a probe against
// torch on the shapes they serve, run once per process, decides (and finds the core's K block: OpenBLAS's
// Cooperlake core, picked on AMD Zen 4, blocks K by 320; another BLAS or kernel: false, and torch's products
// are used). The same for OuterSum (dW).
// Precondition of all of these: one intra-op thread (at::get_num_threads() == 1, as the kernels' callers check),
// since the first call probes and OpenBLAS's threaded driver splits K otherwise.
bool ShortForwardInUse();
bool ShortInputGradInUse();
bool OuterSumInUse();
// OpenBLAS's sgemm K block in this process as the probe found it (models/short_gemm.h, set there for the
// kernels), or 0 when no candidate reproduces torch (the short kernels are then not used). Call it before
// running a kernel that reads BlasKBlockEnd (models/gat_sparse.h does); same precondition.
int64_t ProbedBlasGemmQ();

// Binds every SlotLinear below `module` whose weight is in `weights` to the matching slot (same index);
// the others are unbound. For FlatParameters::Build.
void BindWeightGradSlots(torch::nn::Module& module, const std::vector<torch::Tensor>& weights,
                         const std::vector<torch::Tensor>& slots);

}  // namespace emosweep::models
