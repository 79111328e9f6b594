#include "cli/protocol_args.h"

#include <vector>

#include "cli/protocol_library.h"
#include "core/files.h"
#include "protocols/expand_cache.h"

namespace emosweep::cli {

void AddProtocolArgs(po::options_description& o) {
  o.add_options()("protocol", po::value<std::string>()->required(), "protocol file (TOML, grammar v1), or a library protocol's name (`emosweep list protocols`)")(
      "ledger", po::value<std::string>()->required(), "SQLite ledger file")(
      "store-dir", po::value<std::string>(), "directory of the feature stores (sets ${STORE_DIR})")(
      "var", po::value<std::vector<std::string>>()->composing(), "NAME=VALUE: set a protocol variable (repeatable)")(
      "max-jobs", po::value<uint64_t>()->default_value(protocols::kDefaultMaxJobs),
      "refuse a protocol that expands to more jobs (counted before they are made; 0 = no limit)");
}

Result<protocols::LoadOptions> LoadOptionsFromArgs(const po::variables_map& vm) {
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

Result<protocols::Protocol> LoadShallowProtocolFromArgs(const po::variables_map& vm) {
  ES_ASSIGN_OR_RETURN(protocols::LoadOptions o, LoadOptionsFromArgs(vm));
  ES_ASSIGN_OR_RETURN(std::string path, ResolveProtocolPath(vm["protocol"].as<std::string>()));
  o.expand = false;
  return protocols::LoadProtocol(path, o);
}

Result<protocols::Protocol> LoadProtocolFromArgs(const po::variables_map& vm, bool for_tables) {
  ES_ASSIGN_OR_RETURN(protocols::LoadOptions o, LoadOptionsFromArgs(vm));
  ES_ASSIGN_OR_RETURN(std::string path, ResolveProtocolPath(vm["protocol"].as<std::string>()));
  if (for_tables) return protocols::LoadProtocolForTables(path, o);
  return protocols::LoadProtocol(path, o);
}

namespace {

void StringsOf(const nlohmann::json& j, std::vector<std::string>* out) {
  if (j.is_string()) out->push_back(j.get<std::string>());
  else if (j.is_array() || j.is_object())
    for (const auto& v : j) StringsOf(v, out);
}

}  // namespace

Status RefuseOutputOverInputs(const protocols::Protocol& p, const std::string& option, const std::string& out) {
  std::vector<std::string> inputs = {p.path};
  for (const auto& [corpus, path] : p.stores) inputs.push_back(path);
  std::vector<std::string> strings;
  StringsOf(p.effective, &strings);
  const std::string dir = p.path.find('/') == std::string::npos ? "." : p.path.substr(0, p.path.rfind('/'));
  for (const auto& s : strings) {
    if (s.empty() || s.size() > 4096) continue;
    inputs.push_back(s);
    if (s[0] != '/') inputs.push_back(dir + "/" + s);
  }
  for (const auto& in : inputs)
    if (SameFile(out, in))
      return Status::InvalidArgument("--" + option + " " + out + " is the same file as the protocol's input " + in +
                                     ": refusing to overwrite an input");
  return Status::Ok();
}

Status RequireInputs(const protocols::Protocol& p, const std::string& what) {
  if (p.missing_inputs.empty()) return Status::Ok();
  std::string names;
  for (const auto& m : p.missing_inputs) names += "\n  " + m;
  return Status::FailedPrecondition(p.path + ": cannot " + what + ": missing inputs:" + names +
                                    "\n(create them with `emosweep data import` / `emosweep data synth`, or point "
                                    "the protocol at them with --store-dir / --var)");
}

}  // namespace emosweep::cli
