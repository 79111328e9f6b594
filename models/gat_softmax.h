// models/gat_softmax.h: the elementwise passes of the dense GAT attention softmax (models/gat.cc), fused
// into single loops over the [H, N, N] scores, torch-free. Each loop does, per element, exactly the float
// operations torch's separate ops did (same operands, same order, no contraction: built with
// -ffp-contract=off), so the results are bitwise those of the unfused ops; the reductions (max, sums) stay
// torch's own calls in gat.cc. Thread-safety: pure functions.
#pragma once

#include <cstdint>

namespace emosweep::models {

// masked[h, i, j] = absent[i, j] ? -inf : leaky_relu(a_dst[h, i] + a_src[h, j], slope)
// (torch: leaky_relu(a_dst.unsqueeze(2) + a_src.unsqueeze(1)).masked_fill(absent, -inf)).
void GatScores(const float* a_dst, const float* a_src, const bool* absent, int64_t heads, int64_t n, float slope,
               float* masked);

// t[h, i, j] = -g[h, i, j] * ((w[h, i, j] / s[h, i]) / s[h, i])
// (DivBackward0 of alpha = w / s for s, before its sum over j).
void GatSoftmaxDenomGrad(const float* g, const float* w, const float* s, int64_t heads, int64_t n, float* t);

// v[h, i, j] = leaky_relu_backward(masked_fill(((g / s[h, i]) + gs[h, i]) * w, absent, 0), a_dst[h, i] + a_src[h, j])
// (DivBackward0 for w, plus the expanded gradient of s = w.sum(2), through exp, the mask and the leaky ReLU),
// written at v + h·vs[0] + i·vs[1] + j·vs[2]: autograd's gradient there has the layout of the broadcast sum
// a_dst + a_src, which the reductions after it follow (their order, so their rounding).
void GatScoresGrad(const float* g, const float* w, const float* s, const float* gs, const float* a_dst,
                   const float* a_src, const bool* absent, int64_t heads, int64_t n, float slope, float* v,
                   const int64_t vs[3]);

}  // namespace emosweep::models
