// worker/fused_optimizer.cc: the fused update loops (see fused_optimizer.h).
// Compiled with -O3 -fno-math-errno so that the loops vectorise (sqrt included).
#include "worker/fused_optimizer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "models/host_to_device.h"
#include "worker/huge_pages.h"

namespace emosweep::worker {
namespace {

std::atomic<bool> g_tensor_path_everywhere{false};  // SetTensorPathEverywhereForBench

constexpr int64_t kGrain = 1 << 15;

struct AdamConsts {
  float b1, one_b1, b2, one_b2, sqrt_bc2, eps, step_size, decay, wd;
};

// The Adam/AdamW update over [b, e). Compiled for AVX-512, AVX2 and the baseline, picked at load time:
// at SSE width the sqrt and two divisions per element cost about 15 % of the step on the 10 M-parameter
// models (bench/README.md, seed_epoch_bench); the rest is memory traffic. Every clone computes the same IEEE operations in the same order (sqrt and division
// are correctly rounded at every width; -ffp-contract=off forbids fusing a*b+c), so results are bitwise
// identical whichever clone runs (tests/worker/optimizer_test.cc).
// `gs` is the clipping coefficient of the range (GradScale): g·gs is the float product that clipping's
// grads.mul_(coef) stored, and g·1 == g exactly, so an unclipped range is unchanged.
__attribute__((target_clones("avx512f", "avx2", "default"))) void AdamRange(float* p, const float* g, float* m,
                                                                            float* v, int64_t n,
                                                                            const AdamConsts& k, bool decoupled,
                                                                            float gs) {
  const float b1 = k.b1, one_b1 = k.one_b1, b2 = k.b2, one_b2 = k.one_b2, sqrt_bc2 = k.sqrt_bc2, eps = k.eps;
  const float step_size = k.step_size, decay = k.decay, wd = k.wd;
  if (decoupled) {
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i] * gs;
      const float pi = p[i] * decay;
      const float mi = m[i] * b1 + one_b1 * gi;
      const float vi = v[i] * b2 + one_b2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = pi + step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i] * gs + wd * p[i];
      const float mi = m[i] * b1 + one_b1 * gi;
      const float vi = v[i] * b2 + one_b2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] += step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
    }
  }
}

#if defined(__x86_64__)
// The same update written with AVX-512 intrinsics so that it can prefetch: 16 elements (one 64-byte line of
// each array) per iteration, asking for the lines `prefetch` elements ahead of all four arrays (GCC drops
// __builtin_prefetch from the loops it vectorises, so the clones above cannot). The hardware prefetchers
// alone keep too few of the 4 read + 3 write streams in flight: 512 ahead makes the update 8-14 % shorter
// on arrays of 1-40 M floats (bench/adam_pass_bench.cc, bench/README.md). The same operations in the same
// order as AdamRange (mul, add, sqrt, div, no fused multiply-add), so bitwise the same values; the tail of
// fewer than 16 goes through AdamRange. Streaming (non-temporal) stores of p, m, v, which would skip the
// lines' write-allocate reads (10 -> 7 array passes), measured 16-20 % slower here at every size from 1 to
// 40 M (adam_pass_bench's `nt` column), so the stores are plain.
__attribute__((target("avx512f"))) void AdamRangePrefetch(float* p, const float* g, float* m, float* v, int64_t n,
                                                          const AdamConsts& k, bool decoupled, float gs,
                                                          int64_t prefetch) {
  const __m512 b1 = _mm512_set1_ps(k.b1), one_b1 = _mm512_set1_ps(k.one_b1), b2 = _mm512_set1_ps(k.b2);
  const __m512 one_b2 = _mm512_set1_ps(k.one_b2), sqrt_bc2 = _mm512_set1_ps(k.sqrt_bc2), eps = _mm512_set1_ps(k.eps);
  const __m512 step_size = _mm512_set1_ps(k.step_size), decay = _mm512_set1_ps(k.decay), wd = _mm512_set1_ps(k.wd);
  const __m512 vgs = _mm512_set1_ps(gs);
  const int64_t body = n / 16 * 16;
  const int64_t pf_end = n - prefetch;  // no prefetch past the arrays' ends
  int64_t i = 0;
  for (; i < body; i += 16) {
    if (i < pf_end) {
      _mm_prefetch(reinterpret_cast<const char*>(g + i + prefetch), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + prefetch), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(m + i + prefetch), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(v + i + prefetch), _MM_HINT_T0);
    }
    const __m512 p0 = _mm512_loadu_ps(p + i);
    __m512 gi, pi;
    if (decoupled) {
      gi = _mm512_mul_ps(_mm512_loadu_ps(g + i), vgs);
      pi = _mm512_mul_ps(p0, decay);
    } else {
      gi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(g + i), vgs), _mm512_mul_ps(wd, p0));
      pi = p0;
    }
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), b1), _mm512_mul_ps(one_b1, gi));
    const __m512 vi =
        _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), b2), _mm512_mul_ps(_mm512_mul_ps(one_b2, gi), gi));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    const __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), sqrt_bc2), eps);
    _mm512_storeu_ps(p + i, _mm512_add_ps(pi, _mm512_mul_ps(step_size, _mm512_div_ps(mi, den))));
  }
  AdamRange(p + i, g + i, m + i, v + i, n - i, k, decoupled, gs);
}
#endif

