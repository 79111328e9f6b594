// protocols/expand_cache.h: the jobs of an expansion as tables need them, cached
// on disk by Protocol::expansion_key (issue 15).
//
// `table` over 10^5 finished runs spent ~77 % of its time re-expanding the
// protocol (every job's identity hashes all its utterance ids). What a table
// reads of a job is small: id, reportable, attrs, seed, selection, oracle
// eval, labels. LoadProtocolForTables() parses the protocol without expanding
// it, and reads those fields from <cache dir>/expansions/<key>.bin when that
// file exists; otherwise it expands what tables read (LoadOptions::table_only) and
// writes the file (temp name + rename, streamed; a cache that cannot be written is
// only a slower next run). The
// file is binary (one table of distinct strings, fixed-size records of indices into
// it, a checksum; expand_cache.cc): a damaged or truncated file is ignored and
// rewritten, never half read. After a fresh expansion the jobs returned are read
// back from the file just written, so a cold and a cached load give the same jobs.
// Jobs read from the cache, like those of an expansion that could not be cached,
// carry no data references, model or deps: use them for tables, never to run. The cache dir is $EMOSWEEP_CACHE_DIR, else
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

// The job ids of an expansion, in protocol order, in <cache dir>/expansions/<key>.ids
// (one 64-hex id a line after a header naming the key and the count: ~65 bytes a job).
// `run` writes it after every full expansion and reads it first: a re-run of a finished
// protocol only checks these ids in the ledger (orchestrator::RecordFinishedRerun) and
// expands nothing. A changed protocol, store or split file has another key, so it
// expands afresh. Read: false when there is no such file or it is damaged (never half
// a list). Write: temp name + rename; a cache that cannot be written is only a slower
// next run.
std::string ExpansionIdsPath(const std::string& key);
bool ReadExpansionIds(const std::string& key, std::vector<std::string>* ids);
void WriteExpansionIds(const std::string& key, const std::vector<PlannedJob>& jobs);

// The expansion cache is bounded: every key of a changed protocol, store, split file or
// binary (a rebuild, an upgrade) is a new pair of files, so after each write the least
// recently used keys (a read marks its files used: their mtime) are removed until
// <cache dir>/expansions holds at most ExpansionCacheBudget() bytes; `keep_key`, the one
// just written, always stays. Only files named <64 hex>.bin / .ids (and format 1's .tsv) are counted or removed
// (a writer's temporaries are its own). A reader whose file goes in the meantime has
// its mapping, or misses and expands. Returns the number of keys removed.
size_t PruneExpansionCache(const std::string& keep_key, uint64_t budget_bytes);
// $EMOSWEEP_CACHE_MAX_MB (MiB; 0 keeps only the key just written), else 2048 MiB (with a warning, once, when
// the variable is set to something else than a number).
uint64_t ExpansionCacheBudget();

}  // namespace emosweep::protocols
