// protocols/expand_cache.h: the jobs of an expansion as tables need them, cached
// on disk by Protocol::expansion_key (issue 15).
//
// `table` over 10^5 finished runs spent ~77 % of its time re-expanding the
// protocol (every job's identity hashes all its utterance ids). What a table
// reads of a job is small: id, reportable, attrs, seed, selection, oracle
// eval, labels. LoadProtocolForTables() parses the protocol without expanding
// it, and reads those fields from <cache dir>/expansions/<key>.tsv when that
// file exists; otherwise it expands in full and writes the file (temp name +
// rename; a cache that cannot be written is only a slower next run). Jobs
// read from the cache carry no data references, model or deps: use them for
// tables, never to run. The cache dir is $EMOSWEEP_CACHE_DIR, else
// $XDG_CACHE_HOME/emosweep, else ~/.cache/emosweep (as for verified stores);
// EMOSWEEP_CACHE_DIR=off disables it.
// Thread-safety: reentrant; concurrent writers of one key write equal files.
#pragma once

#include <string>

#include "protocols/expand.h"

namespace emosweep::protocols {

Result<Protocol> LoadProtocolForTables(const std::string& path, const LoadOptions& options);

// The file LoadProtocolForTables reads for `key` ("" when no cache directory is known).
std::string ExpansionCachePath(const std::string& key);

}  // namespace emosweep::protocols
