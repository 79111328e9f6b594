// data/store_verify.h: every feature store a process opens is checked against
// its stored content hash before its rows are used (issue 13, provenance).
//
// The stored hash goes into every job identity that reads the store, so a
// store whose values were altered behind the hash's back must never train:
// VerifyStore recomputes Corpus::ContentHash() over everything in the file and
// fails with Corruption naming the store on a mismatch. Recomputing reads the
// whole file, so a verification is remembered, keyed by the file's identity
// (device, inode, size, mtime and ctime in nanoseconds; ctime cannot be set
// back by a user, so rewriting values in place and restoring the mtime still
// invalidates the entry): in this process (a map) and across processes (a
// small append-only file, `verified-stores.tsv` in the cache directory:
// core::CacheDir(): $EMOSWEEP_CACHE_DIR, else $XDG_CACHE_HOME/emosweep, else
// ~/.cache/emosweep; EMOSWEEP_CACHE_DIR=off keeps no file).
// An unwritable cache directory only costs speed, never correctness.
// Format of the cache file (docs/formats/feature-store.md): one line per
// verification, tab-separated: format tag "v1", content hash, device, inode,
// size, mtime_ns, ctime_ns, absolute path; later lines win.
// Thread-safety: VerifyStore may be called from any thread.
#pragma once

#include <string>

#include "core/status.h"

namespace emosweep::data {

// Ok when the file at `path` matches its stored content hash (from the cache
// or by recomputing it). Corruption names the store on a mismatch.
Status VerifyStore(const std::string& path);

// The cache file in use ("" when no cache directory can be determined).
std::string StoreVerifyCachePath();

// Counters for tests and benches: how many verifications recomputed the hash.
int64_t StoreVerifyRecomputations();

}  // namespace emosweep::data
