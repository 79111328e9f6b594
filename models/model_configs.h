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

namespace emosweep::models {

struct ModelInfo {
  std::string name;                    // "concat_mlp", "glomer", "mer_gfl", "cemobam", ...
  std::string summary;
  std::vector<std::string> modalities; // required modalities ("audio", "text"; "any" = whichever present)
  ConfigTable config;
};

const std::vector<ModelInfo>& ModelInfos();
const ModelInfo* FindModelInfo(const std::string& name);

}  // namespace emosweep::models