// Runs fn(lo, hi, g, gs) over the pieces of [b, e) of the flat layout: cut at the gradient ranges' ends
// (g = the gradient of element lo) and at the scaled range's ends (gs = the coefficient inside it, 1 outside).
// `max_piece` (tests) cuts [b, e) further, as more intra-op threads would.
template <typename Fn>
void ForPieces(int64_t b, int64_t e, const std::vector<GradRange>& ranges, const GradScale& s, int64_t max_piece,
               Fn&& fn) {
  if (e - b > max_piece) {
    for (int64_t c = b; c < e; c += max_piece) ForPieces(c, std::min(e, c + max_piece), ranges, s, max_piece, fn);
    return;
  }
  auto it = std::upper_bound(ranges.begin(), ranges.end(), b,
                             [](int64_t x, const GradRange& r) { return x < r.offset + r.count; });
  for (; it != ranges.end() && it->offset < e; ++it) {
    const int64_t rb = std::max(b, it->offset), re = std::min(e, it->offset + it->count);
    const float* g = it->data + (rb - it->offset);
    const int64_t s0 = std::clamp(s.offset, rb, re), s1 = std::clamp(s.offset + s.count, s0, re);
    if (rb < s0) fn(rb, s0, g, 1.0f);
    if (s0 < s1) fn(s0, s1, g + (s0 - rb), s.coef);
    if (s1 < re) fn(s1, re, g + (s1 - rb), 1.0f);
  }
}

}  // namespace

// The scalar reference of the loop above (tests: every clone equals it bitwise).
void AdamReferenceStep(float* p, const float* g, float* m, float* v, int64_t n, float b1, float one_b1, float b2,
                       float one_b2, float sqrt_bc2, float eps, float step_size, float decay, float wd,
                       bool decoupled) {
  for (int64_t i = 0; i < n; ++i) {
    volatile float gi = decoupled ? g[i] : g[i] + wd * p[i];  // volatile: no vectorisation, no contraction
    volatile float pi = decoupled ? p[i] * decay : p[i];
    volatile float mi = m[i] * b1 + one_b1 * gi;
    volatile float vi = v[i] * b2 + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    volatile float upd = mi / (std::sqrt(vi) / sqrt_bc2 + eps);
    p[i] = pi + step_size * upd;
  }
}

FusedOptimizer::FusedOptimizer(FlatParameters* flat, const TrainConfig& c)
    : flat_(flat),
      kind_(c.optimizer),
      lr_(c.lr),
      weight_decay_(c.weight_decay),
      beta1_(c.beta1),
      beta2_(c.beta2),
      eps_(c.eps),
      momentum_(c.momentum),
      nesterov_(c.nesterov) {
  const auto& p = flat_->params();
  tensor_path_ = !p.is_cpu() || g_tensor_path_everywhere;
  if (kind_ == "sgd") {
    // Always held: OneCycle cycles SGD's momentum (0.85..0.95) even when the configured momentum is 0, as
    // torch's OneCycleLR does, and the first step with momentum != 0 then seeds it with the gradient.
    momentum_buf_ = HugePageZeros(p.sizes(), p.options());
  } else {
    exp_avg_ = HugePageZeros(p.sizes(), p.options());
    exp_avg_sq_ = HugePageZeros(p.sizes(), p.options());
  }
}

void FusedOptimizer::SetTensorPathEverywhereForBench(bool on) { g_tensor_path_everywhere = on; }

