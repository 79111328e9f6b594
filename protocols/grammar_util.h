// protocols/grammar_util.h: typed, line-aware access to one TOML table.
//
// Every getter's error names the file, the line and the table ("file.toml
// line 12: [[experiment]] 'loco': 'seeds' must be a list of integers").
// Internal to protocols/.
// Thread-safety: a reader is used by one thread; the document is const.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "core/toml_json.h"

namespace emosweep::protocols {

std::string PointerToken(const std::string& key);

class TableReader {
 public:
  // `pointer`: JSON pointer of the table ("" = document root); `label`: how
  // messages name it ("[defaults]", "[[experiment]] 'loco'").
  TableReader(const TomlDocument& doc, std::string pointer, std::string label);

  const nlohmann::json& value() const { return *value_; }
  bool ok() const { return value_->is_object(); }
  bool Has(const std::string& key) const { return value_->is_object() && value_->contains(key); }
  const nlohmann::json& Get(const std::string& key) const;
  std::string pointer() const { return pointer_; }
  std::string Child(const std::string& key) const { return pointer_ + "/" + PointerToken(key); }
  int LineOf(const std::string& key) const;  // the key's line, else the table's
  // "file line N: <label>" for a key ("" = the table itself).
  std::string Where(const std::string& key = "") const;
  Status Error(const std::string& key, const std::string& message) const;

  Status CheckKeys(const std::set<std::string>& allowed) const;
  Result<std::string> String(const std::string& key, bool required, const std::string& fallback = "") const;
  Result<int64_t> Int(const std::string& key, int64_t fallback) const;
  Result<double> Double(const std::string& key, double fallback) const;
  Result<bool> Bool(const std::string& key, bool fallback) const;
  Result<std::vector<std::string>> StringList(const std::string& key) const;  // empty when absent
  Result<std::vector<uint64_t>> SeedList(const std::string& key) const;
  // A table of string values (e.g. features = {audio = "..."}).
  Result<std::map<std::string, std::string>> StringMap(const std::string& key) const;

 private:
  const TomlDocument* doc_;
  std::string pointer_;
  std::string label_;
  const nlohmann::json* value_;
};

// Key -> line map for the keys of the table at `pointer` (for ConfigTable::Apply).
std::map<std::string, int> KeyLinesOf(const TomlDocument& doc, const std::string& pointer);

// The protocol's warnings for a terminal: warnings that differ only in what they name (the bracketed job
// descriptions, numbers, ids) are shown `keep` at a time, then "... and N more like it" (a 2000-seed few-shot
// grid printed 2000 identical-job warnings; `plan --json` lists them all).
std::vector<std::string> CondenseWarnings(const std::vector<std::string>& warnings, size_t keep = 3);

}  // namespace emosweep::protocols
