// protocols/grammar.cc: the top level of grammar v1: version, name, [vars],
// [corpora.*], [defaults], then experiments (grammar_experiment.cc) and
// tables (tables.cc).
#include "protocols/grammar.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "protocols/grammar_internal.h"
#include "protocols/grammar_util.h"

namespace emosweep::protocols {
namespace fs = std::filesystem;

namespace {

std::string AbsoluteFromCwd(const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::current_path() / p).lexically_normal().string();
}

// Expands ${NAME} from `vars`; an undefined name is an error naming the line.
Result<std::string> ExpandVars(const std::string& text, const std::map<std::string, std::string>& vars,
                               const TableReader& where, const std::string& key) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "${") == 0) {
      size_t end = text.find('}', i + 2);
      if (end == std::string::npos) return where.Error(key, "unterminated '${' in \"" + text + "\"");
      std::string name = text.substr(i + 2, end - i - 2);
      auto it = vars.find(name);
      if (it == vars.end())
        return where.Error(key, "variable ${" + name + "} is not defined (set it in [vars], in the environment, "
                                "with --var " + name + "=VALUE" + (name == "STORE_DIR" ? " or --store-dir" : "") + ")");
      out += it->second;
      i = end + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// A [vars] value may use other variables ("${ROOT}/stores"): every value is
// expanded here, so no literal "${...}" reaches a path. A cycle (X = "${X}/a",
// or X -> Y -> X) and a name defined nowhere are errors naming the [vars] line.
Status ResolveVarReferences(const TomlDocument& doc, const LoadOptions& options,
                            std::map<std::string, std::string>* vars) {
  TableReader table(doc, "/vars", "[vars]");
  auto where = [&](const std::string& name) {
    if (options.vars.count(name)) return "--var " + name;
    if (name == "STORE_DIR" && !options.store_dir.empty()) return std::string("--store-dir");
    if (table.Has(name)) return table.Where(name);
    return doc.path + ": variable " + name;
  };
  std::map<std::string, std::string> done;
  std::vector<std::string> stack;  // names being expanded, outermost first
  std::function<Result<std::string>(const std::string&)> resolve = [&](const std::string& name) -> Result<std::string> {
    if (auto d = done.find(name); d != done.end()) return d->second;
    const std::string& text = vars->at(name);
    std::string out;
    stack.push_back(name);
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 2, "${") != 0) {
        out += text[i++];
        continue;
      }
      const size_t end = text.find('}', i + 2);
      if (end == std::string::npos)
        return Status::InvalidArgument(where(name) + ": unterminated '${' in \"" + text + "\"");
      const std::string ref = text.substr(i + 2, end - i - 2);
      i = end + 1;
      if (auto at = std::find(stack.begin(), stack.end(), ref); at != stack.end()) {
        std::string cycle;
        for (auto it = at; it != stack.end(); ++it) cycle += "${" + *it + "} -> ";
        return Status::InvalidArgument(where(name) + ": variable cycle " + cycle + "${" + ref + "} (a variable " +
                                       "cannot use itself, directly or through others)");
      }
      if (!vars->count(ref)) {
        const char* env = options.use_environment ? std::getenv(ref.c_str()) : nullptr;
        if (!env)
          return Status::InvalidArgument(where(name) + ": variable ${" + ref + "} used by " + name +
                                         " is not defined (set it in [vars], in the environment, or with --var " +
                                         ref + "=VALUE)");
        (*vars)[ref] = AbsoluteFromCwd(env);
      }
      ES_ASSIGN_OR_RETURN(std::string sub, resolve(ref));
      out += sub;
    }
    stack.pop_back();
    done[name] = out;
    return out;
  };
  std::vector<std::string> names;
  for (const auto& [name, value] : *vars) names.push_back(name);
  for (const auto& name : names) {
    ES_ASSIGN_OR_RETURN(std::string v, resolve(name));
    (*vars)[name] = v;
  }
  return Status::Ok();
}