FusedOptimizer::FusedOptimizer(FlatParameters* flat, const TrainConfig& c, const StateViews& views)
    : FusedOptimizer(flat, c) {
  torch::NoGradGuard no_grad;
  auto adopt = [&](torch::Tensor* mine, const torch::Tensor& theirs) {
    if (!mine->defined()) return;
    TORCH_CHECK(theirs.defined() && theirs.numel() == mine->numel() && theirs.device() == mine->device(),
                "FusedOptimizer: a state view of the wrong size or device");
    torch::Tensor t = theirs.view(mine->sizes());
    t.zero_();
    *mine = t;
  };
  adopt(&exp_avg_, views.exp_avg);
  adopt(&exp_avg_sq_, views.exp_avg_sq);
  adopt(&momentum_buf_, views.momentum);
}

void FusedOptimizer::StepRows(const std::vector<FusedOptimizer*>& opts, const std::vector<int64_t>& slots,
                              torch::Tensor params, const torch::Tensor& grads, torch::Tensor exp_avg,
                              torch::Tensor exp_avg_sq) {
  torch::NoGradGuard no_grad;
  const int64_t m = static_cast<int64_t>(opts.size());
  TORCH_CHECK(m == static_cast<int64_t>(slots.size()) && grads.dim() == 2 && grads.size(0) == m,
              "StepRows: one slot and one gradient row per optimizer");
  if (m == 0) return;
  // Per row: decay (AdamW: 1 - lr wd; else 1), wd (Adam's L2: g + wd p; else 0), b1, 1 - b1, b2, 1 - b2,
  // sqrt(bc2), eps, -lr / bc1; computed in double as StepTensors does, then rounded to float.
  enum { kDecay, kWd, kB1, kOneB1, kB2, kOneB2, kSqrtBc2, kEps, kStep, kCols };
  std::vector<float> host(static_cast<size_t>(m * kCols));
  bool any_l2 = false;
  for (int64_t i = 0; i < m; ++i) {
    FusedOptimizer& o = *opts[static_cast<size_t>(i)];
    TORCH_CHECK(StepRowsTakes(o), "StepRows: optimizer '", o.kind_, "' is not adam / adamw");
    ++o.step_;
    const double bc1 = 1 - std::pow(o.beta1_, static_cast<double>(o.step_));
    const double bc2 = 1 - std::pow(o.beta2_, static_cast<double>(o.step_));
    const bool decoupled = o.kind_ == "adamw";
    float* r = host.data() + i * kCols;
    r[kDecay] = static_cast<float>(decoupled ? 1 - o.lr_ * o.weight_decay_ : 1.0);
    r[kWd] = static_cast<float>(decoupled ? 0.0 : o.weight_decay_);
    any_l2 |= !decoupled && o.weight_decay_ != 0;
    r[kB1] = static_cast<float>(o.beta1_);
    r[kOneB1] = static_cast<float>(1 - o.beta1_);
    r[kB2] = static_cast<float>(o.beta2_);
    r[kOneB2] = static_cast<float>(1 - o.beta2_);
    r[kSqrtBc2] = static_cast<float>(std::sqrt(bc2));
    r[kEps] = static_cast<float>(o.eps_);
    r[kStep] = static_cast<float>(-o.lr_ / bc1);
  }
  torch::Tensor k = torch::from_blob(host.data(), {m, kCols}, torch::kFloat);
  k = models::HostToDevice(k, params.device());  // on the CPU: the host values themselves, used before they go
  auto col = [&](int c) { return k.narrow(1, c, 1); };  // [m, 1]
  bool consecutive = true;
  for (int64_t i = 1; i < m; ++i) consecutive &= slots[static_cast<size_t>(i)] == slots[0] + i;
  torch::Tensor idx;
  torch::Tensor p, ea, es;
  if (consecutive) {
    p = params.narrow(0, slots[0], m);
    ea = exp_avg.narrow(0, slots[0], m);
    es = exp_avg_sq.narrow(0, slots[0], m);
  } else {
    idx = models::HostToDevice(torch::tensor(slots, torch::kLong), params.device());
    p = params.index_select(0, idx);
    ea = exp_avg.index_select(0, idx);
    es = exp_avg_sq.index_select(0, idx);
  }
  p.mul_(col(kDecay));
  const torch::Tensor g = any_l2 ? grads + p * col(kWd) : grads;
  ea.mul_(col(kB1)).add_(g * col(kOneB1));
  es.mul_(col(kB2)).add_(g * g * col(kOneB2));
  const torch::Tensor denom = (es.sqrt() / col(kSqrtBc2)).add_(col(kEps));
  p.add_(ea / denom * col(kStep));
  if (!consecutive) {
    params.index_copy_(0, idx, p);
    exp_avg.index_copy_(0, idx, ea);
    exp_avg_sq.index_copy_(0, idx, es);
  }
}

