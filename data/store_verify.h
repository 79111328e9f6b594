// data/store_verify.h: every feature store a process opens is checked against
// its stored content hash before its rows are used (issue 13, provenance).
//
// The stored hash goes into every job identity that reads the store, so a
// store whose values were altered behind the hash's back must never train:
// VerifyStore recomputes Corpus::ContentHash() over everything in the file and
// fails with Corruption naming the store on a mismatch; it also validates every
// value of every feature set (Corpus::Validate: finite, labels in the label set),
// so a store with a NaN in a set the caller does not read is refused as well. Recomputing reads the
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
//
// A damaged file must not crash or hang the process: Debian's libhdf5 1.10.8
// reads out of bounds (`H5HG_read`, SEGV) or never returns (`H5Aread` of a
// vlen string) on some corrupt global heaps (docs/fuzzing.md). So the first
// time a process meets a file version that is not known to be good (not in
// the cache above), libhdf5 reads it in a child process first: fork() without
// exec, the child reads everything emosweep reads (ReadStoreInfo and every
// feature set with its frames, recomputing the content hash) and reports the
// result through a pipe, then _exit()s. A child killed by a signal, one that
// exits without a result, or one still running after the time limit (killed;
// 30 s + 1 s per 10 MB of file, or $EMOSWEEP_STORE_CHECK_TIMEOUT seconds) makes
// the read fail with Corruption "<path>: damaged HDF5 file: libhdf5 crashed
// (SIGSEGV) while reading it" / "... did not finish within N s ...". Only
// after the child came back does this process open the file itself.
// Why fork and not posix_spawn of the binary: the check must work from every
// binary that links the reader (tests, benches, the fuzz harness), and a
// re-exec would pay the process start-up again (libtorch loading: seconds).
// fork() in a multithreaded process is safe here because the child only runs
// libhdf5 and the reader: fork happens with h5::Hdf5Mutex held by the forking
// thread (so no other thread is inside libhdf5, whose every call takes that
// mutex), glibc's malloc is fork-safe, and the child logs nothing, touches no
// torch/OpenMP state and never returns into the caller's code.
// EMOSWEEP_STORE_CHECK_TIMEOUT=0 reads in this process without a child (only
// for fuzzing libhdf5 itself: fuzz/README.md).
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

// How many child processes checked a file (tests and benches).
int64_t StoreCheckChildren();

// Called by the feature-store readers with h5::Hdf5Mutex() held, before
// libhdf5 touches `path`: Ok when the file version is known to be readable
// (verified before, or already checked by a child in this process; any error
// the read gives is then the reader's to report), else runs the child check.
// Corruption naming the file when libhdf5 crashed or hung in the child.
Status GuardStoreOpenLocked(const std::string& path);

// Run first in the child, before it reads (the fuzz harness uses it to turn
// off the sanitizer death callback libFuzzer installed). nullptr: none.
void SetStoreCheckChildHook(void (*hook)());

namespace internal {
// What the child runs (data/feature_store.cc; h5::Hdf5Mutex() held): opens
// `path` and reads everything, verifying the content hash; the stored hash.
Result<std::string> ReadEverythingLocked(const std::string& path);
}  // namespace internal

}  // namespace emosweep::data
