// worker/da_diagnostics.cc: DA diagnostics and unsupervised selection criteria (see da_diagnostics.h).
#include "worker/da_diagnostics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace emosweep::worker {
namespace {

torch::Tensor Entropy(const torch::Tensor& p) {  // rows of [N, C] -> [N]
  return -(p * p.clamp_min(1e-12).log()).sum(-1);
}

}  // namespace

double LinearMmd(const torch::Tensor& fs, const torch::Tensor& ft) {
  torch::NoGradGuard ng;
  if (fs.size(0) == 0 || ft.size(0) == 0) return std::nan("");
  return (fs.to(torch::kDouble).mean(0) - ft.to(torch::kDouble).mean(0)).pow(2).sum().item<double>();
}

PredictionStats TargetPredictionStats(const torch::Tensor& probs) {
  torch::NoGradGuard ng;
  PredictionStats s;
  const int64_t n = probs.size(0), c = probs.size(1);
  if (n == 0) return s;
  torch::Tensor p = probs.to(torch::kCPU, torch::kDouble);
  torch::Tensor counts = torch::bincount(p.argmax(1), /*weights=*/{}, c).to(torch::kDouble) / static_cast<double>(n);
  s.class_share.assign(counts.data_ptr<double>(), counts.data_ptr<double>() + c);
  auto it = std::max_element(s.class_share.begin(), s.class_share.end());
  s.max_share = *it;
  s.max_class = static_cast<int>(it - s.class_share.begin());
  s.mean_entropy = Entropy(p).mean().item<double>();
  s.im = Entropy(p.mean(0)).item<double>() - s.mean_entropy;
  return s;
}

double SoftNeighborhoodDensity(const torch::Tensor& probs, double tau) {
  torch::NoGradGuard ng;
  const int64_t n = probs.size(0);
  if (n < 2) return std::nan("");
  torch::Tensor p = torch::nn::functional::normalize(probs.to(torch::kDouble),
                                                     torch::nn::functional::NormalizeFuncOptions().dim(1));
  torch::Tensor sim = torch::matmul(p, p.t()) / tau;
  // Self-similarity excluded (Saito et al.: the diagonal is masked before the softmax).
  sim.diagonal().fill_(-std::numeric_limits<double>::infinity());
  torch::Tensor q = torch::softmax(sim, 1);
  return Entropy(q).mean().item<double>();
}

