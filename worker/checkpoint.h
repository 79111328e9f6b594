// worker/checkpoint.h: the trainer's checkpoint file, format v1 (docs/formats/checkpoint.md).
//
// A checkpoint is named tensors (float32 / int64 / uint8, any shape) plus a
// JSON `meta` document (epoch, optimizer and schedule scalars, RNG states,
// early-stopping state, the curve so far). Layout: 8-byte magic "ESCKPT01",
// u64 little-endian header length, the JSON header (meta + tensor table +
// SHA-256 of the payload), then the raw little-endian tensor bytes. Written
// through TempPath (nothing half-written survives a crash); read back with a
// size and checksum check, so a truncated or corrupt file is rejected with a
// message naming it. Own format rather than torch::save: readable without
// libtorch's pickler, identical across libtorch 1.13 and 2.x.
// Thread-safety: pure functions over their arguments.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace emosweep::worker {

inline constexpr int kCheckpointVersion = 1;

struct Checkpoint {
  nlohmann::json meta = nlohmann::json::object();
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // CPU tensors

  const torch::Tensor* Find(const std::string& name) const;
  void Add(const std::string& name, const torch::Tensor& t) { tensors.emplace_back(name, t); }
};

Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint);
Result<Checkpoint> ReadCheckpoint(const std::string& path);

// A job's state checkpoint (trainer_resume.cc / packed_state.cc WriteState): every field of its meta present
// with its type, next_epoch within 0..epochs, step and target_cursor >= 0. The header is not under the payload's
// checksum, so an edited or damaged one is caught here (Corruption naming `path` and the field), not by a
// resume at epoch -5 or a JSON library error.
Status CheckJobStateMeta(const nlohmann::json& meta, int epochs, const std::string& path);

// What a job's saved state was computed under that can change its numbers besides the job itself (helper-73):
// the intra-op thread count (a GEMM's reduction order), the data-parallel group size and the emosweep build.
// {"threads", "world_size", "git_revision"}, written into the state's meta (WriteState).
nlohmann::json StateConditions(int threads, int world_size);
// "" when the saved state `meta` was computed under `now` (StateConditions), or predates them being recorded;
// else what differs, e.g. "1 intra-op thread (this run: 2)". A resume across such a difference would train the
// job's first epochs under one and its last under the other: a result neither run gives (the caller starts the
// job over instead).
std::string StateConditionsDiffer(const nlohmann::json& meta, const nlohmann::json& now);

// Module state (parameters and buffers) under a name prefix ("param.", "buffer.").
void AddModuleState(Checkpoint& c, torch::nn::Module& module, const std::string& prefix);
// Copies tensors "<prefix>param.<name>" / "<prefix>buffer.<name>" into `module`.
// `strict`: every parameter and buffer of the module must be present with its shape.
Status LoadModuleState(const Checkpoint& c, torch::nn::Module& module, const std::string& prefix, bool strict,
                       const std::string& where);

}  // namespace emosweep::worker
