#include "models/da_losses.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/adapt_configs.h"
#include "models/dropout.h"

namespace emosweep::models {
namespace F = torch::nn::functional;
namespace {

class GradReverseFn : public torch::autograd::Function<GradReverseFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double lambda) {
    ctx->saved_data["lambda"] = lambda;
    return x.view_as(x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad) {
    const double lambda = ctx->saved_data["lambda"].toDouble();
    return {grad[0] * (-lambda), torch::Tensor()};
  }
};

torch::Tensor Covariance(const torch::Tensor& f) {
  TORCH_CHECK(f.dim() == 2 && f.size(0) >= 2, "CORAL needs at least 2 rows per domain, got ", f.sizes());
  auto c = f - f.mean(0, true);
  return torch::matmul(c.t(), c) / static_cast<double>(f.size(0) - 1);
}

torch::Tensor SqDist(const torch::Tensor& x, const torch::Tensor& y) {
  // ‖x‖² + ‖y‖² − 2xy, clamped: cheaper than materialising [N, M, D] differences.
  auto d = x.pow(2).sum(1, true) + y.pow(2).sum(1, true).t() - 2.0 * torch::matmul(x, y.t());
  return d.clamp_min(0.0);
}

class DannAdapter : public DomainAdapter {
 public:
  DannAdapter(const nlohmann::json& c, int64_t dim)
      : DomainAdapter(c["variant"].get<std::string>(), c["weight"].get<double>()),
        per_step_(variant() == "dann_tllib"),
        seed_form_(c["loss_form"].get<std::string>() == "seed"),
        lambda_max_(c["lambda_max"].get<double>()),
        gamma_(per_step_ ? 0.0 : c["grl_gamma"].get<double>()),
        alpha_(per_step_ ? c["grl_alpha"].get<double>() : 0.0),
        max_iters_(per_step_ ? c["grl_max_iters"].get<int64_t>() : 1) {
    auto h = ParseGrlHorizon(c.value("grl_horizon", std::string()), "adapt");
    TORCH_CHECK(h.ok(), h.status().ToString());
    horizon_ = *h;
    config_ = c;
    disc_ = register_module("discriminator",
                            DomainDiscriminator(dim, c["disc_hidden"].get<std::vector<int64_t>>(),
                                                c["disc_dropout"].get<double>()));
  }
  bool needs_target_grad() const override { return true; }

  LossTerms Loss(const torch::Tensor& fs, const torch::Tensor& ft, const LossContext& ctx) override {
    const double lambda = Lambda(ctx);
    last_lambda_ = lambda;
    auto ds = disc_(GradientReversal(fs, lambda));
    auto dt = disc_(GradientReversal(ft, lambda));
    // Seed labels source 0 / target 1 and sums the two means; TLlib labels source 1 and halves.
    const double ls = seed_form_ ? 0.0 : 1.0;
    auto bs = F::binary_cross_entropy_with_logits(ds, torch::full_like(ds, ls));
    auto bt = F::binary_cross_entropy_with_logits(dt, torch::full_like(dt, 1.0 - ls));
    auto da = seed_form_ ? bs + bt : 0.5 * (bs + bt);
    LossTerms t;
    t.total = weight() * da;
    t.parts["da"] = da;
    t.parts["grl_lambda"] = torch::full({}, lambda, da.options().requires_grad(false));
    {
      torch::NoGradGuard ng;
      // A logit > 0 says "label 1": source rows are right when their label is 1 (tllib form), target rows
      // when theirs is.
      auto s_ok = ((ds > 0) == (ls > 0.5)).to(torch::kFloat).mean();
      auto t_ok = ((dt > 0) == (ls < 0.5)).to(torch::kFloat).mean();
      t.parts["disc_acc"] = 0.5 * (s_ok + t_ok);
    }
    return t;
  }
  double last_lambda() const override { return last_lambda_; }
  double lambda_max() const override { return lambda_max_; }
  std::string horizon_text(const LossContext& ctx) const override {
    const double steps = HorizonSteps(ctx);
    if (steps <= 0) return "the whole run";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f steps", steps);
    return buf;
  }

 private:
  bool per_step_, seed_form_;
  double lambda_max_, gamma_, alpha_;
  int64_t max_iters_;
  GrlHorizon horizon_;
  nlohmann::json config_;
  double last_lambda_ = 0;
  DomainDiscriminator disc_{nullptr};

