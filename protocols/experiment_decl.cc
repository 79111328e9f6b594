// protocols/experiment_decl.cc: one [[experiment]]: common keys, the keys of
// its kind, the required selection policy, and models × grid points with
// effective configs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <map>
#include <set>

#include "data/corpus.h"
#include "data/label_map.h"
#include "protocols/grammar_internal.h"
#include "protocols/grammar_util.h"

namespace emosweep::protocols {

namespace {

const std::set<std::string> kCommonKeys = {"name", "kind", "description", "models", "grid", "seeds", "selection",
                                           "oracle_eval", "labels", "features", "train", "split"};

std::set<std::string> AllowedKeys(const std::string& kind) {
  std::set<std::string> k = kCommonKeys;
  if (kind == "finetune" || kind == "fewshot" || kind == "adapt") k.insert({"source", "target", "targets", "pool"});
  else k.insert("corpora");
  if (kind == "cross_corpus") k.insert({"source", "target", "targets", "pool"});
  if (kind == "loco") k.insert("heldout");
  if (kind == "finetune" || kind == "fewshot") k.insert("finetune_train");
  if (kind == "fewshot") k.insert({"budgets", "shots"});
  if (kind == "adapt") k.insert({"variants", "weight", "adapt_options"});
  return k;
}

// Directory of the protocol file: relative model files resolve there (like store paths).
std::string DirOf(const std::string& file) {
  std::string dir = std::filesystem::path(file).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string ValueText(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

void Merge(nlohmann::json* base, KeyLines* lines, const nlohmann::json& add, const KeyLines& add_lines) {
  if (!add.is_object()) return;
  for (auto it = add.begin(); it != add.end(); ++it) {
    (*base)[it.key()] = it.value();
    auto l = add_lines.find(it.key());
    if (l != add_lines.end()) (*lines)[it.key()] = l->second;
  }
}

Status ParseModels(const TableReader& r, const TomlDocument& doc, const Defaults& d, ExperimentDecl* e) {
  if (!r.Has("models")) return r.Error("", "required key 'models' is missing (a list of model names or tables)");
  const auto& list = r.Get("models");
  if (!list.is_array() || list.empty()) return r.Error("models", "'models' must be a non-empty list");
  std::set<std::string> labels;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& m = list[i];
    ModelDecl md;
    std::string ptr = r.Child("models") + "/" + std::to_string(i);
    md.where = TableReader(doc, ptr, "").Where();
    KeyLines lines;
    nlohmann::json inline_cfg = nlohmann::json::object();
    if (m.is_string()) {
      md.name = m.get<std::string>();
    } else if (m.is_object()) {
      TableReader mr(doc, ptr, "model");
      ES_ASSIGN_OR_RETURN(md.name, mr.String("name", true));
      ES_ASSIGN_OR_RETURN(md.label, mr.String("label", false));
      inline_cfg = m;
      inline_cfg.erase("name");
      inline_cfg.erase("label");
      lines = KeyLinesOf(doc, ptr);
    } else {
      return r.Error("models", "each model must be a name or an inline table {name = \"...\", ...}");
    }
    if (!IsKnownModel(md.name))
      return Status::InvalidArgument(md.where + ": unknown model '" + md.name + "' (known models: " +
                                     JoinNames(KnownModels()) + ")");
    if (md.label.empty()) md.label = md.name;
    if (!labels.insert(md.label).second)
      return Status::InvalidArgument(md.where + ": model row '" + md.label +
                                     "' appears twice; give the entries distinct 'label's");
    KeyLines merged_lines;
    auto dm = d.model.find(md.name);
    if (dm != d.model.end()) Merge(&md.config, &merged_lines, dm->second, d.model_lines.at(md.name));
    if (md.config.is_null()) md.config = nlohmann::json::object();
    Merge(&md.config, &merged_lines, inline_cfg, lines);
    // Keys of inline tables carry no line of their own: use the entry's.
    int entry_line = TableReader(doc, ptr, "").LineOf("");
    for (auto it = md.config.begin(); it != md.config.end(); ++it)
      if (!merged_lines.count(it.key()) && entry_line) merged_lines[it.key()] = entry_line;
    md.lines = std::move(merged_lines);
    // A model file is hashed here too, so the effective declaration (and the expansion cache key) changes with it.
    if (md.config.contains("file") && md.config["file"].is_string()) {
      auto fl = md.lines.find("file");
      ES_RETURN_IF_ERROR(ResolveModelFileConfig(
          md.name, DirOf(doc.path), doc.path + (fl != md.lines.end() ? " line " + std::to_string(fl->second) : ""),
          &md.config, &e->missing_files));
    }
    e->models.push_back(std::move(md));
  }
  return Status::Ok();
}

Status ParseGrid(const TableReader& r, ExperimentDecl* e) {
  if (!r.Has("grid")) return Status::Ok();
  const auto& g = r.Get("grid");
  if (!g.is_object()) return r.Error("grid", "'grid' must be a table like {\"train.lr\" = [1e-4, 1e-3]}");
  for (auto it = g.begin(); it != g.end(); ++it) {
    const std::string& key = it.key();
    std::string prefix = key.substr(0, key.find('.'));
    bool ok_prefix = key.find('.') != std::string::npos && key.size() > prefix.size() + 1 &&
                     (prefix == "train" || prefix == "model" ||
                      (prefix == "finetune" && (e->kind == "finetune" || e->kind == "fewshot")) ||
                      (prefix == "adapt" && e->kind == "adapt"));
    if (!ok_prefix)
      return r.Error("grid", "grid key '" + key + "' must be train.<key> or model.<key>" +
                                 std::string(e->kind == "adapt" ? " or adapt.<key>" : "") +
                                 std::string(e->kind == "finetune" || e->kind == "fewshot" ? " or finetune.<key>" : ""));
    if (!it.value().is_array() || it.value().empty())
      return r.Error("grid", "grid values of '" + key + "' must be a non-empty list");
    std::set<std::string> seen;
    for (const auto& v : it.value()) {
      if (v.is_object() || v.is_array()) return r.Error("grid", "grid values of '" + key + "' must be scalars");
      if (!seen.insert(v.dump()).second) return r.Error("grid", "grid value " + v.dump() + " of '" + key + "' repeats");
    }
    e->grid[key] = it.value().get<std::vector<nlohmann::json>>();
  }
  return Status::Ok();
}

std::string Count(double n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, n < 1e15 ? "%.0f" : "%.3g", n);
  return buf;
}

// The fewest jobs the experiment expands to, from the declaration alone (no
// grid point or job is made): models x grid points x seeds x what each kind
// multiplies by. Refused when the protocol's total so far passes max_jobs.
Status CountJobs(const TableReader& r, const ProtocolDecl& p, ExperimentDecl* e) {
  double points = static_cast<double>(e->models.size());
  std::string how = Count(points) + " model(s)";
  for (const auto& [key, values] : e->grid) {
    points *= static_cast<double>(values.size());
    how += " x " + Count(static_cast<double>(values.size())) + " " + key;
  }
  double per = 1;
  const double c = static_cast<double>(e->corpora.size());
  // Source form (finetune, fewshot, adapt, cross_corpus with `source`): training sets x targets.
  const double pairs = static_cast<double>(e->SourceSets().size() * e->targets.size());
  const std::string pairs_how = " x " + Count(pairs) + " (training set, target) pairs";
  if (e->kind == "in_domain") per = c, how += " x " + Count(c) + " corpora";
  else if (e->kind == "loco") {
    const double h = e->heldout.empty() ? c : static_cast<double>(e->heldout.size());
    per = h, how += " x " + Count(h) + " held-out corpora";
  } else if (e->kind == "cross_corpus" && !e->sources.empty()) {
    per = pairs, how += pairs_how;
  } else if (e->kind == "cross_corpus") {
    const double t = e->targets.empty() ? c : static_cast<double>(e->targets.size());
    per = c * t, how += " x " + Count(c * t) + " (source, target) pairs";
  } else if (e->kind == "joint") per = c + 1, how += " x " + Count(c + 1) + " (joint job + per-corpus evals)";
  else if (e->kind == "finetune") per = pairs, how += pairs_how;
  else if (e->kind == "fewshot") {
    per = static_cast<double>(e->budgets.size()) * pairs;
    how += " x " + Count(static_cast<double>(e->budgets.size())) + " budgets" + pairs_how;
  } else if (e->kind == "adapt") {
    per = static_cast<double>(e->variants.size()) * pairs;
    how += " x " + Count(static_cast<double>(e->variants.size())) + " variants" + pairs_how;
  }
  const double seeds = static_cast<double>(e->seeds.size());
  how += " x " + Count(seeds) + " seed(s)";
  e->min_jobs = points * seeds * per;
  double total = e->min_jobs;
  for (const auto& before : p.experiments) total += before.min_jobs;
  if (p.max_jobs == 0 || total <= static_cast<double>(p.max_jobs)) return Status::Ok();
  std::string msg = "expands to at least " + Count(e->min_jobs) + " jobs (" + how + ")";
  if (total > e->min_jobs) msg += ", " + Count(total) + " with the experiments before it";
  return r.Error(e->grid.empty() ? "" : "grid", msg + ": more than --max-jobs " + Count(static_cast<double>(p.max_jobs)) +
                                                    " (shrink the grid, or raise --max-jobs)");
}

// Cartesian product of the grid (keys in sorted order), validated per model.
Status ExpandPoints(const TomlDocument& doc, const TableReader& r, const Defaults& d, ExperimentDecl* e) {
  std::vector<std::pair<std::string, std::vector<nlohmann::json>>> axes(e->grid.begin(), e->grid.end());
  std::vector<size_t> idx(axes.size(), 0);
  KeyLines train_lines = d.train_lines;
  nlohmann::json train = d.train;
  Merge(&train, &train_lines, r.Get("train"), KeyLinesOf(doc, r.Child("train")));
  e->train = train;
  nlohmann::json ft = train;
  KeyLines ft_lines = train_lines;
  Merge(&ft, &ft_lines, d.finetune_train, d.finetune_lines);
  Merge(&ft, &ft_lines, r.Get("finetune_train"), KeyLinesOf(doc, r.Child("finetune_train")));
  e->finetune_train = ft;
  int grid_line = r.LineOf("grid");
  const std::string& file = doc.path;
  while (true) {
    for (size_t m = 0; m < e->models.size(); ++m) {
      GridPoint p;
      nlohmann::json model_cfg = e->models[m].config, t = train, f = ft;
      KeyLines ml = e->models[m].lines, tl = train_lines, fl = ft_lines;
      std::string hp;
      for (size_t a = 0; a < axes.size(); ++a) {
        const std::string& key = axes[a].first;
        const nlohmann::json& v = axes[a].second[idx[a]];
        std::string sub = key.substr(key.find('.') + 1), prefix = key.substr(0, key.find('.'));
        if (prefix == "model") {
          model_cfg[sub] = v, ml[sub] = grid_line;
          if (sub == "file") model_cfg.erase("sha256");  // another file: hashed below
        } else if (prefix == "train") t[sub] = v, tl[sub] = grid_line, f[sub] = v, fl[sub] = grid_line;
        else if (prefix == "finetune") f[sub] = v, fl[sub] = grid_line;
        else p.adapt_extra[sub] = v;
        p.attrs[key] = ValueText(v);
        hp += (hp.empty() ? "" : ",") + key + "=" + ValueText(v);
      }
      p.attrs["hp"] = hp;
      ES_ASSIGN_OR_RETURN(p.model, EffectiveModelConfig(e->models[m].name, model_cfg, file, ml, DirOf(file),
                                                        &e->missing_files));
      ES_ASSIGN_OR_RETURN(p.train, EffectiveTrainConfig(t, file, tl));
      if (e->kind == "finetune" || e->kind == "fewshot") {
        ES_ASSIGN_OR_RETURN(p.finetune, EffectiveTrainConfig(f, file, fl));
      }
      p.model.MakeInterned();  // the jobs copy a pointer, and their identities reuse its dump
      p.train.MakeInterned();
      p.finetune.MakeInterned();
      e->points.emplace_back(m, std::move(p));
    }
    size_t a = 0;
    for (; a < axes.size(); ++a) {
      if (++idx[a] < axes[a].second.size()) break;
      idx[a] = 0;
    }
    if (a == axes.size()) break;
  }
  return Status::Ok();
}

using CorpusCheck = std::function<Status(const std::string& key, const std::string& name)>;

// A corpus name or a list of them (`source = "a"` or `source = ["a", "b"]`): declared, none twice.
Result<std::vector<std::string>> CorpusList(const TableReader& r, const std::string& key, const CorpusCheck& check,
                                            bool allow_string = false) {
  std::vector<std::string> out;
  const auto& v = r.Get(key);
  if (allow_string && v.is_string()) {
    out.push_back(v.get<std::string>());
  } else {
    ES_ASSIGN_OR_RETURN(out, r.StringList(key));
    if (out.empty()) return r.Error(key, "'" + key + "' must list at least one corpus");
  }
  std::set<std::string> seen;
  for (const auto& c : out) {
    ES_RETURN_IF_ERROR(check(key, c));
    if (!seen.insert(c).second) return r.Error(key, "corpus '" + c + "' is listed twice in '" + key + "'");
  }
  return out;
}

// `source` (one or a list), `pool`, and `target` or `targets`: the corpus roles of the source form.
Status ParseRoles(const TableReader& r, const CorpusCheck& check, ExperimentDecl* e) {
  if (!r.Has("source"))
    return r.Error("", "required key 'source' is missing (a corpus name or a list of corpus names)");
  ES_ASSIGN_OR_RETURN(e->sources, CorpusList(r, "source", check, true));
  if (r.Get("source").is_string()) e->source = e->sources[0];
  if (r.Has("target") && r.Has("targets"))
    return r.Error("targets", "give either 'target' (one corpus) or 'targets' (a list), not both");
  if (!r.Has("target") && !r.Has("targets"))
    return r.Error("", "required key 'target' (or 'targets = [...]') is missing");
  if (r.Has("target")) {
    ES_ASSIGN_OR_RETURN(e->target, r.String("target", true));
    ES_RETURN_IF_ERROR(check("target", e->target));
    e->targets = {e->target};
  } else {
    ES_ASSIGN_OR_RETURN(e->targets, CorpusList(r, "targets", check));
  }
  const std::string tkey = r.Has("target") ? "target" : "targets";
  for (const auto& t : e->targets)
    if (std::count(e->sources.begin(), e->sources.end(), t))
      return r.Error(tkey, e->sources.size() == 1 && e->targets.size() == 1
                               ? std::string("source and target must be different corpora")
                               : "corpus '" + t + "' is both a source and a target (a target is never trained on)");
  if (r.Has("pool")) {
    const auto& v = r.Get("pool");
    std::vector<std::string> pool;
    if (v.is_string()) pool = {v.get<std::string>()};
    else if (v.is_array()) {
      ES_ASSIGN_OR_RETURN(pool, r.StringList("pool"));
    }
    std::set<std::string> seen;
    for (const auto& x : pool)
      if ((x != "all" && x != "each") || !seen.insert(x).second) pool.clear();
    if (pool.empty())
      return r.Error("pool", "'pool' must be \"all\" (train on the pooled sources), \"each\" (once per source) or "
                             "[\"each\", \"all\"], got " + v.dump());
    e->pool = pool;
  } else {
    e->pool = {"all"};
  }
  return Status::Ok();
}

Status ParseKindKeys(const TableReader& r, const ProtocolDecl& p, const Defaults& d, ExperimentDecl* e) {
  CorpusCheck check_corpus = [&](const std::string& key, const std::string& name) -> Status {
    if (!p.FindCorpus(name)) {
      std::vector<std::string> known;
      for (const auto& c : p.corpora) known.push_back(c.name);
      return r.Error(key, "corpus '" + name + "' is not declared in [corpora] (declared: " + JoinNames(known) + ")");
    }
    return Status::Ok();
  };
  const bool source_form = e->kind == "finetune" || e->kind == "fewshot" || e->kind == "adapt" ||
                           (e->kind == "cross_corpus" && r.Has("source"));
  if (e->kind == "cross_corpus" && r.Has("source") && r.Has("corpora"))
    return r.Error("source", "give either 'corpora' (every source against every target) or 'source' (with "
                             "'target' or 'targets'), not both");
  if (e->kind == "cross_corpus" && !source_form)
    for (const char* key : {"target", "pool"})
      if (r.Has(key))
        return r.Error(key, std::string("'") + key + "' belongs to the source form (source = [...]); with 'corpora', "
                                                     "restrict the targets with 'targets = [...]'");
  if (source_form) {
    ES_RETURN_IF_ERROR(ParseRoles(r, check_corpus, e));
  } else {
    ES_ASSIGN_OR_RETURN(e->corpora, r.StringList("corpora"));
    if (e->corpora.empty()) return r.Error("", "required key 'corpora' is missing (a list of corpus names)");
    std::set<std::string> seen;
    for (const auto& c : e->corpora) {
      ES_RETURN_IF_ERROR(check_corpus("corpora", c));
      if (!seen.insert(c).second) return r.Error("corpora", "corpus '" + c + "' is listed twice");
    }
    if (e->kind == "loco" && r.Has("heldout")) {
      ES_ASSIGN_OR_RETURN(e->heldout, CorpusList(r, "heldout", check_corpus));
      // A held-out corpus of `corpora` trains the others; one outside it trains them all.
      for (const auto& h : e->heldout)
        if (e->corpora.size() < 2 && std::count(e->corpora.begin(), e->corpora.end(), h))
          return r.Error("heldout", "held-out corpus '" + h + "' leaves no training corpus (list more 'corpora')");
    } else if (e->kind == "cross_corpus" && r.Has("targets")) {
      ES_ASSIGN_OR_RETURN(e->targets, CorpusList(r, "targets", check_corpus));
      if (e->corpora.size() < 2 && std::count(e->targets.begin(), e->targets.end(), e->corpora[0]) ==
                                       static_cast<long>(e->targets.size()))
        return r.Error("targets", "no target other than the source corpus");
    } else if (e->kind != "in_domain" && e->corpora.size() < 2) {
      return r.Error("corpora", "a " + e->kind + " experiment needs at least two corpora");
    }
  }
  // A target evaluated on the whole corpus has no labelled share that is not also tested.
  for (const auto& t : e->targets) {
    const CorpusDecl* c = p.FindCorpus(t);
    if (!c || c->evaluate_on != "whole" || !source_form) continue;
    const std::string tkey = r.Has("target") ? "target" : "targets";
    const std::string why = "target '" + t + "' is evaluated on the whole corpus (evaluate_on = \"whole\", " +
                            c->evaluate_on_where + ")";
    if (e->kind == "finetune" || e->kind == "fewshot")
      return r.Error(tkey, why + ": fine-tuning on its labels would train on the test set; set evaluate_on = \"test\"");
    if (e->selection == "target_val")
      return r.Error("selection", why + ": selection = \"target_val\" would select on test labels; set "
                                        "evaluate_on = \"test\" or select on the source");
  }
  if (e->kind == "fewshot") {
    if (r.Has("budgets")) {
      if (!r.Get("budgets").is_array() || r.Get("budgets").empty())
        return r.Error("budgets", "'budgets' must be a non-empty list like [\"10%\", \"50%\"]");
      for (const auto& b : r.Get("budgets")) {
        ES_ASSIGN_OR_RETURN(Budget bb, ParseBudget(b, r));
        e->budgets.push_back(bb);
      }
    }
    if (r.Has("shots")) {
      const auto& s = r.Get("shots");
      bool good = s.is_array() && !s.empty();
      if (good)
        for (const auto& x : s) good &= x.is_number_integer() && x.get<int64_t>() > 0;
      if (!good) return r.Error("shots", "'shots' must be a non-empty list of positive integers (per class)");
      for (const auto& x : s) e->budgets.push_back({std::to_string(x.get<int64_t>()) + "-shot", 0, x.get<int>()});
    }
    if (e->budgets.empty()) return r.Error("", "a fewshot experiment needs 'budgets' or 'shots'");
    // "50%" twice was merged into one without a word; "70%" and 0.7 are one budget too (helper-62).
    std::map<std::string, std::string> seen;
    for (const auto& b : e->budgets) {
      const std::string key = b.shots > 0 ? b.label : std::to_string(std::llround(b.fraction * 1e9));
      auto [it, fresh] = seen.emplace(key, b.label);
      if (!fresh)
        return r.Error(r.Has("shots") && b.shots > 0 ? "shots" : "budgets",
                       "budget '" + b.label + "' is listed twice" +
                           (it->second != b.label ? " (also as '" + it->second + "')" : std::string()));
    }
  }
  if (e->kind == "adapt") {
    ES_ASSIGN_OR_RETURN(e->variants, r.StringList("variants"));
    if (e->variants.empty()) return r.Error("", "an adapt experiment needs 'variants' (e.g. [\"dann_ganin\"])");
    std::set<std::string> seen;
    for (const auto& v : e->variants)
      if (!seen.insert(v).second) return r.Error("variants", "variant '" + v + "' is listed twice");
    for (const auto& v : e->variants)
      if (!IsKnownAdaptVariant(v))
        return r.Error("variants", "unknown domain-adaptation variant '" + v + "' (known: " +
                                       JoinNames(KnownAdaptVariants()) + ")");
    ES_ASSIGN_OR_RETURN(e->weight, r.Double("weight", d.adapt_weight));
    if (!(e->weight >= 0)) return r.Error("weight", "'weight' must be >= 0");
    if (r.Has("adapt_options")) {
      if (!r.Get("adapt_options").is_object()) return r.Error("adapt_options", "'adapt_options' must be a table");
      e->adapt_options = r.Get("adapt_options");
      for (const char* reserved : {"variant", "weight"})
        if (e->adapt_options.contains(reserved))
          return r.Error("adapt_options", std::string("set '") + reserved + "' with the experiment's own key");
    }
  }
  return Status::Ok();
}

Status ParseSelection(const TableReader& r, const Defaults& d, ExperimentDecl* e) {
  ES_ASSIGN_OR_RETURN(e->selection, r.String("selection", false, d.selection));
  if (e->selection.empty())
    return r.Error("", "no model-selection policy: set 'selection' (source_val | target_val | last | oracle | dev | "
                       "im | snd) in the experiment or in [defaults]");
  static const std::set<std::string> kPolicies = {"source_val", "target_val", "last", "oracle", "dev", "im", "snd"};
  if (!kPolicies.count(e->selection))
    return r.Error("selection", "selection '" + e->selection +
                                    "' is not one of source_val, target_val, last, oracle, dev, im, snd");
  // Unsupervised DA selection reads the unlabeled target: only adapt experiments have one.
  if ((e->selection == "dev" || e->selection == "im" || e->selection == "snd") && e->kind != "adapt")
    return r.Error("selection", "'" + e->selection + "' selects on the unlabeled target of an adapt experiment; a " +
                                    e->kind + " experiment has none");
  if (e->selection == "target_val" && !(e->kind == "finetune" || e->kind == "fewshot" || e->kind == "adapt"))
    return r.Error("selection", "'target_val' needs a target corpus (finetune, fewshot or adapt); a " + e->kind +
                                    " experiment has none");
  ES_ASSIGN_OR_RETURN(e->oracle_eval, r.String("oracle_eval", false, d.oracle_eval));
  if (e->selection == "oracle") {
    if (e->oracle_eval.empty())
      return r.Error("selection", "'oracle' selection must name the eval set it selects on: oracle_eval = \"test\"");
    if (e->oracle_eval != "test" && !(e->kind == "loco" && e->oracle_eval == "test_in"))
      return r.Error("oracle_eval", "oracle_eval '" + e->oracle_eval + "' is not an eval set of this experiment "
                                    "(\"test\"" + std::string(e->kind == "loco" ? " or \"test_in\")" : ")"));
  } else if (r.Has("oracle_eval")) {
    return r.Error("oracle_eval", "'oracle_eval' is only used with selection = \"oracle\"");
  } else {
    e->oracle_eval.clear();
  }
  return Status::Ok();
}

}  // namespace

Result<ExperimentDecl> ParseExperiment(const TomlDocument& doc, const std::string& pointer, const Defaults& d,
                                       const ProtocolDecl& p) {
  ExperimentDecl e;
  TableReader first(doc, pointer, "[[experiment]]");
  if (!first.ok()) return first.Error("", "must be a table");
  ES_ASSIGN_OR_RETURN(e.name, first.String("name", true));
  TableReader r(doc, pointer, "[[experiment]] '" + e.name + "'");
  e.where = r.Where();
  ES_ASSIGN_OR_RETURN(e.kind, r.String("kind", true));
  static const std::set<std::string> kKinds = {"in_domain", "loco",    "cross_corpus", "finetune",
                                               "fewshot",   "adapt",   "joint"};
  if (!kKinds.count(e.kind))
    return r.Error("kind", "kind '" + e.kind + "' is not one of in_domain, loco, cross_corpus, finetune, fewshot, "
                           "adapt, joint");
  ES_RETURN_IF_ERROR(r.CheckKeys(AllowedKeys(e.kind)));
  ES_RETURN_IF_ERROR(ParseSelection(r, d, &e));
  ES_RETURN_IF_ERROR(ParseKindKeys(r, p, d, &e));

  nlohmann::json labels = r.Has("labels") ? r.Get("labels") : d.labels;
  if (labels.is_null()) return r.Error("", "no label set: set 'labels' in the experiment or in [defaults]");
  ES_ASSIGN_OR_RETURN(e.labels, ResolveLabels(labels, r.Has("labels") ? r.Where("labels") : d.labels_where));
  if (e.labels.size() < 2) return r.Error("labels", "a label set needs at least two classes");
  ES_ASSIGN_OR_RETURN(e.features, r.StringMap("features"));
  if (e.features.empty()) e.features = d.features;
  if (e.features.empty())
    return r.Error("", "no feature sets: set features = {audio = \"...\"} in the experiment or in [defaults]");
  for (const auto& [modality, name] : e.features)
    if (!data::IsKnownModality(modality))
      return r.Error("features", "modality '" + modality + "' is not one of audio, text, video");
  ES_ASSIGN_OR_RETURN(e.seeds, r.SeedList("seeds"));
  if (e.seeds.empty()) e.seeds = d.seeds;
  if (e.seeds.empty()) return r.Error("", "no seeds: set 'seeds = [...]' in the experiment or in [defaults]");
  if (std::set<uint64_t>(e.seeds.begin(), e.seeds.end()).size() != e.seeds.size())
    return r.Error("seeds", "a seed is listed twice");

  if (r.Has("split")) {
    ES_ASSIGN_OR_RETURN(e.split, ParseSplit(doc, r.Child("split"), d.split_seed));
  } else {
    ES_ASSIGN_OR_RETURN(e.split, ParseSplit(doc, d.split_pointer, d.split_seed));
  }
  for (const char* key : {"train", "finetune_train"})
    if (r.Has(key) && !r.Get(key).is_object()) return r.Error(key, std::string("'") + key + "' must be a table");
  ES_RETURN_IF_ERROR(ParseModels(r, doc, d, &e));
  ES_RETURN_IF_ERROR(ParseGrid(r, &e));
  ES_RETURN_IF_ERROR(CountJobs(r, p, &e));
  ES_RETURN_IF_ERROR(ExpandPoints(doc, r, d, &e));
  // A model reading a modality the experiment declares no feature set for fails every one of its jobs at
  // run time (plan said "valid"): refused here, naming the model's line.
  for (const auto& [m, point] : e.points)
    for (const auto& modality : ModelModalities(e.models[m].name, point.model.tree()))
      if (!e.features.count(modality)) {
        std::string declared;
        for (const auto& [k, v] : e.features) declared += (declared.empty() ? "" : ", ") + k;
        return Status::InvalidArgument(e.models[m].where + ": model '" + e.models[m].label + "' reads modality '" +
                                       modality + "', but the experiment's features declare only " + declared);
      }
  if (e.kind == "adapt") {
    for (const auto& v : e.variants)
      for (const auto& [m, point] : e.points) {
        nlohmann::json opts = e.adapt_options;
        double w = e.weight;
        for (auto it = point.adapt_extra.begin(); it != point.adapt_extra.end(); ++it) {
          if (it.key() == "weight") {
            if (!it.value().is_number()) return r.Error("grid", "grid 'adapt.weight' values must be numbers");
            w = it.value().get<double>();
          } else {
            opts[it.key()] = it.value();
          }
        }
        ES_RETURN_IF_ERROR(EffectiveAdaptConfig(v, w, opts, r.Where("variants"), {}).status());
      }
  }
  return e;
}

}  // namespace emosweep::protocols
