// data/label_map.cc: taxonomy and label maps from TOML (docs/formats/label-map.md).
#include "data/label_map.h"

#include <algorithm>

#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/toml_json.h"
#include "data/labelmaps/embedded.h"

namespace emosweep::data {
namespace {

constexpr char kTaxonomyFile[] = "taxonomy.toml";
constexpr char kSuffix[] = ".toml";

const internal::EmbeddedFile* FindEmbedded(const std::string& file) {
  for (const auto& f : internal::EmbeddedLabelMapFiles())
    if (file == f.name) return &f;
  return nullptr;
}

std::string EmbeddedText(const internal::EmbeddedFile& f) {
  return std::string(reinterpret_cast<const char*>(f.data), f.size);
}

struct Taxonomy {
  std::vector<std::string> labels;
  std::map<std::string, std::vector<std::string>> sets;
};

Result<std::vector<std::string>> StringArray(const nlohmann::json& v, const std::string& where) {
  if (!v.is_array()) return Status::InvalidArgument(where + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) return Status::InvalidArgument(where + " must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<Taxonomy> ParseTaxonomy() {
  const auto* f = FindEmbedded(kTaxonomyFile);
  if (!f) return Status::Internal("taxonomy.toml is not embedded");
  const std::string where = std::string("builtin:") + kTaxonomyFile;
  ES_ASSIGN_OR_RETURN(TomlDocument doc, ParseTomlString(EmbeddedText(*f), where));
  Taxonomy t;
  ES_ASSIGN_OR_RETURN(t.labels, StringArray(doc.value["labels"], where + " labels"));
  for (auto& [k, v] : doc.value["label_sets"].items()) {
    ES_ASSIGN_OR_RETURN(auto set, StringArray(v, where + " label_sets." + k));
    for (const auto& l : set)
      if (std::find(t.labels.begin(), t.labels.end(), l) == t.labels.end())
        return Status::Internal(where + ": label set '" + k + "' has non-canonical label '" + l + "'");
    t.sets[k] = std::move(set);
  }
  return t;
}

const Taxonomy& GetTaxonomy() {
  // The taxonomy is compiled in; failing to parse it is a build defect, not bad input.
  static const Taxonomy kTaxonomy = [] {
    auto t = ParseTaxonomy();
    if (!t.ok()) LOG_ERROR << t.status().ToString();
    ES_CHECK(t.ok());
    return std::move(t).value();
  }();
  return kTaxonomy;
}

bool IsBuiltinName(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.find('.') == std::string::npos;
}

}  // namespace

const std::vector<std::string>& CanonicalLabels() { return GetTaxonomy().labels; }

bool IsCanonicalLabel(const std::string& label) {
  const auto& l = CanonicalLabels();
  return std::find(l.begin(), l.end(), label) != l.end();
}

const std::map<std::string, std::vector<std::string>>& NamedLabelSets() { return GetTaxonomy().sets; }

Result<std::vector<std::string>> NamedLabelSet(const std::string& name) {
  const auto& sets = GetTaxonomy().sets;
  auto it = sets.find(name);
  if (it != sets.end()) return it->second;
  std::string known;
  for (const auto& [k, v] : sets) known += (known.empty() ? "" : ", ") + k;
  return Status::InvalidArgument("unknown label set '" + name + "' (known: " + known + ")");
}

std::vector<std::string> LabelMap::BuiltinNames() {
  std::vector<std::string> names;
  for (const auto& f : internal::EmbeddedLabelMapFiles()) {
    std::string n = f.name;
    if (n == kTaxonomyFile) continue;
    names.push_back(n.substr(0, n.size() - (sizeof(kSuffix) - 1)));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<LabelMap> LabelMap::Load(const std::string& name_or_path) {
  if (IsBuiltinName(name_or_path)) {
    const std::string file = name_or_path + kSuffix;
    const auto* f = name_or_path + kSuffix == kTaxonomyFile ? nullptr : FindEmbedded(file);
    if (f) return Parse(EmbeddedText(*f), "builtin:" + file);
    if (!FileExists(name_or_path)) {
      std::string known;
      for (const auto& n : BuiltinNames()) known += (known.empty() ? "" : ", ") + n;
      return Status::NotFound("unknown label map '" + name_or_path + "' (built-in: " + known +
                              "; or give a path to a .toml file)");
    }
  }
  ES_ASSIGN_OR_RETURN(std::string text, ReadFile(name_or_path));
  return Parse(text, name_or_path);
}

Result<LabelMap> LabelMap::Parse(const std::string& toml_text, const std::string& where) {
  ES_ASSIGN_OR_RETURN(TomlDocument doc, ParseTomlString(toml_text, where));
  const nlohmann::json& j = doc.value;
  for (auto& [k, v] : j.items())
    if (k != "name" && k != "description" && k != "targets" && k != "drop" && k != "map")
      return Status::InvalidArgument(doc.Where("/" + k) + ": unknown key '" + k +
                                     "' (expected name, description, targets, drop, map)");
  LabelMap m;
  m.source_ = where;
  if (j.contains("description") && !j["description"].is_string())
    return Status::InvalidArgument(doc.Where("/description") + ": 'description' must be a string");
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
    return Status::InvalidArgument(where + ": label map needs a non-empty string 'name'");
  m.name_ = j["name"].get<std::string>();
  if (!j.contains("map") || !j["map"].is_object() || j["map"].empty())
    return Status::InvalidArgument(where + ": label map needs a non-empty [map] table");
  for (auto& [k, v] : j["map"].items()) {
    if (!v.is_string()) return Status::InvalidArgument(doc.Where("/map/" + k) + ": map value must be a string");
    std::string target = v.get<std::string>();
    if (!IsCanonicalLabel(target))
      return Status::InvalidArgument(doc.Where("/map/" + k) + ": '" + k + "' maps to '" + target +
                                     "', which is not a canonical label (see taxonomy.toml)");
    m.map_[k] = target;
  }
  if (j.contains("drop")) {
    ES_ASSIGN_OR_RETURN(auto drop, StringArray(j["drop"], where + ": drop"));
    for (const auto& d : drop) {
      if (m.map_.count(d)) return Status::InvalidArgument(where + ": label '" + d + "' is both mapped and dropped");
      m.drop_.insert(d);
    }
  }
  if (j.contains("targets")) {
    ES_ASSIGN_OR_RETURN(m.targets_, StringArray(j["targets"], where + ": targets"));
    for (const auto& t : m.targets_) {
      if (!IsCanonicalLabel(t)) return Status::InvalidArgument(where + ": target '" + t + "' is not a canonical label");
      if (std::count(m.targets_.begin(), m.targets_.end(), t) > 1)
        return Status::InvalidArgument(where + ": target '" + t + "' is listed twice");
    }
    for (const auto& [k, v] : m.map_)
      if (std::find(m.targets_.begin(), m.targets_.end(), v) == m.targets_.end())
        return Status::InvalidArgument(where + ": '" + k + "' maps to '" + v + "', which is not in targets");
  } else {
    // No explicit class order: canonical order of the labels the map produces.
    for (const auto& l : CanonicalLabels())
      for (const auto& [k, v] : m.map_)
        if (v == l) {
          m.targets_.push_back(l);
          break;
        }
  }
  return m;
}

Result<std::optional<std::string>> LabelMap::Map(const std::string& original, const std::string& where) const {
  auto it = map_.find(original);
  if (it != map_.end()) return std::optional<std::string>(it->second);
  if (drop_.count(original)) return std::optional<std::string>();
  return Status::InvalidArgument(where + ": label '" + original + "' is not in label map '" + name_ + "' (" +
                                 source_ + "); map it or add it to the map's drop list");
}

std::vector<std::string> LabelMap::OriginalLabels() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : map_) out.push_back(k);
  out.insert(out.end(), drop_.begin(), drop_.end());
  std::sort(out.begin(), out.end());
  return out;
}

std::string LabelMap::Hash() const {
  nlohmann::json j = {{"name", name_}, {"map", map_}, {"drop", drop_}, {"targets", targets_}};
  return HashJson(j);
}

}  // namespace emosweep::data
