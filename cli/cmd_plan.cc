// cli/cmd_plan.cc: `emosweep plan PROTOCOL`: validate a protocol, expand it
// and say what a run would do, without running anything.
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/protocol_args.h"
#include "cli/protocol_library.h"
#include "core/files.h"
#include "orchestrator/ledger.h"
#include "protocols/expand.h"
#include "protocols/grammar_util.h"

namespace emosweep::cli {
namespace {

std::string KindCounts(const std::map<std::string, int>& by_kind) {
  std::string s;
  for (const auto& [kind, n] : by_kind) s += (s.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  return s;
}

Result<protocols::LoadOptions> OptionsFrom(const po::variables_map& vm) {
  protocols::LoadOptions o;
  if (vm.count("store-dir")) o.store_dir = vm["store-dir"].as<std::string>();
  if (vm.count("max-jobs")) o.max_jobs = vm["max-jobs"].as<uint64_t>();
  if (vm.count("var")) {
    for (const auto& kv : vm["var"].as<std::vector<std::string>>()) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        return Status::InvalidArgument("--var expects NAME=VALUE, got '" + kv + "'");
      o.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return o;
}

// Job counts against a ledger: done / failed / running / to run (pending,
// blocked or never registered). A ledger that does not exist yet has run nothing.
Result<std::map<std::string, int>> LedgerCounts(const std::string& path, const protocols::Protocol& p) {
  std::map<std::string, int> counts = {{"done", 0}, {"failed", 0}, {"running", 0}, {"to_run", 0}};
  if (!FileExists(path)) {
    counts["to_run"] = static_cast<int>(p.jobs.size());
    return counts;
  }
  orchestrator::LedgerOptions options;
  options.read_only = true;
  ES_ASSIGN_OR_RETURN(auto ledger, orchestrator::Ledger::Open(path, options));
  std::vector<std::string> ids;
  for (const auto& j : p.jobs) ids.push_back(j.spec.id);
  ES_ASSIGN_OR_RETURN(auto states, ledger->StatusOf(ids));
  for (const auto& id : ids) {
    auto it = states.find(id);
    if (it == states.end()) ++counts["to_run"];
    else if (it->second == orchestrator::JobStatus::kDone) ++counts["done"];
    else if (it->second == orchestrator::JobStatus::kFailed) ++counts["failed"];
    else if (it->second == orchestrator::JobStatus::kRunning) ++counts["running"];
    else ++counts["to_run"];
  }
  return counts;
}

nlohmann::json ToJson(const protocols::Protocol& p, bool with_jobs) {
  std::map<std::string, int> by_kind;
  for (const auto& j : p.jobs) ++by_kind[j.spec.kind];
  nlohmann::json stores = nlohmann::json::array();
  for (const auto& [corpus, path] : p.stores) {
    bool missing = false;
    for (const auto& m : p.missing_inputs) missing |= m.rfind(corpus + ": ", 0) == 0;
    stores.push_back({{"corpus", corpus}, {"path", path}, {"exists", !missing}});
  }
  nlohmann::json exps = nlohmann::json::array();
  for (const auto& e : p.experiments)
    exps.push_back({{"name", e.name},
                    {"kind", e.kind},
                    {"selection", e.selection},
                    {"corpora", e.corpora},
                    {"expanded", e.expanded},
                    {"reason", e.reason},
                    {"jobs", e.jobs},
                    {"jobs_by_kind", e.jobs_by_kind}});
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : p.tables)
    tables.push_back({{"name", t.name},
                      {"experiment", t.experiment},
                      {"experiments", t.experiments.empty() ? std::vector<std::string>{t.experiment} : t.experiments},
                      {"grid_selection", t.grid_selection},
                      {"grid_selection_by", t.grid_selection_by},
                      {"rows", t.rows},
                      {"columns", t.columns},
                      {"metrics", t.metrics},
                      {"eval", t.eval},
                      {"spread", t.spread},
                      {"published_cells", t.published.size()}});
  nlohmann::json j = {{"protocol", p.name},     {"path", p.path},          {"version", p.version},
                      {"stores", stores},       {"missing_inputs", p.missing_inputs},
                      {"experiments", exps},    {"jobs_total", p.jobs.size()},
                      {"jobs_by_kind", by_kind}, {"tables", tables},     {"warnings", p.warnings},
                      {"notes", p.notes}};
  if (with_jobs) {
    nlohmann::json jobs = nlohmann::json::array();
    for (const auto& job : p.jobs)
      jobs.push_back({{"id", job.spec.id},
                      {"kind", job.spec.kind},
                      {"deps", job.deps},
                      {"reportable", job.reportable},
                      {"attrs", job.attrs.ToJson()}});
    j["jobs"] = jobs;
  }
  return j;
}

void PrintText(const protocols::Protocol& p, bool with_jobs) {
  std::cout << "protocol " << p.name << " (" << p.path << ", grammar v" << p.version << ")\n";
  if (!p.description.empty()) std::cout << "  " << p.description << "\n";
  std::cout << "\nstores:\n";
  for (const auto& [corpus, path] : p.stores) {
    bool missing = false;
    for (const auto& m : p.missing_inputs) missing |= m.rfind(corpus + ": ", 0) == 0;
    std::printf("  %-14s %s%s\n", corpus.c_str(), path.c_str(), missing ? "   MISSING" : "");
  }
  std::cout << "\nexperiments:\n";
  std::printf("  %-22s %-13s %-18s %6s  %s\n", "name", "kind", "selection", "jobs", "by job kind");
  int not_expanded = 0;
  for (const auto& e : p.experiments) {
    if (e.expanded) {
      std::printf("  %-22s %-13s %-18s %6d  %s\n", e.name.c_str(), e.kind.c_str(), e.selection.c_str(), e.jobs,
                  KindCounts(e.jobs_by_kind).c_str());
    } else {
      ++not_expanded;
      std::printf("  %-22s %-13s %-18s %6s  not expanded: %s\n", e.name.c_str(), e.kind.c_str(),
                  e.selection.c_str(), "-", e.reason.c_str());
    }
  }
  if (!p.notes.empty()) {
    std::cout << "\ndata:\n";
    for (const auto& n : p.notes) std::cout << "  " << n << "\n";
  }
  std::map<std::string, int> by_kind;
  for (const auto& j : p.jobs) ++by_kind[j.spec.kind];
  std::cout << "\ntotal: " << p.jobs.size() << " jobs" << (by_kind.empty() ? "" : " (" + KindCounts(by_kind) + ")")
            << "\n";
  if (!p.tables.empty()) {
    std::cout << "\ntables:\n";
    for (const auto& t : p.tables) {
      std::string metrics;
      for (const auto& m : t.metrics) metrics += (metrics.empty() ? "" : ",") + m;
      std::string from = t.experiment;
      for (const auto& e : t.experiments) from += (from.empty() ? "" : "+") + e;
      std::string extra = t.published.empty() ? "" : ", " + std::to_string(t.published.size()) + " published cells";
      if (!t.grid_selection.empty()) extra += ", grid selection " + t.grid_selection;
      for (const auto& [e, rule] : t.grid_selection_by) extra += ", " + e + ": grid selection " + rule;
      std::printf("  %-22s %s: rows %s x columns %s, %s on %s, mean ± %s%s\n", t.name.c_str(), from.c_str(),
                  t.rows.c_str(), t.columns.c_str(), metrics.c_str(), t.eval.c_str(), t.spread.c_str(), extra.c_str());
    }
  }
  for (const auto& w : protocols::CondenseWarnings(p.warnings)) std::cout << "warning: " << w << "\n";
  if (!p.missing_inputs.empty()) {
    // Stores ("name: path") and model files ("model file path"): each with its own remedy (helper-69: a missing
    // model file was counted as a store, with the stores' advice).
    size_t model_files = 0;
    for (const auto& m : p.missing_inputs) model_files += m.rfind("model file ", 0) == 0;
    const size_t stores = p.missing_inputs.size() - model_files;
    std::cout << "\nmissing inputs: ";
    if (stores) std::cout << stores << " store(s)" << (model_files ? " and " : "");
    if (model_files) std::cout << model_files << " model file(s)";
    std::cout << " do not exist; " << not_expanded << " of " << p.experiments.size()
              << " experiment(s) cannot be expanded until they do:\n";
    for (const auto& m : p.missing_inputs) std::cout << "  " << m << "\n";
    if (stores)
      std::cout << "Create the stores with `emosweep data import` / `emosweep data synth`, or point the protocol at "
                   "them with --store-dir DIR or --var NAME=VALUE.\n";
    if (model_files)
      std::cout << "Export the model files (TorchScript, docs/models.md; scripts/byo-model.sh makes examples), or "
                   "point the protocol at them with --var NAME=VALUE.\n";
  }
  if (with_jobs) {
    std::cout << "\njobs:\n";
    for (const auto& job : p.jobs) {
      std::string attrs;
      for (const auto& [k, v] : job.attrs)
        if (k != "experiment" && k != "kind" && k != "model_name" && k != "selection" && !v.empty())
          attrs += (attrs.empty() ? "" : " ") + k + "=" + v;
      std::printf("  %.12s %-10s %s%s\n", job.spec.id.c_str(), job.spec.kind.c_str(), attrs.c_str(),
                  job.deps.empty() ? "" : ("  <- " + job.deps.front().substr(0, 12)).c_str());
    }
  }
}

}  // namespace

void PlanOptions(po::options_description& o) {
  o.add_options()("protocol", po::value<std::string>()->required(), "protocol file (TOML, grammar v1), or a library protocol's name (`emosweep list protocols`)")(
      "store-dir", po::value<std::string>(), "directory of the feature stores (sets ${STORE_DIR})")(
      "var", po::value<std::vector<std::string>>()->composing(), "NAME=VALUE: set a protocol variable (repeatable)")(
      "ledger", po::value<std::string>(), "SQLite ledger: also count jobs done / to run / failed")(
      "jobs", "list every job (id, kind, table coordinates, dependency)")("json", "print one JSON document")(
      "max-jobs", po::value<uint64_t>()->default_value(protocols::kDefaultMaxJobs),
      "refuse a protocol that expands to more jobs (counted before they are made; 0 = no limit)");
}

Status PlanRun(const po::variables_map& vm) {
  ES_ASSIGN_OR_RETURN(protocols::LoadOptions options, OptionsFrom(vm));
  options.keep_data = false;  // plan reads ids, kinds, attributes and deps, never utterance ids
  options.plan_only = true;   // nor labels and data references
  ES_ASSIGN_OR_RETURN(std::string path, ResolveProtocolPath(vm["protocol"].as<std::string>()));
  ES_ASSIGN_OR_RETURN(protocols::Protocol loaded, protocols::LoadProtocol(path, options));
  const protocols::Protocol& p = KeepUntilExit(std::move(loaded));
  bool with_jobs = vm.count("jobs") > 0;
  std::map<std::string, int> counts;
  if (vm.count("ledger")) {
    ES_ASSIGN_OR_RETURN(counts, LedgerCounts(vm["ledger"].as<std::string>(), p));
  }
  if (vm.count("json")) {
    nlohmann::json j = ToJson(p, with_jobs);
    if (!counts.empty()) j["ledger"] = {{"path", vm["ledger"].as<std::string>()}, {"counts", counts}};
    PrintJson(j.dump(2));
  } else {
    PrintText(p, with_jobs);
    if (!counts.empty())
      std::cout << "\nledger " << vm["ledger"].as<std::string>() << ": " << counts["done"] << " done, "
                << counts["to_run"] << " to run, " << counts["failed"] << " failed, " << counts["running"]
                << " running\n";
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
