// models/row_norm_kernels.h: the elementwise passes of RowNormalize's and RowCosineSimilarity's backward
// (models/losses.cc), fused into single loops over the [n, dim] rows, torch-free. Each loop does, per element,
// exactly the float operations of the torch ops it replaces (same operands, same order, no contraction: built
// with -ffp-contract=off), so its results are bitwise theirs; the reductions stay torch's own calls in
// losses.cc. All arrays are contiguous row-major [n, dim]; per-row values are [n]. Thread-safety: pure.
#pragma once

#include <cstdint>

namespace emosweep::models {

// F::normalize's DivBackward0 (y = x / d, d the clamped norm expanded over the row), both outputs in one pass:
// a[i, j] = g[i, j] / d[i]  (the gradient of x) and r[i, j] = -g[i, j] * (y[i, j] / d[i])  (the gradient of
// the expanded d, before its sum over j; torch recomputes x / d, which is y bit for bit).
void RowNormalizeGradPass(const float* g, const float* y, const float* d, int64_t n, int64_t dim, float* a,
                          float* r);

// NormBackward1 of norm(x, 2, dim 1, keepdim) (ATen 1.13: grad * (x / norm).masked_fill_(norm == 0, 0)):
// out[i, j] = gn[i] * (nrm[i] == 0 ? 0 : x[i, j] / nrm[i]).
void RowNormGrad(const float* gn, const float* x, const float* nrm, int64_t n, int64_t dim, float* out);

// cosine_similarity's backward for one operand x (xn = x / nrm, o = the other operand's xn), from the per-row
// gradient g of the cosine: m = g[i] * o[i, j] (MulBackward0 over the expanded g), then DivBackward0:
// a[i, j] = m / nrm[i] and r[i, j] = -m * (xn[i, j] / nrm[i]).
void RowCosineGradPass(const float* g, const float* o, const float* xn, const float* nrm, int64_t n, int64_t dim,
                       float* a, float* r);

// a[i, j] = a[i, j] + s[i] * (2 * x[i, j])  (PowBackward0 of x², s the expanded gradient of the squared norm,
// added to a as autograd's input buffer adds the second gradient of x to the first).
void RowCosineGradFinish(float* a, const float* s, const float* x, int64_t n, int64_t dim);

}  // namespace emosweep::models
