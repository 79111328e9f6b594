// models/knn_graph.h: the CemoBAM/HemoGAT "heterogeneous" dual top-k graph (seed-methods.md §2.2).
//
// Rows are L2-normalised (norm clipped at 1e-10); each node i gets a self-loop
// and edges (i → j) to its ranks 1..k_text by cosine similarity in text space
// and ranks 1..k_audio in audio space (rank 0 is taken to be i itself, as the
// seed assumes); the union is deduplicated. edge_index row 0 = source = anchor
// i, row 1 = target = neighbour j, so in message passing j aggregates from every
// i that lists j among its neighbours.
// Thread-safety: pure function.
#pragma once

#include <torch/torch.h>

namespace emosweep::models {

// text [N, Dt], audio [N, Da] → edge_index [2, E] int64, sorted by (source, target).
torch::Tensor DualKnnGraph(const torch::Tensor& text, const torch::Tensor& audio, int64_t k_text, int64_t k_audio);

}  // namespace emosweep::models
