// cli/main.cc: the `emosweep` binary. Thin: finds the subcommand in the
// table, parses its options, runs it and turns its Status into an exit code.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "cli/command_table.h"
#include "core/build_info.h"
#include "core/files.h"
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
  // A group (`emosweep data`) lists its own commands under its own usage line.
  os << "usage: emosweep " << (prefix.empty() ? "<command>" : prefix + " <command>") << " [options]\n\n"
     << (prefix.empty() ? "Multi-corpus emotion-recognition experiments: feature stores, protocols, sweeps, tables.\n\n"
                        : "")
     << "commands:\n";
  for (const auto& c : Commands()) {
    std::string p = c.path;
    if (!prefix.empty() && p.rfind(prefix + " ", 0) != 0) continue;
    char line[160];
    std::snprintf(line, sizeof line, "  %-18s %s\n", c.path, c.summary);
    os << line;
  }
  os << "\nRun 'emosweep <command> --help' for a command's options.\n"
        "Exit codes: 0 success, 1 the work failed, 2 bad usage or bad input, 3 stopped by a signal with work\n"
        "left (re-run the same command to resume).\n";
}

}  // namespace

const char* EmosweepGitRevision();  // <build>/cli/git_revision.cc, written at build time

static int Main(int argc, char** argv) {
  emosweep::SetGitRevision(EmosweepGitRevision());
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
      if (args.size() == 2 && (args[1] == "--help" || args[1] == "-h")) {  // `emosweep data --help`: asked for
        PrintTopHelp(std::cout, args[0]);
        return 0;
      }
      if (args.size() > 1 && args[1].rfind("-", 0) != 0)  // `emosweep data frob`: say so before the listing
        std::cerr << "emosweep: unknown command '" << args[0] << " " << args[1] << "'\n\n";
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
    // No abbreviations (Boost's default guesses "--led" for "--ledger"): a script relying on one would change
    // meaning, or fail, when a new option shares the prefix (helper-69).
    const po::parsed_options parsed =
        po::command_line_parser(rest)
            .options(options)
            .positional(pos)
            .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
            .run();
    // An unsigned option given a negative number: Boost's lexical_cast wraps "-1" to 2^64 - 1 (--seed -1,
    // --max-jobs -1 would silently mean 18446744073709551615).
    for (const auto& opt : parsed.options) {
      const auto* d = options.find_nothrow(opt.string_key, false);
      if (!d || !dynamic_cast<const po::typed_value<uint64_t>*>(d->semantic().get())) continue;
      for (const auto& tok : opt.value) {
        if (tok.find('-') != std::string::npos) {
          std::cerr << "emosweep " << cmd->path << ": --" << opt.string_key << " must be a whole number >= 0, got '"
                    << tok << "'\n";
          return kExitUsage;
        }
      }
    }
    po::store(parsed, vm);
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
  } catch (const po::required_option& e) {
    // A missing positional argument read "the option '--store' is required but missing" (helper-69).
    std::string name = e.get_option_name();
    while (!name.empty() && name[0] == '-') name.erase(0, 1);
    bool positional = false;
    for (const auto& p : cmd->positional) positional |= p.name == name;
    std::string what = e.what();
    if (positional) {
      std::string upper = name;
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      what = "missing argument " + upper;
    }
    std::cerr << "emosweep " << cmd->path << ": " << what << "\n"
              << "usage: emosweep " << cmd->path << " " << cmd->usage << "\n"
              << "(see 'emosweep " << cmd->path << " --help')\n";
    return kExitUsage;
  } catch (const po::error& e) {
    std::cerr << "emosweep " << cmd->path << ": " << e.what() << "\n"
              << "usage: emosweep " << cmd->path << " " << cmd->usage << "\n"
              << "(see 'emosweep " << cmd->path << " --help')\n";
    return kExitUsage;
  }

  // An --out that is one of the command's own inputs (data import --out meta.csv, ledger export --out the
  // ledger, report --out the ledger) would replace that input: refused before anything is read or written.
  if (vm.count("out")) {
    if (const auto* out = boost::any_cast<std::string>(&vm["out"].value())) {
      for (const auto& [name, value] : vm) {
        if (name == "out") continue;
        std::vector<std::string> given;
        if (const auto* v = boost::any_cast<std::string>(&value.value())) given.push_back(*v);
        if (const auto* v = boost::any_cast<std::vector<std::string>>(&value.value())) given = *v;
        for (const auto& g : given) {
          // a plain path, or the path part of NAME=MODALITY:PATH / SET=PATH values
          for (const std::string& path : {g, g.substr(g.find('=') + 1), g.substr(g.rfind(':') + 1)}) {
            if (!emosweep::SameFile(*out, path)) continue;
            std::cerr << "emosweep " << cmd->path << ": --out " << *out << " is the same file as --" << name << " "
                      << path << ": refusing to overwrite an input\n";
            return kExitUsage;
          }
        }
      }
    }
  }

  // An output file in a missing or unwritable directory is bad input, found before the work is done (a sweep's
  // --status-file used to fail only at its end, with a warning). `data synth --out` is a directory it creates;
  // `data import` creates its store's directory.
  for (const char* name : {"out", "status-file"}) {
    const bool out = std::string(name) == "out";
    if (!vm.count(name) || (out && std::string(cmd->path) == "data synth")) continue;
    const auto* path = boost::any_cast<std::string>(&vm[name].value());
    if (!path) continue;
    const bool makes_dir = out && std::string(cmd->path) == "data import";
    if (auto st = emosweep::CheckOutputFile(*path, makes_dir); !st.ok()) {
      std::cerr << "emosweep " << cmd->path << ": --" << name << " " << st.message() << "\n";
      return kExitUsage;
    }
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

// A command's results go to standard output: when they could not all be written (a full disk behind `> out.csv`,
// a closed stdout), the command failed, whatever it computed. (A reader that went away, `| head`, ends the
// process by SIGPIPE before this, as for any Unix tool.)
int main(int argc, char** argv) {
  const int code = Main(argc, argv);
  errno = 0;
  std::cout.flush();
  int err = errno;
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  if (errno != 0) err = errno;
  if (!flush_failed && !std::ferror(stdout) && std::cout.good()) return code;
  // The errno of a write that failed earlier is gone; a closed stdout can still be told apart.
  if (err == 0 && ::fcntl(STDOUT_FILENO, F_GETFD) == -1) err = errno;
  std::cerr << "emosweep: error: writing to standard output failed: "
            << (err != 0 ? std::string(std::strerror(err)) : std::string("a write failed (a full disk or an I/O error)"))
            << "; the output is incomplete\n";
  return code != 0 ? code : 1;
}
