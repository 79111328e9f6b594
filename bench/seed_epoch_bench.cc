// bench/seed_epoch_bench.cc: CPU seconds per epoch of the six seed models on the real CemoBAM IEMOCAP
// features, split into phases, against a compute floor measured in the same run (issue 16, "the
// single job, too"; bench/README.md).
//
// Data: the CemoBAM IEMOCAP *val* pickle (551 utterances) imported in memory (no store is written),
// split class-stratified (seed 0; 56 = ceil(0.1 × 551) validation rows allocated over the classes by
// largest remainder) into 495 train / 56 validation rows: the split (the 551-row test pickle is
// not part of an epoch). One thread. Each model trains with its seed's batch size and training keys
// (scripts/seed_features.sh): an epoch is the trainer's TrainEpoch step by step (shuffle, gather into
// reused buffers, forward + loss, backward, grad sync + clip + fused optimizer step) followed by
// worker::Evaluate over the validation rows, as worker/trainer_epoch.cc and trainer_validate.cc do. Epochs
// are interleaved over the models (round r runs epoch r of every model) and the min and median over the timed
// rounds are printed.
//
// Floor: one extra epoch per model is run with a RecordFunction observer that records every matrix
// product (aten::mm / addmm / bmm / baddbmm, and SlotLinear's own kernels emosweep::short_addmm / short_mm /
// outer_sum_mm; forward, backward and evaluation) with its shape and operand layout; each distinct
// shape is then timed with at::mm / at::bmm on this machine (best of several repeats), and
// floor = Σ count × time per call + optimizer steps × one pass over the parameters (p += g over the
// flat buffer). The ratios are epoch / floor and epoch / the issue's
// target (the originals' median epoch time / 3).
// Pack ceiling (issue 16's packed target, 3 seeds x 5 folds >= 3x the unpacked samples/s): a packed member
// still does its own products over its own weights and its own optimizer pass, so its epoch costs at least
// its member floor: each census product at the cheaper of the single call and one bmm over K members' operands
// per member (--pack-k K, default 15; 0 skips), plus the cheaper of the single and the K-member pass. The
// ceiling of any pack is median unpacked epoch / member floor, printed against the 3x target.
// Usage: seed_epoch_bench [--pickles DIR] [--models a,b,...] [--epochs N] [--warmup N] [--json] [--trace PREFIX] [--mm-detail]
//                         [--pack-k K]
// --trace: one more epoch per model under torch's legacy profiler, written as PREFIX<model>.json (chrome trace).
// --mm-detail: to stderr, each product shape's CPU time inside the census epoch against its time alone (the same
// operands every call, hot in L2) and with its operands from L3 (a new copy each call).
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/files.h"
#include "data/import/pickle_import.h"
#include "data/label_map.h"
#include "jobs/train_config.h"
#include "models/gat.h"
#include "models/model.h"
#include "worker/dataset.h"
#include "worker/evaluate.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"

