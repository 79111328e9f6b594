#include "models/losses.h"

#include <cmath>
#include <string>

#include "models/row_norm_kernels.h"

namespace emosweep::models {
namespace F = torch::nn::functional;

namespace {

Result<std::vector<double>> Inverse(const std::vector<int64_t>& counts, double* n_total, int64_t* present) {
  if (counts.empty()) return Status::InvalidArgument("class weights: no classes");
  std::vector<double> inv(counts.size(), 0.0);
  *n_total = 0;
  *present = 0;
  for (size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] < 0) return Status::InvalidArgument("class weights: negative count for class " + std::to_string(c));
    if (counts[c] == 0) continue;
    inv[c] = 1.0 / static_cast<double>(counts[c]);
    *n_total += static_cast<double>(counts[c]);
    ++*present;
  }
  if (*present == 0) return Status::InvalidArgument("class weights: every class count is zero");
  return inv;
}

bool FusableRows(const torch::Tensor& x) {
  return x.defined() && x.dim() == 2 && x.scalar_type() == torch::kFloat && x.device().is_cpu() &&
         x.layout() == torch::kStrided && x.is_contiguous() && x.size(0) > 0 && x.size(1) > 0;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// F::normalize(x) = x / norm(x).clamp_min(eps).expand_as(x). x arrives twice: autograd hands x its gradient
// through the division (DivBackward0, the composite's last node) and then through the norm (NormBackward1,
// its first), one after the other; a node's outputs reach x's input buffer in input order, so x_div's
// gradient is added before x_norm's, as the composite's are. Forward: the composite's own torch ops.
struct RowNormalizeFn : torch::autograd::Function<RowNormalizeFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_div, const torch::Tensor& x_norm,
                               double eps) {
    (void)x_norm;  // the same tensor as x_div
    auto n = x_div.norm(2, 1, true);
    auto d = n.clamp_min(eps);
    auto y = x_div / d.expand_as(x_div);
    ctx->save_for_backward({x_div, y, n, d});
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &y = saved[1], &n = saved[2], &d = saved[3];
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor& g = grads[0];
    torch::Tensor gx_div, r;
    if (g.is_contiguous() && g.scalar_type() == torch::kFloat && g.sizes() == x.sizes()) {
      gx_div = torch::empty_like(x);
      r = torch::empty_like(x);
      RowNormalizeGradPass(g.data_ptr<float>(), y.data_ptr<float>(), d.data_ptr<float>(), x.size(0), x.size(1),
                           gx_div.data_ptr<float>(), r.data_ptr<float>());
    } else {  // e.g. a transposed gradient from a matmul: the composite's ops, so the sum below sees its layout
      const auto de = d.expand_as(x);
      r = -g * ((x / de) / de);
      gx_div = g / de;
    }
    auto gd = r.sum({1}, /*keepdim=*/true);                                      // ExpandBackward0 (sum_to)
    auto gn = torch::where(n >= eps, gd, torch::scalar_tensor(0., gd.options()));  // ClampMinBackward0
    auto gx_norm = torch::empty_like(x);  // NormBackward1, p = 2: gn * (x / n).masked_fill_(n == 0, 0)
    RowNormGrad(gn.contiguous().data_ptr<float>(), x.data_ptr<float>(), n.data_ptr<float>(), x.size(0), x.size(1),
                gx_norm.data_ptr<float>());
    return {gx_div, gx_norm, torch::Tensor()};
  }
};

