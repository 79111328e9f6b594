// bench/train_bench.cc: training throughput per model, and the fused flat-buffer
// optimizer against per-tensor torch::optim::AdamW, measured in the same run.
//
// Part 1 (optimizer): the same model and gradients; time one optimizer step
// (fused flat buffer vs torch::optim::AdamW over the module's tensors), then a
// whole training step (forward + backward + step) with each. Ratios are
// per-tensor time / fused time (> 1 = fused faster).
// Part 2 (throughput): every registered model at its seed's batch size on
// synthetic inputs of the seeds' dimensions (audio 1024 / text 768 for
// multimodal-ser, 768 / 768 for the others), one CPU thread: samples/s and
// epoch time over `--rows` rows (transductive models: one full-batch step).
// Usage: train_bench [--threads N] [--rows N] [--steps N] [--json]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"
#include "jobs/train_config.h"

namespace {

using emosweep::worker::FlatParameters;
using emosweep::worker::FusedOptimizer;
using Clock = std::chrono::steady_clock;

struct BenchModel {
  const char* name;
  int64_t batch;  // the seed's training batch size (0 = transductive full batch)
  int64_t audio_dim, text_dim;
  nlohmann::json config;
};

const std::vector<BenchModel>& Models() {
  static const std::vector<BenchModel> kModels = {
      {"unimodal_mlp", 32, 1024, 768, {{"modality", "audio"}}},
      {"concat_mlp", 32, 1024, 768, nlohmann::json::object()},
      {"cross_attention", 32, 1024, 768, nlohmann::json::object()},
      {"gated_unconstrained", 32, 1024, 768, nlohmann::json::object()},
      {"glomer", 128, 768, 768, nlohmann::json::object()},
      {"mer_gfl", 32, 768, 768, nlohmann::json::object()},
      {"cemobam", 0, 768, 768, nlohmann::json::object()},
      {"hemogat", 0, 768, 768, nlohmann::json::object()},
      {"msr_a", 16, 1024, 768, nlohmann::json::object()},
      {"msr_b", 16, 1024, 768, nlohmann::json::object()},
  };
  return kModels;
}

emosweep::models::ModelPtr Build(const BenchModel& m) {
  emosweep::models::ModelSpec spec;
  spec.input_dims = {{"audio", m.audio_dim}, {"text", m.text_dim}};
  spec.num_classes = 4;
  spec.labels = {"anger", "happiness", "neutral", "sadness"};
  spec.config = m.config;
  auto r = emosweep::models::CreateModel(m.name, spec);
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", m.name, r.status().ToString().c_str());
    return nullptr;
  }
  return *r;
}

emosweep::models::Batch RandomBatch(const BenchModel& m, int64_t b) {
  emosweep::models::Batch batch;
  batch.inputs["audio"] = torch::randn({b, m.audio_dim});
  batch.inputs["text"] = torch::randn({b, m.text_dim});
  batch.labels = torch::randint(0, 4, {b}, torch::kLong);
  return batch;
}

template <typename F>
double TimeMs(int reps, F&& f) {
  f();  // warm-up
  const auto t = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count() / reps;
}