Result<std::map<std::string, std::string>> EffectiveVars(const TomlDocument& doc, const LoadOptions& options,
                                                         const std::string& dir) {
  TableReader vars(doc, "/vars", "[vars]");
  std::map<std::string, std::string> out;
  if (vars.value().is_null()) {
    // no [vars] table
  } else if (!vars.ok()) {
    return vars.Error("", "must be a table of strings");
  } else {
    ES_ASSIGN_OR_RETURN(out, TableReader(doc, "", "").StringMap("vars"));
    // A relative [vars] value is a path relative to the protocol's directory
    // only once used in a store path; keep it as written here.
  }
  if (options.use_environment) {
    for (auto& [name, value] : out) {
      if (const char* env = std::getenv(name.c_str())) value = AbsoluteFromCwd(env);
    }
    // Variables referenced but not declared in [vars] may still come from the
    // environment; ExpandVars looks them up through this map, so add the ones used.
    const auto& corpora = doc.value.value("corpora", nlohmann::json::object());
    if (corpora.is_object()) {
      for (auto it = corpora.begin(); it != corpora.end(); ++it) {
        if (!it.value().is_object() || !it.value().contains("store") || !it.value()["store"].is_string()) continue;
        std::string s = it.value()["store"].get<std::string>();
        for (size_t p = s.find("${"); p != std::string::npos; p = s.find("${", p + 2)) {
          size_t e = s.find('}', p);
          if (e == std::string::npos) break;
          std::string name = s.substr(p + 2, e - p - 2);
          if (out.count(name)) continue;
          if (const char* env = std::getenv(name.c_str())) out[name] = AbsoluteFromCwd(env);
        }
      }
    }
  }
  // --var beats --store-dir (docs/formats/protocol.md, "Variables"): STORE_DIR first, the --var values over it.
  if (!options.store_dir.empty()) out["STORE_DIR"] = AbsoluteFromCwd(options.store_dir);
  for (const auto& [name, value] : options.vars) out[name] = AbsoluteFromCwd(value);
  (void)dir;
  ES_RETURN_IF_ERROR(ResolveVarReferences(doc, options, &out));
  return out;
}

Status ParseCorpora(const TomlDocument& doc, int64_t split_seed, ProtocolDecl* p) {
  TableReader root(doc, "", "");
  if (!root.Has("corpora")) return root.Error("", "no [corpora.<name>] table: a protocol needs at least one corpus");
  TableReader corpora(doc, "/corpora", "[corpora]");
  if (!corpora.ok()) return corpora.Error("", "must be a table of [corpora.<name>] tables");
  for (auto it = corpora.value().begin(); it != corpora.value().end(); ++it) {
    TableReader c(doc, corpora.Child(it.key()), "[corpora." + it.key() + "]");
    if (!c.ok()) return corpora.Error(it.key(), "'" + it.key() + "' must be a table with a 'store' key");
    ES_RETURN_IF_ERROR(c.CheckKeys({"store", "label_map", "split", "evaluate_on"}));
    CorpusDecl d;
    d.name = it.key();
    ES_ASSIGN_OR_RETURN(d.store, c.String("store", true));
    ES_ASSIGN_OR_RETURN(d.label_map, c.String("label_map", false));
    ES_ASSIGN_OR_RETURN(d.evaluate_on, c.String("evaluate_on", false));
    if (c.Has("evaluate_on") && d.evaluate_on != "test" && d.evaluate_on != "whole")
      return c.Error("evaluate_on", "evaluate_on '" + d.evaluate_on + "' is not \"test\" (the corpus's test share) or "
                                    "\"whole\" (every utterance)");
    d.evaluate_on_where = c.Where("evaluate_on");
    ES_ASSIGN_OR_RETURN(std::string expanded, ExpandVars(d.store, p->vars, c, "store"));
    fs::path path(expanded);
    if (path.is_relative()) path = fs::absolute(fs::path(p->dir) / path);
    d.path = path.lexically_normal().string();
    d.where = c.Where("store");
    if (c.Has("split")) {
      ES_ASSIGN_OR_RETURN(d.split, ParseSplit(doc, c.Child("split"), split_seed));
      d.has_split = true;
    }
    p->corpora.push_back(std::move(d));
  }
  if (p->corpora.empty()) return corpora.Error("", "no corpus declared");
  return Status::Ok();
}

}  // namespace

const CorpusDecl* ProtocolDecl::FindCorpus(const std::string& name) const {
  for (const auto& c : corpora)
    if (c.name == name) return &c;
  return nullptr;
}

