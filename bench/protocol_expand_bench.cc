// bench/protocol_expand_bench.cc: how long `plan` takes to expand a large
// protocol, against the cost of just reading the stores' utterance tables
// (the part expansion cannot avoid), measured in the same run.
//
// Three synthetic corpora (data::MakeSynthCorpora), N utterances each; a
// protocol with in_domain (5 folds) × 3 models × a 3-point grid × 5 seeds,
// a 3×3 cross-corpus matrix and a few-shot experiment. Prints one table and
// one JSON line. Usage: protocol_expand_bench [utterances_per_speaker=250] [reps=3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "data/feature_store.h"
#include "data/synth.h"
#include "protocols/expand.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const char* kProtocol = R"(version = 1
name = "bench"
[corpora.synth_a]
store = "synth_a.h5"
[corpora.synth_b]
store = "synth_b.h5"
[corpora.synth_c]
store = "synth_c.h5"
[defaults]
labels = "core4"
features = {audio = "synth_audio", text = "synth_text"}
seeds = [1, 2, 3, 4, 5]
selection = "source_val"
split = {method = "speaker_kfold", k = 5}
[[experiment]]
name = "in_domain"
kind = "in_domain"
corpora = ["synth_a", "synth_b", "synth_c"]
models = ["concat_mlp", "mer_gfl", {name = "unimodal_mlp", modality = "audio"}]
grid = {"train.lr" = [0.0001, 0.0003, 0.001]}
[[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["synth_a", "synth_b", "synth_c"]
models = ["concat_mlp", "mer_gfl", {name = "unimodal_mlp", modality = "audio"}]
[[experiment]]
name = "fs"
kind = "fewshot"
source = "synth_a"
target = "synth_b"
models = ["concat_mlp"]
budgets = ["10%", "20%", "50%", "100%"]
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace emosweep;
  int per_speaker = argc > 1 ? std::atoi(argv[1]) : 250;
  int reps = argc > 2 ? std::atoi(argv[2]) : 3;
  auto dir = std::filesystem::temp_directory_path() / ("protocol_expand_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  data::SynthSpec spec;
  spec.speakers_per_corpus = 20;
  spec.utterances_per_speaker = per_speaker;
  auto corpora = data::MakeSynthCorpora(spec);
  if (!corpora.ok()) {
    std::fprintf(stderr, "%s\n", corpora.status().ToString().c_str());
    return 1;
  }
  for (const auto& c : *corpora) {
    Status st = data::WriteFeatureStore((dir / (c.name + ".h5")).string(), c);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  }
  std::string path = (dir / "bench.toml").string();
  std::ofstream(path) << kProtocol;

  double base = 1e30, full = 1e30;
  size_t jobs = 0, ids = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (const char* n : {"synth_a", "synth_b", "synth_c"}) {
      data::StoreReadOptions o;
      o.feature_sets = {"synth_text"};  // the smallest set, as protocols::StoreIndex reads
      auto c = data::ReadFeatureStore((dir / (std::string(n) + ".h5")).string(), o);
      if (!c.ok()) return 1;
    }
    base = std::min(base, Seconds(t0));
    t0 = std::chrono::steady_clock::now();
    auto p = protocols::LoadProtocol(path);
    full = std::min(full, Seconds(t0));
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", p.status().ToString().c_str());
      return 1;
    }
    jobs = p->jobs.size();
    ids = 0;
    for (const auto& j : p->jobs) {
      for (const auto& d : j.spec.train) ids += d.ids.size();
      for (const auto& [name, refs] : j.spec.eval)
        for (const auto& d : refs) ids += d.ids.size();
    }
  }
  std::filesystem::remove_all(dir);
  size_t n = static_cast<size_t>(spec.speakers_per_corpus) * per_speaker;
  std::printf("%-34s %12s\n", "utterances per corpus", std::to_string(n).c_str());
  std::printf("%-34s %12zu\n", "jobs", jobs);
  std::printf("%-34s %12zu\n", "utterance ids in job specs", ids);
  std::printf("%-34s %12.1f\n", "read utterance tables (ms)", base * 1e3);
  std::printf("%-34s %12.1f\n", "LoadProtocol, all (ms)", full * 1e3);
  std::printf("%-34s %12.2f\n", "ratio LoadProtocol / read", full / base);
  std::printf("%-34s %12.0f\n", "jobs per second", jobs / full);
  std::printf("%s\n", nlohmann::json({{"bench", "protocol_expand"},
                                      {"utterances_per_corpus", n},
                                      {"jobs", jobs},
                                      {"ids", ids},
                                      {"read_ms", base * 1e3},
                                      {"load_protocol_ms", full * 1e3},
                                      {"ratio", full / base}})
                          .dump()
                          .c_str());
  return 0;
}