  // The horizon in optimizer steps (0 = dann_ganin's native "the whole run", p = epoch/num_epochs).
  double HorizonSteps(const LossContext& ctx) const {
    if (!horizon_.unit.empty()) return horizon_.Steps(ctx.num_epochs, ctx.steps_per_epoch);
    return per_step_ ? static_cast<double>(max_iters_) : 0.0;
  }
  // One definition shared with the plan-time check (models/adapt_configs.h).
  double Lambda(const LossContext& ctx) const {
    return GrlScheduleLambda(config_, ctx.epoch, ctx.step, ctx.num_epochs, ctx.steps_per_epoch);
  }
};

class StatAdapter : public DomainAdapter {
 public:
  StatAdapter(const nlohmann::json& c, int64_t dim) : DomainAdapter(c["variant"].get<std::string>(), c["weight"].get<double>()) {
    if (variant() == "mmd_rbf") {
      gamma_ = c["gamma"].get<double>();
      if (gamma_ <= 0) gamma_ = 1.0 / static_cast<double>(dim);
    }
    if (c.contains("kernel_multipliers")) multipliers_ = c["kernel_multipliers"].get<std::vector<double>>();
    target_grad_ = c.value("target_grad", false);
  }
  bool needs_target_grad() const override { return target_grad_; }
  LossTerms Loss(const torch::Tensor& fs, const torch::Tensor& ft, const LossContext&) override {
    torch::Tensor da;
    const std::string& v = variant();
    if (v == "mmd_rbf") da = MmdRbf(fs, ft, gamma_);
    else if (v == "mk_mmd_linear") da = MkMmd(fs, ft, multipliers_, /*linear=*/true);
    else if (v == "mk_mmd_quadratic") da = MkMmd(fs, ft, multipliers_, /*linear=*/false);
    else if (v == "coral_deep") da = CoralDeep(fs, ft);
    else da = CoralMeanCov(fs, ft);
    LossTerms t;
    t.total = weight() * da;
    t.parts["da"] = da;
    return t;
  }

 private:
  double gamma_ = 0;
  std::vector<double> multipliers_;
  bool target_grad_ = false;
};

}  // namespace

torch::Tensor GradientReversal(const torch::Tensor& x, double lambda) { return GradReverseFn::apply(x, lambda); }

double GrlLambdaGanin(int epoch, int num_epochs, double gamma, double lambda_max) {
  const double p = num_epochs > 0 ? static_cast<double>(epoch) / static_cast<double>(num_epochs) : 1.0;
  return lambda_max * (2.0 / (1.0 + std::exp(-gamma * p)) - 1.0);
}

double GrlLambdaGaninSteps(int epoch, int64_t steps_per_epoch, double horizon_steps, double gamma, double lambda_max) {
  const double p = std::min(1.0, static_cast<double>(epoch) * static_cast<double>(steps_per_epoch) /
                                     std::max(horizon_steps, 1e-12));
  return lambda_max * (2.0 / (1.0 + std::exp(-gamma * p)) - 1.0);
}

double GrlLambdaTllib(int64_t step, double alpha, int64_t max_iters, double lambda_max) {
  const double r = static_cast<double>(step) / static_cast<double>(max_iters);
  return 2.0 * lambda_max / (1.0 + std::exp(-alpha * r)) - lambda_max;
}

torch::Tensor MmdRbf(const torch::Tensor& fs, const torch::Tensor& ft, double gamma) {
  const int64_t n = std::min(fs.size(0), ft.size(0));
  TORCH_CHECK(n >= 1, "MMD needs a non-empty batch from each domain");
  auto s = fs.narrow(0, 0, n), t = ft.narrow(0, 0, n);
  if (gamma <= 0) gamma = 1.0 / static_cast<double>(fs.size(1));
  auto kss = torch::exp(-gamma * SqDist(s, s));
  auto ktt = torch::exp(-gamma * SqDist(t, t));
  auto kst = torch::exp(-gamma * SqDist(s, t));
  return kss.mean() + ktt.mean() - 2.0 * kst.mean();
}

