// models/losses.h: classification and representation losses used by the models (libtorch).
//
// Each function is a direct transcription of the formula in
// specs/seed-methods.md (section noted per function) and returns a scalar
// tensor; none reads values back to the host. Tests compare every one with a
// hand computation.
// Thread-safety: pure functions.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/status.h"

namespace emosweep::models {

// Class weights from per-class training counts (classes with count 0 get weight 0).
// Balanced (sklearn 'balanced', MER §3.5, msr §4.4): w_c = N / (C_present · n_c).
Result<torch::Tensor> BalancedClassWeights(const std::vector<int64_t>& counts);
// Normalised inverse frequency (msr baselines §4.5): w_c = (1/n_c) / Σ_k(1/n_k) · C_present.
Result<torch::Tensor> InverseFrequencyClassWeights(const std::vector<int64_t>& counts);

// Cross-entropy with PyTorch semantics: optional class weights (undefined = none)
// and label smoothing ε (target (1-ε)·onehot + ε/C; weighted mean divides by Σ w_{y_n}).
// weight_mean > 0 (data parallel, with weights): the weighted sum is divided by n·weight_mean instead,
// n = the rows given, weight_mean = the mean weight of the *global* batch. Shards scaled by their row
// counts then average to the global batch's weighted mean exactly (docs/design/distributed.md).
torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& weights,
                           double label_smoothing, double weight_mean = 0.0);

// CrossEntropy (weight_mean 0) of m members at once: logits [m, n, C], labels [m, n], weights [m, C] (a
// member without class weights: a row of ones, the same loss), label_smoothing [m]; all on one device.
// Returns the m losses [m], differentiable in the logits: member j's is CrossEntropy(logits[j], labels[j],
// weights[j], label_smoothing[j]) up to float rounding (other reduction orders: not bitwise). A pack on a
// GPU (worker/packed_epoch.cc) computes its members' losses with it: ~10 kernels in place of ~5 per member.
torch::Tensor PackedCrossEntropy(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& weights,
                                 const torch::Tensor& label_smoothing);

// Focal loss with label smoothing (msr (c) §4.4): q_c = 1-ε for the true class,
// ε/(C-1) otherwise; loss_n = Σ_c α_c (1-p_c)^γ q_c (−log p_c); mean over the batch.
// `alpha` undefined = all ones.
torch::Tensor FocalLoss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& alpha,
                        double gamma, double label_smoothing);

// GloMER cross-modal NT-Xent, one direction (§1.4): S = norm(a) norm(b)ᵀ / τ,
// mean_i CE(S_i, i).
torch::Tensor NtXentCrossModal(const torch::Tensor& a, const torch::Tensor& b, double tau);

// SimCLR NT-Xent, 2N×2N form (§1.2): views z1, z2 [N, D]; self-similarity masked;
// positive of row i is its other view; mean over all 2N rows.
torch::Tensor NtXentSimClr(const torch::Tensor& z1, const torch::Tensor& z2, double tau);

// Supervised contrastive (msr (a) §4.4): ẑ normalised, s = ẑẑᵀ/τ,
// log p_ij = s_ij − log(Σ_{k≠i} exp s_ik + 1e-8); loss_i = −mean_{j∈P_i} log p_ij
// (P_i = same label, j ≠ i; 0 when empty); mean over anchors.
torch::Tensor SupConLoss(const torch::Tensor& z, const torch::Tensor& labels, double tau);

// MICL (msr (b) §4.4): S = t̂ âᵀ/τ; ½[CE(S, I) + CE(Sᵀ, I)]
// + w_same · (−mean_{i≠j, y_i=y_j} S_ij) (term skipped when labels undefined or no pair).
torch::Tensor MiclLoss(const torch::Tensor& t, const torch::Tensor& a, const torch::Tensor& labels, double tau,
                       double same_label_weight);

// F::normalize(x, p = 2, dim = 1, eps) and F::cosine_similarity(x1, x2, dim = 1, eps), bitwise: the same values,
// the same gradients, added to x's (x1's, x2's) gradient in the same order as the composite's nodes add them.
// For 2-D contiguous float CPU inputs that need a gradient, each is one autograd node whose backward runs the
// composite's elementwise ops as fused loops (models/row_norm_kernels.h) and keeps torch's reductions: for x
// [128, 512], 2-3 passes over the rows in place of 6 (normalize) and ~20 (cosine). Otherwise (no gradient,
// other dtypes, layouts or devices) they call F::normalize / F::cosine_similarity. (GloMER's loss terms.)
torch::Tensor RowNormalize(const torch::Tensor& x, double eps = 1e-12);
torch::Tensor RowCosineSimilarity(const torch::Tensor& x1, const torch::Tensor& x2, double eps = 1e-8);

// VAD regression: mean squared error between pred [B,3] and table[labels] ([C,3]).
torch::Tensor VadMse(const torch::Tensor& pred, const torch::Tensor& table, const torch::Tensor& labels);

}  // namespace emosweep::models
