// protocols/grammar_experiment.cc: [defaults], split tables and
// [[experiment]] entries, including the model × grid expansion with
// effective (defaults-filled) configs.
#include <algorithm>
#include <set>

#include "data/label_map.h"
#include "protocols/grammar_internal.h"
#include "protocols/grammar_util.h"

namespace emosweep::protocols {
namespace {

std::string ValueText(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

Result<std::vector<std::string>> ResolveLabels(const nlohmann::json& labels, const std::string& where) {
  std::vector<std::string> out;
  if (labels.is_string()) {
    auto named = data::NamedLabelSet(labels.get<std::string>());
    if (!named.ok()) return Status::InvalidArgument(where + ": " + named.status().message());
    out = *named;
  } else if (labels.is_array() && !labels.empty()) {
    for (const auto& l : labels) {
      if (!l.is_string()) return Status::InvalidArgument(where + ": 'labels' must be a set name or a list of labels");
      out.push_back(l.get<std::string>());
    }
  } else {
    return Status::InvalidArgument(where + ": 'labels' must be a named set (e.g. \"core4\") or a non-empty list");
  }
  std::set<std::string> seen;
  for (const auto& l : out) {
    if (!data::IsCanonicalLabel(l))
      return Status::InvalidArgument(where + ": '" + l + "' is not a canonical label (see docs/formats/label-map.md)");
    if (!seen.insert(l).second) return Status::InvalidArgument(where + ": label '" + l + "' is listed twice");
  }
  return out;
}

Result<Budget> ParseBudget(const nlohmann::json& v, const TableReader& r) {
  Budget b;
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.empty() || s.back() != '%') return r.Error("budgets", "budget \"" + s + "\" must be a percentage like \"10%\"");
    char* end = nullptr;
    double pct = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() - 1 || !(pct > 0) || pct > 100)
      return r.Error("budgets", "budget \"" + s + "\" must be a percentage in (0%, 100%]");
    b.label = s;
    b.fraction = pct / 100.0;
    return b;
  }
  if (v.is_number() && v.get<double>() > 0 && v.get<double>() <= 1) {
    b.fraction = v.get<double>();
    b.label = ValueText(nlohmann::json(b.fraction * 100)) + "%";
    return b;
  }
  return r.Error("budgets", "budget " + v.dump() + " must be a percentage string like \"10%\" or a fraction in (0, 1]");
}

Result<SplitDecl> ParseSplit(const TomlDocument& doc, const std::string& pointer, int64_t default_seed) {
  SplitDecl s;
  s.seed = static_cast<uint64_t>(default_seed);
  if (pointer.empty()) return s;  // no split table anywhere: the documented defaults
  TableReader r(doc, pointer, "split");
  if (r.value().is_null()) return s;
  ES_RETURN_IF_ERROR(r.CheckKeys({"method", "k", "group_by", "val_fraction", "test_fraction", "seed",
                                  "allow_speaker_overlap", "file", "fold"}));
  ES_ASSIGN_OR_RETURN(s.method, r.String("method", false, s.method));
  static const std::set<std::string> kMethods = {"speaker_kfold", "loso", "stratified", "file"};
  if (!kMethods.count(s.method))
    return r.Error("method", "split method '" + s.method + "' is not one of speaker_kfold, loso, stratified, file");
  ES_ASSIGN_OR_RETURN(int64_t k, r.Int("k", s.k));
  if (k < 2) return r.Error("k", "'k' must be at least 2");
  s.k = static_cast<int>(k);
  ES_ASSIGN_OR_RETURN(s.group_by, r.String("group_by", false, s.group_by));
  static const std::set<std::string> kGroups = {"speaker", "session", "gender", "group"};
  if (!kGroups.count(s.group_by)) return r.Error("group_by", "'group_by' must be speaker, session, gender or group");
  ES_ASSIGN_OR_RETURN(s.val_fraction, r.Double("val_fraction", s.val_fraction));
  ES_ASSIGN_OR_RETURN(s.test_fraction, r.Double("test_fraction", s.test_fraction));
  if (!(s.val_fraction > 0 && s.val_fraction < 1)) return r.Error("val_fraction", "'val_fraction' must be in (0, 1)");
  if (!(s.test_fraction > 0 && s.test_fraction < 1))
    return r.Error("test_fraction", "'test_fraction' must be in (0, 1)");
  ES_ASSIGN_OR_RETURN(int64_t seed, r.Int("seed", default_seed));
  if (seed < 0) return r.Error("seed", "'seed' must be >= 0");
  s.seed = static_cast<uint64_t>(seed);
  ES_ASSIGN_OR_RETURN(s.allow_speaker_overlap, r.Bool("allow_speaker_overlap", false));
  ES_ASSIGN_OR_RETURN(s.file, r.String("file", false));
  if (s.method == "file" && s.file.empty()) return r.Error("method", "split method 'file' needs 'file = \"...\"'");
  if (s.method != "file" && !s.file.empty()) return r.Error("file", "'file' is only used with method = \"file\"");
  if (r.Has("fold")) {
    const auto& f = r.Get("fold");
    nlohmann::json list = f.is_array() ? f : nlohmann::json::array({f});
    for (const auto& e : list) {
      if (e.is_string()) s.folds.push_back(e.get<std::string>());
      else if (e.is_number_integer() && e.get<int64_t>() >= 0) s.folds.push_back(std::to_string(e.get<int64_t>()));
      else return r.Error("fold", "'fold' must be a fold name, an index, or a list of them");
    }
  }
  return s;
}

