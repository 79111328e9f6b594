#include "core/toml_json.h"

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include <cmath>
#include <sstream>

#include "core/files.h"

namespace emosweep {
namespace {

std::string EscapePointerToken(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// A NaN or infinite float: every number emosweep reads from TOML (learning
// rates, fractions, weights, ...) must be finite, so the document is refused
// where the value is written.
struct NonFinite {
  std::string key;
  int line;
  std::string text;
};

// The key a value belongs to: the pointer's last token, skipping array indices
// ("/grid/train.lr/1" -> "train.lr").
std::string KeyOf(std::string ptr) {
  while (!ptr.empty()) {
    size_t slash = ptr.rfind('/');
    std::string token = ptr.substr(slash == std::string::npos ? 0 : slash + 1);
    if (token.empty() || token.find_first_not_of("0123456789") != std::string::npos) return token;
    ptr.erase(slash == std::string::npos ? 0 : slash);
  }
  return ptr;
}

nlohmann::json Convert(const toml::node& node, const std::string& ptr, std::map<std::string, int>* lines) {
  if (node.source().begin.line) (*lines)[ptr] = static_cast<int>(node.source().begin.line);
  if (auto* t = node.as_table()) {
    nlohmann::json obj = nlohmann::json::object();
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      std::string child = ptr + "/" + EscapePointerToken(key);
      if (k.source().begin.line) (*lines)[child] = static_cast<int>(k.source().begin.line);
      obj[key] = Convert(v, child, lines);
      if (k.source().begin.line) (*lines)[child] = static_cast<int>(k.source().begin.line);
    }
    return obj;
  }
  if (auto* a = node.as_array()) {
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 0; i < a->size(); ++i) arr.push_back(Convert((*a)[i], ptr + "/" + std::to_string(i), lines));
    return arr;
  }
  if (auto* v = node.as_string()) return v->get();
  if (auto* v = node.as_integer()) return v->get();
  if (auto* v = node.as_floating_point()) {
    const double d = v->get();
    if (!std::isfinite(d))
      throw NonFinite{KeyOf(ptr), static_cast<int>(node.source().begin.line),
                      std::isnan(d) ? "nan" : (d > 0 ? "inf" : "-inf")};
    return d;
  }
  if (auto* v = node.as_boolean()) return v->get();
  std::ostringstream os;  // dates/times: keep their TOML text
  if (auto* v = node.as_date()) os << v->get();
  else if (auto* v = node.as_time()) os << v->get();
  else if (auto* v = node.as_date_time()) os << v->get();
  return os.str();
}

}  // namespace

int TomlDocument::LineOf(const std::string& pointer) const {
  auto it = lines.find(pointer);
  return it == lines.end() ? 0 : it->second;
}

std::string TomlDocument::Where(const std::string& pointer) const {
  int line = LineOf(pointer);
  return line ? path + " line " + std::to_string(line) : path;
}

Result<TomlDocument> ParseTomlString(const std::string& text, const std::string& name) {
  TomlDocument doc;
  doc.path = name;
  try {
    toml::table tbl = toml::parse(text, name);
    doc.value = Convert(tbl, "", &doc.lines);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << name << " line " << e.source().begin.line << ": " << e.description();
    return Status::InvalidArgument(os.str());
  } catch (const NonFinite& e) {
    return Status::InvalidArgument(name + (e.line ? " line " + std::to_string(e.line) : std::string()) + ": '" +
                                   e.key + "' = " + e.text + ": numbers must be finite (NaN and infinity are refused)");
  }
  return doc;
}

Result<TomlDocument> ParseTomlFile(const std::string& path) {
  ES_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseTomlString(text, path);
}

}  // namespace emosweep
