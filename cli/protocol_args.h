// cli/protocol_args.h: the protocol-loading options shared by run, table and report.
//
// `--store-dir DIR`, `--var NAME=VALUE` and `--max-jobs N` mean the same as in `emosweep plan`
// (protocols::LoadOptions); the ledger is `--ledger DB`.
// Thread-safety: call from main only.
#pragma once

#include <string>

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

}  // namespace emosweep::cli
