// data/adapters/import_corpus.h: a raw corpus on disk → an HDF5 feature store.
//
// Pipeline: adapter scan (data/adapters/adapter.h) → label map (records the
// map drops are left out; an unmapped label is an error naming the file) →
// audio front end (data/audio/frontend.h) over the wav files, threaded, with
// progress → text front end (TF-IDF over the transcripts) when asked →
// data::Corpus → WriteFeatureStore (temporary file, then rename: an error
// leaves nothing behind).
//
// Resumable: when `out` already holds a store, an utterance whose id and
// source file are already there, with every requested audio feature set
// stored under identical extractor provenance, is copied from it instead of
// being decoded again; only the new utterances are extracted. TF-IDF is
// refitted over the whole corpus every time (its IDF depends on all rows).
// The output holds exactly the requested feature sets.
// Thread-safety: ImportCorpus may run concurrently for different outputs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/adapters/adapter.h"

namespace emosweep::data {

struct ImportCorpusOptions {
  std::string adapter;                             // adapter name (see Adapters())
  std::string root;                                // corpus root directory
  std::string out;                                 // output store path (.h5)
  std::vector<std::string> features = {"logmel64_stats"};  // audio set names and/or "tfidf"
  std::string label_map;                           // "" = the adapter's default map
  int threads = 1;                                 // 0 = hardware concurrency
  int64_t limit = 0;                               // > 0: first N records (id order) before label mapping
  bool skip_bad = false;                           // skip unparsable file names, counted
  std::string normalisation = "none";              // audio gain normalisation: none | peak | rms
  int64_t tfidf_dim = 4096;
  bool progress = true;                            // progress line on stderr
};

struct ImportCorpusReport {
  std::string corpus;
  std::string out;
  std::string label_map;
  int64_t scanned = 0;        // records the adapter yielded (after --limit)
  int64_t skipped_files = 0;  // files skipped under skip_bad
  int64_t dropped = 0;        // records the label map drops
  int64_t utterances = 0;     // rows written
  int64_t reused = 0;         // rows copied from the existing store
  int64_t extracted = 0;      // rows decoded and extracted in this run
  double audio_seconds = 0.0; // total duration of the extracted audio
  double wall_seconds = 0.0;
  std::map<std::string, int64_t> per_label;  // canonical label → rows
  std::string content_hash;
};

// Parses a --features list ("logmel64_stats,prosody,tfidf"); InvalidArgument
// naming an unknown set and listing the known ones.
Result<std::vector<std::string>> ParseImportFeatures(const std::string& text);

Result<ImportCorpusReport> ImportCorpus(const ImportCorpusOptions& options);

}  // namespace emosweep::data