DevResult DeepEmbeddedValidation(const torch::Tensor& source_feats, const torch::Tensor& target_feats,
                                 const torch::Tensor& val_feats, const torch::Tensor& val_losses) {
  DevResult r;
  r.risk = r.eta = std::nan("");
  const int64_t ns = source_feats.size(0), nt = target_feats.size(0), nv = val_feats.size(0);
  if (ns < 5 || nt < 5 || nv < 2) {
    r.undefined_reason = "too few rows (" + std::to_string(ns) + " source, " + std::to_string(nt) + " target, " +
                         std::to_string(nv) + " validation)";
    return r;
  }
  torch::Tensor xs = source_feats.detach().to(torch::kCPU, torch::kDouble);
  torch::Tensor xt = target_feats.detach().to(torch::kCPU, torch::kDouble);
  torch::Tensor x = torch::cat({xs, xt}, 0);
  torch::Tensor mu = x.mean(0, true), sd = x.std(0, /*unbiased=*/false, true).clamp_min(1e-6);
  x = (x - mu) / sd;
  torch::Tensor y = torch::cat({torch::ones({ns}, torch::kDouble), torch::zeros({nt}, torch::kDouble)});
  // Every 5th row of each domain is held out (the reference code: an 80/20 split), deterministically.
  torch::Tensor held = torch::cat({torch::arange(ns, torch::kLong) % 5 == 4, torch::arange(nt, torch::kLong) % 5 == 4});
  torch::Tensor fit_idx = torch::nonzero(~held).reshape({-1}), held_idx = torch::nonzero(held).reshape({-1});
  torch::Tensor xf = x.index_select(0, fit_idx), yf = y.index_select(0, fit_idx);
  torch::Tensor xh = x.index_select(0, held_idx), yh = y.index_select(0, held_idx);
  const double ns_fit = yf.sum().item<double>(), nt_fit = static_cast<double>(yf.size(0)) - ns_fit;
  double best_loss = std::numeric_limits<double>::infinity();
  torch::Tensor best_w, best_b;
  for (double l2 : kDevL2Grid) {
    // Logistic regression from zero, full batch: deterministic, no random draws.
    torch::Tensor w = torch::zeros({x.size(1)}, torch::kDouble).requires_grad_(true);
    torch::Tensor b = torch::zeros({1}, torch::kDouble).requires_grad_(true);
    torch::optim::LBFGS opt({w, b}, torch::optim::LBFGSOptions(1.0).max_iter(100).line_search_fn("strong_wolfe"));
    auto closure = [&]() -> torch::Tensor {
      opt.zero_grad();
      torch::Tensor logit = torch::matmul(xf, w) + b;
      torch::Tensor loss = torch::nn::functional::binary_cross_entropy_with_logits(logit, yf) + l2 * w.pow(2).sum();
      loss.backward();
      return loss;
    };
    opt.step(closure);
    torch::NoGradGuard ng;
    const double held_loss =
        torch::nn::functional::binary_cross_entropy_with_logits(torch::matmul(xh, w) + b, yh).item<double>();
    if (held_loss < best_loss) {
      best_loss = held_loss;
      best_w = w.detach();
      best_b = b.detach();
      r.l2 = l2;
    }
  }
  torch::NoGradGuard ng;
  r.domain_acc =
      ((torch::matmul(xh, best_w) + best_b > 0).to(torch::kDouble) == yh).to(torch::kDouble).mean().item<double>();
  torch::Tensor xv = (val_feats.detach().to(torch::kCPU, torch::kDouble) - mu) / sd;
  // P(source|x) = σ(z): w = P(t|x)/P(s|x) · n_s/n_t = exp(−z) · n_s/n_t (clamped against overflow).
  torch::Tensor z = (torch::matmul(xv, best_w) + best_b).clamp(-30.0, 30.0);
  torch::Tensor weight = torch::exp(-z) * (ns_fit / nt_fit);
  r.weight_mean = weight.mean().item<double>();
  const double sw = weight.sum().item<double>(), sw2 = weight.pow(2).sum().item<double>();
  r.ess = sw2 > 0 ? sw * sw / sw2 : 0.0;
  char buf[240];
  if (r.weight_mean < kDevMinWeightMean) {
    std::snprintf(buf, sizeof buf,
                  "mean importance weight %.3g < %.3g: the features separate the domains (held-out domain accuracy "
                  "%.3f), the source-validation rows see almost none of the target",
                  r.weight_mean, kDevMinWeightMean, r.domain_acc);
    r.undefined_reason = buf;
    return r;
  }
  if (r.ess < kDevMinEss) {
    std::snprintf(buf, sizeof buf, "effective sample size %.3g < %.3g rows: a few validation rows would decide it",
                  r.ess, kDevMinEss);
    r.undefined_reason = buf;
    return r;
  }
  r.defined = true;
  r.risk = DevRisk(weight, val_losses, &r.eta);
  return r;
}

double DevRisk(const torch::Tensor& weight_in, const torch::Tensor& loss_in, double* eta_out) {
  torch::NoGradGuard ng;
  torch::Tensor weight = weight_in.detach().to(torch::kCPU, torch::kDouble).reshape({-1});
  torch::Tensor loss = loss_in.detach().to(torch::kCPU, torch::kDouble).reshape({-1});
  const int64_t n = weight.size(0);
  if (n < 2 || loss.size(0) != n) return std::nan("");
  torch::Tensor wl = weight * loss;
  const double mean_w = weight.mean().item<double>(), mean_wl = wl.mean().item<double>();
  const double cov = ((wl - mean_wl) * (weight - mean_w)).sum().item<double>() / static_cast<double>(n - 1);
  const double var_w = (weight - mean_w).pow(2).sum().item<double>() / static_cast<double>(n - 1);
  const double eta = var_w > 0 ? -cov / var_w : 0.0;
  if (eta_out) *eta_out = eta;
  return mean_wl + eta * mean_w - eta;
}

}  // namespace emosweep::worker
