// cli/main.cc: the `emosweep` binary. Thin: finds the subcommand in the
// table, parses its options, runs it and turns its Status into an exit code.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command_table.h"
#include "core/log.h"
#include "core/strings.h"

namespace po = boost::program_options;
using emosweep::cli::Command;
using emosweep::cli::Commands;

namespace {

constexpr int kExitUsage = 2;

void AddCommonOptions(po::options_description& o) {
  o.add_options()("help,h", "show this help")("log-level", po::value<std::string>()->default_value("info"),
                                              "debug|info|warn|error|quiet");
}

void PrintTopHelp(std::ostream& os, const std::string& prefix) {
  os << "usage: emosweep <command> [options]\n\n"
        "Multi-corpus emotion-recognition experiments: feature stores, protocols, sweeps, tables.\n\n"
        "commands:\n";
  for (const auto& c : Commands()) {
    std::string p = c.path;
    if (!prefix.empty() && p.rfind(prefix + " ", 0) != 0) continue;
    char line[160];
    std::snprintf(line, sizeof line, "  %-18s %s\n", c.path, c.summary);
    os << line;
  }
  os << "\nRun 'emosweep <command> --help' for a command's options.\n"
        "Exit codes: 0 success, 1 the work failed, 2 bad usage or bad input.\n";
}

}  // namespace

int main(int argc, char** argv) {
  emosweep::cli::SetProcessArgs(argc, argv);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    PrintTopHelp(args.empty() ? std::cerr : std::cout, "");
    return args.empty() ? kExitUsage : 0;
  }
  if (args[0] == "--version") args[0] = "version";

  // Longest command path that prefixes the arguments ("data import" before "data").
  const Command* cmd = nullptr;
  size_t words = 0;
  for (const auto& c : Commands()) {
    std::string path = c.path;
    size_t n = 1 + std::count(path.begin(), path.end(), ' ');
    if (n <= args.size() && emosweep::JoinStrings(args, " ", n) == path && n > words) {
      cmd = &c;
      words = n;
    }
  }
  if (!cmd) {
    bool is_group = false;
    for (const auto& c : Commands()) is_group |= std::string(c.path).rfind(args[0] + " ", 0) == 0;
    if (is_group) {
      PrintTopHelp(std::cerr, args[0]);
      return kExitUsage;
    }
    std::cerr << "emosweep: unknown command '" << args[0] << "'\n\n";
    PrintTopHelp(std::cerr, "");
    return kExitUsage;
  }

  po::options_description options(std::string("options of 'emosweep ") + cmd->path + "'");
  AddCommonOptions(options);
  cmd->add_options(options);
  po::positional_options_description pos;
  for (const auto& p : cmd->positional) pos.add(p.name, p.max_count);

  std::vector<std::string> rest(args.begin() + static_cast<long>(words), args.end());
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(rest).options(options).positional(pos).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: emosweep " << cmd->path << " " << cmd->usage << "\n\n" << cmd->summary << "\n";
      if (cmd->description[0]) std::cout << "\n" << cmd->description << "\n";
      std::cout << "\n" << options << "\n";
      return 0;
    }
    po::notify(vm);
    // Every float option is finite: NaN passes every range check ("x < 0") and inf is never
    // a usable setting (--val-fraction nan, --stale-after inf).
    for (const auto& [name, value] : vm) {
      const double* d = boost::any_cast<double>(&value.value());
      if (d && !std::isfinite(*d)) {
        std::cerr << "emosweep " << cmd->path << ": --" << name << " must be a finite number, got " << *d << "\n";
        return kExitUsage;
      }
    }
  } catch (const po::error& e) {
    std::cerr << "emosweep " << cmd->path << ": " << e.what() << "\n"
              << "usage: emosweep " << cmd->path << " " << cmd->usage << "\n"
              << "(see 'emosweep " << cmd->path << " --help')\n";
    return kExitUsage;
  }

  emosweep::LogLevel level;
  if (!emosweep::ParseLogLevel(vm["log-level"].as<std::string>(), &level)) {
    std::cerr << "emosweep: --log-level must be debug, info, warn, error or quiet\n";
    return kExitUsage;
  }
  emosweep::SetLogLevel(level);

  emosweep::Status st;
  try {
    st = cmd->run(vm);
  } catch (const std::exception& e) {
    // Last-resort boundary: library code returns Status; anything thrown here is a bug or a
    // third-party exception that escaped its module boundary.
    st = emosweep::Status::Internal(std::string("unexpected exception: ") + e.what());
  }
  if (!st.ok()) {
    std::cerr << "emosweep " << cmd->path << ": error: " << st.message() << "\n";
    return emosweep::ExitCodeFor(st);
  }
  return 0;
}