void FusedOptimizer::set_momentum(double m) {
  if (kind_ == "sgd") momentum_ = m;
  else beta1_ = m;
}

void FusedOptimizer::Step(const GradScale& scale) {
  if (tensor_path_) {
    ++step_;
    return StepTensors(scale);
  }
  const std::vector<GradRange> whole = {{0, flat_->numel(), flat_->grads().data_ptr<float>()}};
  StepHost(whole, scale);
}

void FusedOptimizer::Step(const std::vector<GradRange>& grads, const GradScale& scale) {
  if (tensor_path_) {
    flat_->SyncGrads();
    return Step(scale);
  }
  StepHost(grads, scale);
}

void FusedOptimizer::StepHost(const std::vector<GradRange>& grads, const GradScale& scale) {
  ++step_;
  float* p = flat_->params().data_ptr<float>();
  const int64_t n = flat_->numel();
  if (kind_ == "sgd") {
    const float lr = static_cast<float>(lr_), wd = static_cast<float>(weight_decay_);
    const float mom = static_cast<float>(momentum_);
    if (momentum_ == 0) {
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
        ForPieces(b, e, grads, scale, max_piece_, [&](int64_t lo, int64_t hi, const float* g, float gs) {
          float* pp = p + lo;
          for (int64_t i = 0; i < hi - lo; ++i) pp[i] += -lr * (g[i] * gs + wd * pp[i]);
        });
      });
      return;
    }
    float* buf = momentum_buf_.data_ptr<float>();
    const bool first = !momentum_initialised_;
    momentum_initialised_ = true;
    const bool nesterov = nesterov_;
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      ForPieces(b, e, grads, scale, max_piece_, [&](int64_t lo, int64_t hi, const float* g, float gs) {
        float* pp = p + lo;
        float* bb = buf + lo;
        for (int64_t i = 0; i < hi - lo; ++i) {
          const float d = g[i] * gs + wd * pp[i];
          const float m = first ? d : bb[i] * mom + d;
          bb[i] = m;
          pp[i] += -lr * (nesterov ? d + mom * m : m);
        }
      });
    });
    return;
  }
  // Adam / AdamW, as torch::optim (bias corrections in double, the update in float).
  const double bc1 = 1 - std::pow(beta1_, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(beta2_, static_cast<double>(step_));
  AdamConsts k;
  k.b1 = static_cast<float>(beta1_);
  k.one_b1 = static_cast<float>(1 - beta1_);
  k.b2 = static_cast<float>(beta2_);
  k.one_b2 = static_cast<float>(1 - beta2_);
  k.sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  k.eps = static_cast<float>(eps_);
  k.step_size = static_cast<float>(-lr_ / bc1);
  k.decay = static_cast<float>(1 - lr_ * weight_decay_);
  k.wd = static_cast<float>(weight_decay_);
  const bool decoupled = kind_ == "adamw";
  float* m = exp_avg_.data_ptr<float>();
  float* v = exp_avg_sq_.data_ptr<float>();
#if defined(__x86_64__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  const int64_t prefetch = avx512 ? prefetch_ : 0;
#else
  const int64_t prefetch = 0;
#endif
  at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    ForPieces(b, e, grads, scale, max_piece_, [&](int64_t lo, int64_t hi, const float* g, float gs) {
#if defined(__x86_64__)
      if (prefetch > 0) return AdamRangePrefetch(p + lo, g, m + lo, v + lo, hi - lo, k, decoupled, gs, prefetch);
#endif
      AdamRange(p + lo, g, m + lo, v + lo, hi - lo, k, decoupled, gs);
    });
  });
}

