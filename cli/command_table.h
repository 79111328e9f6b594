// cli/command_table.h: the one table of `emosweep` subcommands.
//
// Dispatch, `emosweep --help` and `emosweep <cmd> --help` are all generated
// from kCommands (cli/command_table.cc). Each command lives in a cli/cmd_*.cc
// file that exposes two functions: one adding its options to a Boost
// options_description, one running it. A command returns a Status; main maps
// it to the exit code (0 ok, 1 the work failed, 2 bad usage or bad input).
// Thread-safety: the table is immutable.
#pragma once

#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "core/status.h"

namespace emosweep::cli {

namespace po = boost::program_options;

struct Positional {
  const char* name;  // option name it binds to
  int max_count;     // -1 = any number
};

struct Command {
  const char* path;                              // "data import"
  const char* summary;                           // one line for the listing
  const char* usage;                             // "STORE [--json]"
  const char* description;                       // paragraph for `<cmd> --help` (may be "")
  void (*add_options)(po::options_description&);
  std::vector<Positional> positional;
  Status (*run)(const po::variables_map&);
};

const std::vector<Command>& Commands();

// The process's own command line, kept by main (EnsurePassiveOpenMP re-runs it).
void SetProcessArgs(int argc, char** argv);

// Before this process trains with several intra-op threads: unless the user
// set OMP_WAIT_POLICY, sets it to PASSIVE and re-executes the same command
// line. OpenMP (libgomp) reads the variable once, when libtorch loads, and its
// idle threads otherwise spin for a while: on a machine whose cores are busy
// that made small jobs 7-50x slower (issue 13). Returns only when no re-exec
// was needed or it failed (then it logs why and goes on).
void EnsurePassiveOpenMP();

// --device: "cpu", "cuda" or "cuda:N"; with require_visible, a CUDA device only where the torch module sees
// one (loads it). InvalidArgument (exit 2) naming the value otherwise, before any job runs or a ledger is written.
Status CheckDeviceOption(const std::string& device, bool require_visible = true);

// Prints the document to stdout as one JSON document (the --json contract).
void PrintJson(const std::string& json_text);

}  // namespace emosweep::cli
