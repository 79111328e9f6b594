// cli/cmd_version.cc: `emosweep version`.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/build_info.h"

namespace emosweep::cli {

void VersionOptions(po::options_description& o) {
  o.add_options()("json", "print one JSON document");
}

Status VersionRun(const po::variables_map& vm) {
  nlohmann::json j = BuildInfo();
  if (vm.count("json")) {
    PrintJson(j.dump(2));
  } else {
    std::cout << "emosweep " << j["version"].get<std::string>() << " (git " << j["git_revision"].get<std::string>()
              << ")\n";
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "version") std::cout << "  " << it.key() << ": " << it.value().dump() << "\n";
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
