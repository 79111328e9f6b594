// jobs/identity.h: job identities computed with a cache of SHA-256 midstates.
//
// A job's identity hashes its canonical bytes (JobSpec::ComputeId, jobs/job.cc),
// whose keys come in order: adapt, eval, features, init_from, ... The eval sets'
// utterance ids are a large share of those bytes, and many jobs of an expansion
// start with the same adapt, eval and features (every seed and grid point of a
// fold; every eval job of one target): IdentityCache keeps the hasher's state
// after those leading bytes, keyed by what produced them, so such jobs hash them
// once (issue 15). The ids are byte-identical to ComputeId's.
//
// The key names each eval list by the interned IdList it is (its pointer); an
// entry holds a copy of those lists, so none is freed and replaced by another at
// the same address while it is cached. Jobs whose eval lists are not interned
// are hashed without the cache.
// Thread-safety: an IdentityCache is used by one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/hash.h"
#include "jobs/job.h"

namespace emosweep::jobs {

class IdentityCache {
 public:
  explicit IdentityCache(size_t max_entries = 1024) : max_entries_(max_entries) {}
  IdentityCache(const IdentityCache&) = delete;
  IdentityCache& operator=(const IdentityCache&) = delete;

  size_t hits() const { return hits_; }
  size_t misses() const { return misses_; }
  size_t size() const { return entries_.size(); }

 private:
  friend std::string ComputeJobId(const JobSpec& spec, IdentityCache* cache);
  struct Entry {
    std::unique_ptr<Sha256> state;  // after the leading bytes (adapt, eval, features)
    std::vector<IdList> held;       // the eval lists the key names by address
  };
  std::unordered_map<std::string, Entry> entries_;
  size_t max_entries_;
  size_t hits_ = 0, misses_ = 0;
};

// The job's identity, equal to spec.ComputeId(); `cache` may be null.
std::string ComputeJobId(const JobSpec& spec, IdentityCache* cache);

}  // namespace emosweep::jobs