Result<ProtocolDecl> ParseProtocol(const TomlDocument& doc, const LoadOptions& options) {
  ProtocolDecl p;
  p.path = doc.path;
  p.dir = fs::path(doc.path).parent_path().string();
  if (p.dir.empty()) p.dir = ".";
  TableReader root(doc, "", "");
  ES_RETURN_IF_ERROR(
      root.CheckKeys({"version", "name", "description", "vars", "corpora", "defaults", "experiment", "table"}));
  if (!root.Has("version"))
    return root.Error("", "required key 'version' is missing (this program reads protocol grammar version " +
                              std::to_string(kProtocolVersion) + ")");
  ES_ASSIGN_OR_RETURN(int64_t version, root.Int("version", 0));
  if (version != kProtocolVersion)
    return root.Error("version", "protocol grammar version " + std::to_string(version) +
                                     " is not supported (this program reads version " +
                                     std::to_string(kProtocolVersion) + ")");
  p.version = static_cast<int>(version);
  ES_ASSIGN_OR_RETURN(p.name, root.String("name", true));
  ES_ASSIGN_OR_RETURN(p.description, root.String("description", false));
  ES_ASSIGN_OR_RETURN(p.vars, EffectiveVars(doc, options, p.dir));
  {  // --var TYPO=... set a variable nothing reads, without a word
    std::function<bool(const nlohmann::json&, const std::string&)> uses = [&](const nlohmann::json& j,
                                                                               const std::string& ref) {
      if (j.is_string()) return j.get_ref<const std::string&>().find(ref) != std::string::npos;
      if (j.is_structured())
        for (const auto& v : j)
          if (uses(v, ref)) return true;
      return false;
    };
    for (const auto& [name, value] : options.vars)
      if (!uses(doc.value, "${" + name + "}"))
        p.warnings.push_back("--var " + name + ": the protocol uses no ${" + name + "} (misspelt?)");
  }
  p.max_jobs = options.max_jobs;
  ES_ASSIGN_OR_RETURN(Defaults defaults, ParseDefaults(doc));
  ES_RETURN_IF_ERROR(ParseCorpora(doc, defaults.split_seed, &p));
  if (!root.Has("experiment")) return root.Error("", "no [[experiment]]: a protocol needs at least one experiment");
  const auto& exps = root.Get("experiment");
  if (!exps.is_array()) return root.Error("experiment", "'experiment' must be an array of tables ([[experiment]])");
  std::set<std::string> names;
  for (size_t i = 0; i < exps.size(); ++i) {
    ES_ASSIGN_OR_RETURN(ExperimentDecl e, ParseExperiment(doc, "/experiment/" + std::to_string(i), defaults, p));
    if (!names.insert(e.name).second)
      return Status::InvalidArgument(e.where + ": experiment name '" + e.name + "' is used twice");
    if (e.kind != "in_domain") {
      // Two names of one store in a cross-corpus experiment: the held-out or target corpus would be the training
      // data under another name (helper-62: loco held out 'a_copy' of 'a' and tested 100 of 160 utterances it
      // trained on). in_domain reads each corpus alone.
      std::map<std::string, std::string> by_path;
      for (const auto& c : e.Corpora())
        if (const CorpusDecl* d = p.FindCorpus(c)) {
          auto [it, fresh] = by_path.emplace(d->path, c);
          if (!fresh && it->second != c)
            return Status::InvalidArgument(e.where + ": experiment '" + e.name + "' reads corpora '" + it->second +
                                           "' and '" + c + "', which are one store (" + d->path +
                                           "): a held-out or target corpus would be trained on under another name");
        }
    }
    p.experiments.push_back(std::move(e));
  }
  if (root.Has("table")) {
    const auto& tables = root.Get("table");
    if (!tables.is_array()) return root.Error("table", "'table' must be an array of tables ([[table]])");
    std::set<std::string> tnames;
    for (size_t i = 0; i < tables.size(); ++i) {
      ES_ASSIGN_OR_RETURN(TableSpec t, ParseTable(doc, "/table/" + std::to_string(i), p));
      if (!tnames.insert(t.name).second)
        return TableReader(doc, "/table/" + std::to_string(i), "[[table]]")
            .Error("name", "table name '" + t.name + "' is used twice");
      p.tables.push_back(std::move(t));
    }
  }
  // Leave-one-source-out selection needs extra jobs (exp_lodo.cc): the experiments a lodo table reads carry them.
  for (const auto& t : p.tables)
    for (auto& e : p.experiments)
      if ((e.name == t.experiment || std::count(t.experiments.begin(), t.experiments.end(), e.name)) &&
          t.GridRuleFor(e.name) == "lodo")
        e.lodo = true;
  return p;
}

}  // namespace emosweep::protocols
