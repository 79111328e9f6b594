// models/gat_sparse.h: the dense GAT path's three products over the graph's edges only (issue 16, single step).
//
// The dense path (models/gat.cc) aggregates with bmm over an [H, N, N] attention matrix that is zero off the
// graph's edges: out = alpha·X, and its backward d_alpha = dOut·X^T, dX = alpha^T·dOut. On the seed graphs
// (k = 10-15 neighbours of 495 nodes) 97-98 % of those products' terms are exact zeros. These kernels skip them
// and keep OpenBLAS's arithmetic for the rest (OpenBLAS 0.3.21 sgemm, SkylakeX core, blocked driver, as
// models/short_gemm.h reproduces it): the reduction runs in K blocks (BlasKBlockEnd), each block one chain of
// fused multiply-adds from +0 in K order, the block's sum added to C (from +0). A skipped term is an exact
// zero: fma(+0 or -0, x, acc) is acc for a non-zero acc and keeps a +0 acc at +0, so for finite X the sums are
// the dense product's bits (the one exception, a product that underflows to -0 followed by a skipped term,
// can only change the sign of a zero). gat.cc uses them with one intra-op thread only (OpenBLAS's threaded driver
// splits K otherwise) and compares each product with torch's bmm once per process on random operands of the
// shape and layout it is about to compute (and the graph's edges), keeping torch's product where a bit differs.
// d_alpha is computed at the edges only; the dense path's values elsewhere are multiplied by the softmax's
// exact zeros there (models/gat_softmax.h), so they can only change the sign of a zero in its sums.
// Non-finite inputs: every node has its self-loop among its edges, so an infinite or NaN entry of X (or dOut)
// always makes an output non-finite; the kernels return false then, and gat.cc computes the product with torch's
// bmm instead (whose NaNs spread further: 0·Inf). Both kernels return whether every output they wrote is finite.
// Torch-free (compiled -O3 -ffp-contract=off); the kernels need AVX-512F at run time (ShortGemmAvailable).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

namespace emosweep::models {

// out[(h·n + r)·c_dim + c] = Σ_{q in list r} a[h·n·n + r·a_r + q·a_q] · x[h·x_h + q·x_n + c], summed as OpenBLAS
// sums a reduction of length n over q (list r: idx[ptr[r] .. ptr[r+1]), ascending). alpha·X is a_r = n, a_q = 1
// with the lists by target (sources ascending); alpha^T·dOut is a_r = 1, a_q = n with the lists by source.
bool GatSparseAggregate(const float* a, int64_t a_r, int64_t a_q, const int32_t* ptr, const int32_t* idx,
                        const float* x, int64_t x_h, int64_t x_n, int64_t heads, int64_t n, int64_t c_dim, float* out);

// d[h·n·n + i·n + j] = Σ_c g[h·g_h + i·g_n + c] · x[h·x_h + j·x_n + c] for every edge (i, j) of the lists by target
// (j in cols[ptr[i] .. ptr[i+1])), summed as OpenBLAS sums a reduction of length c_dim; other entries of d are
// left as they are.
bool GatSparseEdgeDots(const float* g, int64_t g_h, int64_t g_n, const float* x, int64_t x_h, int64_t x_n,
                       const int32_t* ptr, const int32_t* cols, int64_t heads, int64_t n, int64_t c_dim, float* d);

}  // namespace emosweep::models