// The same updates as whole-buffer tensor operations (device memory): a handful of kernels per step.
void FusedOptimizer::StepTensors(const GradScale& scale) {
  torch::NoGradGuard no_grad;
  torch::Tensor p = flat_->params();
  // Device buffers: the clipping scale is applied to the gradient as ClipGradNorm does (one more kernel).
  if (scale.coef != 1.0f && scale.count > 0) flat_->grads().narrow(0, scale.offset, scale.count).mul_(scale.coef);
  const torch::Tensor& g = flat_->grads();
  if (kind_ == "sgd") {
    const torch::Tensor d = weight_decay_ != 0 ? g.add(p, weight_decay_) : g;
    if (momentum_ == 0) {
      p.add_(d, -lr_);
      return;
    }
    if (!momentum_initialised_) momentum_buf_.copy_(d);
    else momentum_buf_.mul_(momentum_).add_(d);
    momentum_initialised_ = true;
    p.add_(nesterov_ ? d.add(momentum_buf_, momentum_) : momentum_buf_, -lr_);
    return;
  }
  const double bc1 = 1 - std::pow(beta1_, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(beta2_, static_cast<double>(step_));
  const bool decoupled = kind_ == "adamw";
  if (decoupled) p.mul_(1 - lr_ * weight_decay_);
  const torch::Tensor gi = !decoupled && weight_decay_ != 0 ? g.add(p, weight_decay_) : g;
  exp_avg_.mul_(beta1_).add_(gi, 1 - beta1_);
  exp_avg_sq_.mul_(beta2_).addcmul_(gi, gi, 1 - beta2_);
  const torch::Tensor denom = (exp_avg_sq_.sqrt() / std::sqrt(bc2)).add_(eps_);
  p.addcdiv_(exp_avg_, denom, -lr_ / bc1);
}

std::vector<std::pair<std::string, torch::Tensor>> FusedOptimizer::StateTensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (exp_avg_.defined()) out.emplace_back("optimizer.exp_avg", exp_avg_);
  if (exp_avg_sq_.defined()) out.emplace_back("optimizer.exp_avg_sq", exp_avg_sq_);
  if (momentum_buf_.defined()) out.emplace_back("optimizer.momentum_buffer", momentum_buf_);
  return out;
}

nlohmann::json FusedOptimizer::StateMeta() const {
  return {{"kind", kind_}, {"step", step_}, {"lr", lr_}, {"beta1", beta1_}, {"momentum", momentum_},
          {"momentum_initialised", momentum_initialised_}};
}

Status FusedOptimizer::LoadState(const nlohmann::json& meta,
                                 const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  if (meta.value("kind", "") != kind_)
    return Status::Corruption("optimizer state is for '" + meta.value("kind", std::string("?")) + "', expected '" +
                              kind_ + "'");
  for (auto& [name, dst] : StateTensors()) {
    bool found = false;
    for (const auto& [n, src] : tensors) {
      if (n != name) continue;
      if (src.numel() != dst.numel())
        return Status::Corruption("optimizer state '" + name + "' has " + std::to_string(src.numel()) +
                                  " values, the model has " + std::to_string(dst.numel()));
      torch::NoGradGuard no_grad;
      torch::Tensor d = dst;
      d.copy_(src.view_as(dst));
      found = true;
    }
    // An SGD state saved while momentum was 0 throughout has no meaningful buffer (zeros): tolerate its absence.
    if (!found && name == "optimizer.momentum_buffer" && !meta.value("momentum_initialised", true)) {
      torch::NoGradGuard no_grad;
      torch::Tensor d = dst;
      d.zero_();
      found = true;
    }
    if (!found) return Status::Corruption("optimizer state '" + name + "' missing");
  }
  step_ = meta["step"];
  lr_ = meta["lr"];
  beta1_ = meta["beta1"];
  momentum_ = meta["momentum"];
  momentum_initialised_ = meta["momentum_initialised"];
  return Status::Ok();
}

double ClipGradNorm(torch::Tensor& grads, double max_norm) {
  const double norm = grads.norm().item<double>();
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1) grads.mul_(coef);
  return norm;
}

GradScale ClipScaleForNorm(double norm, int64_t offset, int64_t count, double max_norm) {
  GradScale s;
  s.offset = offset;
  s.count = count;
  const double coef = max_norm / (norm + 1e-6);
  // mul_ with a double scalar on a float tensor multiplies by the scalar rounded to float.
  if (coef < 1) s.coef = static_cast<float>(coef);
  return s;
}

GradScale ClipScale(const torch::Tensor& grads, int64_t offset, int64_t count, double max_norm, double* norm_out) {
  const double norm = grads.narrow(0, offset, count).norm().item<double>();
  if (norm_out) *norm_out = norm;
  return ClipScaleForNorm(norm, offset, count, max_norm);
}

}  // namespace emosweep::worker