// torch::cosine_similarity(x1, x2, 1, eps) (ATen 1.13): x1 / sqrt(max(Σ x1², eps²)) · the same of x2, summed
// over the row. The composite routes each operand's two gradients (through its division and its squared
// norm) into the operand's expand node, which adds them in that order and hands x2 the sum before x1; the
// inputs are (x2, x1) to keep that order (for one tensor twice the two gradients are equal anyway).
struct RowCosineFn : torch::autograd::Function<RowCosineFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x2, const torch::Tensor& x1, double eps) {
    auto sq1 = x1.pow(2).sum(1, /*keepdim=*/true).clamp_min(eps * eps);  // clamp_min_ in place in ATen
    auto sq2 = x2.pow(2).sum(1, /*keepdim=*/true).clamp_min(eps * eps);
    auto n1 = sq1.sqrt();
    auto n2 = sq2.sqrt();
    auto x1n = x1.div(n1);
    auto x2n = x2.div(n2);
    auto cos = (x1n * x2n).sum(1);
    ctx->save_for_backward({x1, x2, x1n, x2n, sq1, sq2, n1, n2});
    ctx->saved_data["eps"] = eps;
    return cos;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor g = grads[0].contiguous();  // one value per row: its layout changes nothing
    const int64_t n = s[0].size(0), dim = s[0].size(1);
    // One operand: x its input, xn = x / nrm, o the other operand's xn, sq its clamped squared norm (nrm²).
    auto operand_grad = [&](const torch::Tensor& x, const torch::Tensor& xn, const torch::Tensor& o,
                            const torch::Tensor& sq, const torch::Tensor& nrm) {
      auto a = torch::empty_like(x), r = torch::empty_like(x);
      RowCosineGradPass(g.data_ptr<float>(), o.data_ptr<float>(), xn.data_ptr<float>(), nrm.data_ptr<float>(), n,
                        dim, a.data_ptr<float>(), r.data_ptr<float>());
      auto gn = r.sum({1}, /*keepdim=*/true);                                         // sum_to the norm's shape
      auto gs = gn / (2 * nrm);                                                       // SqrtBackward0
      // ClampMinBackward0 of the in-place clamp_min_: ATen 1.13 tests the clamped value (result >= eps²), so
      // the gradient passes for a clamped row too.
      auto gq = torch::where(sq >= eps * eps, gs, torch::scalar_tensor(0., gs.options()));
      RowCosineGradFinish(a.data_ptr<float>(), gq.data_ptr<float>(), x.data_ptr<float>(), n, dim);  // + PowBackward0
      return a;
    };
    auto gx2 = operand_grad(s[1], s[3], s[2], s[5], s[7]);
    auto gx1 = operand_grad(s[0], s[2], s[3], s[4], s[6]);
    return {gx2, gx1, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor RowNormalize(const torch::Tensor& x, double eps) {
  if (!torch::GradMode::is_enabled() || !x.requires_grad() || !FusableRows(x))
    return F::normalize(x, F::NormalizeFuncOptions().dim(1).eps(eps));
  return RowNormalizeFn::apply(x, x, eps);
}

torch::Tensor RowCosineSimilarity(const torch::Tensor& x1, const torch::Tensor& x2, double eps) {
  if (!torch::GradMode::is_enabled() || !(x1.requires_grad() || x2.requires_grad()) || !FusableRows(x1) ||
      !FusableRows(x2) || x1.sizes() != x2.sizes())
    return F::cosine_similarity(x1, x2, F::CosineSimilarityFuncOptions().dim(1).eps(eps));
  return RowCosineFn::apply(x2, x1, eps);
}

Result<torch::Tensor> BalancedClassWeights(const std::vector<int64_t>& counts) {
  double n = 0;
  int64_t present = 0;
  ES_ASSIGN_OR_RETURN(std::vector<double> inv, Inverse(counts, &n, &present));
  std::vector<float> w(counts.size());
  for (size_t c = 0; c < counts.size(); ++c) w[c] = static_cast<float>(n / static_cast<double>(present) * inv[c]);
  return torch::tensor(w);
}

Result<torch::Tensor> InverseFrequencyClassWeights(const std::vector<int64_t>& counts) {
  double n = 0;
  int64_t present = 0;
  ES_ASSIGN_OR_RETURN(std::vector<double> inv, Inverse(counts, &n, &present));
  double sum = 0;
  for (double v : inv) sum += v;
  std::vector<float> w(counts.size());
  for (size_t c = 0; c < counts.size(); ++c) w[c] = static_cast<float>(inv[c] / sum * static_cast<double>(present));
  return torch::tensor(w);
}

torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& weights,
                           double label_smoothing, double weight_mean) {
  auto opt = F::CrossEntropyFuncOptions().label_smoothing(label_smoothing);
  if (weights.defined()) opt = opt.weight(weights.to(logits.device(), logits.scalar_type()));
  if (weights.defined() && weight_mean > 0) {
    // PyTorch's weighted sum has the same numerator as its weighted mean (label smoothing included).
    opt = opt.reduction(torch::kSum);
    return F::cross_entropy(logits, labels, opt) / (static_cast<double>(logits.size(0)) * weight_mean);
  }
  return F::cross_entropy(logits, labels, opt);
}

torch::Tensor PackedCrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& weights,
                                 const torch::Tensor& label_smoothing) {
  TORCH_CHECK(logits.dim() == 3 && labels.dim() == 2 && weights.dim() == 2 && label_smoothing.dim() == 1,
              "PackedCrossEntropy: logits [m, n, C], labels [m, n], weights [m, C], label_smoothing [m]");
  const int64_t c = logits.size(2);
  const torch::Tensor nlogp = -torch::log_softmax(logits, 2);                      // [m, n, C]
  const torch::Tensor w = weights.to(logits.scalar_type());                         // [m, C]
  const torch::Tensor wy = w.gather(1, labels);                                     // [m, n]: w_{y_i}
  const torch::Tensor picked = nlogp.gather(2, labels.unsqueeze(2)).squeeze(2);     // [m, n]
  const torch::Tensor eps = label_smoothing.to(logits.scalar_type());               // [m]
  // PyTorch: (1 - ε) Σ_i w_{y_i}(−log p_{i,y_i}) / Σ_i w_{y_i} + (ε / C) Σ_i Σ_c w_c(−log p_{i,c}) / Σ_i w_{y_i}.
  const torch::Tensor nll = (picked * wy).sum(1);                                   // [m]
  const torch::Tensor smooth = (nlogp * w.unsqueeze(1)).sum({1, 2});                // [m]
  return ((1 - eps) * nll + eps / static_cast<double>(c) * smooth) / wy.sum(1);
}

