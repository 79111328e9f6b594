// bench/torchscript_bench.cc: training step time of a scripted concat_mlp (the
// `torchscript` model, file written from C++ by models/torchscript_reference.h)
// against the built-in concat_mlp, same config, same batch, same fused optimizer.
// Issue 18's target: the scripted model within 1.3x the built-in's step time.
// Reps are interleaved (built-in, scripted, built-in, ...) so that load from other
// processes hits both alike; each rep times `--steps` training steps (forward, CE
// loss, backward, fused AdamW step) and the min and median per-step times are
// printed with their ratios (scripted / built-in; < 1.3 passes).
// Usage: torchscript_bench [--threads N] [--reps N] [--steps N] [--batch N] [--json]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "jobs/train_config.h"
#include "models/model.h"
#include "models/torchscript_reference.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"

namespace {

using emosweep::worker::FlatParameters;
using emosweep::worker::FusedOptimizer;
using Clock = std::chrono::steady_clock;

struct Runner {
  emosweep::models::ModelPtr model;
  std::unique_ptr<FlatParameters> flat;
  std::unique_ptr<FusedOptimizer> opt;
  void Step(const emosweep::models::Batch& b, const emosweep::models::LossContext& ctx) {
    flat->ZeroGrad();
    auto o = model->Forward(b);
    model->Loss(o, b, ctx).total.backward();
    flat->SyncGrads();
    opt->Step();
  }
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 15, steps = 20;
  int64_t batch = 32;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "usage: torchscript_bench [--threads N] [--reps N] [--steps N] [--batch N] [--json]\n");
      return 2;
    }
  }
  at::set_num_threads(threads);
  // The multimodal-ser baseline's sizes: audio 1024, text 768, hidden [384, 192], 4 classes.
  const std::map<std::string, int64_t> dims = {{"audio", 1024}, {"text", 768}};
  const std::vector<int64_t> hidden = {384, 192};
  const std::string file =
      (std::filesystem::temp_directory_path() / ("torchscript_bench_" + std::to_string(::getpid()) + ".pt")).string();
  if (auto st = emosweep::models::SaveScriptedConcatMlp(file, dims, hidden, 0.3, 4); !st.ok()) {
    std::fprintf(stderr, "torchscript_bench: %s\n", st.ToString().c_str());
    return 1;
  }
  auto make = [&](const std::string& name, nlohmann::json cfg) {
    emosweep::models::ModelSpec spec;
    spec.input_dims = dims;
    spec.num_classes = 4;
    spec.config = std::move(cfg);
    torch::manual_seed(0);
    Runner r;
    auto m = emosweep::models::CreateModel(name, spec);
    if (!m.ok()) {
      std::fprintf(stderr, "torchscript_bench: %s\n", m.status().ToString().c_str());
      std::exit(1);
    }
    r.model = *m;
    r.model->train();
    r.flat = std::make_unique<FlatParameters>(*FlatParameters::Build(*r.model, {}));
    r.opt = std::make_unique<FusedOptimizer>(r.flat.get(), *emosweep::jobs::ParseTrainConfig({{"lr", 1e-4}}, "bench"));
    return r;
  };
  Runner builtin = make("concat_mlp", {{"hidden_dims", hidden}, {"dropout", 0.3}});
  Runner scripted = make("torchscript", {{"file", file}});
  std::filesystem::remove(file);
  emosweep::models::Batch b;
  b.inputs["audio"] = torch::randn({batch, 1024});
  b.inputs["text"] = torch::randn({batch, 768});
  b.labels = torch::randint(0, 4, {batch}, torch::kLong);
  emosweep::models::LossContext ctx;
  for (int w = 0; w < 5; ++w) builtin.Step(b, ctx), scripted.Step(b, ctx);  // warm-up (profiling executor)
  std::vector<double> tb, ts;
  auto time_rep = [&](Runner& r) {
    const auto t = Clock::now();
    for (int s = 0; s < steps; ++s) r.Step(b, ctx);
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count() / steps;
  };
  for (int i = 0; i < reps; ++i) {
    tb.push_back(time_rep(builtin));
    ts.push_back(time_rep(scripted));
  }
  const double bmin = *std::min_element(tb.begin(), tb.end()), smin = *std::min_element(ts.begin(), ts.end());
  const double bmed = Median(tb), smed = Median(ts);
  std::printf("concat_mlp training step (batch %lld, audio 1024 + text 768 -> [384, 192] -> 4, %d thread(s), "
              "%d interleaved reps x %d steps)\n",
              static_cast<long long>(batch), threads, reps, steps);
  std::printf("  %-12s %10s %10s\n", "", "min ms", "median ms");
  std::printf("  %-12s %10.3f %10.3f\n", "built-in", bmin, bmed);
  std::printf("  %-12s %10.3f %10.3f\n", "torchscript", smin, smed);
  std::printf("  ratio (torchscript / built-in): min %.3f, median %.3f (target < 1.3)\n", smin / bmin, smed / bmed);
  if (json)
    std::printf("%s\n", nlohmann::json({{"builtin_min_ms", bmin}, {"builtin_median_ms", bmed},
                                        {"torchscript_min_ms", smin}, {"torchscript_median_ms", smed},
                                        {"ratio_min", smin / bmin}, {"ratio_median", smed / bmed}})
                            .dump(2)
                            .c_str());
  return 0;
}
