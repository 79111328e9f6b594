// data/audio/frontend.h: wav files → utterance-level FeatureSets.
//
// The front end turns decoded audio into the named feature sets documented in
// docs/features.md:
//   "logmel64_stats"   256  [mean, std] of 64 log-mel bands and of their deltas
//   "logmel64_frames"   64  mean log-mel; frames [T, 64] (the log-mel itself)
//   "mfcc_stats"        80  [mean, std] of 20 MFCCs and of their deltas
//   "prosody"           29  ProsodyNames() in prosody.h (eGeMAPS-like: F0, loudness, jitter, ...)
//   "window_stats"     128  MER seed §3.3 windows (4 s / 2 s step, tiling pad) over
//                           log-mel frames: per-window mean, then [mean; std]
// All sets are computed from one shared log-mel / power-spectrum pass.
//
// Two levels of API:
//   * AudioFrontEnd::ExtractFile / ExtractWaveform: one utterance at a time, so
//     a caller can skip utterances already in a store (resumable imports);
//   * ExtractAudioFeatures: a batch over files on a std::thread pool; output
//     row i always belongs to wav_paths[i], whatever the thread count, and the
//     result is bitwise identical for 1 and N threads.
// Thread-safety: an AudioFrontEnd is immutable after Create(); its const
// methods may be called from many threads at once (scratch is per call).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "core/status.h"
#include "data/audio/decode.h"
#include "data/corpus.h"

namespace emosweep::data::audio {

// Every feature set name the front end knows, in canonical order.
const std::vector<std::string>& KnownAudioFeatureSets();

struct AudioFeatureOptions {
  std::vector<std::string> feature_sets = {"logmel64_stats"};
  DecodeOptions decode;     // sample rate (16 kHz), normalisation
  int num_threads = 1;      // batch API only; 0 = hardware concurrency
  bool store_frames = false;  // also fill FeatureSet::frames of logmel64_stats ([T, 64]
                              // log-mel) and mfcc_stats ([T, 20]); logmel64_frames always
                              // stores its frames, prosody and window_stats never do
};

// Parses "logmel64_stats,prosody" (comma separated); unknown names are
// InvalidArgument listing the known ones.
Result<std::vector<std::string>> ParseFeatureSetList(const std::string& text);

// One utterance's features, one entry per requested set (options order).
struct UtteranceFeatures {
  double duration_s = 0.0;                 // after decoding (source duration)
  std::vector<std::vector<float>> values;  // [set][dim]
  std::vector<std::vector<float>> frames;  // [set][num_frames * frame_dim], empty if none
};

// Description of one output set, known before any file is read.
struct FeatureSetSpec {
  std::string name;
  int64_t dim = 0;
  int64_t frame_dim = 0;             // 0 = no frames stored
  std::vector<std::string> columns;  // dim names (docs/features.md)
};

class AudioFrontEnd {
 public:
  static Result<std::shared_ptr<const AudioFrontEnd>> Create(const AudioFeatureOptions& options);
  ~AudioFrontEnd();

  const AudioFeatureOptions& options() const { return options_; }
  const std::vector<FeatureSetSpec>& specs() const { return specs_; }
  // Extractor name + every parameter, stored as FeatureSet::provenance.
  nlohmann::json Provenance(const std::string& set_name) const;

  Result<UtteranceFeatures> ExtractFile(const std::string& path) const;
  // `where` names the source in error messages (e.g. the file path).
  Result<UtteranceFeatures> ExtractWaveform(const Waveform& wave, const std::string& where) const;

  // Empty FeatureSets (name, modality "audio", dim, frame_dim, provenance,
  // offsets = {0}) ready for AppendUtterance.
  std::vector<FeatureSet> MakeEmptySets() const;
  // Appends one utterance as the next row of `sets` (from MakeEmptySets).
  Status AppendUtterance(const UtteranceFeatures& utt, std::vector<FeatureSet>* sets) const;

 private:
  struct Impl;
  explicit AudioFrontEnd(AudioFeatureOptions options);
  AudioFeatureOptions options_;
  std::vector<FeatureSetSpec> specs_;
  std::unique_ptr<Impl> impl_;
};

struct AudioBatch {
  std::vector<FeatureSet> sets;     // options.feature_sets order, row i = wav_paths[i]
  std::vector<double> durations_s;  // per file
};

// Decodes and extracts every file with options.num_threads workers. Fails on
// the first bad file in path order (the Status names it); nothing partial is
// returned. `progress` (may be null) is advanced once per file.
Result<AudioBatch> ExtractAudioFeatures(const std::vector<std::string>& wav_paths,
                                        const AudioFeatureOptions& options, Progress* progress);

}  // namespace emosweep::data::audio
