// models/model_configs.h: model names and their typed config tables, without libtorch.
//
// The protocol layer validates `model = {...}` tables with these (unknown key =
// error naming the line) and never includes torch. models/registry.cc maps the
// same names to constructors; a test checks the two lists agree.
// Thread-safety: immutable tables.
#pragma once

#include <string>
#include <vector>

#include "core/config_table.h"
#include "core/status.h"

namespace emosweep::models {

struct ModelInfo {
  std::string name;                    // "concat_mlp", "glomer", "mer_gfl", "cemobam", ...
  std::string summary;
  std::vector<std::string> modalities; // required modalities ("audio", "text"; "any" = whichever present)
  ConfigTable config;
  // Evaluates a whole evaluation set as one batch (a kNN graph over it): each prediction depends on the other
  // evaluated utterances' features. Tables name this step (protocols/transductive.h); FusionModelImpl::
  // transductive() says the same (a test checks).
  bool transductive = false;
};

const std::vector<ModelInfo>& ModelInfos();
const ModelInfo* FindModelInfo(const std::string& name);
// The input modalities a model reads under its effective config: the model's required ones ("any" requires
// none) and its 'modality' key where it has one (unimodal_mlp). JOB.toml and protocols check them against
// the declared features.
std::vector<std::string> ModelReadsModalities(const std::string& name, const nlohmann::json& config);

// Models that read a file (`torchscript`, docs/models.md): resolves config "file" against
// `base_dir` (the protocol's or JOB.toml's directory) to an absolute normalised path, checks it
// is a readable regular file and sets config "sha256" to the file's SHA-256, so the job identity
// changes with the file's content. A "sha256" already given that differs is an error (a pinned
// model). Other models: nothing to do. Messages start with `where` and name the file.
// `missing` non-null: a file that does not exist is not an error; *missing is set, "file" is
// resolved and "sha256" left as given (the protocol layer lists it as a missing input).
Status ResolveModelFile(const std::string& name, const std::string& base_dir, const std::string& where,
                        nlohmann::json* config, bool* missing = nullptr);

// SHA-256 (lower-case hex) of a file's bytes, streamed; IoError naming the file when unreadable.
Result<std::string> FileSha256(const std::string& path);

}  // namespace emosweep::models
