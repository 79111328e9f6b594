// protocols/tables.cc: [[table]] specifications (docs/formats/protocol.md).
#include <algorithm>
#include <set>
#include <sstream>

#include "protocols/grammar_internal.h"
#include "protocols/grammar_util.h"

namespace emosweep::protocols {
namespace {

// Attributes every job of an experiment kind carries (expand.cc sets them).
std::set<std::string> AttrsOf(const ExperimentDecl& e) {
  std::set<std::string> a = {"experiment", "kind", "model", "model_name", "seed", "selection", "hp",
                             "source", "target", "corpus", "metric"};
  if (e.kind == "in_domain") a.insert("fold");
  if (e.kind == "loco") a.insert("heldout");
  if (e.kind == "fewshot") a.insert({"budget", "budget_n"});
  if (e.kind == "adapt") a.insert("variant");
  for (const auto& [key, values] : e.grid) a.insert(key);
  return a;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

Result<TableSpec> ParseTable(const TomlDocument& doc, const std::string& pointer, const ProtocolDecl& p) {
  TableReader first(doc, pointer, "[[table]]");
  if (!first.ok()) return first.Error("", "must be a table");
  TableSpec t;
  ES_ASSIGN_OR_RETURN(t.name, first.String("name", true));
  TableReader r(doc, pointer, "[[table]] '" + t.name + "'");
  ES_RETURN_IF_ERROR(r.CheckKeys({"name", "experiment", "experiments", "rows", "columns", "metrics", "eval", "spread",
                                  "aggregate_over", "scale", "decimals", "missing", "published", "tolerance",
                                  "filter", "caption", "average", "alpha", "grid_selection", "grid_selection_by"}));
  t.raw = r.value();
  // The experiments feeding the table: `experiment = "x"` or `experiments = ["x", "y"]`.
  std::vector<std::string> names;
  if (r.Has("experiment") && r.Has("experiments"))
    return r.Error("experiments", "give 'experiment' or 'experiments', not both");
  if (r.Has("experiments")) {
    ES_ASSIGN_OR_RETURN(t.experiments, r.StringList("experiments"));
    if (t.experiments.empty()) return r.Error("experiments", "'experiments' must name at least one experiment");
    names = t.experiments;
  } else {
    if (!r.Has("experiment"))
      return r.Error("", "required key 'experiment' (or 'experiments = [...]') is missing");
    ES_ASSIGN_OR_RETURN(t.experiment, r.String("experiment", true));
    names = {t.experiment};
  }
  const char* exp_key = t.experiments.empty() ? "experiment" : "experiments";
  std::vector<const ExperimentDecl*> exps;
  std::set<std::string> attrs, kinds, selections;
  for (const auto& name : names) {
    const ExperimentDecl* exp = nullptr;
    for (const auto& e : p.experiments)
      if (e.name == name) exp = &e;
    if (!exp) return r.Error(exp_key, "table reads experiment '" + name + "', which is not declared");
    if (std::find(exps.begin(), exps.end(), exp) != exps.end())
      return r.Error(exp_key, "experiment '" + name + "' is listed twice");
    exps.push_back(exp);
    for (const auto& a : AttrsOf(*exp)) attrs.insert(a);
    kinds.insert(exp->kind);
    selections.insert(exp->selection);
  }
  for (const auto& s : selections) t.selection += (t.selection.empty() ? "" : ", ") + s;
  for (const auto* e : exps)
    if (!e->oracle_eval.empty()) t.oracle_eval = e->oracle_eval;
  std::set<uint64_t> seeds;
  for (const auto* e : exps) seeds.insert(e->seeds.begin(), e->seeds.end());
  t.seeds.assign(seeds.begin(), seeds.end());
  std::vector<std::string> kind_list(kinds.begin(), kinds.end());
  const std::string kinds_text = JoinNames(kind_list);
  std::vector<std::string> attr_list(attrs.begin(), attrs.end());
  // rows: one attribute, or a list whose values are joined into the row key ("adapt / dann_ganin").
  if (r.Has("rows") && r.Get("rows").is_array()) {
    ES_ASSIGN_OR_RETURN(t.row_attrs, r.StringList("rows"));
    if (t.row_attrs.empty()) return r.Error("rows", "'rows' must name at least one attribute");
    for (const auto& a : t.row_attrs) t.rows += (t.rows.empty() ? "" : " / ") + a;
  } else {
    ES_ASSIGN_OR_RETURN(t.rows, r.String("rows", true));
    t.row_attrs = {t.rows};
  }
  ES_ASSIGN_OR_RETURN(t.columns, r.String("columns", true));
  for (const auto& v : t.row_attrs)
    if (!attrs.count(v))
      return r.Error("rows", "'" + v + "' is not an attribute of " + kinds_text + " jobs (one of: " +
                                 JoinNames(attr_list) + ")");
  if (!attrs.count(t.columns))
    return r.Error("columns", "'" + t.columns + "' is not an attribute of " + kinds_text + " jobs (one of: " +
                                  JoinNames(attr_list) + ")");
  if (std::find(t.row_attrs.begin(), t.row_attrs.end(), t.columns) != t.row_attrs.end())
    return r.Error("columns", "rows and columns must be different attributes");
  ES_ASSIGN_OR_RETURN(t.metrics, r.StringList("metrics"));
  if (t.metrics.empty()) return r.Error("", "required key 'metrics' is missing (e.g. [\"ua\"])");
  static const std::set<std::string> kMetrics = {"ua", "wa", "macro_f1", "weighted_f1"};
  for (const auto& m : t.metrics)
    if (!kMetrics.count(m)) return r.Error("metrics", "metric '" + m + "' is not one of ua, wa, macro_f1, weighted_f1");
  ES_ASSIGN_OR_RETURN(t.eval, r.String("eval", false, "test"));
  for (const auto* e : exps) {
    std::set<std::string> evals = {"test", "val"};
    if (e->kind == "loco") evals.insert("test_in");
    if (!evals.count(t.eval))
      return r.Error("eval", "eval set '" + t.eval + "' is not produced by " + e->kind + " jobs (experiment '" +
                                 e->name + "')");
  }
  if (!r.Has("spread"))
    return r.Error("", "required key 'spread' is missing: say which spread the ± shows (std | sem | ci95)");
  ES_ASSIGN_OR_RETURN(t.spread, r.String("spread", true));
  if (t.spread != "std" && t.spread != "sem" && t.spread != "ci95")
    return r.Error("spread", "spread '" + t.spread + "' is not one of std, sem, ci95");
  if (r.Has("aggregate_over")) {
    std::vector<std::string> over;
    if (r.Get("aggregate_over").is_string()) {
      over = SplitCommas(r.Get("aggregate_over").get<std::string>());
    } else {
      ES_ASSIGN_OR_RETURN(over, r.StringList("aggregate_over"));
    }
    for (const auto& a : over)
      if (!attrs.count(a)) return r.Error("aggregate_over", "'" + a + "' is not an attribute of " + kinds_text + " jobs");
    t.aggregate_over.clear();
    for (const auto& a : over) t.aggregate_over += (t.aggregate_over.empty() ? "" : ",") + a;
  }
  ES_ASSIGN_OR_RETURN(t.scale, r.Double("scale", t.scale));
  if (!(t.scale > 0)) return r.Error("scale", "'scale' must be > 0");
  ES_ASSIGN_OR_RETURN(int64_t decimals, r.Int("decimals", t.decimals));
  if (decimals < 0 || decimals > 6) return r.Error("decimals", "'decimals' must be in 0..6");
  t.decimals = static_cast<int>(decimals);
  ES_ASSIGN_OR_RETURN(t.missing, r.String("missing", false, t.missing));
  ES_ASSIGN_OR_RETURN(t.caption, r.String("caption", false));
  ES_ASSIGN_OR_RETURN(t.filter, r.StringMap("filter"));
  for (const auto& [k, v] : t.filter)
    if (!attrs.count(k)) return r.Error("filter", "filter key '" + k + "' is not an attribute of " + kinds_text + " jobs");
  if (r.Has("published")) {
    const auto& pub = r.Get("published");
    if (!pub.is_object()) return r.Error("published", "'published' must be a table of \"row|column\" (or \"row|column|metric\") = value");
    for (auto it = pub.begin(); it != pub.end(); ++it) {
      std::string line_key = "published";
      const auto bars = std::count(it.key().begin(), it.key().end(), '|');
      if (bars != 1 && bars != 2)
        return r.Error(line_key, "published key \"" + it.key() + "\" must be \"row|column\" or \"row|column|metric\"");
      if (bars == 2) {  // the metric must be one the table shows
        const std::string metric = it.key().substr(it.key().rfind('|') + 1);
        if (std::find(t.metrics.begin(), t.metrics.end(), metric) == t.metrics.end())
          return r.Error(line_key, "published key \"" + it.key() + "\" names metric '" + metric +
                                       "', which the table does not show");
      }
      if (!it.value().is_number())
        return r.Error(line_key, "published value of \"" + it.key() + "\" must be a number");
      t.published[it.key()] = it.value().get<double>();
    }
    if (!r.Has("tolerance"))
      return r.Error("published", "published values need a 'tolerance' (in table units) for --reproduce");
  }
  ES_ASSIGN_OR_RETURN(t.tolerance, r.Double("tolerance", 0.0));
  if (t.tolerance < 0) return r.Error("tolerance", "'tolerance' must be >= 0");
  ES_ASSIGN_OR_RETURN(t.average, r.Bool("average", false));
  ES_ASSIGN_OR_RETURN(t.alpha, r.Double("alpha", t.alpha));
  if (!(t.alpha > 0 && t.alpha < 1)) return r.Error("alpha", "'alpha' must be in (0, 1)");
  ES_ASSIGN_OR_RETURN(t.grid_selection, r.String("grid_selection", false));
  ES_ASSIGN_OR_RETURN(t.grid_selection_by, r.StringMap("grid_selection_by"));
  auto known_rule = [](const std::string& rule) {
    return rule == "training_domain" || rule == "lodo" || rule == "oracle" || UnsupervisedGridRule(rule);
  };
  const char* kRules = "training_domain, lodo, oracle, im, snd, dev";
  if (!t.grid_selection.empty() && !known_rule(t.grid_selection))
    return r.Error("grid_selection", "grid selection '" + t.grid_selection + "' is not one of " + kRules);
  for (const auto& [name, rule] : t.grid_selection_by) {
    if (!known_rule(rule))
      return r.Error("grid_selection_by",
                     "grid selection '" + rule + "' for experiment '" + name + "' is not one of " + kRules);
    const std::string exp_name = name;  // a structured binding cannot be captured in C++17 (clang)
    if (std::none_of(exps.begin(), exps.end(), [&](const auto* e) { return e->name == exp_name; }))
      return r.Error("grid_selection_by", "experiment '" + name + "' does not feed this table");
  }
  if (t.HasGridSelection()) {
    if (std::find(t.row_attrs.begin(), t.row_attrs.end(), "hp") != t.row_attrs.end() || t.columns == "hp")
      return r.Error(t.grid_selection.empty() ? "grid_selection_by" : "grid_selection",
                     "grid selection picks one 'hp' point per cell: 'hp' cannot be a row or column");
    const bool experiment_in_key = t.columns == "experiment" || t.rows == "experiment" ||
                                   std::find(t.row_attrs.begin(), t.row_attrs.end(), "experiment") != t.row_attrs.end();
    std::set<std::string> rules;
    for (const auto* e : exps) rules.insert(t.GridRuleFor(e->name));
    if (rules.size() > 1 && !experiment_in_key)
      return r.Error("grid_selection_by", "experiments of this table are selected by different grid rules: put "
                                          "'experiment' in rows or columns, so that no cell mixes them");
    const bool model_in_key = t.columns == "model" ||
                              std::find(t.row_attrs.begin(), t.row_attrs.end(), "model") != t.row_attrs.end();
    for (const auto* e : exps) {
      const std::string& rule = t.GridRuleFor(e->name);
      if (rule.empty()) continue;
      const char* key = t.grid_selection_by.count(e->name) ? "grid_selection_by" : "grid_selection";
      if (!model_in_key && e->models.size() > 1)
        return r.Error(key, "grid selection picks one 'hp' point per cell, but experiment '" + e->name +
                                             "' has " + std::to_string(e->models.size()) +
                                             " models: put 'model' in rows or columns");
      if (rule == "training_domain" && e->selection == "target_val")
        return r.Error(key, "training-domain validation needs the training corpora's validation "
                                         "metric, but experiment '" + e->name + "' selects epochs on the target "
                                         "(selection = \"target_val\")");
      if (UnsupervisedGridRule(rule) && e->kind != "adapt")
        return r.Error(key, "grid selection '" + rule + "' ranks grid points by a criterion on the unlabeled "
                                "target, which only adaptation runs record; experiment '" + e->name + "' is " +
                                e->kind);
      if ((rule == "snd" || rule == "dev") && e->selection != rule)
        return r.Error(key, "grid selection '" + rule + "' ranks by the " + rule + " value at each run's selected "
                                "epoch, which runs compute only when they select epochs by it: experiment '" +
                                e->name + "' has selection = \"" + e->selection + "\" (set selection = \"" +
                                rule + "\", or rank by im, which every adaptation run records)");
      if (rule == "lodo" && !(e->kind == "loco" && e->corpora.size() >= 3))
        return r.Error(key, "leave-one-source-out selection needs at least two training corpora per "
                                         "target (a loco experiment over >= 3 corpora); experiment '" + e->name +
                                         "' is " + e->kind + (e->kind == "loco" ? " over " +
                                         std::to_string(e->corpora.size()) + " corpora" : std::string()));
    }
  }
  return t;
}

}  // namespace emosweep::protocols
