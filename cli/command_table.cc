#include "cli/command_table.h"

#include <cstdio>

#include "cli/commands.h"

namespace emosweep::cli {

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"version", "print version and build configuration", "[--json]", "", VersionOptions, {}, VersionRun},
  };
  return kCommands;
}

void PrintJson(const std::string& json_text) {
  std::fwrite(json_text.data(), 1, json_text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace emosweep::cli
