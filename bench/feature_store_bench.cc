// bench/feature_store_bench.cc: chunking/compression choices of the HDF5 feature
// store, measured (docs/formats/feature-store.md quotes the result).
//
// Two payloads: utterance-level embeddings (5000 x 768 float32, Gaussian like
// pooled BERT/wav2vec2 vectors) and frame-level sequences (1000 utterances x
// 100..200 frames x 64, an AR(1) process per dimension like log-mel frames).
// For each setting: write MB/s, full-read MB/s (raw float bytes / seconds, best
// of `reps`), file size, and ratios against the uncompressed baseline measured
// in the same run. Correctness column: the read-back content hash must equal
// the written one. One JSON line per setting on stdout, a table on stderr.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/feature_store.h"
#include "data/portable_rng.h"

namespace fs = std::filesystem;
using namespace emosweep;
using namespace emosweep::data;

namespace {

Corpus Embeddings(int64_t n, int64_t d) {
  Corpus c;
  c.name = "bench_utt";
  c.label_set = {"anger", "neutral"};
  FeatureSet f{"emb", "text", d};
  f.values.resize(static_cast<size_t>(n * d));
  PortableRng rng(1);
  for (auto& v : f.values) v = static_cast<float>(0.3 * rng.Normal());
  for (int64_t i = 0; i < n; ++i) {
    Utterance u;
    u.id = "u" + std::to_string(i);
    u.speaker = "s" + std::to_string(i % 10);
    u.label = i % 2 ? "anger" : "neutral";
    c.utterances.push_back(u);
  }
  c.features.push_back(std::move(f));
  return c;
}

Corpus Frames(int64_t n, int64_t d) {
  Corpus c = Embeddings(n, 8);
  c.name = "bench_frames";
  FeatureSet& f = c.features[0];
  f.frame_dim = d;
  f.offsets = {0};
  PortableRng rng(2);
  std::vector<double> state(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t t = 100 + static_cast<int64_t>(rng.Below(101));
    for (int64_t k = 0; k < t; ++k)
      for (int64_t j = 0; j < d; ++j) {
        state[j] = 0.9 * state[j] + 0.3 * rng.Normal();
        f.frames.push_back(static_cast<float>(state[j] - 4.0));
      }
    f.offsets.push_back(f.offsets.back() + t);
  }
  return c;
}

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

struct Setting {
  const char* name;
  StoreWriteOptions o;
};

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 3;
  const fs::path dir = fs::temp_directory_path() / ("emosweep_store_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<Setting> settings = {
      {"raw chunk1024", {0, false, 1024, 0}},      {"gzip1+shuffle chunk1024", {1, true, 1024, 1}},
      {"gzip4+shuffle chunk1024", {4, true, 1024, 4}}, {"gzip4 chunk1024", {4, false, 1024, 4}},
      {"gzip4+shuffle chunk256", {4, true, 256, 4}},  {"gzip4+shuffle chunk4096", {4, true, 4096, 4}},
      {"gzip9+shuffle chunk1024", {9, true, 1024, 9}},
  };
  for (const auto& [label, corpus] : {std::make_pair("utterance 5000x768", Embeddings(5000, 768)),
                                      std::make_pair("frames 1000x(100..200)x64", Frames(1000, 64))}) {
    const auto& f = corpus.features[0];
    const double mb = static_cast<double>((f.values.size() + f.frames.size()) * sizeof(float)) / 1e6;
    const std::string want = corpus.ContentHash();
    std::fprintf(stderr, "\n%s: %.1f MB of float32\n%-26s %9s %9s %9s %8s %8s %8s %6s\n", label, mb, "setting",
                 "write", "read", "size", "w/base", "r/base", "s/base", "hash");
    double base_w = 0, base_r = 0, base_s = 0;
    for (const auto& s : settings) {
      const std::string path = (dir / "b.h5").string();
      double best_w = 1e30, best_r = 1e30;
      bool hash_ok = true;
      for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        Status st = WriteFeatureStore(path, corpus, s.o);
        best_w = std::min(best_w, Seconds(t0));
        if (!st.ok()) return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
        StoreReadOptions ro;
        ro.load_frames = true;
        t0 = std::chrono::steady_clock::now();
        auto back = ReadFeatureStore(path, ro);
        best_r = std::min(best_r, Seconds(t0));
        if (!back.ok()) return std::fprintf(stderr, "%s\n", back.status().ToString().c_str()), 1;
        hash_ok &= back->ContentHash() == want;
      }
      const double size_mb = static_cast<double>(fs::file_size(path)) / 1e6;
      const double w = mb / best_w, rd = mb / best_r;
      if (base_w == 0) base_w = w, base_r = rd, base_s = size_mb;
      std::fprintf(stderr, "%-26s %7.0f/s %7.0f/s %7.1fMB %8.2f %8.2f %8.2f %6s\n", s.name, w, rd, size_mb,
                   w / base_w, rd / base_r, size_mb / base_s, hash_ok ? "ok" : "BAD");
      std::printf("%s\n", nlohmann::json({{"payload", label}, {"setting", s.name}, {"gzip", s.o.gzip_level},
                                          {"shuffle", s.o.shuffle}, {"chunk_rows", s.o.chunk_rows},
                                          {"mb", mb}, {"write_mb_s", w}, {"read_mb_s", rd},
                                          {"file_mb", size_mb}, {"write_vs_raw", w / base_w},
                                          {"read_vs_raw", rd / base_r}, {"size_vs_raw", size_mb / base_s},
                                          {"hash_ok", hash_ok}})
                                  .dump()
                                  .c_str());
    }
  }
  fs::remove_all(dir);
  return 0;
}
