// core/toml_json.h: TOML files as JSON values, with source lines kept.
//
// Protocol files and job configs are TOML; the rest of the program works on
// nlohmann::json. ParseToml converts a document and records the line of every
// key (as a JSON pointer, e.g. "/experiment/0/model") so that validation
// errors can say "protocol.toml line 12: unknown key 'lr'".
// Thread-safety: reentrant.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace emosweep {

struct TomlDocument {
  nlohmann::json value;                 // the document as JSON (tables → objects)
  std::map<std::string, int> lines;     // JSON pointer → 1-based source line
  std::string path;                     // file name for messages

  int LineOf(const std::string& pointer) const;  // 0 when unknown
  // "file.toml line 12" (or just "file.toml" when the line is unknown).
  std::string Where(const std::string& pointer) const;
};

Result<TomlDocument> ParseTomlFile(const std::string& path);
Result<TomlDocument> ParseTomlString(const std::string& text, const std::string& name);

}  // namespace emosweep
