// cli/cmd_table.cc: `emosweep table PROTOCOL --ledger DB`: paper tables.
#include <algorithm>
#include <iostream>

#include "cli/commands.h"
#include "cli/protocol_args.h"
#include "orchestrator/tables.h"

namespace emosweep::cli {

void TableOptions(po::options_description& o) {
  AddProtocolArgs(o);
  o.add_options()("name", po::value<std::string>(), "table name (default: the first; --all for every table)")(
      "all", "print every table of the protocol")(
      "format", po::value<std::string>()->default_value("markdown"), "markdown | latex | csv | json")(
      "json", "same as --format json: one document {protocol, tables: [...]}, with or without --all")(
      "reproduce", "compare each cell with the protocol's published values (tolerance from the protocol); exit 1 "
                   "when one is not reproduced")(
      "compare", po::value<std::string>(), "A,B: paired significance test between rows A and B on every column")(
      "test", po::value<std::string>()->default_value("permutation"), "paired test: permutation | bootstrap")(
      "resamples", po::value<int>()->default_value(2000), "permutations / bootstrap samples")(
      "seed", po::value<uint64_t>()->default_value(1), "seed of the paired test");
}

Status TableRun(const po::variables_map& vm) {
  std::string format = vm.count("json") ? "json" : vm["format"].as<std::string>();
  if (vm.count("json") && !vm["format"].defaulted() && vm["format"].as<std::string>() != "json")
    return Status::InvalidArgument("--json and --format " + vm["format"].as<std::string>() + " exclude each other");
  if (format != "markdown" && format != "latex" && format != "csv" && format != "json")
    return Status::InvalidArgument("--format must be markdown, latex, csv or json, got '" + format + "'");
  if (vm.count("all") && vm.count("name")) return Status::InvalidArgument("--all and --name exclude each other");
  orchestrator::CompareOptions cmp;
  if (vm.count("compare")) {
    std::string v = vm["compare"].as<std::string>();
    size_t comma = v.find(',');
    if (comma == std::string::npos || comma == 0 || comma + 1 == v.size())
      return Status::InvalidArgument("--compare expects A,B (two row values), got '" + v + "'");
    cmp.a = v.substr(0, comma);
    cmp.b = v.substr(comma + 1);
    cmp.test = vm["test"].as<std::string>();
    cmp.resamples = vm["resamples"].as<int>();
    cmp.seed = vm["seed"].as<uint64_t>();
  }
  ES_ASSIGN_OR_RETURN(protocols::Protocol p, LoadProtocolFromArgs(vm, /*for_tables=*/true));
  ES_RETURN_IF_ERROR(RequireInputs(p, "build tables (the jobs are expanded from the stores)"));
  ES_ASSIGN_OR_RETURN(auto ledger, orchestrator::Ledger::Open(vm["ledger"].as<std::string>(), {/*read_only=*/true}));
  std::vector<const protocols::TableSpec*> specs;
  if (vm.count("all")) {
    for (const auto& t : p.tables) specs.push_back(&t);
    if (specs.empty()) return Status::NotFound(p.path + ": the protocol declares no [[table]]");
  } else {
    ES_ASSIGN_OR_RETURN(auto spec, orchestrator::FindTable(p, vm.count("name") ? vm["name"].as<std::string>() : ""));
    specs.push_back(spec);
  }
  // Status and metrics of every selected table's jobs, read once (issue 15).
  ES_ASSIGN_OR_RETURN(auto inputs, orchestrator::ReadTableInputs(p, specs, ledger.get()));
  nlohmann::json json_out = nlohmann::json::array();
  // --reproduce over --all: the tables that publish values (refused only when none does); the command exits 1
  // when a published cell is not reproduced (outside the tolerance, incomplete or missing), so a script can
  // gate on it.
  const bool reproduce = vm.count("reproduce") > 0;
  if (reproduce && std::none_of(specs.begin(), specs.end(), [](const auto* s) { return !s->published.empty(); }))
    return Status::NotFound(specs.size() == 1 ? "table '" + specs[0]->name + "' has no published values to reproduce"
                                              : p.path + ": no table has published values to reproduce");
  int published = 0, reproduced = 0;
  std::string printed;
  for (size_t k = 0; k < specs.size(); ++k) {
    ES_ASSIGN_OR_RETURN(auto t, orchestrator::BuildTable(p, *specs[k], inputs));
    // The JSON document only for --format json: it lists every cell's job ids (10^6
    // strings for a 10^6-job table, issue 15).
    nlohmann::json doc = format == "json" ? orchestrator::TableJson(t) : nlohmann::json();
    std::string text;
    if (format != "json") {
      ES_ASSIGN_OR_RETURN(text, orchestrator::RenderTable(t, format));
    }
    if (reproduce && !t.spec.published.empty()) {
      ES_ASSIGN_OR_RETURN(auto lines, orchestrator::Reproduce(t));
      for (const auto& l : lines) published++, reproduced += l.within;
      ES_ASSIGN_OR_RETURN(std::string r, orchestrator::RenderReproduce(t, lines, format));
      if (format == "json") doc["reproduce"] = nlohmann::json::parse(r);
      else text += "\n" + r;
    }
    if (vm.count("compare")) {
      ES_ASSIGN_OR_RETURN(auto lines, orchestrator::Compare(t, ledger.get(), cmp));
      ES_ASSIGN_OR_RETURN(std::string r, orchestrator::RenderCompare(t, cmp, lines, format));
      if (format == "json") doc["compare"] = nlohmann::json::parse(r);
      else text += "\n" + r;
    }
    if (format == "json") {
      json_out.push_back(doc);
    } else if (format == "csv" && k > 0 && !reproduce && !vm.count("compare")) {
      printed += text.substr(text.find('\n') + 1);  // one CSV: the first table's header only
    } else {
      printed += (k ? "\n" : "") + text;
    }
  }
  // Printed once every table is built: an error in a later table (--compare rows it lacks) left the earlier
  // ones on stdout, a half-written file behind `>` (helper-69).
  std::cout << printed;
  // One shape whatever the selection: the protocol and a list of tables (docs/formats/tables.md).
  if (format == "json") PrintJson(nlohmann::json{{"protocol", p.path}, {"tables", json_out}}.dump(2));
  KeepUntilExit(std::move(p.jobs));  // no frees at exit (cli/protocol_args.h)
  if (reproduce && reproduced < published)
    return Status::Internal(std::to_string(published - reproduced) + " of " + std::to_string(published) +
                            " published cells not reproduced (outside the tolerance, incomplete or missing)");
  return Status::Ok();
}

}  // namespace emosweep::cli
