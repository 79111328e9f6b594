// fuzz/fuzz_csv.cc: the CSV reader and the table importer
// (data/import/csv.cc, data/import/table_import.cc).
//
// Input: CSV text. It is read three ways: record by record with CsvReader
// (separator detected); as the metadata CSV of `data import --table` with a
// fixed feature CSV (ids u0..u63); and as the feature CSV (keyed by id, all
// other columns numeric) of a fixed metadata CSV (ids u0..u7).
// Checks: no crash, leak, hang or out-of-bounds access; every record has the
// header's width; an imported corpus has one value row per utterance.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/import/csv.h"
#include "data/import/table_import.h"
#include "fuzz/fuzz_util.h"

using namespace emosweep;

namespace {

std::string fixed_features_csv, fixed_metadata_csv;

void CheckCorpus(const Result<data::Corpus>& c) {
  if (!c.ok()) return;
  const size_t n = c.value().utterances.size();
  for (const auto& f : c.value().features)
    if (f.values.size() != n * static_cast<size_t>(f.dim)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  std::string feats = "id,f0,f1,f2,f3\n", meta = "id,speaker,label\n";
  static const char* kLabels[] = {"anger", "happiness", "neutral", "sadness"};
  for (int i = 0; i < 64; ++i)
    feats += "u" + std::to_string(i) + "," + std::to_string(i) + ",0.5,-1e-3," + std::to_string(i % 7) + "\n";
  for (int i = 0; i < 8; ++i) meta += "u" + std::to_string(i) + ",s" + std::to_string(i % 3) + "," + kLabels[i % 4] + "\n";
  fixed_features_csv = fuzz::WriteScratch("features.csv", feats);
  fixed_metadata_csv = fuzz::WriteScratch("metadata.csv", meta);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto reader = data::CsvReader::FromString(text, "fuzz.csv");
  if (reader.ok()) {
    data::CsvReader& r = reader.value();
    std::vector<std::string> fields;
    for (int i = 0; i < 100000; ++i) {
      auto more = r.Next(&fields);
      if (!more.ok() || !more.value()) break;
      if (fields.size() != r.header().size()) std::abort();
    }
  }
  const std::string path = fuzz::WriteScratch("fuzz.csv", data, size);
  data::ImportReport report;
  data::TableImportOptions as_metadata;
  as_metadata.metadata_csv = path;
  as_metadata.corpus_name = "fuzz";
  as_metadata.features = {{"f", "audio", fixed_features_csv, ""}};
  CheckCorpus(data::ImportTable(as_metadata, &report));
  data::TableImportOptions as_features;
  as_features.metadata_csv = fixed_metadata_csv;
  as_features.corpus_name = "fuzz";
  as_features.features = {{"f", "text", path, ""}};
  CheckCorpus(data::ImportTable(as_features, &report));
  return 0;
}
