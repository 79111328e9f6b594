// bench/import_bench.cc: seed-pickle import against reading the file's bytes.
//
// Baseline (measured in the same run): ReadFile of the pickle, i.e. the I/O
// floor. Then the restricted unpickler (ParseSeedPickle on bytes in memory),
// the full import to a Corpus (parse + label map + SHA-256 of the source +
// Corpus::Validate), and the feature-store write of that corpus. Prints one
// JSON document with milliseconds (best of --reps) and ratios to the baseline.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/files.h"
#include "data/feature_store.h"
#include "data/import/pickle.h"
#include "data/import/pickle_import.h"

using namespace emosweep;

namespace {

double BestMs(int reps, const std::function<void()>& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = std::string(EMOSWEEP_SHARED_DIR) + "/features/iemocap-seed-pkl/";
  const std::string path = argc > 1 ? argv[1] : dir + "glomer_IEMOCAP_4class_BERT_WAV2VEC_val.pkl";
  const int reps = 5;
  if (!FileExists(path)) {
    std::fprintf(stderr, "import_bench: %s not found (../shared absent); nothing measured\n", path.c_str());
    return 0;
  }
  auto map = data::LabelMap::Load(path.find("cemobam") != std::string::npos ? "cemobam_iemocap4" : "glomer_iemocap4");
  if (!map.ok()) return 1;
  std::string bytes;
  const double read_ms = BestMs(reps, [&] { bytes = ReadFile(path).value(); });
  size_t records = 0;
  const double parse_ms = BestMs(reps, [&] { records = data::ParseSeedPickle(bytes, path).value().size(); });
  data::Corpus corpus;
  data::PickleImportOptions opt;
  opt.corpus_name = "bench";
  opt.label_map = &*map;
  const double import_ms = BestMs(reps, [&] {
    data::ImportReport report;
    corpus = data::ImportSeedPickles({path}, opt, &report).value();
  });
  const std::string out = "/tmp/emosweep_import_bench.h5";
  const double write_ms = BestMs(reps, [&] {
    if (!data::WriteFeatureStore(out, corpus).ok()) std::abort();
  });
  std::remove(out.c_str());
  nlohmann::json j = {{"file", path.substr(path.find_last_of('/') + 1)},
                      {"bytes", bytes.size()},
                      {"records", records},
                      {"baseline_read_ms", read_ms},
                      {"parse_ms", parse_ms},
                      {"import_ms", import_ms},
                      {"store_write_ms", write_ms},
                      {"parse_vs_read", parse_ms / read_ms},
                      {"import_vs_read", import_ms / read_ms},
                      {"parse_MB_per_s", bytes.size() / 1e3 / parse_ms}};
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}