Result<Defaults> ParseDefaults(const TomlDocument& doc) {
  Defaults d;
  TableReader r(doc, "/defaults", "[defaults]");
  if (r.value().is_null()) return d;
  ES_RETURN_IF_ERROR(r.CheckKeys({"labels", "features", "seeds", "selection", "oracle_eval", "split", "split_seed",
                                  "train", "finetune_train", "model", "weight"}));
  d.labels = r.Get("labels");
  d.labels_where = r.Where("labels");
  ES_ASSIGN_OR_RETURN(d.features, r.StringMap("features"));
  ES_ASSIGN_OR_RETURN(d.seeds, r.SeedList("seeds"));
  ES_ASSIGN_OR_RETURN(d.selection, r.String("selection", false));
  ES_ASSIGN_OR_RETURN(d.oracle_eval, r.String("oracle_eval", false));
  ES_ASSIGN_OR_RETURN(d.split_seed, r.Int("split_seed", 0));
  if (r.Has("split")) {
    d.split = r.Get("split");
    d.split_pointer = r.Child("split");
    ES_RETURN_IF_ERROR(ParseSplit(doc, d.split_pointer, d.split_seed).status());
  }
  for (const char* key : {"train", "finetune_train"}) {
    if (!r.Has(key)) continue;
    if (!r.Get(key).is_object()) return r.Error(key, std::string("'") + key + "' must be a table");
  }
  d.train = r.Has("train") ? r.Get("train") : nlohmann::json::object();
  d.train_lines = KeyLinesOf(doc, r.Child("train"));
  d.finetune_train = r.Has("finetune_train") ? r.Get("finetune_train") : nlohmann::json::object();
  d.finetune_lines = KeyLinesOf(doc, r.Child("finetune_train"));
  ES_ASSIGN_OR_RETURN(d.adapt_weight, r.Double("weight", d.adapt_weight));
  if (r.Has("model")) {
    TableReader m(doc, r.Child("model"), "[defaults.model]");
    if (!m.ok()) return r.Error("model", "'model' must contain [defaults.model.<name>] tables");
    for (auto it = m.value().begin(); it != m.value().end(); ++it) {
      if (!IsKnownModel(it.key()))
        return m.Error(it.key(), "unknown model '" + it.key() + "' (known models: " + JoinNames(KnownModels()) + ")");
      if (!it.value().is_object()) return m.Error(it.key(), "'" + it.key() + "' must be a table of config keys");
      d.model[it.key()] = it.value();
      d.model_lines[it.key()] = KeyLinesOf(doc, m.Child(it.key()));
    }
  }
  return d;
}

}  // namespace emosweep::protocols
