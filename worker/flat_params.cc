// worker/flat_params.cc: parameter/gradient rebinding (see flat_params.h).
#include "worker/flat_params.h"

#include "models/slot_linear.h"
#include "worker/huge_pages.h"

namespace emosweep::worker {

Result<FlatParameters> FlatParameters::Build(torch::nn::Module& module, const std::vector<std::string>& freeze) {
  FlatParameters f;
  int64_t total = 0;
  torch::Device device = torch::kCPU;
  bool first = true;
  std::vector<bool> prefix_used(freeze.size(), false);
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    torch::Tensor& p = item.value();
    bool frozen = false;
    for (size_t i = 0; i < freeze.size(); ++i) {
      const bool match = item.key().rfind(freeze[i], 0) == 0;
      frozen |= match;
      if (match) prefix_used[i] = true;
    }
    if (frozen) p.set_requires_grad(false);
    if (!p.requires_grad()) continue;
    if (p.scalar_type() != torch::kFloat)
      return Status::InvalidArgument("parameter '" + item.key() + "' is not float32");
    if (first) device = p.device();
    first = false;
    f.tensors_.push_back(p);
    f.names_.push_back(item.key());
    total += p.numel();
  }
  // A prefix that names no parameter (a typo, another model's layer) would freeze nothing without a word.
  // Names as the job file writes them: the trainer roots the model at "model.".
  auto as_given = [](const std::string& n) { return n.rfind("model.", 0) == 0 ? n.substr(6) : n; };
  for (size_t i = 0; i < freeze.size(); ++i) {
    if (prefix_used[i]) continue;
    std::string names;
    int shown = 0;
    for (auto& item : module.named_parameters(/*recurse=*/true)) {
      if (shown++ == 12) {
        names += ", ...";
        break;
      }
      names += (names.empty() ? "" : ", ") + as_given(item.key());
    }
    return Status::InvalidArgument("[train] freeze: '" + as_given(freeze[i]) +
                                   "' is the prefix of no parameter of the model (its parameters: " + names + ")");
  }
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
  f.params_ = HugePageZeros({total}, opts);
  f.grads_ = HugePageZeros({total}, opts);
  int64_t off = 0;
  torch::NoGradGuard no_grad;
  for (auto& p : f.tensors_) {
    const int64_t n = p.numel();
    torch::Tensor view = f.params_.narrow(0, off, n).view(p.sizes());
    view.copy_(p.detach());
    p.set_data(view);  // the parameter now aliases the buffer
    torch::Tensor g = f.grads_.narrow(0, off, n).view(p.sizes());
    p.mutable_grad() = g;
    f.grad_views_.push_back(g);
    off += n;
  }
  // A SlotLinear's backward writes its weight gradient straight into the weight's slice: SyncGrads then
  // finds it there (no copy).
  models::BindWeightGradSlots(module, f.tensors_, f.grad_views_);
  return f;
}

std::pair<int64_t, int64_t> FlatParameters::Span(const std::string& prefix) const {
  int64_t off = 0, begin = -1, end = -1;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const int64_t n = tensors_[i].numel();
    if (names_[i].rfind(prefix, 0) == 0) {
      if (begin < 0) begin = off;
      end = off + n;
    }
    off += n;
  }
  return begin < 0 ? std::make_pair(int64_t{0}, int64_t{0}) : std::make_pair(begin, end - begin);
}

void FlatParameters::ZeroGrad() {
  for (auto& p : tensors_) p.mutable_grad().reset();
}

void FlatParameters::SyncGrads() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    torch::Tensor& g = tensors_[i].mutable_grad();
    if (g.defined() && g.data_ptr() == grad_views_[i].data_ptr()) continue;
    if (g.defined()) grad_views_[i].copy_(g);
    else grad_views_[i].zero_();
    g = grad_views_[i];
  }
}

const std::vector<GradRange>& FlatParameters::GradRanges() {
  torch::NoGradGuard no_grad;
  ranges_.resize(tensors_.size());
  int64_t off = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const torch::Tensor& g = tensors_[i].grad();
    const int64_t n = tensors_[i].numel();
    const float* data;
    const bool usable = g.defined() && g.layout() == torch::kStrided && g.is_cpu() &&
                        g.scalar_type() == torch::kFloat && g.is_contiguous() && g.numel() == n;
    if (usable) {
      data = g.data_ptr<float>();
    } else {
      if (g.defined()) grad_views_[i].copy_(g);
      else grad_views_[i].zero_();
      data = grad_views_[i].data_ptr<float>();
    }
    ranges_[i] = {off, n, data};
    off += n;
  }
  return ranges_;
}

}  // namespace emosweep::worker
