// data/adapters/adapter.h: corpus adapters, from a corpus as it lies on disk
// to a list of utterance records.
//
// An adapter knows one corpus layout (IEMOCAP, CREMA-D, RAVDESS, EmoDB,
// EMOVO, TESS, ESD, MELD, or a generic metadata CSV). It walks the corpus
// root and derives every record's id, speaker, gender, session, group,
// original label and transcript from the corpus's own file names and text
// files; it reads no audio. Label mapping and feature extraction happen
// later (data/adapters/import_corpus.h). The layouts and derivations are
// documented in docs/corpora.md.
//
// Records come back sorted by id, so a scan is deterministic whatever order
// the file system lists files in. A file name that does not parse is an error
// naming the file, unless ScanOptions::skip_bad is set; then it is skipped
// and counted. Names starting with '.' (macOS "._x.wav" debris) are ignored.
// Thread-safety: the adapter table is immutable; ScanCorpus is reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::data {

struct UtteranceRecord {
  std::string id;              // unique within the corpus
  std::string wav_path;        // absolute audio path; "" for text-only records (MELD without clips)
  std::string speaker;
  std::string gender;          // "f", "m" or ""
  std::string session;         // "" when the corpus has none
  std::string group;           // adapter-defined grouping key (see docs/corpora.md)
  std::string original_label;  // the corpus's own label code, before the label map
  std::string transcript;      // "" when unknown
  std::string origin;          // where it was listed ("metadata.csv line 5"); "" = the audio file names it
};

struct ScanOptions {
  bool skip_bad = false;  // skip unparsable files with a counted warning instead of failing
  int64_t limit = 0;      // > 0: keep only the first `limit` records (in id order)
};

struct ScanResult {
  std::string corpus;             // e.g. "emodb"
  std::string language;           // e.g. "de"; "" when mixed or unknown
  std::string default_label_map;  // built-in label map name; "" = labels must already be canonical
  std::vector<UtteranceRecord> records;
  int64_t skipped = 0;                     // files skipped under skip_bad
  std::vector<std::string> skipped_notes;  // "<file>: <why>", the first few
};

// Collects records and decides what a bad file means (error or counted skip).
class ScanSink {
 public:
  explicit ScanSink(const ScanOptions& options, ScanResult* out) : options_(options), out_(out) {}
  void Add(UtteranceRecord record) { out_->records.push_back(std::move(record)); }
  // Returns InvalidArgument "<file>: <why>" unless skip_bad; then counts it and returns Ok.
  Status Bad(const std::string& file, const std::string& why);
  // A file the release is known to ship broken (CREMA-D's empty 1076_MTI_SAD_XX.wav): always left out, and
  // said (a warning naming the file and the defect), with or without skip_bad.
  void Known(const std::string& file, const std::string& why);
  ScanResult& result() { return *out_; }

 private:
  ScanOptions options_;
  ScanResult* out_;
};

struct AdapterInfo {
  const char* name;               // --adapter value
  const char* language;
  const char* default_label_map;  // "" = labels must already be canonical
  const char* summary;            // one line for --help and docs
  // Walks `root` (an existing directory) and adds records to `sink`.
  Status (*scan)(const std::string& root, ScanSink& sink);
};

const std::vector<AdapterInfo>& Adapters();
const AdapterInfo* FindAdapter(const std::string& name);
std::string AdapterNamesForHelp();  // "generic_csv, iemocap, ..."

// Runs the named adapter over `root`: NotFound when the root is missing,
// InvalidArgument for an unknown adapter name, a bad file, a duplicate id, or
// a corpus with no utterances. Sorts records by id and applies the limit.
Result<ScanResult> ScanCorpus(const std::string& adapter, const std::string& root, const ScanOptions& options = {});

}  // namespace emosweep::data
