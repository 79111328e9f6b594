// data/feature_store.h: HDF5 feature store, format v1 (docs/formats/feature-store.md).
//
// One file per corpus. Writers validate the Corpus first (Corpus::Validate),
// write to a temporary name and rename, so a failed write leaves nothing.
// Readers check the schema version and reject newer/unknown layouts with a
// message naming the file. ReadStoreInfo reads attributes only (cheap), so the
// protocol layer can take content hashes for job identities without loading
// features.
// Thread-safety: HDF5 (serial build) is not thread-safe; these functions take a
// process-wide lock internally, so they may be called from any thread.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "data/corpus.h"

namespace emosweep::data {

inline constexpr int kFeatureStoreVersion = 1;

// Defaults chosen by bench/feature_store_bench (numbers in docs/formats/feature-store.md):
// pooled embeddings barely compress (gzip saves ~15% and reads ~4x slower), so
// utterance-level values are stored uncompressed; frame sequences save ~27%
// with gzip 1 + shuffle, and gzip 4/9 save no more.
struct StoreWriteOptions {
  int gzip_level = 0;         // utterance-level [N, D] values; 0 = uncompressed
  bool shuffle = true;        // byte-shuffle filter before gzip (when gzip is on)
  int64_t chunk_rows = 1024;  // rows per chunk of [N, D] and [T, F] datasets
  int frames_gzip_level = 1;  // frame-level [T, F] sequences
};

struct StoreReadOptions {
  std::vector<std::string> feature_sets;  // empty = all
  bool load_frames = false;               // frame-level sequences are large; off unless asked
  // Recompute Corpus::ContentHash() over everything in the file (all feature
  // sets and frames are read for it) and fail with Corruption on a mismatch.
  bool verify = false;
  // Check the file against its stored content hash before anything is
  // returned, through the verification cache (data/store_verify.h): cheap
  // after the first time. Every reader that feeds training or job identities
  // keeps this on; only `data inspect` (which reports a mismatch itself)
  // turns it off.
  bool check_hash = true;
  // Run Corpus::Validate on what was read (non-finite values, labels outside
  // the label set, ...). Only `data inspect` turns this off, to count problems
  // instead of stopping at the first; shapes are checked either way.
  bool validate = true;
};

struct FeatureSetInfo {
  std::string name;
  std::string modality;
  int64_t dim = 0;
  int64_t frame_dim = 0;  // 0 = none
  nlohmann::json provenance;
};

struct StoreInfo {
  std::string path;
  std::string name;
  std::string language;
  std::vector<std::string> label_set;
  int schema_version = 0;
  std::string writer_version;
  std::string content_hash;
  int64_t num_utterances = 0;
  std::vector<FeatureSetInfo> features;
  nlohmann::json metadata;
};

Status WriteFeatureStore(const std::string& path, const Corpus& corpus, const StoreWriteOptions& options = {});
Result<Corpus> ReadFeatureStore(const std::string& path, const StoreReadOptions& options = {});
// check_hash: as StoreReadOptions::check_hash (the attributes of a store that
// does not match its hash are not returned).
Result<StoreInfo> ReadStoreInfo(const std::string& path, bool check_hash = true);

}  // namespace emosweep::data
