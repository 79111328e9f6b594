// models/torchscript_reference.h: reference TorchScript modules written from C++ (no Python),
// for the `torchscript` model's tests, the bench and tools/make_scripted_model.
//
// SaveScriptedConcatMlp writes the built-in concat_mlp architecture as a scripted module:
// submodules l0..l{n-1} and head, each with weight [out, in] and bias [out] (the parameter
// order of concat_mlp, so the `torchscript` init rule draws the same numbers under the same
// seed), forward(self, <modalities, sorted>) concatenating them in concat_mlp's order (text,
// audio, video, then the others), Linear-ReLU-Dropout per hidden layer, and returning
// (logits, embedding = last hidden). SaveScriptedGatedFusion writes the gated-fusion model of
// examples/byo_model/model.py. Both also carry their hyperparameters as module attributes.
// Thread-safety: reentrant (each call builds its own module).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::models {

Status SaveScriptedConcatMlp(const std::string& path, const std::map<std::string, int64_t>& input_dims,
                             const std::vector<int64_t>& hidden_dims, double dropout, int64_t num_classes);

// examples/byo_model/model.py: per-modality Linear(D_m -> hidden) + tanh, a sigmoid gate per modality
// from the concatenation, fused = sum_m g_m * h_m, head Linear(hidden -> C); forward takes a
// Dict[str, Tensor] and returns {"logits", "embedding" = fused}.
Status SaveScriptedGatedFusion(const std::string& path, const std::map<std::string, int64_t>& input_dims,
                               int64_t hidden, double dropout, int64_t num_classes);

}  // namespace emosweep::models
