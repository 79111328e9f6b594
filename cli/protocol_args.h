// cli/protocol_args.h: the protocol-loading options shared by run, table and report.
//
// `--store-dir DIR`, `--var NAME=VALUE` and `--max-jobs N` mean the same as in `emosweep plan`
// (protocols::LoadOptions); the ledger is `--ledger DB`.
// Thread-safety: call from main only.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/command_table.h"
#include "protocols/expand.h"

namespace emosweep::cli {

void AddProtocolArgs(po::options_description& o);
// Loads the protocol named by the positional "protocol" option. for_tables: jobs may
// come from the expansion cache (protocols/expand_cache.h): fit for tables, not to run.
Result<protocols::Protocol> LoadProtocolFromArgs(const po::variables_map& vm, bool for_tables = false);
// --store-dir, --var and --max-jobs as protocols::LoadOptions.
Result<protocols::LoadOptions> LoadOptionsFromArgs(const po::variables_map& vm);
// The same protocol parsed, resolved and hashed but not expanded (jobs empty): its
// expansion_key finds the cached job ids of a re-run (protocols/expand_cache.h).
Result<protocols::Protocol> LoadShallowProtocolFromArgs(const po::variables_map& vm);
// Missing stores mean the protocol's jobs could not be expanded: say which, exit 2.
Status RequireInputs(const protocols::Protocol& p, const std::string& what);

// An output file (`report --out`, `run --status-file`) that is one of the protocol's inputs: the protocol
// file, a store, or any other file its effective form names (split files, model files): refused (exit 2)
// before anything is written. main.cc refuses outputs that equal another command-line argument.
Status RefuseOutputOverInputs(const protocols::Protocol& p, const std::string& option, const std::string& out);

// A one-shot command hands what it built for up to 10^6 jobs to the process's exit instead
// of freeing it piece by piece (issue 15: freeing the job list was ~15 % of `plan`). Held
// by a static, so it stays reachable and leak checkers report nothing; a process that runs
// several commands (tests) keeps each command's.
template <class T>
T& KeepUntilExit(T value) {
  static auto* kept = new std::vector<std::unique_ptr<T>>();
  kept->push_back(std::make_unique<T>(std::move(value)));
  return *kept->back();
}

}  // namespace emosweep::cli
