// models/gat.h: a multi-head graph attention layer (PyG GATConv semantics) in plain libtorch.
//
// h = x W (per head), e_ij = LeakyReLU_0.2(a_src·h_j + a_dst·h_i) for an edge
// j → i, α = softmax of e over the incoming edges of each target i (max
// subtracted per target for stability), out_i = Σ_j α_ij h_j, heads concatenated
// or averaged, plus bias. Existing self-loops are removed and one self-loop per
// node is added (add_self_loops=True). Glorot weights, zero bias; no attention
// dropout (the seeds use PyG's default 0).
// Thread-safety: one instance per model.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "models/slot_linear.h"

namespace emosweep::models {

struct GatAttention {
  torch::Tensor edge_index;  // [2, E'] the edges actually used (self-loops added)
  torch::Tensor alpha;       // [E', heads] attention of each edge
};

class GatConvImpl : public torch::nn::Module {
 public:
  GatConvImpl(int64_t in_dim, int64_t out_dim, int64_t heads, bool concat);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& edge_index);
  // Same, also returning the attention coefficients (tests, inspection).
  torch::Tensor forward_with_attention(const torch::Tensor& x, const torch::Tensor& edge_index, GatAttention* att);
  int64_t out_features() const { return concat_ ? heads_ * out_dim_ : out_dim_; }
  // forward() uses a dense masked [H, N, N] formulation up to this many nodes (same
  // result), the edge list above; forward_with_attention always uses the edge list.
  static constexpr int64_t kDenseMaxNodes = 2048;

  SlotLinear lin{nullptr};  // its weight gradient into the flat buffer (slot_linear.h)
  torch::Tensor att_src, att_dst, bias;

 private:
  // The dense path's per-graph constants (self-loops added, the [N, N] edge multiplicities, the mask of
  // absent edges), kept for the last few graphs: a transductive model passes the same edge_index tensor
  // every epoch (train and validation graphs), so they are built once, not at every forward. Keyed by
  // the tensor itself (held, so its storage cannot be reused), its version counter and the node count.
  struct DenseGraph {
    torch::Tensor edge_index;  // the key (held)
    uint32_t version = 0;
    int64_t n = 0;
    torch::Tensor mult, absent;  // [N, N] float multiplicities; [N, N] bool, true where no edge
    bool single = false;         // every multiplicity is 0 or 1: weighting by `mult` is the identity
    // The edges as int32 lists for the products over edges only (models/gat_sparse.h), when `single` and
    // sparse enough (else undefined): by target i (by_target_ptr [N + 1]; sources j ascending in
    // by_target_src, their targets in by_target_dst), and by source j (by_source_ptr, targets ascending).
    torch::Tensor by_target_ptr, by_target_src, by_target_dst, by_source_ptr, by_source_dst;
  };
  const DenseGraph& Dense(const torch::Tensor& edge_index, int64_t n, const torch::TensorOptions& opts);
  std::vector<DenseGraph> dense_cache_;

  int64_t out_dim_, heads_;
  bool concat_;
};
TORCH_MODULE(GatConv);

// How many of the dense path's attention products ran over the graph's edges only (models/gat_sparse.h) since
// the process started, and how many shapes kept torch's bmm because a first-use check found a bit different
// (tests and benches).
struct GatSparseCounts {
  int64_t forward = 0, edge_dots = 0, transposed = 0, rejected = 0;
};
GatSparseCounts GatSparseProductCounts();

// Removes self-loops from `edge_index` and appends (i, i) for every node.
torch::Tensor WithSelfLoops(const torch::Tensor& edge_index, int64_t num_nodes);

}  // namespace emosweep::models
