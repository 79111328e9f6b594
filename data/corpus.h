// data/corpus.h: the in-memory form of one corpus's feature store.
//
// A Corpus is what an HDF5 feature store (docs/formats/feature-store.md)
// holds: corpus metadata, one row of metadata per utterance, and any number of
// named feature sets. Everything above data/ (trainer, protocols) works on
// this struct; only data/feature_store.cc knows HDF5.
// Thread-safety: plain value type; const access from many threads is safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace emosweep::data {

struct Utterance {
  std::string id;              // unique within the corpus
  std::string speaker;         // required (speaker-independent splits need it)
  std::string gender;          // "f", "m" or "" when unknown
  std::string session;         // "" when unknown
  std::string group;           // free grouping key (e.g. improvised/scripted), "" when unknown
  std::string label;           // canonical label (data/taxonomy), after the corpus label map
  std::string original_label;  // the corpus's own label before mapping
  std::string transcript;      // "" when unknown
  std::string source;          // original file path / sample id, "" when unknown
  double duration_s = std::numeric_limits<double>::quiet_NaN();
};

// The modalities a feature set, a job's [features] key and a model input can be: "audio", "text", "video".
bool IsKnownModality(const std::string& modality);

// One named feature set: utterance-level [N, dim] float32, row-major, row i
// belongs to utterances[i]; optionally frame-level sequences stored as
// concatenated frames [total_frames, frame_dim] with offsets [N + 1].
struct FeatureSet {
  std::string name;             // e.g. "logmel64_stats", "bert", "wav2vec2"
  std::string modality;         // "audio" | "text" | "video"
  int64_t dim = 0;
  std::vector<float> values;    // N * dim
  int64_t frame_dim = 0;        // 0 = no frame-level data
  std::vector<float> frames;    // total_frames * frame_dim
  std::vector<int64_t> offsets; // N + 1, offsets[i]..offsets[i+1] are utterance i's frames
  nlohmann::json provenance = nlohmann::json::object();  // extractor name + parameters

  int64_t rows() const { return dim ? static_cast<int64_t>(values.size()) / dim : 0; }
  const float* row(int64_t i) const { return values.data() + i * dim; }
  bool has_frames() const { return frame_dim > 0; }
};

struct Corpus {
  std::string name;
  std::string language;                 // BCP-47-ish ("de", "en", "it"), "" when unknown
  std::vector<std::string> label_set;   // canonical labels present, in the corpus's class order
  std::vector<Utterance> utterances;
  std::vector<FeatureSet> features;
  nlohmann::json metadata = nlohmann::json::object();  // free-form (adapter, label map used, ...)

  size_t size() const { return utterances.size(); }
  const FeatureSet* FindFeature(const std::string& name) const;
  FeatureSet* FindFeature(const std::string& name);
  // Checks the invariants every writer and reader relies on: unique ids,
  // non-empty speakers, labels inside label_set, feature rows == N, offsets
  // monotone, every value finite. `where` names the file for messages.
  Status Validate(const std::string& where) const;
  // SHA-256 over the canonical content (metadata rows, labels, feature bytes
  // and provenance, in a fixed order); independent of HDF5 layout/compression.
  std::string ContentHash() const;
};

}  // namespace emosweep::data
