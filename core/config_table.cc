#include "core/config_table.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace emosweep {

const char* ConfigTypeName(ConfigType t) {
  switch (t) {
    case ConfigType::kBool: return "bool";
    case ConfigType::kInt: return "int";
    case ConfigType::kDouble: return "float";
    case ConfigType::kString: return "string";
    case ConfigType::kStringList: return "list of strings";
    case ConfigType::kDoubleList: return "list of floats";
    case ConfigType::kIntList: return "list of ints";
    case ConfigType::kObject: return "table";
  }
  return "?";
}

ConfigTable::ConfigTable(std::string section, std::vector<ConfigKey> keys)
    : section_(std::move(section)), keys_(std::move(keys)) {}

const ConfigKey* ConfigTable::Find(const std::string& name) const {
  for (const auto& k : keys_)
    if (k.name == name) return &k;
  return nullptr;
}

namespace {

std::string At(const std::string& where, const std::map<std::string, int>& lines, const std::string& key) {
  std::string s = where;
  auto it = lines.find(key);
  if (it != lines.end()) s += " line " + std::to_string(it->second);
  return s;
}

// A number as a user wrote it: "32" for an integral value, else the shortest
// text that reads back the same ("1e-05", "0.3"; not "0.300000").
std::string Num(double v) {
  char buf[40];
  if (std::fabs(v) < 1e15 && v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

Status CheckNumber(const ConfigKey& k, double v, const std::string& loc) {
  if (!std::isfinite(v))  // NaN passes every bound check; infinity is never a usable setting
    return Status::InvalidArgument(loc + ": '" + k.name + "' = " + (std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf") +
                                   ": must be a finite number");
  if (k.min && v < *k.min)
    return Status::InvalidArgument(loc + ": '" + k.name + "' = " + Num(v) + " is below the minimum " + Num(*k.min));
  if (k.max && v > *k.max)
    return Status::InvalidArgument(loc + ": '" + k.name + "' = " + Num(v) + " is above the maximum " + Num(*k.max));
  return Status::Ok();
}

// Integer settings are read into 32-bit ints (epochs, batch sizes, layer widths): a larger value would be
// cut to its low 32 bits (epochs = 4294967297 trained 1 epoch), so it is refused here.
Status CheckInt32(const ConfigKey& k, const nlohmann::json& v, const std::string& loc) {
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= 2147483647ULL
                                           : v.get<int64_t>() >= -2147483648LL && v.get<int64_t>() <= 2147483647LL;
  if (fits) return Status::Ok();
  return Status::InvalidArgument(loc + ": '" + k.name + "' = " + v.dump() + " is out of range (at most 2147483647)");
}

// Coerces `v` to the key's type (ints are accepted for floats); returns the stored value.
Result<nlohmann::json> Coerce(const ConfigKey& k, const nlohmann::json& v, const std::string& loc) {
  auto bad = [&]() {
    return Status::InvalidArgument(loc + ": '" + k.name + "' must be " + ConfigTypeName(k.type) + ", got " +
                                   v.dump());
  };
  switch (k.type) {
    case ConfigType::kBool:
      if (!v.is_boolean()) return bad();
      return v;
    case ConfigType::kInt:
      if (!v.is_number_integer()) return bad();
      ES_RETURN_IF_ERROR(CheckNumber(k, v.get<double>(), loc));
      ES_RETURN_IF_ERROR(CheckInt32(k, v, loc));
      return v;
    case ConfigType::kDouble:
      if (!v.is_number()) return bad();
      ES_RETURN_IF_ERROR(CheckNumber(k, v.get<double>(), loc));
      return nlohmann::json(v.get<double>());
    case ConfigType::kString:
      if (!v.is_string()) return bad();
      if (!k.choices.empty()) {
        bool found = false;
        for (const auto& c : k.choices) found |= (c == v.get<std::string>());
        if (!found) {
          std::string all;
          for (const auto& c : k.choices) all += (all.empty() ? "" : ", ") + c;
          return Status::InvalidArgument(loc + ": '" + k.name + "' = \"" + v.get<std::string>() +
                                         "\" is not one of: " + all);
        }
      }
      return v;
    case ConfigType::kStringList:
      if (!v.is_array()) return bad();
      for (const auto& e : v)
        if (!e.is_string()) return bad();
      return v;
    case ConfigType::kDoubleList: {
      if (!v.is_array()) return bad();
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : v) {
        if (!e.is_number()) return bad();
        ES_RETURN_IF_ERROR(CheckNumber(k, e.get<double>(), loc));
        out.push_back(e.get<double>());
      }
      return out;
    }
    case ConfigType::kIntList:
      if (!v.is_array()) return bad();
      for (const auto& e : v) {
        if (!e.is_number_integer()) return bad();
        ES_RETURN_IF_ERROR(CheckNumber(k, e.get<double>(), loc));
        ES_RETURN_IF_ERROR(CheckInt32(k, e, loc));
      }
      return v;
    case ConfigType::kObject:
      if (!v.is_object()) return bad();
      return v;
  }
  return bad();
}

}  // namespace

Result<nlohmann::json> ConfigTable::Apply(const nlohmann::json& given, const std::string& where,
                                          const std::map<std::string, int>& lines) const {
  if (!given.is_null() && !given.is_object())
    return Status::InvalidArgument(where + ": [" + section_ + "] must be a table");
  nlohmann::json out = nlohmann::json::object();
  if (given.is_object()) {
    for (auto it = given.begin(); it != given.end(); ++it) {
      const ConfigKey* k = Find(it.key());
      if (!k) {
        std::string known;
        for (const auto& kk : keys_) known += (known.empty() ? "" : ", ") + kk.name;
        return Status::InvalidArgument(At(where, lines, it.key()) + ": unknown key '" + it.key() + "' in [" +
                                       section_ + "] (known keys: " + known + ")");
      }
      ES_ASSIGN_OR_RETURN(out[it.key()], Coerce(*k, it.value(), At(where, lines, it.key())));
    }
  }
  for (const auto& k : keys_) {
    if (out.contains(k.name)) continue;
    if (k.default_value.is_null())
      return Status::InvalidArgument(where + ": required key '" + k.name + "' missing in [" + section_ + "]");
    out[k.name] = k.default_value;
  }
  return out;
}

std::string ConfigTable::RenderHelp() const {
  std::ostringstream os;
  os << "[" << section_ << "]\n";
  for (const auto& k : keys_) {
    os << "  " << k.name << " (" << ConfigTypeName(k.type);
    if (k.default_value.is_null()) os << ", required";
    else os << ", default " << k.default_value.dump();
    if (k.min) os << ", min " << *k.min;
    if (k.max) os << ", max " << *k.max;
    os << ")";
    if (!k.choices.empty()) {
      os << " one of {";
      for (size_t i = 0; i < k.choices.size(); ++i) os << (i ? "," : "") << k.choices[i];
      os << "}";
    }
    os << "\n      " << k.help << "\n";
  }
  return os.str();
}

}  // namespace emosweep
