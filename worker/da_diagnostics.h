// worker/da_diagnostics.h: what a domain-adaptation run did, and criteria to select its epoch without target
// labels (docs/trainer.md "Domain-adaptation diagnostics" and "Unsupervised selection").
//
// Pure functions on feature / probability tensors (CPU or device, any float dtype; results as doubles):
//  - LinearMmd: squared distance of the mean embeddings (linear-kernel MMD²).
//  - TargetPredictionStats: predicted class shares, mean entropy, and the information-maximisation score
//    IM = H(mean p) − mean H(p) on the unlabeled target.
//  - SoftNeighborhoodDensity: SND (Saito et al., ICCV 2021).
//  - DeepEmbeddedValidation: DEV (You et al., ICML 2019), as TLlib's tllib/validation/dev.py.
// Internal to worker/ (trainer.cc and tests). Thread-safety: pure; the logistic-regression fit in DEV draws
// no random numbers.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace emosweep::worker {

// ‖mean(fs) − mean(ft)‖² over rows.
double LinearMmd(const torch::Tensor& fs, const torch::Tensor& ft);

struct PredictionStats {
  std::vector<double> class_share;  // share of rows whose argmax is each class (sums to 1)
  double max_share = 0;             // the largest of them
  int max_class = -1;
  double mean_entropy = 0;          // mean over rows of H(p_i), nats
  double im = 0;                    // H(mean_i p_i) − mean_i H(p_i), nats; higher = confident and diverse
};
// `probs`: [N, C] softmax outputs.
PredictionStats TargetPredictionStats(const torch::Tensor& probs);

// SND = mean_i H(softmax_j≠i(⟨p̂_i, p̂_j⟩ / τ)), p̂ = L2-normalised softmax outputs; higher is better.
double SoftNeighborhoodDensity(const torch::Tensor& probs, double tau = 0.05);

struct DevResult {
  double risk = 0;        // lower is better
  double eta = 0;         // the control-variate coefficient
  double weight_mean = 0;  // mean importance weight on the validation rows (≈ 1 when well calibrated)
  double domain_acc = 0;  // the domain classifier's accuracy on its training rows
};
// DEV: a logistic-regression domain classifier (source rows label 1, target 0, standardised features,
// L2 1e-2, full-batch LBFGS) gives w_i = P(t|x_i)/P(s|x_i) · N_s/N_t on the source-validation rows;
// L_i = w_i · loss_i; η = −Cov(L, w)/Var(w) (ddof 1); risk = mean(L) + η·mean(w) − η.
// The DEV risk from importance weights w and per-row losses l (1-D): mean(w·l) + η·mean(w) − η with the
// control variate η = −Cov(w·l, w) / Var(w) (sample covariance and variance, ddof 1; η = 0 when Var(w) = 0).
double DevRisk(const torch::Tensor& weight, const torch::Tensor& loss, double* eta = nullptr);
DevResult DeepEmbeddedValidation(const torch::Tensor& source_feats, const torch::Tensor& target_feats,
                                 const torch::Tensor& val_feats, const torch::Tensor& val_losses);

}  // namespace emosweep::worker
