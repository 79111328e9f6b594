// models/packed_mlp.cc: the batched MLP of a pack (see packed_mlp.h).
#include "models/packed_mlp.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Config.h>

#include <cstdint>

#include "models/counter_dropout.h"
#include "models/fast_bernoulli.h"
#include "models/host_to_device.h"

namespace emosweep::models {
namespace {

// libtorch's bmm computes products with fewer than this many multiply-adds (rows · cols ·
// contraction) in its own loop rather than through BLAS; addmm (the single path's Linear) always
// calls BLAS. Such layers run as one addmm per member instead (same BLAS call as alone).
constexpr int64_t kBmmBlasThreshold = 400;

// The slots as an index tensor on `device` (index_select / index_add_ / index_copy_ want it beside their data).
torch::Tensor SlotIndex(const std::vector<int64_t>& s64, torch::Device device) {
  return HostToDevice(torch::tensor(s64, torch::kLong), device);
}
torch::Tensor SlotIndex(const std::vector<int>& slots, torch::Device device) {
  return SlotIndex(std::vector<int64_t>(slots.begin(), slots.end()), device);
}

// The slots' rows of t ([K, ...] -> [m, ...]): t itself or a view when the slots are consecutive.
bool Consecutive(const std::vector<int>& slots) {
  for (size_t i = 1; i < slots.size(); ++i)
    if (slots[i] != slots[0] + static_cast<int>(i)) return false;
  return true;
}
torch::Tensor SelectSlots(const torch::Tensor& t, const std::vector<int>& slots) {
  if (Consecutive(slots)) return static_cast<int64_t>(slots.size()) == t.size(0) ? t : t.narrow(0, slots[0], slots.size());
  return t.index_select(0, SlotIndex(slots, t.device()));
}

// A linear layer of the selected members: y[j] = b[j] + x[j] · w[j]ᵀ, the same BLAS call per member as
// at::linear's addmm alone. The backward computes what addmm's backward computes alone (ĝᵀ·x for the weight,
// ĝ summed over rows for the bias, ĝ·w for the input) and writes the weight and bias gradients straight into
// the packed gradient buffer (no per-step gradient tensors, no transposed accumulation). With `accumulate`
// (a layer applied twice in one step: DANN's source and target batches) it adds them to what is there instead,
// as autograd's AccumulateGrad adds a parameter's second gradient to its first (the caller zeroes the rows).
class PackedLinear : public torch::autograd::Function<PackedLinear> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor w_all,
                               torch::Tensor b_all, const PackedLayer* layer, std::vector<int> slots, bool accumulate) {
    torch::Tensor w = SelectSlots(w_all, slots), b = SelectSlots(b_all, slots);
    const int64_t m = x.size(0), n = x.size(1);
    torch::Tensor y;
    if (Small(n, *layer)) {
      std::vector<torch::Tensor> ys;
      for (int64_t j = 0; j < m; ++j) ys.push_back(torch::addmm(b[j], x[j], w[j].t()));
      y = torch::stack(ys);
    } else {
      y = torch::baddbmm(b.unsqueeze(1), x, w.transpose(1, 2));
    }
    ctx->save_for_backward({x, w});
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["slots"] = std::vector<int64_t>(slots.begin(), slots.end());
    ctx->saved_data["accumulate"] = accumulate;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &w = saved[1];
    const auto* layer = reinterpret_cast<const PackedLayer*>(ctx->saved_data["layer"].toInt());
    const auto s64 = ctx->saved_data["slots"].toIntVector();
    const std::vector<int> slots(s64.begin(), s64.end());
    torch::Tensor g = grads[0].contiguous();
    const int64_t m = x.size(0), n = x.size(1);
    const bool small = Small(n, *layer);
    const bool direct = Consecutive(slots);
    const bool acc = ctx->saved_data["accumulate"].toBool();
    torch::Tensor gx;
    if (ctx->needs_input_grad(0)) {
      if (small) {
        std::vector<torch::Tensor> gs;
        for (int64_t j = 0; j < m; ++j) gs.push_back(g[j].mm(w[j]));
        gx = torch::stack(gs);
      } else {
        gx = g.bmm(w);
      }
    }
    if (layer->gw.defined()) {
      torch::Tensor view =
          direct ? (m == layer->gw.size(0) ? layer->gw : layer->gw.narrow(0, slots[0], m)) : torch::Tensor();
      torch::Tensor dst = direct && !acc ? view : torch::empty({m, layer->out, layer->in}, g.options());
      torch::Tensor gt = g.transpose(1, 2);
      if (small) {
        for (int64_t j = 0; j < m; ++j) {
          torch::Tensor d = dst[j];
          at::mm_out(d, gt[j], x[j]);
        }
      } else {
        at::bmm_out(dst, gt, x);
      }
      if (acc && direct)
        view.add_(dst);
      else if (acc)
        layer->gw.index_add_(0, SlotIndex(s64, dst.device()), dst);
      else if (!direct)
        layer->gw.index_copy_(0, SlotIndex(s64, dst.device()), dst);
    }
    if (layer->gb.defined()) {
      torch::Tensor view =
          direct ? (m == layer->gb.size(0) ? layer->gb : layer->gb.narrow(0, slots[0], m)) : torch::Tensor();
      torch::Tensor dst = direct && !acc ? view : torch::empty({m, layer->out}, g.options());
      at::sum_out(dst, g, {1});
      if (acc && direct)
        view.add_(dst);
      else if (acc)
        layer->gb.index_add_(0, SlotIndex(s64, dst.device()), dst);
      else if (!direct)
        layer->gb.index_copy_(0, SlotIndex(s64, dst.device()), dst);
    }
    return {gx, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

 private:
  // CPU only: on a GPU bmm and addmm are both cuBLAS calls.
  static bool Small(int64_t n, const PackedLayer& l) {
    return l.w.is_cpu() && n * l.in * l.out < kBmmBlasThreshold;
  }
};

void DrawBernoulli(torch::Tensor t, double p, at::Generator* gen) {
#if AT_MKL_ENABLED()
  t.bernoulli_(p, *gen);  // MKL's stream: through the kernel itself
#else
  // The CPU kernel without MKL draws one bernoulli_distribution<double> per element, in order
  // (templates::cpu::bernoulli_kernel); FillBernoulli makes the same draws block-wise, without a dispatch
  // per member, and leaves the generator's engine where the kernel would.
  FillBernoulli(t.data_ptr<float>(), t.numel(), p, gen->get<at::CPUGeneratorImpl>());
#endif
}

}  // namespace

torch::Tensor PackedMlp::Forward(const std::vector<int>& slots, torch::Tensor x, bool training,
                                 const std::vector<CounterGenerator*>& gens, torch::Tensor* features,
                                 bool accumulate_grads) const {
  const int64_t m = x.size(0);
  for (size_t l = 0; l < layers.size(); ++l) {
    const PackedLayer& L = layers[l];
    if (features && l + 1 == layers.size()) *features = x;
    x = PackedLinear::apply(x, L.w, L.b, &L, slots, accumulate_grads);
    if (l + 1 == layers.size()) break;
    x = torch::relu(x);
    if (!training) continue;
    bool any = false;
    for (int s : slots) any |= dropout[static_cast<size_t>(s)] != 0;
    if (!any) continue;
    if (UsesCounterDropout(x.device())) {
      // The counter-based stream (models/counter_dropout.h), as the MLP family draws alone there: one key per
      // member from its generator (none for p = 0 or 1, as alone), then every member's noise by one batched
      // computation, applied by one multiply forward and backward; member j's slice is bitwise its noise alone.
      std::vector<uint32_t> keys(static_cast<size_t>(m), 0);
      std::vector<double> ps(static_cast<size_t>(m));
      for (int64_t j = 0; j < m; ++j) {
        const double p = dropout[static_cast<size_t>(slots[static_cast<size_t>(j)])];
        ps[static_cast<size_t>(j)] = p;
        // (x has rows: a member without a batch is not in the forward; alone an empty input draws nothing)
        if (p > 0 && p < 1 && x.numel() != 0)
          keys[static_cast<size_t>(j)] = gens[static_cast<size_t>(j)]->NextKey();
      }
      x = x * CounterNoise(keys, ps, x.sizes().slice(1), x.scalar_type(), x.device());
      continue;
    }
    // at::dropout per member: p = 0 returns the input (here: x · 1, exact); p = 1 multiplies by 0; otherwise
    // noise.bernoulli_(1 - p) on the member's [n, H] rows from its own generator, noise / (1 - p), x · noise.
    torch::Tensor noise = torch::empty_like(x);
    std::vector<float> div(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) {
      const double p = dropout[static_cast<size_t>(slots[static_cast<size_t>(j)])];
      torch::Tensor nj = noise[j];
      if (p == 0 || p == 1) {
        nj.fill_(p == 0 ? 1.f : 0.f);
        div[static_cast<size_t>(j)] = 1.f;
      } else {
        DrawBernoulli(nj, 1 - p, &gens[static_cast<size_t>(j)]->get());
        div[static_cast<size_t>(j)] = static_cast<float>(1 - p);
      }
    }
    noise.div_(torch::from_blob(div.data(), {m, 1, 1}, torch::kFloat));
    x = x * noise;
  }
  return x;
}

}  // namespace emosweep::models
