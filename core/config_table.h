// core/config_table.h: configuration declared once, in a typed table.
//
// A ConfigTable lists every key of one configuration section with its type,
// default, bounds and help. The same table drives parsing/validation
// (Apply), the help text (RenderHelp) and the effective-config dump (the
// returned JSON, which callers store in the ledger). Unknown keys are errors.
// Thread-safety: tables are immutable after construction; share freely.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace emosweep {

enum class ConfigType { kBool, kInt, kDouble, kString, kStringList, kDoubleList, kIntList, kObject };

struct ConfigKey {
  std::string name;
  ConfigType type;
  nlohmann::json default_value;          // null = required
  std::string help;
  std::optional<double> min;             // numeric bounds (inclusive)
  std::optional<double> max;
  std::vector<std::string> choices;      // for kString: allowed values (empty = any)
};

class ConfigTable {
 public:
  ConfigTable(std::string section, std::vector<ConfigKey> keys);

  const std::string& section() const { return section_; }
  const std::vector<ConfigKey>& keys() const { return keys_; }
  const ConfigKey* Find(const std::string& name) const;

  // Validates `given` (a JSON object) and returns it with defaults filled in.
  // `where` prefixes error messages (e.g. "job.toml [train]"); `lines` maps a
  // key to its source line for messages ("line 12: unknown key 'lr'").
  Result<nlohmann::json> Apply(const nlohmann::json& given, const std::string& where,
                               const std::map<std::string, int>& lines = {}) const;

  // Help text: one line per key: name, type, default, bounds, help.
  std::string RenderHelp() const;

 private:
  std::string section_;
  std::vector<ConfigKey> keys_;
};

const char* ConfigTypeName(ConfigType t);

}  // namespace emosweep