namespace {

using namespace emosweep;  // NOLINT: a bench
using nlohmann::json;

double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct SeedModel {
  const char* name;
  json train;           // the seed's [train] keys (scripts/seed_features.sh)
  double original_s;    // the seed code's median epoch time (issue 16)
};

const std::vector<SeedModel>& SeedModels() {
  static const json kMsr = {{"lr", 2e-5},       {"weight_decay", 0.01},  {"schedule", "onecycle"},
                            {"grad_clip", 1.0}, {"batch_size", 16},      {"drop_last", true},
                            {"class_weights", "balanced"}};
  static const std::vector<SeedModel> k = {
      {"msr_a", kMsr, 3.69},
      {"msr_b", kMsr, 4.36},
      {"glomer", {{"lr", 1e-4}, {"weight_decay", 0.01}, {"batch_size", 128}}, 0.45},
      {"mer_gfl",
       {{"optimizer", "adam"}, {"lr", 1e-4}, {"weight_decay", 0.01}, {"batch_size", 32}, {"class_weights", "balanced"}},
       0.99},
      {"cemobam", {{"optimizer", "adam"}, {"lr", 1e-4}, {"weight_decay", 5e-4}}, 1.26},
      {"hemogat", {{"optimizer", "adam"}, {"lr", 1e-4}, {"weight_decay", 5e-4}}, 1.04},
  };
  return k;
}

// ---- matrix-product census (RecordFunction observer) ----

struct MmKey {
  int64_t b, m, k, n;  // b = 0: a 2-D product
  bool ta, tb;         // operand stored transposed (column-major view)
  bool operator<(const MmKey& o) const {
    return std::tie(b, m, k, n, ta, tb) < std::tie(o.b, o.m, o.k, o.n, o.ta, o.tb);
  }
};
std::mutex g_census_mu;
std::map<MmKey, int64_t>* g_census = nullptr;
std::map<MmKey, double>* g_census_s = nullptr;  // in-situ seconds per key (--mm-detail)
struct MmTimer : at::ObserverContext {
  MmKey key;
  double t0 = 0;  // CpuNow(), as TimeProduct measures
};

bool Transposed(const at::Tensor& t) { return t.dim() >= 2 && t.stride(-1) != 1 && t.size(-1) != 1; }

std::unique_ptr<at::ObserverContext> OnOp(const at::RecordFunction& fn) {
  const std::string name = fn.name();
  int a = -1;
  // emosweep's own kernels for SlotLinear (models/slot_linear.cc) name the product they stand for.
  if (name == "aten::mm" || name == "aten::bmm" || name == "emosweep::outer_sum_mm" || name == "emosweep::short_mm")
    a = 0;
  else if (name == "aten::addmm" || name == "aten::baddbmm" || name == "emosweep::short_addmm") a = 1;
  if (a < 0) return nullptr;
  auto in = fn.inputs();
  if (in.size() < static_cast<size_t>(a + 2) || !in[a].isTensor() || !in[a + 1].isTensor()) return nullptr;
  const at::Tensor& x = in[a].toTensor();
  const at::Tensor& y = in[a + 1].toTensor();
  MmKey key{};
  if (x.dim() == 3) key.b = x.size(0);
  key.m = x.size(-2);
  key.k = x.size(-1);
  key.n = y.size(-1);
  key.ta = Transposed(x);
  key.tb = Transposed(y);
  std::lock_guard<std::mutex> l(g_census_mu);
  if (g_census) ++(*g_census)[key];
  if (!g_census_s) return nullptr;
  auto t = std::make_unique<MmTimer>();
  t->key = key;
  t->t0 = CpuNow();
  return t;
}
void OnOpEnd(const at::RecordFunction&, at::ObserverContext* ctx) {
  auto* t = dynamic_cast<MmTimer*>(ctx);
  if (!t) return;
  const double s = CpuNow() - t->t0;
  std::lock_guard<std::mutex> l(g_census_mu);
  if (g_census_s) (*g_census_s)[t->key] += s;
}

// Random operands for the floor measurements from a generator of their own, so that the models' dropout
// streams (torch's default generator) are the same whatever the floor measured: the loss per epoch is
// comparable between two builds.
at::Generator& BenchGen() {
  static at::Generator g = at::detail::createCPUGenerator(12345);
  return g;
}

// Seconds per call of the product `key`, best of several timed batches. With `members` > 0 the same
// product is timed for that many pack members at once, as a packed model would run it: one bmm over
// [members·b, m, k] x [members·b, k, n] (each member its own operands, the same transposition), and the
// time is returned per member.
// cold: each call on its own copy of the operands and output, cycling through copies of at least kColdBytes
// together, so that no call finds them in L2 (they come from L3, as a model's weights larger than L2 do in an
// epoch); otherwise the same operands every call (hot).
constexpr double kColdBytes = 32e6;

double TimeProduct(const MmKey& key, int64_t members = 0, bool cold = false) {
  auto mat = [](int64_t b, int64_t r, int64_t c, bool t) {
    std::vector<int64_t> s = t ? std::vector<int64_t>{c, r} : std::vector<int64_t>{r, c};
    if (b) s.insert(s.begin(), b);
    auto x = at::randn(s, BenchGen());
    return t ? x.transpose(-1, -2) : x;
  };
  const int64_t batch = members > 0 ? members * std::max<int64_t>(1, key.b) : key.b;
  const double set_bytes =
      4.0 * static_cast<double>(std::max<int64_t>(1, batch)) * (key.m * key.k + key.k * key.n + key.m * key.n);
  const int copies = cold ? static_cast<int>(std::clamp(std::ceil(kColdBytes / set_bytes), 2.0, 4096.0)) : 1;
  std::vector<torch::Tensor> as, bs, outs;
  for (int c = 0; c < copies; ++c) {
    as.push_back(mat(batch, key.m, key.k, key.ta));
    bs.push_back(mat(batch, key.k, key.n, key.tb));
    outs.push_back(batch ? torch::empty({batch, key.m, key.n}) : torch::empty({key.m, key.n}));
  }
  auto call = [&](int i) {
    const size_t c = static_cast<size_t>(i % copies);
    if (batch)
      at::bmm_out(outs[c], as[c], bs[c]);
    else
      at::mm_out(outs[c], as[c], bs[c]);
  };
  for (int c = 0; c < copies; ++c) call(c);
  const double flops = 2.0 * std::max<int64_t>(1, batch) * key.m * key.k * key.n;
  // A pack's product is up to K times larger: fewer repeats (and batches) keep the census affordable.
  int reps = static_cast<int>(std::clamp(2e7 / std::max(flops, 1.0), members > 0 ? 1.0 : 3.0, 2000.0));
  if (cold) reps = std::max(reps, copies);  // every copy once a round
  double best = 1e30;
  int next = 0;
  for (int r = 0; r < (members > 0 ? 3 : 5); ++r) {
    const double t0 = CpuNow();
    for (int i = 0; i < reps; ++i) call(next++);
    best = std::min(best, (CpuNow() - t0) / reps);
  }
  return members > 0 ? best / static_cast<double>(members) : best;
}

// Seconds of one `p += g` pass over `numel` parameters per member when `members` members' parameters are
// one buffer (a pack's optimizer pass), best of 5; members = 1 is the unpacked model's pass.
double TimePass(int64_t numel, int64_t members) {
  auto pa = torch::empty({numel * members}), ga = torch::empty({numel * members});
  pa.fill_(0.5);
  ga.fill_(0.25);
  double pass = 1e30;
  for (int i = 0; i < 5; ++i) {
    const double t0 = CpuNow();
    pa.add_(ga, 1e-9);
    pass = std::min(pass, CpuNow() - t0);
  }
  return pass / static_cast<double>(members);
}

// ---- one model's training state ----

struct Phases {
  double data = 0, forward = 0, backward = 0, optimizer = 0, eval = 0;
  double total() const { return data + forward + backward + optimizer + eval; }
};

struct Run {
  const SeedModel* seed = nullptr;
  models::ModelPtr model;
  std::unique_ptr<worker::FlatParameters> flat;
  std::unique_ptr<worker::FusedOptimizer> opt;
  jobs::TrainConfig cfg;
  torch::Tensor class_weights;
  std::mt19937_64 rng{1};
  std::map<std::string, torch::Tensor> bufs;
  torch::Tensor label_buf;
  int64_t steps_per_epoch = 0;
  int epoch = 0;
  std::vector<Phases> epochs;
  std::vector<double> losses;  // train loss per epoch (same seed: comparable before/after a change)
};

torch::Tensor BalancedWeights(const torch::Tensor& labels, int c) {
  auto counts = torch::bincount(labels, {}, c).to(torch::kDouble);
  return (counts.sum() / (c * counts.clamp_min(1))).to(torch::kFloat);
}

Result<std::unique_ptr<Run>> MakeRun(const SeedModel& s, const worker::Split& train, int classes,
                                     const std::vector<std::string>& labels) {
  auto r = std::make_unique<Run>();
  r->seed = &s;
  ES_ASSIGN_OR_RETURN(r->cfg, jobs::ParseTrainConfig(s.train, std::string("bench ") + s.name));
  models::ModelSpec spec;
  for (const auto& [m, t] : train.inputs) spec.input_dims[m] = t.size(1);
  spec.num_classes = classes;
  spec.labels = labels;
  spec.config = json::object();
  torch::manual_seed(1);
  ES_ASSIGN_OR_RETURN(r->model, models::CreateModel(s.name, spec));
  ES_ASSIGN_OR_RETURN(worker::FlatParameters flat, worker::FlatParameters::Build(*r->model, {}));
  r->flat = std::make_unique<worker::FlatParameters>(std::move(flat));
  r->opt = std::make_unique<worker::FusedOptimizer>(r->flat.get(), r->cfg);
  if (r->cfg.class_weights == "balanced") r->class_weights = BalancedWeights(train.labels, classes);
  const int64_t n = train.size(), bs = r->cfg.batch_size;
  r->steps_per_epoch = r->model->transductive() ? 1 : (r->cfg.drop_last ? n / bs : (n + bs - 1) / bs);
  return r;
}

void Epoch(Run& r, const worker::Split& train, const worker::Split& val, int classes) {
  Phases p;
  models::LossContext ctx;
  ctx.epoch = r.epoch;
  ctx.num_epochs = 100;
  ctx.steps_per_epoch = r.steps_per_epoch;
  ctx.class_weights = r.class_weights;
  const bool transductive = r.model->transductive();
  const int64_t n = train.size();
  const int64_t bs = transductive ? n : r.cfg.batch_size;
  double t = CpuNow();
  auto lap = [&t](double* into) {
    const double now = CpuNow();
    *into += now - t;
    t = now;
  };
  r.model->train();
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  if (!transductive) std::shuffle(order.begin(), order.end(), r.rng);
  torch::Tensor loss_acc = torch::zeros({}, torch::kDouble);
  lap(&p.data);
  for (int64_t s = 0; s < r.steps_per_epoch; ++s) {
    const int64_t lo = s * bs, len = std::min(bs, n - lo);
    models::Batch batch;
    torch::Tensor idx = torch::from_blob(order.data() + lo, {len}, torch::kLong);
    for (const auto& [mod, x] : train.inputs) {
      torch::Tensor& buf = r.bufs[mod];
      if (!buf.defined()) buf = torch::empty({bs, x.size(1)}, x.options());
      buf.resize_({len, x.size(1)});
      at::index_select_out(buf, x, 0, idx);
      batch.inputs[mod] = buf;
    }
    if (!r.label_buf.defined()) r.label_buf = torch::empty({bs}, torch::kLong);
    r.label_buf.resize_({len});
    at::index_select_out(r.label_buf, train.labels, 0, idx);
    batch.labels = r.label_buf;
    lap(&p.data);
    r.flat->ZeroGrad();
    lap(&p.optimizer);
    ctx.step = r.epoch * r.steps_per_epoch + s;
    models::ModelOutput out = r.model->Forward(batch);
    torch::Tensor total = r.model->Loss(out, batch, ctx).total;
    lap(&p.forward);
    total.backward();
    loss_acc += total.detach().to(torch::kDouble) * static_cast<double>(len);
    lap(&p.backward);
    if (r.cfg.grad_clip > 0) {  // as worker/trainer_epoch.cc: the clip coefficient is applied inside the update
      r.flat->SyncGrads();
      r.opt->Step(worker::ClipScale(r.flat->grads(), 0, r.flat->numel(), r.cfg.grad_clip));
    } else {  // one process, no clipping: the update reads the .grads in place
      r.opt->Step(r.flat->GradRanges());
    }
    lap(&p.optimizer);
  }
  const double loss = loss_acc.item<double>() / static_cast<double>(r.steps_per_epoch * bs > n ? n : r.steps_per_epoch * bs);
  lap(&p.forward);
  auto ev = worker::Evaluate(*r.model, val, r.cfg.batch_size, ctx, classes, false, torch::kCPU);
  if (!ev.ok()) std::fprintf(stderr, "%s: %s\n", r.seed->name, ev.status().ToString().c_str());
  lap(&p.eval);
  r.epochs.push_back(p);
  r.losses.push_back(loss);
  ++r.epoch;
}

// At most this many bytes for the K-member optimizer buffers the ceiling times.
constexpr double kPackBytes = 4e8;

// Issue 16: a pack of the seed models (3 seeds x 5 folds) should reach this many times the unpacked samples/s.
constexpr double kPackTarget = 3.0;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(EMOSWEEP_SHARED_DIR) + "/features/iemocap-seed-pkl";
  std::string only, trace;
  bool mm_detail = false;  // per product shape: its time inside the census epoch against its time alone
  int epochs = 5, warmup = 1;
  int64_t pack_k = 15;  // members of the pack whose ceiling is printed (issue 16: 3 seeds x 5 folds)
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--pickles" && i + 1 < argc) dir = argv[++i];
    else if (a == "--models" && i + 1 < argc) only = "," + std::string(argv[++i]) + ",";
    else if (a == "--epochs" && i + 1 < argc) epochs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--warmup" && i + 1 < argc) warmup = std::max(0, std::atoi(argv[++i]));
    else if (a == "--json") as_json = true;
    else if (a == "--trace" && i + 1 < argc) trace = argv[++i];
    else if (a == "--mm-detail") mm_detail = true;
    else if (a == "--pack-k" && i + 1 < argc) pack_k = std::max(0, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: seed_epoch_bench [--pickles DIR] [--models a,b] [--epochs N] [--warmup N] [--json] "
                           "[--trace PREFIX] [--pack-k K] [--mm-detail]\n");
      return 2;
    }
  }
  at::set_num_threads(1);
  const std::string pkl = dir + "/cemobam_IEMOCAP_BERT_WAV2VEC_val.pkl";
  if (!FileExists(pkl)) {
    std::fprintf(stderr, "seed_epoch_bench: %s not found (../shared absent?)\n", pkl.c_str());
    return 2;
  }
  // Data: the val pickle in memory, 90/10 class-stratified (seed 0) -> 495 / 56.
  auto map = data::LabelMap::Load("cemobam_iemocap4");
  auto labels = data::NamedLabelSet("core4");
  if (!map.ok() || !labels.ok()) return 1;
  data::PickleImportOptions io;
  io.corpus_name = "iemocap_cemobam_val";
  io.label_map = &*map;
  data::ImportReport report;
  auto corpus = data::ImportSeedPickles({pkl}, io, &report);
  if (!corpus.ok()) {
    std::fprintf(stderr, "seed_epoch_bench: %s\n", corpus.status().ToString().c_str());
    return 2;
  }
  // The split: ceil(0.1 × 551) = 56 validation rows, class-stratified (sklearn's train_test_split
  // rounding: per-class floor, the remainder to the classes with the largest fractional parts), seed 0.
  // `data split` rounds each class separately and cannot hit 56 on this file (54 or 57).
  const size_t n_all = corpus->utterances.size();
  const size_t want_val = static_cast<size_t>(std::ceil(0.1 * static_cast<double>(n_all)));
  std::map<std::string, std::vector<size_t>> by_label;
  for (size_t i = 0; i < n_all; ++i) by_label[corpus->utterances[i].label].push_back(i);
  std::vector<std::pair<double, std::string>> remainders;
  std::map<std::string, size_t> take;
  size_t taken = 0;
  for (auto& [label, rows] : by_label) {
    const double exact = static_cast<double>(want_val) * static_cast<double>(rows.size()) / static_cast<double>(n_all);
    take[label] = static_cast<size_t>(std::floor(exact));
    taken += take[label];
    remainders.push_back({exact - std::floor(exact), label});
  }
  std::sort(remainders.rbegin(), remainders.rend());
  for (size_t i = 0; taken < want_val && i < remainders.size(); ++i, ++taken) ++take[remainders[i].second];
  std::mt19937_64 split_rng(0);
  std::vector<std::string> train_ids, val_ids;
  for (auto& [label, rows] : by_label) {
    std::shuffle(rows.begin(), rows.end(), split_rng);
    for (size_t j = 0; j < rows.size(); ++j) (j < take[label] ? val_ids : train_ids).push_back(corpus->utterances[rows[j]].id);
  }
  const std::map<std::string, std::string> features = {{"audio", "audio"}, {"text", "text"}};
  auto train = worker::SplitFromCorpus(*corpus, train_ids, features, *labels, true, pkl + " train");
  auto val = worker::SplitFromCorpus(*corpus, val_ids, features, *labels, true, pkl + " val");
  if (!train.ok() || !val.ok()) return 1;
  const int classes = static_cast<int>(labels->size());
  std::printf("seed_epoch_bench: %s, %lld train / %lld val rows, %d thread, %d warm-up + %d timed epochs "
              "(interleaved)\n",
              pkl.c_str(), static_cast<long long>(train->size()), static_cast<long long>(val->size()),
              at::get_num_threads(), warmup, epochs);

  std::vector<std::unique_ptr<Run>> runs;
  for (const auto& s : SeedModels()) {
    if (!only.empty() && only.find("," + std::string(s.name) + ",") == std::string::npos) continue;
    auto r = MakeRun(s, *train, classes, *labels);
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s\n", s.name, r.status().ToString().c_str());
      return 1;
    }
    runs.push_back(std::move(*r));
  }
  for (int e = 0; e < warmup + epochs; ++e)
    for (auto& r : runs) Epoch(*r, *train, *val, classes);

  if (!trace.empty())
    for (auto& r : runs) {
      torch::autograd::profiler::RecordProfile rp(trace + r->seed->name + ".json");
      Epoch(*r, *train, *val, classes);
      r->epochs.pop_back();
    }
  // Census epoch (not timed), then the floor of each model.
  json out = {{"train_rows", train->size()}, {"val_rows", val->size()}, {"models", json::array()}};
  std::printf("\n%-8s %5s %9s %5s | %7s %7s | %6s %6s %6s %6s %6s | %7s %7s %7s %6s | %6s %6s %6s\n", "model", "batch",
              "params", "steps", "min s", "med s", "data", "fwd", "bwd", "opt", "eval", "GFLOP", "mm s", "floor s",
              "GF/s", "/floor", "target", "/targ");
  std::vector<std::string> ceiling_rows;
  for (auto& r : runs) {
    std::map<MmKey, int64_t> census;
    std::map<MmKey, double> census_s;
    {
      std::lock_guard<std::mutex> l(g_census_mu);
      g_census = &census;
      g_census_s = mm_detail ? &census_s : nullptr;
    }
    auto handle = at::addGlobalCallback(at::RecordFunctionCallback(&OnOp, &OnOpEnd).needsInputs(true));
    Epoch(*r, *train, *val, classes);
    at::removeCallback(handle);
    {
      std::lock_guard<std::mutex> l(g_census_mu);
      g_census = nullptr;
      g_census_s = nullptr;
    }
    r->epochs.pop_back();
    // Pack ceiling: a member of a pack of `pack_k` still does its own products over its own weights and
    // its own optimizer pass, so its epoch cannot cost less than `member_floor`: each product at the
    // cheaper of the single call and the batched call per member (bmm over pack_k members' operands), plus
    // the cheaper of the single pass and the pass per member over pack_k members' parameters.
    double flops = 0, mm_s = 0, mm_pack_s = 0, mm_member_s = 0, mm_cold_s = 0, in_situ_s = 0;
    int64_t cheaper_packed = 0;
    json shapes = json::array();
    for (const auto& [k, c] : census) {
      const double f = 2.0 * std::max<int64_t>(1, k.b) * k.m * k.k * k.n;
      const double t = TimeProduct(k);
      const double tk = pack_k > 0 ? TimeProduct(k, pack_k) : t;
      flops += f * c;
      mm_s += t * c;
      mm_pack_s += tk * c;
      mm_member_s += std::min(t, tk) * c;
      cheaper_packed += tk < t ? 1 : 0;
      shapes.push_back({{"b", k.b}, {"m", k.m}, {"k", k.k}, {"n", k.n}, {"ta", k.ta}, {"tb", k.tb}, {"count", c},
                        {"s_per_call", t}, {"packed_s_per_member", tk}});
      if (mm_detail) {
        const double tc = TimeProduct(k, 0, /*cold=*/true);
        mm_cold_s += tc * c;
        std::fprintf(stderr,
                     "%s mm b%lld %lldx%lldx%lld%s%s x%lld: in situ %.2f ms, alone %.2f ms (%.2fx), operands from L3 "
                     "%.2f ms (%.2fx)\n",
                     r->seed->name, static_cast<long long>(k.b), static_cast<long long>(k.m),
                     static_cast<long long>(k.k), static_cast<long long>(k.n), k.ta ? " At" : "", k.tb ? " Bt" : "",
                     static_cast<long long>(c), 1e3 * census_s[k], 1e3 * t * c, census_s[k] / (t * c), 1e3 * tc * c,
                     census_s[k] / (tc * c));
      }
    }
    if (mm_detail) {
      for (const auto& [k, c] : census) in_situ_s += census_s[k];
      std::fprintf(stderr,
                   "%s products: in situ %.1f ms in the census epoch, alone %.1f ms (%.2fx), operands from L3 %.1f ms "
                   "(%.2fx)\n",
                   r->seed->name, 1e3 * in_situ_s, 1e3 * mm_s, in_situ_s / mm_s, 1e3 * mm_cold_s,
                   in_situ_s / mm_cold_s);
    }
    const double pass = TimePass(r->flat->numel(), 1);
    // The pass over pack_k members' parameters, as many members as fit in kPackBytes of parameters + gradients
    // (the bench holds all six models besides: its peak stays under 2 GB).
    const int64_t numel = r->flat->numel();
    auto members_within = [&](double bytes_per_member) {
      return std::clamp<int64_t>(static_cast<int64_t>(kPackBytes / bytes_per_member), 1, std::max<int64_t>(1, pack_k));
    };
    const int64_t pass_k = members_within(8.0 * static_cast<double>(numel));
    const double pass_pack = pack_k > 0 ? TimePass(numel, pass_k) : pass;
    const double floor = mm_s + pass * static_cast<double>(r->steps_per_epoch);
    // The same floor with every product's operands from L3 (--mm-detail): what the products cost where the
    // model's weights and activations cannot all stay in L2 between one product and the next.
    const double floor_l3 = mm_cold_s + pass * static_cast<double>(r->steps_per_epoch);
    const double member_floor = mm_member_s + std::min(pass, pass_pack) * static_cast<double>(r->steps_per_epoch);
    // The optimizer phase's parts, one call each (best of 5): zeroing, clipping, the update.
    auto best_of = [](auto&& f) {
      double b = 1e30;
      for (int i = 0; i < 5; ++i) {
        const double t0 = CpuNow();
        f();
        b = std::min(b, CpuNow() - t0);
      }
      return b;
    };
    const double zero_s = best_of([&] { r->flat->ZeroGrad(); });
    r->flat->grads().normal_(0, 1, BenchGen());
    const double clip_s =
        r->cfg.grad_clip > 0 ? best_of([&] { worker::ClipScale(r->flat->grads(), 0, r->flat->numel(), 1e30); }) : 0.0;
    torch::Tensor saved = r->flat->params().clone();
    const double step_s = best_of([&] { r->opt->Step(); });
    r->flat->params().copy_(saved);
    saved = torch::Tensor();
    // The bitwise floor of a packed member: a pack equal to its jobs alone does each member's own update (the
    // same fused AdamW/Adam arithmetic over its parameters, gradient and moments) and, when it clips, the norm of
    // its own gradient; so besides the products the member pays the cheaper of the model's update and the update
    // per member over step_k members' buffers, and the clip norm.
    const int64_t step_k = members_within(16.0 * static_cast<double>(numel));
    double step_pack = step_s;
    if (pack_k > 0) {
      auto pk = torch::empty({numel * step_k}), gk = torch::empty({numel * step_k});
      pk.fill_(0.5);
      gk.fill_(0.25);
      auto kflat = worker::FlatParameters::OverBuffers(pk, gk);
      worker::FusedOptimizer kopt(&kflat, r->cfg);
      kopt.Step();  // allocates the moments
      step_pack = best_of([&] { kopt.Step(); }) / static_cast<double>(step_k);
    }
    const double bitwise_floor =
        mm_member_s + (std::min(step_s, step_pack) + clip_s) * static_cast<double>(r->steps_per_epoch);
    std::fprintf(stderr, "%s optimizer parts (s per call): zero %.5f clip %.5f step %.5f pass %.5f\n", r->seed->name,
                 zero_s, clip_s, step_s, pass);
    std::vector<double> tot, d, f, b, o, ev;
    for (size_t i = static_cast<size_t>(warmup); i < r->epochs.size(); ++i) {
      const auto& p = r->epochs[i];
      tot.push_back(p.total());
      d.push_back(p.data);
      f.push_back(p.forward);
      b.push_back(p.backward);
      o.push_back(p.optimizer);
      ev.push_back(p.eval);
    }
    const double med = Median(tot), mn = *std::min_element(tot.begin(), tot.end());
    const double target = r->seed->original_s / 3.0;
    const std::string bs = r->model->transductive() ? "full" : std::to_string(r->cfg.batch_size);
    std::printf("%-8s %5s %9lld %5lld | %7.3f %7.3f | %6.3f %6.3f %6.3f %6.3f %6.3f | %7.2f %7.3f %7.3f %6.1f | %6.2f "
                "%6.3f %6.2f\n",
                r->seed->name, bs.c_str(), static_cast<long long>(r->flat->numel()),
                static_cast<long long>(r->steps_per_epoch), mn, med, Median(d), Median(f), Median(b), Median(o),
                Median(ev), flops / 1e9, mm_s, floor, flops / mm_s / 1e9, med / floor, target, med / target);
    if (mm_detail)
      std::fprintf(stderr,
                   "%s floor with the products' operands from L3: %.3f s (products %.3f + %lld passes %.3f); target "
                   "%.3f s = %.2fx that floor; epoch %.3f s = %.2fx it\n",
                   r->seed->name, floor_l3, mm_cold_s, static_cast<long long>(r->steps_per_epoch),
                   pass * static_cast<double>(r->steps_per_epoch), target, target / floor_l3, med, med / floor_l3);
    if (pack_k > 0) {
      char line[320];
      const double loose = med / member_floor, tight = med / bitwise_floor;
      std::snprintf(line, sizeof line,
                    "%-8s %7.3f | %6.3f %6.3f %3lld/%-3zu | %6.4f %6.4f %3lld | %7.3f %6.2f | %6.4f %6.4f %3lld %6.4f | %7.3f "
                    "%6.2f | %s",
                    r->seed->name, med, mm_s, mm_pack_s, static_cast<long long>(cheaper_packed), census.size(), pass,
                    pass_pack, static_cast<long long>(pass_k), member_floor, loose, step_s, step_pack,
                    static_cast<long long>(step_k), clip_s, bitwise_floor, tight,
                    tight >= kPackTarget ? "possible" : loose >= kPackTarget ? "impossible bitwise" : "impossible");
      ceiling_rows.push_back(line);
    }
    out["models"].push_back({{"model", r->seed->name},
                             {"batch", bs},
                             {"parameters", r->flat->numel()},
                             {"steps_per_epoch", r->steps_per_epoch},
                             {"epoch_s_min", mn},
                             {"epoch_s_median", med},
                             {"epoch_s_all", tot},
                             {"median_s", {{"data", Median(d)}, {"forward", Median(f)}, {"backward", Median(b)},
                                           {"optimizer", Median(o)}, {"eval", Median(ev)}}},
                             {"gflop_per_epoch", flops / 1e9},
                             {"matmul_floor_s", mm_s},
                             {"matmul_in_situ_s", mm_detail ? json(in_situ_s) : json()},
                             {"matmul_operands_from_l3_s", mm_detail ? json(mm_cold_s) : json()},
                             {"floor_operands_from_l3_s", mm_detail ? json(floor_l3) : json()},
                             {"optimizer_pass_s", pass},
                             {"optimizer_call_s", {{"zero", zero_s}, {"clip", clip_s}, {"step", step_s}}},
                             {"floor_s", floor},
                             {"ratio_to_floor", med / floor},
                             {"original_s", r->seed->original_s},
                             {"target_s", target},
                             {"ratio_to_target", med / target},
                             {"speedup_vs_original", r->seed->original_s / med},
                             {"pack",
                              {{"members", pack_k},
                               {"matmul_s_per_member", mm_pack_s},
                               {"matmul_member_floor_s", mm_member_s},
                               {"shapes_cheaper_packed", cheaper_packed},
                               {"optimizer_pass_members", pass_k},
                               {"optimizer_pass_s_per_member", pass_pack},
                               {"member_floor_s", member_floor},
                               {"ceiling", med / member_floor},
                               {"optimizer_step_members", step_k},
                               {"optimizer_step_s_per_member", step_pack},
                               {"bitwise_member_floor_s", bitwise_floor},
                               {"bitwise_ceiling", med / bitwise_floor},
                               {"target", kPackTarget},
                               {"target_possible", med / bitwise_floor >= kPackTarget}}},
                             {"train_loss_per_epoch", r->losses},
                             {"matmul_shapes", shapes}});
  }
  if (pack_k > 0) {
    std::printf("\npack ceiling, K = %lld members (a pack's samples/s over unpacked cannot exceed med s / a member's "
                "floor; target %.0fx)\n%-8s %7s | %6s %6s %7s | %6s %6s %3s | %7s %6s | %6s %6s %3s %6s | %7s %6s | %s\n",
                static_cast<long long>(pack_k), kPackTarget, "model", "med s", "mm s", "mm@K", "shapes<", "pass", "pass@K",
                "K", "floor", "ceil", "step", "step@K", "K", "clip", "bw flr", "bw ceil", "target");
    for (const auto& line : ceiling_rows) std::printf("%s\n", line.c_str());
    std::printf("mm s: the epoch's products one call each; mm@K: the same products as one bmm over K members, per member;"
                " shapes<: how many shapes the batched call made cheaper.\nfloor: a packed member's products (the cheaper"
                " figure per shape) + steps x the cheaper of one p += g pass alone and per member over K members; ceil ="
                " med s / floor.\nbw flr: the bitwise contract's floor: the products + steps x (the cheaper of the fused"
                " update alone and per member over K members + the clip norm); bw ceil = med s / bw flr.\n");
  }
  std::printf("\nmin/med s: CPU seconds per epoch (train + validation), min and median over the timed epochs; phase "
              "columns are medians.\nfloor = matrix products at this machine's measured rate on the same shapes + one "
              "parameter pass per step; target = original / 3.\n");
  const models::GatSparseCounts gat = models::GatSparseProductCounts();
  if (gat.forward + gat.edge_dots + gat.transposed + gat.rejected > 0)
    std::fprintf(stderr,
                 "GAT attention products over the edges only (models/gat_sparse.h, not in the floor's census): "
                 "alpha.X %lld, d_alpha %lld, alpha^T.dOut %lld; shapes kept on torch's bmm %lld\n",
                 static_cast<long long>(gat.forward), static_cast<long long>(gat.edge_dots),
                 static_cast<long long>(gat.transposed), static_cast<long long>(gat.rejected));
  if (as_json) std::printf("%s\n", out.dump(1).c_str());
  return 0;
}
