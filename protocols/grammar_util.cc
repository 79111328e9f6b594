// protocols/grammar_util.cc: line-aware typed TOML table access.
#include "protocols/grammar_util.h"

#include <map>

#include "protocols/config_catalog.h"

namespace emosweep::protocols {
namespace {

const nlohmann::json& Null() {
  static const nlohmann::json kNull;
  return kNull;
}

const nlohmann::json& Resolve(const nlohmann::json& root, const std::string& pointer) {
  if (pointer.empty()) return root;
  try {
    return root.at(nlohmann::json::json_pointer(pointer));
  } catch (const nlohmann::json::exception&) {
    return Null();
  }
}

}  // namespace

std::string PointerToken(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

TableReader::TableReader(const TomlDocument& doc, std::string pointer, std::string label)
    : doc_(&doc), pointer_(std::move(pointer)), label_(std::move(label)), value_(&Resolve(doc.value, pointer_)) {}

const nlohmann::json& TableReader::Get(const std::string& key) const {
  if (!Has(key)) return Null();
  return (*value_)[key];
}

int TableReader::LineOf(const std::string& key) const {
  int line = key.empty() ? 0 : doc_->LineOf(Child(key));
  if (!line) line = doc_->LineOf(pointer_);
  return line;
}

std::string TableReader::Where(const std::string& key) const {
  int line = LineOf(key);
  std::string s = line ? doc_->path + " line " + std::to_string(line) : doc_->path;
  return label_.empty() ? s : s + ": " + label_;
}

Status TableReader::Error(const std::string& key, const std::string& message) const {
  return Status::InvalidArgument(Where(key) + ": " + message);
}

Status TableReader::CheckKeys(const std::set<std::string>& allowed) const {
  if (!value_->is_object()) return Error("", "must be a table");
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    if (allowed.count(it.key())) continue;
    return Error(it.key(), "unknown key '" + it.key() + "' (allowed here: " +
                               JoinNames(std::vector<std::string>(allowed.begin(), allowed.end())) + ")");
  }
  return Status::Ok();
}

Result<std::string> TableReader::String(const std::string& key, bool required, const std::string& fallback) const {
  if (!Has(key)) {
    if (required) return Error("", "required key '" + key + "' is missing");
    return fallback;
  }
  const auto& v = Get(key);
  if (!v.is_string()) return Error(key, "'" + key + "' must be a string, got " + v.dump());
  return v.get<std::string>();
}

Result<int64_t> TableReader::Int(const std::string& key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  const auto& v = Get(key);
  if (!v.is_number_integer()) return Error(key, "'" + key + "' must be an integer, got " + v.dump());
  return v.get<int64_t>();
}

Result<double> TableReader::Double(const std::string& key, double fallback) const {
  if (!Has(key)) return fallback;
  const auto& v = Get(key);
  if (!v.is_number()) return Error(key, "'" + key + "' must be a number, got " + v.dump());
  return v.get<double>();
}

Result<bool> TableReader::Bool(const std::string& key, bool fallback) const {
  if (!Has(key)) return fallback;
  const auto& v = Get(key);
  if (!v.is_boolean()) return Error(key, "'" + key + "' must be true or false, got " + v.dump());
  return v.get<bool>();
}

Result<std::vector<std::string>> TableReader::StringList(const std::string& key) const {
  std::vector<std::string> out;
  if (!Has(key)) return out;
  const auto& v = Get(key);
  if (!v.is_array()) return Error(key, "'" + key + "' must be a list of strings, got " + v.dump());
  for (const auto& e : v) {
    if (!e.is_string()) return Error(key, "'" + key + "' must be a list of strings, got " + v.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::vector<uint64_t>> TableReader::SeedList(const std::string& key) const {
  std::vector<uint64_t> out;
  if (!Has(key)) return out;
  const auto& v = Get(key);
  bool good = v.is_array() && !v.empty();
  if (good)
    for (const auto& e : v) good &= e.is_number_integer() && e.get<int64_t>() >= 0;
  if (!good) return Error(key, "'" + key + "' must be a non-empty list of non-negative integers, got " + v.dump());
  for (const auto& e : v) out.push_back(e.get<uint64_t>());
  return out;
}

Result<std::map<std::string, std::string>> TableReader::StringMap(const std::string& key) const {
  std::map<std::string, std::string> out;
  if (!Has(key)) return out;
  const auto& v = Get(key);
  if (!v.is_object()) return Error(key, "'" + key + "' must be a table of strings, got " + v.dump());
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string())
      return Error(key, "'" + key + "." + it.key() + "' must be a string, got " + it.value().dump());
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

std::map<std::string, int> KeyLinesOf(const TomlDocument& doc, const std::string& pointer) {
  std::map<std::string, int> out;
  const auto& v = Resolve(doc.value, pointer);
  if (!v.is_object()) return out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    int line = doc.LineOf(pointer + "/" + PointerToken(it.key()));
    if (line) out[it.key()] = line;
  }
  return out;
}

std::vector<std::string> CondenseWarnings(const std::vector<std::string>& warnings, size_t keep) {
  // A warning's shape: its text without bracketed parts, quoted names and digits.
  auto shape = [](const std::string& w) {
    std::string out;
    int depth = 0;
    bool quoted = false;
    for (char ch : w) {
      if (ch == '[') ++depth;
      else if (ch == ']' && depth > 0) --depth;
      else if (ch == '\'') quoted = !quoted;
      else if (depth == 0 && !quoted && !(ch >= '0' && ch <= '9')) out += ch;
    }
    return out;
  };
  std::map<std::string, size_t> seen;
  std::vector<std::string> out;
  std::vector<std::pair<size_t, std::string>> more;  // position in out, shape
  for (const auto& w : warnings) {
    const std::string s = shape(w);
    const size_t n = ++seen[s];
    if (n <= keep) out.push_back(w);
    if (n == keep + 1) more.emplace_back(out.size(), s);
  }
  // "... and N more like it" after the last one shown of each shape, back to front so positions hold.
  for (auto it = more.rbegin(); it != more.rend(); ++it)
    out.insert(out.begin() + static_cast<long>(it->first),
               "... and " + std::to_string(seen[it->second] - keep) + " more like it (plan --json lists them all)");
  return out;
}

}  // namespace emosweep::protocols
