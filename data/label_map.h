// data/label_map.h: the canonical emotion taxonomy and per-corpus label maps.
//
// Canonical labels are lower-case names (anger, happiness, sadness, neutral,
// fear, disgust, surprise, boredom, calm, frustration, excitement, contempt,
// shame, guilt, other) listed in data/labelmaps/taxonomy.toml. A label map is a
// TOML file (built-in ones are embedded in the binary from data/labelmaps/;
// users pass their own by path) mapping a corpus's original labels to canonical
// ones, with an explicit drop list. An unmapped label is an error unless the
// map drops it. Format: docs/formats/label-map.md.
// Thread-safety: LabelMap is immutable after loading.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::data {

// The canonical taxonomy, in a fixed order.
const std::vector<std::string>& CanonicalLabels();
bool IsCanonicalLabel(const std::string& label);

// Named label sets used by protocols, e.g. "core4" = anger, happiness, neutral, sadness.
Result<std::vector<std::string>> NamedLabelSet(const std::string& name);
// Every named label set, by name (from the compiled-in taxonomy).
const std::map<std::string, std::vector<std::string>>& NamedLabelSets();

class LabelMap {
 public:
  // `name_or_path`: a built-in map name ("emodb", "iemocap4", "iemocap4_exc_as_happiness", ...) or a TOML file path.
  static Result<LabelMap> Load(const std::string& name_or_path);
  static Result<LabelMap> Parse(const std::string& toml_text, const std::string& where);
  static std::vector<std::string> BuiltinNames();

  // Canonical label for `original`; std::nullopt when the map drops it;
  // InvalidArgument naming the label (and `where`) when it is unmapped.
  Result<std::optional<std::string>> Map(const std::string& original, const std::string& where) const;

  const std::string& name() const { return name_; }
  // Where the map came from: "builtin:emodb.toml" or the file path.
  const std::string& source() const { return source_; }
  // Original labels the map accepts (mapped or dropped), sorted.
  std::vector<std::string> OriginalLabels() const;
  // Canonical labels this map can produce, in the map's class order.
  const std::vector<std::string>& targets() const { return targets_; }
  std::string Hash() const;  // for job identities

 private:
  std::string name_;
  std::string source_;
  std::map<std::string, std::string> map_;
  std::set<std::string> drop_;
  std::vector<std::string> targets_;
};

}  // namespace emosweep::data
