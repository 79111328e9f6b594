// protocols/tables.cc: [[table]] specifications (docs/formats/protocol.md).
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
  ES_RETURN_IF_ERROR(r.CheckKeys({"name", "experiment", "rows", "columns", "metrics", "eval", "spread",
                                  "aggregate_over", "scale", "decimals", "missing", "published", "tolerance",
                                  "filter", "caption"}));
  t.raw = r.value();
  ES_ASSIGN_OR_RETURN(t.experiment, r.String("experiment", true));
  const ExperimentDecl* exp = nullptr;
  for (const auto& e : p.experiments)
    if (e.name == t.experiment) exp = &e;
  if (!exp) return r.Error("experiment", "table reads experiment '" + t.experiment + "', which is not declared");
  t.selection = exp->selection;
  t.oracle_eval = exp->oracle_eval;
  t.seeds = exp->seeds;
  std::set<std::string> attrs = AttrsOf(*exp);
  std::vector<std::string> attr_list(attrs.begin(), attrs.end());
  ES_ASSIGN_OR_RETURN(t.rows, r.String("rows", true));
  ES_ASSIGN_OR_RETURN(t.columns, r.String("columns", true));
  for (const char* key : {"rows", "columns"}) {
    const std::string& v = std::string(key) == "rows" ? t.rows : t.columns;
    if (!attrs.count(v))
      return r.Error(key, "'" + v + "' is not an attribute of " + exp->kind + " jobs (one of: " +
                              JoinNames(attr_list) + ")");
  }
  if (t.rows == t.columns) return r.Error("columns", "rows and columns must be different attributes");
  ES_ASSIGN_OR_RETURN(t.metrics, r.StringList("metrics"));
  if (t.metrics.empty()) return r.Error("", "required key 'metrics' is missing (e.g. [\"ua\"])");
  static const std::set<std::string> kMetrics = {"ua", "wa", "macro_f1", "weighted_f1"};
  for (const auto& m : t.metrics)
    if (!kMetrics.count(m)) return r.Error("metrics", "metric '" + m + "' is not one of ua, wa, macro_f1, weighted_f1");
  ES_ASSIGN_OR_RETURN(t.eval, r.String("eval", false, "test"));
  std::set<std::string> evals = {"test", "val"};
  if (exp->kind == "loco") evals.insert("test_in");
  if (!evals.count(t.eval)) return r.Error("eval", "eval set '" + t.eval + "' is not produced by " + exp->kind + " jobs");
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
      if (!attrs.count(a)) return r.Error("aggregate_over", "'" + a + "' is not an attribute of " + exp->kind + " jobs");
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
    if (!attrs.count(k)) return r.Error("filter", "filter key '" + k + "' is not an attribute of " + exp->kind + " jobs");
  if (r.Has("published")) {
    const auto& pub = r.Get("published");
    if (!pub.is_object()) return r.Error("published", "'published' must be a table of \"row|column\" = value");
    for (auto it = pub.begin(); it != pub.end(); ++it) {
      std::string line_key = "published";
      if (std::count(it.key().begin(), it.key().end(), '|') != 1)
        return r.Error(line_key, "published key \"" + it.key() + "\" must be \"row|column\"");
      if (!it.value().is_number())
        return r.Error(line_key, "published value of \"" + it.key() + "\" must be a number");
      t.published[it.key()] = it.value().get<double>();
    }
    if (!r.Has("tolerance"))
      return r.Error("published", "published values need a 'tolerance' (in table units) for --reproduce");
  }
  ES_ASSIGN_OR_RETURN(t.tolerance, r.Double("tolerance", 0.0));
  if (t.tolerance < 0) return r.Error("tolerance", "'tolerance' must be >= 0");
  return t;
}

}  // namespace emosweep::protocols
