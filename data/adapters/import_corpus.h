// data/adapters/import_corpus.h: a raw corpus on disk → an HDF5 feature store.
//
// Pipeline: adapter scan (data/adapters/adapter.h) → label map (records the
// map drops are left out; an unmapped label is an error naming the file) →
// audio front end (data/audio/frontend.h) over the wav files, threaded, with
// progress → text front end (TF-IDF over the transcripts) when asked →
// data::Corpus → WriteFeatureStore (temporary file, then rename: an error
// leaves nothing behind).
//
// Extra feature sets come from caller-supplied ImportExtractors (the CLI
// plugs TorchScript encoders in through them, data/encoder/encoder_extractor.h),
// which keeps this library torch-free.
//
// Resumable: rows are reused from `out` (a finished store) and from the
// checkpoint `<out>.partial` (an interrupted one). Reuse is decided per
// extraction group (the audio front end's sets together; each extractor's set
// alone): a group's rows are copied when the stored sets carry the same
// provenance (front end: identical; extractor: every key of its provenance,
// e.g. the encoder's sha256) and the utterance has the same id and source
// file (and, for text extractors, the same transcript). Only the rest is
// extracted. TF-IDF is refitted over the whole corpus every time (its IDF
// depends on all rows). The output holds exactly the requested feature sets.
//
// Interruption: extraction runs in chunks of utterances in id order. When
// *stop becomes true (the CLI sets it on SIGINT/SIGTERM) no new chunk starts;
// the finished rows are written to `<out>.partial` (temporary file + rename)
// and ImportCorpus returns Aborted. With checkpoint_seconds > 0 the checkpoint
// is also rewritten that often, so a killed (SIGKILL) import keeps most of its
// work. A successful import removes the checkpoint; `out` itself is only ever
// replaced by a complete store.
// Thread-safety: ImportCorpus may run concurrently for different outputs; the
// extractors passed in are used from the calling thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/status.h"
#include "data/adapters/adapter.h"
#include "data/corpus.h"

namespace emosweep::data {

// A feature set the caller computes (e.g. a TorchScript encoder).
class ImportExtractor {
 public:
  virtual ~ImportExtractor() = default;
  // Name, modality and provenance of the set, no rows (dim 0 = learnt from
  // the first Extract). Rows stored under a set whose provenance holds every
  // key of this one with equal values are reused.
  virtual FeatureSet EmptySet() const = 0;
  // true: Extract gets audio file paths; false: transcripts.
  virtual bool audio_input() const = 0;
  // One row per input, in order; `progress` (may be null) advanced per input.
  virtual Result<FeatureSet> Extract(const std::vector<std::string>& inputs, Progress* progress) = 0;
};

// Where an interrupted import of `out` keeps its finished rows.
std::string ImportCheckpointPath(const std::string& out);

struct ImportCorpusOptions {
  std::string adapter;                             // adapter name (see Adapters())
  std::string root;                                // corpus root directory
  std::string out;                                 // output store path (.h5)
  std::vector<std::string> features = {"logmel64_stats"};  // audio set names and/or "tfidf"
  std::string label_map;                           // "" = the adapter's default map
  std::string corpus_name;                         // name stored in the store ("" = the adapter's corpus name)
  std::string language;                            // corpus language stored ("" = the adapter's)
  int threads = 1;                                 // 0 = hardware concurrency
  int64_t limit = 0;                               // > 0: first N records (id order) before label mapping
  bool skip_bad = false;                           // skip unparsable file names, counted
  std::string normalisation = "none";              // audio gain normalisation: none | peak | rms
  int64_t tfidf_dim = 4096;
  bool progress = true;                            // progress line on stderr
  std::vector<ImportExtractor*> extractors;        // extra sets (not owned), after the audio sets
  const std::atomic<bool>* stop = nullptr;         // set asynchronously: checkpoint and return Aborted
  double checkpoint_seconds = 0.0;                 // > 0: rewrite <out>.partial this often
};

struct ImportCorpusReport {
  std::string corpus;
  std::string out;
  std::string label_map;
  int64_t scanned = 0;        // records the adapter yielded (after --limit)
  int64_t skipped_files = 0;  // files skipped under skip_bad
  int64_t dropped = 0;        // records the label map drops
  int64_t utterances = 0;     // rows written
  int64_t reused = 0;         // rows whose every set was copied from the existing store/checkpoint
  int64_t extracted = 0;      // rows with at least one set extracted in this run
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
