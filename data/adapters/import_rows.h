// data/adapters/import_rows.h: the feature-extraction stage of ImportCorpus
// (internal to data/adapters; the contract is in import_corpus.h): per-group
// row reuse from the finished store and the checkpoint, chunked extraction
// that stops between chunks when asked, and checkpoint writes.
// Thread-safety: one call per output at a time; the front end's threads are
// internal, extractors run on the calling thread.
#pragma once

#include <memory>
#include <vector>

#include "core/status.h"
#include "data/adapters/import_corpus.h"
#include "data/audio/frontend.h"
#include "data/corpus.h"

namespace emosweep::data::import_detail {

struct ExtractPlan {
  std::shared_ptr<const audio::AudioFrontEnd> front_end;  // null = no audio front-end sets
  audio::AudioFeatureOptions audio;                       // the front end's options (threads, decode)
  std::vector<ImportExtractor*> extractors;
};

// `corpus` holds the utterances (ids, sources, transcripts), label set and
// metadata; this appends the front end's sets and one set per extractor (in
// that order), sets utterance durations (front end only) and counts
// reused/extracted/audio_seconds in `report`. On a stop request it writes the
// checkpoint of the finished rows and returns Aborted.
Status ExtractRows(const ImportCorpusOptions& options, const ExtractPlan& plan, Corpus* corpus,
                   ImportCorpusReport* report);

}  // namespace emosweep::data::import_detail
