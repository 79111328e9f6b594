// models/da_losses.h: domain-adaptation losses under the names of specs/da-variants.md (libtorch).
//
// The trainer builds one DomainAdapter per job from the validated `adapt`
// section (models/adapt_configs.h) and the model's feature_dim(), adds the
// adapter's parameters (the DANN discriminator; none for MMD/CORAL) to its
// optimizer and checkpoint, and per step calls Loss(f_source, f_target, ctx).
// The returned total is already multiplied by `weight` (λ_domain).
// The free functions are the bare estimators, exposed for tests.
// Thread-safety: an adapter belongs to one job/thread; free functions are pure.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "models/model.h"

namespace emosweep::models {

// Forward: identity. Backward: −λ·grad (Ganin & Lempitsky's gradient reversal).
torch::Tensor GradientReversal(const torch::Tensor& x, double lambda);

// GRL coefficient schedules. dann_ganin: 2/(1+e^{−γp})−1, p = epoch/num_epochs (per epoch);
// dann_tllib: 2/(1+e^{−α i/N})−1 for optimizer step i (TLlib WarmStartGradientReverseLayer).
double GrlLambdaGanin(int epoch, int num_epochs, double gamma = 10.0, double lambda_max = 1.0);
double GrlLambdaTllib(int64_t step, double alpha = 1.0, int64_t max_iters = 1000, double lambda_max = 1.0);
// dann_ganin with a horizon of `horizon_steps` optimizer steps: p = min(1, epoch·steps_per_epoch / horizon).
double GrlLambdaGaninSteps(int epoch, int64_t steps_per_epoch, double horizon_steps, double gamma = 10.0,
                           double lambda_max = 1.0);

// Single-RBF biased MMD² (seed): mean K_ss + mean K_tt − 2 mean K_st, k = exp(−γ‖x−y‖²),
// diagonals included; γ <= 0 means 1/D; the larger batch is truncated to the smaller.
torch::Tensor MmdRbf(const torch::Tensor& fs, const torch::Tensor& ft, double gamma);
// TLlib multi-kernel MMD: Σ of Gaussians exp(−d²/(2·m·mean(d²))) over [fs; ft];
// linear or quadratic index matrix; + 2/(B−1) exactly as TLlib adds it.
torch::Tensor MkMmd(const torch::Tensor& fs, const torch::Tensor& ft, const std::vector<double>& multipliers,
                    bool linear);
// Deep CORAL: ‖C_s − C_t‖_F² / (4d²), covariances with 1/(n−1).
torch::Tensor CoralDeep(const torch::Tensor& fs, const torch::Tensor& ft);
// Mean + covariance CORAL (TLlib/DomainBed): mean((μ_s−μ_t)²) + mean((C_s−C_t)²).
torch::Tensor CoralMeanCov(const torch::Tensor& fs, const torch::Tensor& ft);

// Binary domain discriminator: in_dim → hidden... (ReLU, Dropout) → 1 logit.
class DomainDiscriminatorImpl : public torch::nn::Module {
 public:
  DomainDiscriminatorImpl(int64_t in_dim, const std::vector<int64_t>& hidden, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // [B, 1] logits

 private:
  torch::nn::Sequential net_;
};
TORCH_MODULE(DomainDiscriminator);

class DomainAdapter : public torch::nn::Module {
 public:
  // parts: "da" (unweighted DA loss); DANN adds "grl_lambda" and "disc_acc" (the discriminator's accuracy
  // on the batch's source and target rows, mean of the two); total = weight · da.
  virtual LossTerms Loss(const torch::Tensor& fs, const torch::Tensor& ft, const LossContext& ctx) = 0;
  const std::string& variant() const { return variant_; }
  double weight() const { return weight_; }
  // Whether the target batch back-propagates through the model: always for DANN; for MMD/CORAL the
  // `target_grad` key (the seed's mmd_rbf/coral_deep run the target forward under no_grad, TLlib's
  // mk_mmd_*/coral_mean_cov back-propagate through both domains).
  virtual bool needs_target_grad() const { return false; }
  // The schedule coefficient of the last Loss() call (DANN: the GRL λ; 1 for fixed-weight variants) and the
  // schedule's upper end (0: the variant has no schedule). The trainer records both per epoch.
  virtual double last_lambda() const { return 1.0; }
  virtual double lambda_max() const { return 0.0; }
  // A description of the schedule's horizon for messages ("" for variants without a schedule).
  virtual std::string horizon_text(const LossContext&) const { return ""; }

 protected:
  DomainAdapter(std::string variant, double weight) : variant_(std::move(variant)), weight_(weight) {}

 private:
  std::string variant_;
  double weight_;
};

// `adapt_config`: an `adapt` section (validated here again; defaults filled).
Result<std::unique_ptr<DomainAdapter>> MakeDomainAdapter(const nlohmann::json& adapt_config, int64_t feature_dim);

}  // namespace emosweep::models