nlohmann::json OptimizerPart(int steps) {
  const BenchModel& m = Models()[8];  // msr_a, the 12M-parameter case of the issue
  torch::manual_seed(0);
  auto fused_model = Build(m);
  auto ref_model = Build(m);
  if (!fused_model || !ref_model) return {};
  auto cfg = *emosweep::jobs::ParseTrainConfig({{"lr", 2e-5}, {"weight_decay", 0.01}}, "bench");
  auto flat = *FlatParameters::Build(*fused_model, {});
  FusedOptimizer fused(&flat, cfg);
  torch::optim::AdamW ref(ref_model->parameters(), torch::optim::AdamWOptions(2e-5).weight_decay(0.01));
  flat.grads().normal_();
  for (auto& p : ref_model->parameters()) p.mutable_grad() = torch::randn_like(p);
  const double fused_step = TimeMs(steps, [&] { fused.Step(); });
  const double ref_step = TimeMs(steps, [&] { ref.step(); });
  fused_model->train();
  ref_model->train();
  emosweep::models::LossContext ctx;
  auto batch = RandomBatch(m, 16);
  const double fused_train = TimeMs(steps, [&] {
    flat.ZeroGrad();
    auto out = fused_model->Forward(batch);
    fused_model->Loss(out, batch, ctx).total.backward();
    flat.SyncGrads();
    fused.Step();
  });
  const double ref_train = TimeMs(steps, [&] {
    ref.zero_grad();
    auto out = ref_model->Forward(batch);
    ref_model->Loss(out, batch, ctx).total.backward();
    ref.step();
  });
  std::printf("optimizer (msr_a, %lld parameters in %zu tensors, batch 16, %d threads)\n",
              static_cast<long long>(flat.numel()), flat.num_tensors(), at::get_num_threads());
  std::printf("  %-28s %10s %10s %8s\n", "", "fused ms", "torch ms", "ratio");
  std::printf("  %-28s %10.3f %10.3f %8.2f\n", "AdamW step alone", fused_step, ref_step, ref_step / fused_step);
  std::printf("  %-28s %10.3f %10.3f %8.2f\n", "train step (fwd+bwd+step)", fused_train, ref_train,
              ref_train / fused_train);
  std::printf("  optimizer share of the per-tensor train step: %.0f%%\n\n", 100 * ref_step / ref_train);
  return {{"parameters", flat.numel()}, {"tensors", flat.num_tensors()},   {"fused_step_ms", fused_step},
          {"torch_step_ms", ref_step},  {"step_ratio", ref_step / fused_step}, {"fused_train_step_ms", fused_train},
          {"torch_train_step_ms", ref_train}, {"train_step_ratio", ref_train / fused_train}};
}

nlohmann::json ThroughputPart(int64_t rows) {
  nlohmann::json out = nlohmann::json::array();
  std::printf("throughput (%lld synthetic rows per epoch, %d threads, fused AdamW)\n", static_cast<long long>(rows),
              at::get_num_threads());
  std::printf("  %-20s %6s %12s %12s %12s\n", "model", "batch", "params", "epoch s", "samples/s");
  for (const auto& m : Models()) {
    torch::manual_seed(0);
    auto model = Build(m);
    if (!model) continue;
    auto cfg = *emosweep::jobs::ParseTrainConfig({{"lr", 1e-4}}, "bench");
    auto flat = *FlatParameters::Build(*model, {});
    FusedOptimizer opt(&flat, cfg);
    model->train();
    emosweep::models::LossContext ctx;
    const int64_t b = m.batch > 0 ? m.batch : rows;
    const int64_t steps = m.batch > 0 ? rows / b : 1;
    auto batch = RandomBatch(m, b);
    auto step = [&] {
      flat.ZeroGrad();
      auto o = model->Forward(batch);
      model->Loss(o, batch, ctx).total.backward();
      flat.SyncGrads();
      opt.Step();
    };
    step();  // warm-up
    const auto t = Clock::now();
    for (int64_t s = 0; s < steps; ++s) step();
    const double sec = std::chrono::duration<double>(Clock::now() - t).count();
    const double sps = static_cast<double>(steps * b) / sec;
    std::printf("  %-20s %6s %12lld %12.3f %12.1f\n", m.name, m.batch > 0 ? std::to_string(b).c_str() : "full",
                static_cast<long long>(flat.numel()), sec, sps);
    out.push_back({{"model", m.name}, {"batch", m.batch > 0 ? nlohmann::json(b) : nlohmann::json("full")},
                   {"parameters", flat.numel()}, {"epoch_seconds", sec}, {"samples_per_second", sps},
                   {"rows", steps * b}});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, steps = 20;
  int64_t rows = 1024;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--rows" && i + 1 < argc) rows = std::atoll(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "usage: train_bench [--threads N] [--rows N] [--steps N] [--json]\n");
      return 2;
    }
  }
  at::set_num_threads(threads);
  try {
    nlohmann::json j = {{"threads", threads}, {"optimizer", OptimizerPart(steps)}, {"throughput", ThroughputPart(rows)}};
    if (json) std::printf("%s\n", j.dump(2).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