torch::Tensor MkMmd(const torch::Tensor& fs, const torch::Tensor& ft, const std::vector<double>& multipliers,
                    bool linear) {
  const int64_t b = std::min(fs.size(0), ft.size(0));
  TORCH_CHECK(b >= 2, "MK-MMD needs at least 2 rows per domain (its estimator divides by B-1), got ", b);
  auto x = torch::cat({fs.narrow(0, 0, b), ft.narrow(0, 0, b)}, 0);
  auto d2 = SqDist(x, x);
  // TLlib: sigma² from detached distances. Clamped: a batch of identical rows (a constant feature map) gave
  // 0/0 = NaN, and the job "diverged" (TLlib shares the flaw); any other batch is unchanged.
  auto mean_d2 = d2.mean().detach().clamp_min(1e-12);
  torch::Tensor k;
  for (double m : multipliers) {
    auto km = torch::exp(-d2 / (2.0 * m * mean_d2));
    k = k.defined() ? k + km : km;
  }
  const double bb = static_cast<double>(b);
  torch::Tensor loss;
  if (linear) {
    // Pairs (i, i+1 mod B): +k(s_i,s_{i+1}) + k(t_i,t_{i+1}) − k(s_i,t_{i+1}) − k(s_{i+1},t_i), each / B.
    auto i = torch::arange(b, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    auto j = torch::remainder(i + 1, b);
    auto at = [&](const torch::Tensor& r, const torch::Tensor& c) { return k.index({r, c}); };
    loss = (at(i, j) + at(i + b, j + b) - at(i, j + b) - at(j, i + b)).sum() / bb;
  } else {
    auto ss = k.narrow(0, 0, b).narrow(1, 0, b), tt = k.narrow(0, b, b).narrow(1, b, b);
    auto st = k.narrow(0, 0, b).narrow(1, b, b), ts = k.narrow(0, b, b).narrow(1, 0, b);
    auto off = [&](const torch::Tensor& m) { return m.sum() - m.diagonal().sum(); };
    loss = (off(ss) + off(tt)) / (bb * (bb - 1.0)) - (st.sum() + ts.sum()) / (bb * bb);
  }
  return loss + 2.0 / (bb - 1.0);
}

torch::Tensor CoralDeep(const torch::Tensor& fs, const torch::Tensor& ft) {
  const double d = static_cast<double>(fs.size(1));
  return (Covariance(fs) - Covariance(ft)).pow(2).sum() / (4.0 * d * d);
}

torch::Tensor CoralMeanCov(const torch::Tensor& fs, const torch::Tensor& ft) {
  return (fs.mean(0) - ft.mean(0)).pow(2).mean() + (Covariance(fs) - Covariance(ft)).pow(2).mean();
}

DomainDiscriminatorImpl::DomainDiscriminatorImpl(int64_t in_dim, const std::vector<int64_t>& hidden, double dropout) {
  int64_t d = in_dim;
  for (int64_t h : hidden) {
    net_->push_back(torch::nn::Linear(d, h));
    net_->push_back(torch::nn::ReLU());
    net_->push_back(FastDropout(dropout));  // at::dropout's draws, block-wise (models/dropout.h)
    d = h;
  }
  net_->push_back(torch::nn::Linear(d, 1));
  register_module("net", net_);
}

torch::Tensor DomainDiscriminatorImpl::forward(const torch::Tensor& x) { return net_->forward(x); }

Result<std::unique_ptr<DomainAdapter>> MakeDomainAdapter(const nlohmann::json& adapt_config, int64_t feature_dim) {
  ES_ASSIGN_OR_RETURN(nlohmann::json c, ValidateAdaptConfig(adapt_config, "adapt"));
  if (c.empty()) return Status::InvalidArgument("adapt: empty section, no variant to build");
  // The job's config as recorded is what runs: an effective config leaves target_grad out when it is false (the
  // identities of jobs from before the key), so an absent key means false here, not the variant's default
  // (helper-70: re-validating put TLlib's default, true, back into a job recorded without target gradients).
  if (c.contains("target_grad")) c["target_grad"] = adapt_config.is_object() && adapt_config.value("target_grad", false);
  if (feature_dim <= 0) return Status::InvalidArgument("adapt: feature_dim must be positive");
  const std::string v = c["variant"].get<std::string>();
  try {
    if (v == "dann_ganin" || v == "dann_tllib") return std::unique_ptr<DomainAdapter>(new DannAdapter(c, feature_dim));
    return std::unique_ptr<DomainAdapter>(new StatAdapter(c, feature_dim));
  } catch (const std::exception& e) {
    return Status::Internal("adapt '" + v + "': " + e.what());
  }
}

}  // namespace emosweep::models