torch::Tensor FocalLoss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& alpha,
                        double gamma, double label_smoothing) {
  const int64_t c = logits.size(1);
  auto logp = torch::log_softmax(logits, 1);
  auto p = logp.exp();
  const double off = c > 1 ? label_smoothing / static_cast<double>(c - 1) : 0.0;
  auto q = torch::full_like(logp, off).scatter_(1, labels.view({-1, 1}), 1.0 - label_smoothing);
  auto per = torch::pow(1.0 - p, gamma) * q * (-logp);
  if (alpha.defined()) per = per * alpha.to(logits.device(), logits.scalar_type()).view({1, c});
  return per.sum(1).mean();
}

torch::Tensor NtXentCrossModal(const torch::Tensor& a, const torch::Tensor& b, double tau) {
  auto s = torch::matmul(RowNormalize(a), RowNormalize(b).t()) / tau;
  auto target = torch::arange(a.size(0), torch::TensorOptions().dtype(torch::kLong).device(a.device()));
  return F::cross_entropy(s, target);
}

torch::Tensor NtXentSimClr(const torch::Tensor& z1, const torch::Tensor& z2, double tau) {
  const int64_t n = z1.size(0);
  auto z = F::normalize(torch::cat({z1, z2}, 0), F::NormalizeFuncOptions().dim(1));
  auto s = torch::matmul(z, z.t()) / tau;
  auto eye = torch::eye(2 * n, torch::TensorOptions().dtype(torch::kBool).device(z.device()));
  s = s.masked_fill(eye, -std::numeric_limits<float>::infinity());
  auto idx = torch::arange(2 * n, torch::TensorOptions().dtype(torch::kLong).device(z.device()));
  auto target = torch::remainder(idx + n, 2 * n);
  return F::cross_entropy(s, target);
}

torch::Tensor SupConLoss(const torch::Tensor& z, const torch::Tensor& labels, double tau) {
  const int64_t b = z.size(0);
  auto zn = F::normalize(z, F::NormalizeFuncOptions().dim(1));
  auto s = torch::matmul(zn, zn.t()) / tau;
  auto eye = torch::eye(b, torch::TensorOptions().dtype(torch::kBool).device(z.device()));
  auto not_self = eye.logical_not();
  // log(Σ_{k≠i} exp s_ik + 1e-8) as a logsumexp over the off-diagonal entries plus one column holding log(1e-8):
  // exact, cannot overflow for a small τ, and finite for a batch of one (no off-diagonal entry at all).
  auto masked = s.masked_fill(eye, -std::numeric_limits<float>::infinity());
  auto eps_col = torch::full({b, 1}, std::log(1e-8), s.options());
  auto denom = torch::logsumexp(torch::cat({masked, eps_col}, 1), 1, /*keepdim=*/true);
  auto log_p = s - denom;
  auto pos = labels.view({-1, 1}).eq(labels.view({1, -1})).logical_and(not_self).to(s.scalar_type());
  auto n_pos = pos.sum(1);
  auto per = -(pos * log_p).sum(1) / n_pos.clamp_min(1.0);
  return per.mean();
}

torch::Tensor MiclLoss(const torch::Tensor& t, const torch::Tensor& a, const torch::Tensor& labels, double tau,
                       double same_label_weight) {
  const int64_t b = t.size(0);
  auto s = torch::matmul(F::normalize(t, F::NormalizeFuncOptions().dim(1)),
                         F::normalize(a, F::NormalizeFuncOptions().dim(1)).t()) /
           tau;
  auto target = torch::arange(b, torch::TensorOptions().dtype(torch::kLong).device(t.device()));
  auto loss = 0.5 * (F::cross_entropy(s, target) + F::cross_entropy(s.t(), target));
  if (labels.defined() && same_label_weight != 0.0) {
    auto eye = torch::eye(b, torch::TensorOptions().dtype(torch::kBool).device(t.device()));
    auto same = labels.view({-1, 1}).eq(labels.view({1, -1})).logical_and(eye.logical_not()).to(s.scalar_type());
    // −mean over same-label off-diagonal pairs; 0 when there is none (no host read: clamp the count).
    auto term = -(s * same).sum() / same.sum().clamp_min(1.0);
    loss = loss + same_label_weight * term;
  }
  return loss;
}

torch::Tensor VadMse(const torch::Tensor& pred, const torch::Tensor& table, const torch::Tensor& labels) {
  return F::mse_loss(pred, table.to(pred.device(), pred.scalar_type()).index_select(0, labels));
}

}  // namespace emosweep::models
