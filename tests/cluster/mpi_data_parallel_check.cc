// Data-parallel training under real mpirun -n 2 (ctest mpi_data_parallel, label "mpi").
//
//   mpirun -n 2 mpi_data_parallel_check WORK_DIR
//
// 1. Equivalence: the same job on a group of 2 ranks (MPI reducer) and on one
//    rank (world of one) with the same global batch gives the same curve,
//    selected epoch and evaluation within the tolerance documented in
//    docs/design/distributed.md ("Equivalence"). Cases: an uneven last batch
//    (45 rows, batch 8: last batch 5 = 2 + 3), a last batch smaller than the
//    group (33 rows, batch 16: last batch 1, so rank 0 has no rows and no
//    gradients on that step), and a DANN job on the same odd sizes (the
//    discriminator's parameters get no gradient on rank 0 on that step; the
//    target cursor wraps mid-batch). Both ranks must also agree bitwise.
// 2. Stop agreement: the stop flag raised on rank 1 only (the rank that does
//    not write the state) after epoch 3: both ranks stop after the same epoch,
//    the leader writes the state once, a group whose ranks cannot see the same
//    state refuses to start instead of hanging, and resuming gives bitwise the
//    result of an uninterrupted group run.
// A failed check aborts the MPI world (MPI_Abort), so nothing hangs.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <ATen/CPUGeneratorImpl.h>

#include "cluster/world.h"
#include "data/feature_store.h"
#include "models/torchscript_reference.h"
#include "worker/checkpoint.h"
#include "worker/job.h"
#include "worker/trainer.h"

using namespace emosweep;
namespace fs = std::filesystem;

namespace {

cluster::World* g_world = nullptr;
int g_rank = 0;

#define CHECK_OR_DIE(cond, ...)                                     \
  do {                                                              \
    if (!(cond)) {                                                  \
      std::fprintf(stderr, "rank %d: FAILED %s: ", g_rank, #cond);  \
      std::fprintf(stderr, __VA_ARGS__);                            \
      std::fprintf(stderr, "\n");                                   \
      std::fflush(stderr);                                          \
      g_world->comm().Abort(3, "check failed");                     \
    }                                                               \
  } while (0)

// Tolerances of the 2-rank vs 1-rank comparison (docs/design/distributed.md).
constexpr double kLossRelTol = 1e-4;  // per-epoch train/val loss, relative
constexpr double kProbTol = 1e-3;     // every class probability of every test utterance

// Three classes with per-class means; `shift` moves the whole corpus (DA target).
data::Corpus MakeCorpus(const std::string& name, int per_class, uint64_t seed, double shift) {
  data::Corpus c;
  c.name = name;
  c.label_set = {"anger", "happiness", "sadness"};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.f, 1.f);
  data::FeatureSet audio{"a", "audio", 8}, text{"t", "text", 6};
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < per_class; ++i) {
      data::Utterance u;
      u.id = name + "_" + std::to_string(k) + "_" + std::to_string(i);
      u.speaker = "s" + std::to_string(i % 4);
      u.label = c.label_set[static_cast<size_t>(k)];
      u.original_label = u.label;
      c.utterances.push_back(u);
      for (int d = 0; d < 8; ++d) audio.values.push_back((d % 3 == k ? 1.2f : 0.f) + static_cast<float>(shift) + noise(rng));
      for (int d = 0; d < 6; ++d) text.values.push_back((d % 3 == k ? 0.8f : 0.f) + noise(rng));
    }
  c.features = {audio, text};
  return c;
}

std::vector<std::string> Ids(const data::Corpus& c, int from, int to) {  // rows [from, to) of each class
  std::vector<std::string> ids;
  const int per_class = static_cast<int>(c.size() / 3);
  for (int k = 0; k < 3; ++k)
    for (int i = from; i < to; ++i) ids.push_back(c.utterances[static_cast<size_t>(k * per_class + i)].id);
  return ids;
}

struct Stores {
  data::Corpus src, tgt;
  std::string src_path, src_hash, tgt_path, tgt_hash;
};

jobs::JobSpec Spec(const Stores& s, int train_per_class, int batch, bool dann, int epochs) {
  jobs::JobSpec j;
  j.kind = dann ? "adapt" : "supervised";
  j.features = {{"audio", "a"}, {"text", "t"}};
  j.labels = {"anger", "happiness", "sadness"};
  j.train = {{s.src_path, s.src_hash, Ids(s.src, 0, train_per_class)}};
  j.val = {{s.src_path, s.src_hash, Ids(s.src, 20, 26)}};
  j.eval["test"] = {{s.src_path, s.src_hash, Ids(s.src, 26, 36)}};
  if (dann) {
    j.eval["target"] = {{s.tgt_path, s.tgt_hash, Ids(s.tgt, 7, 17)}};
    j.target_unlabeled = {{s.tgt_path, s.tgt_hash, Ids(s.tgt, 0, 7)}};  // 21 rows: wraps mid-batch
    j.adapt = {{"variant", "dann_ganin"}, {"weight", 0.3}, {"disc_dropout", 0.0}, {"disc_hidden", {16}}};
  }
  j.model = {{"name", "concat_mlp"}, {"hidden_dims", {32}}, {"dropout", 0.0}};
  j.train_config = {{"epochs", epochs}, {"batch_size", batch}, {"lr", 5e-3}, {"schedule", "onecycle"},
                    {"grad_clip", 1.0}, {"label_smoothing", 0.1}};
  j.seed = 11;
  j.id = j.ComputeId();
  return j;
}

double RelDiff(double a, double b) { return std::fabs(a - b) / std::max(1.0, std::fabs(b)); }

// Everything a rank's result says, exactly (for the cross-rank bitwise check).
std::string Fingerprint(const jobs::JobResult& r) {
  std::string s;
  for (const auto& e : r.curve) s += std::to_string(e.train_loss) + "/" + std::to_string(e.val_loss) + ";";
  for (const auto& [name, ev] : r.evals)
    for (const auto& p : ev.predictions)
      for (float v : p.probs) s.append(reinterpret_cast<const char*>(&v), sizeof v);
  return s;
}

// Rank 1 sends its fingerprint; rank 0 checks it equals its own.
void CheckRanksAgree(cluster::Communicator& comm, const jobs::JobResult& r, const std::string& what) {
  const std::string mine = Fingerprint(r);
  if (comm.rank() != 0) {
    CHECK_OR_DIE(comm.Send(0, 31, mine).ok(), "send fingerprint");
    return;
  }
  for (int peer = 1; peer < comm.size(); ++peer) {
    auto m = comm.Recv(peer, 31, 120.0);
    CHECK_OR_DIE(m.ok() && m->has_value(), "%s: no fingerprint from rank %d", what.c_str(), peer);
    CHECK_OR_DIE((*m)->payload == mine, "%s: rank %d's result differs from rank 0's", what.c_str(), peer);
  }
}

void CheckEquivalent(const std::string& name, const jobs::JobSpec& spec, cluster::GradientReducer& red) {
  jobs::JobContext one;  // world of one
  auto ref = worker::RunJob(spec, one);
  CHECK_OR_DIE(ref.ok(), "%s: 1-rank run: %s", name.c_str(), ref.status().ToString().c_str());
  jobs::JobContext group;
  group.reducer = &red;
  auto dp = worker::RunJob(spec, group);
  CHECK_OR_DIE(dp.ok(), "%s: 2-rank run: %s", name.c_str(), dp.status().ToString().c_str());
  CHECK_OR_DIE(dp->info["world_size"] == red.size() && ref->info["world_size"] == 1, "%s: world sizes", name.c_str());
  CHECK_OR_DIE(dp->info["optimizer_steps"] == ref->info["optimizer_steps"], "%s: steps differ", name.c_str());
  CHECK_OR_DIE(dp->curve.size() == ref->curve.size(), "%s: %zu vs %zu epochs", name.c_str(), dp->curve.size(),
               ref->curve.size());
  double max_loss = 0, max_prob = 0, max_metric = 0;
  for (size_t e = 0; e < ref->curve.size(); ++e) {
    max_loss = std::max({max_loss, RelDiff(dp->curve[e].train_loss, ref->curve[e].train_loss),
                         RelDiff(dp->curve[e].val_loss, ref->curve[e].val_loss)});
  }
  CHECK_OR_DIE(max_loss <= kLossRelTol, "%s: loss differs by %.3g (relative)", name.c_str(), max_loss);
  CHECK_OR_DIE(dp->selected_epoch == ref->selected_epoch, "%s: selected epoch %d vs %d", name.c_str(),
               dp->selected_epoch, ref->selected_epoch);
  int flipped = 0;
  for (const auto& [set, ev] : ref->evals) {
    const auto& other = dp->evals.at(set);
    CHECK_OR_DIE(other.predictions.size() == ev.predictions.size(), "%s: %s size", name.c_str(), set.c_str());
    for (size_t i = 0; i < ev.predictions.size(); ++i) {
      flipped += other.predictions[i].pred != ev.predictions[i].pred;
      for (size_t k = 0; k < ev.predictions[i].probs.size(); ++k)
        max_prob = std::max(max_prob, static_cast<double>(std::fabs(other.predictions[i].probs[k] - ev.predictions[i].probs[k])));
    }
    for (const char* m : {"ua", "wa", "macro_f1"})
      max_metric = std::max(max_metric, std::fabs(other.metrics[m].get<double>() - ev.metrics[m].get<double>()));
  }
  CHECK_OR_DIE(max_prob <= kProbTol, "%s: probabilities differ by %.3g", name.c_str(), max_prob);
  CHECK_OR_DIE(flipped == 0 && max_metric == 0, "%s: %d predictions flipped, metrics differ by %.3g", name.c_str(),
               flipped, max_metric);
  CheckRanksAgree(g_world->comm(), *dp, name);
  if (g_rank == 0)
    std::printf("  %-34s epochs %2zu steps %3d | max rel loss diff %.2e | max prob diff %.2e | metrics equal\n",
                name.c_str(), ref->curve.size(), ref->info["optimizer_steps"].get<int>(), max_loss, max_prob);
}

void CheckStopAgreement(const Stores& s, cluster::GradientReducer& red, const fs::path& dir) {
  const jobs::JobSpec spec = Spec(s, 15, 8, /*dann=*/true, /*epochs=*/7);
  const std::string shared = (dir / "work_shared").string();
  jobs::JobContext full_ctx;
  full_ctx.reducer = &red;
  full_ctx.work_dir = (dir / "work_full").string();
  auto full = worker::RunJob(spec, full_ctx);
  CHECK_OR_DIE(full.ok(), "uninterrupted group run: %s", full.status().ToString().c_str());

  // The flag on rank 1 only, raised during epoch 3 (index 2).
  std::atomic<bool> stop{false};
  jobs::JobContext ctx;
  ctx.reducer = &red;
  ctx.work_dir = shared;
  ctx.stop_requested = &stop;
  ctx.on_epoch = [&](const jobs::EpochRecord& r) {
    if (g_rank == 1 && r.epoch == 2) stop = true;
  };
  auto first = worker::RunJob(spec, ctx);
  CHECK_OR_DIE(!first.ok() && first.status().code() == StatusCode::kAborted, "interrupted run: %s",
               first.status().ToString().c_str());
  CHECK_OR_DIE(first.status().message().find("after epoch 3") != std::string::npos, "stopped at the wrong epoch: %s",
               first.status().message().c_str());
  // Rank 0 reads the state only after both ranks returned (the Recv orders it).
  CheckRanksAgree(g_world->comm(), jobs::JobResult{}, "barrier");
  if (g_rank == 0) {
    const std::string state = worker::JobStatePath(shared, spec.id);
    auto c = worker::ReadCheckpoint(state);
    CHECK_OR_DIE(c.ok(), "state: %s", c.status().ToString().c_str());
    CHECK_OR_DIE(c->meta["next_epoch"] == 3, "state resumes at epoch %s", c->meta["next_epoch"].dump().c_str());
    int files = 0;
    for (const auto& e : fs::directory_iterator(fs::path(state).parent_path())) files += e.is_regular_file();
    CHECK_OR_DIE(files == 1, "%d files in the job's work directory (want the state only)", files);
  }

  // Ranks that cannot see the same state must refuse together, not hang.
  stop = false;
  jobs::JobContext split = ctx;
  split.on_epoch = nullptr;
  if (g_rank == 1) split.work_dir = (dir / "work_rank1_only").string();
  auto refused = worker::RunJob(spec, split);
  CHECK_OR_DIE(!refused.ok() && refused.status().code() == StatusCode::kFailedPrecondition &&
                   refused.status().message().find("shared work directory") != std::string::npos,
               "non-shared work directories: %s", refused.status().ToString().c_str());

  jobs::JobContext resume = ctx;
  resume.on_epoch = nullptr;
  auto rest = worker::RunJob(spec, resume);
  CHECK_OR_DIE(rest.ok(), "resume: %s", rest.status().ToString().c_str());
  CHECK_OR_DIE(rest->info["resumed_from_epoch"] == 3, "resumed from %s", rest->info["resumed_from_epoch"].dump().c_str());
  CHECK_OR_DIE(Fingerprint(*rest) == Fingerprint(*full), "resumed result differs from the uninterrupted group run");
  CheckRanksAgree(g_world->comm(), *rest, "resumed run");
  // The leader removes the state at the end of its run (rank 1 may get here first).
  if (g_rank == 0)
    CHECK_OR_DIE(!fs::exists(worker::JobStatePath(shared, spec.id)), "state left behind after the job finished");
  if (g_rank == 0)
    std::printf("  stop flag on rank 1 only            both ranks stopped after epoch 3; state written once; "
                "non-shared work dirs refused; resume bitwise equal\n");
}

// Dropout in a group (helper-59): every rank drew the same stream, so row i of every equal-sized shard got the same
// mask. Rank 0 draws the job's stream (as a world of one), the other ranks a stream of their own per epoch; the
// ranks still agree bitwise (the allreduce keeps one model), and an interrupted-and-resumed group run equals an
// uninterrupted one bitwise (the per-epoch streams do not depend on where the run started).
void CheckDropoutStreams(const Stores& s, cluster::GradientReducer& red, const fs::path& dir) {
  jobs::JobSpec spec = Spec(s, 16, 8, /*dann=*/true, /*epochs=*/5);  // 48 rows: equal shards of 4
  spec.model = {{"name", "concat_mlp"}, {"hidden_dims", {32}}, {"dropout", 0.5}};
  spec.adapt["disc_dropout"] = 0.3;
  spec.id = spec.ComputeId();
  jobs::JobContext full_ctx;
  full_ctx.reducer = &red;
  full_ctx.work_dir = (dir / "drop_full").string();
  auto full = worker::RunJob(spec, full_ctx);
  CHECK_OR_DIE(full.ok(), "dropout group run: %s", full.status().ToString().c_str());
  CheckRanksAgree(g_world->comm(), *full, "dropout group run");
  // The last epoch's seed of each rank's generator: rank 1's must not be rank 0's.
  const std::string seed = std::to_string(at::detail::getDefaultCPUGenerator().current_seed());
  if (g_rank != 0) {
    CHECK_OR_DIE(g_world->comm().Send(0, 32, seed).ok(), "send seed");
  } else {
    auto m = g_world->comm().Recv(1, 32, 120.0);
    CHECK_OR_DIE(m.ok() && m->has_value(), "no seed from rank 1");
    CHECK_OR_DIE((*m)->payload != seed, "rank 1 drew rank 0's dropout stream (seed %s)", seed.c_str());
  }
  std::atomic<bool> stop{false};
  jobs::JobContext ctx;
  ctx.reducer = &red;
  ctx.work_dir = (dir / "drop_resume").string();
  ctx.stop_requested = &stop;
  ctx.on_epoch = [&](const jobs::EpochRecord& r) {
    if (r.epoch == 1) stop = true;
  };
  auto first = worker::RunJob(spec, ctx);
  CHECK_OR_DIE(!first.ok() && first.status().code() == StatusCode::kAborted, "interrupted dropout run: %s",
               first.status().ToString().c_str());
  CheckRanksAgree(g_world->comm(), jobs::JobResult{}, "barrier");
  ctx.stop_requested = nullptr;
  ctx.on_epoch = nullptr;
  auto rest = worker::RunJob(spec, ctx);
  CHECK_OR_DIE(rest.ok(), "resumed dropout run: %s", rest.status().ToString().c_str());
  CHECK_OR_DIE(Fingerprint(*rest) == Fingerprint(*full), "resumed dropout run differs from the uninterrupted one");
  if (g_rank == 0)
    std::printf("  dropout 0.5 + DANN, 2 ranks         ranks agree bitwise; rank 1 draws its own stream; resume "
                "bitwise equal\n");
}

// A BatchNorm model (msr_b: BatchNorm in its MICL projectors): per-shard batch statistics make it differ from
// one rank by design, but the ranks of the group must agree on everything they report: the running statistics
// are rank 0's before each validation (DDP's broadcast_buffers), so validation losses, early stopping and the
// predictions are the same on every rank.
void CheckBatchNormRanksAgree(const Stores& s, cluster::GradientReducer& red) {
  jobs::JobSpec spec = Spec(s, 15, 8, /*dann=*/false, /*epochs=*/3);
  spec.model = {{"name", "msr_b"}, {"hidden_dim", 32}, {"ffn_dim", 64}, {"dropout", 0.0}};
  spec.id = spec.ComputeId();
  jobs::JobContext ctx;
  ctx.reducer = &red;
  auto r = worker::RunJob(spec, ctx);
  CHECK_OR_DIE(r.ok(), "msr_b group run: %s", r.status().ToString().c_str());
  CheckRanksAgree(g_world->comm(), *r, "msr_b (BatchNorm)");
  if (g_rank == 0) std::printf("  msr_b (BatchNorm), 2 ranks          ranks agree bitwise (rank 0's running statistics)\n");
}

}  // namespace

int main(int argc, char** argv) {
  auto w = cluster::CreateWorld(&argc, &argv);
  if (!w.ok()) {
    std::fprintf(stderr, "CreateWorld: %s\n", w.status().ToString().c_str());
    return 1;
  }
  g_world = w->get();
  auto& comm = g_world->comm();
  g_rank = comm.rank();
  CHECK_OR_DIE(comm.size() == 2 && argc == 2, "usage: mpirun -n 2 %s WORK_DIR (size %d)", argv[0], comm.size());
  auto red = g_world->MakeGroupReducer(0, "cpu", cluster::BucketConfig{1024, 4096});  // several buckets
  CHECK_OR_DIE(red.ok(), "reducer: %s", red.status().ToString().c_str());
  CHECK_OR_DIE(std::string((*red)->backend()) == "mpi", "backend %s", (*red)->backend());

  const fs::path dir = fs::path(argv[1]) / "mpi_data_parallel";
  Stores s;
  s.src = MakeCorpus("src", 36, 5, 0.0);
  s.tgt = MakeCorpus("tgt", 17, 6, 0.7);
  s.src_path = (dir / "src.h5").string();
  s.tgt_path = (dir / "tgt.h5").string();
  if (g_rank == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    CHECK_OR_DIE(data::WriteFeatureStore(s.src_path, s.src).ok(), "write %s", s.src_path.c_str());
    CHECK_OR_DIE(data::WriteFeatureStore(s.tgt_path, s.tgt).ok(), "write %s", s.tgt_path.c_str());
    for (int r = 1; r < comm.size(); ++r) CHECK_OR_DIE(comm.Send(r, 30, "stores ready").ok(), "send");
  } else {
    auto m = comm.Recv(0, 30, 120.0);
    CHECK_OR_DIE(m.ok() && m->has_value(), "rank 0 did not write the stores");
  }
  auto si = data::ReadStoreInfo(s.src_path);
  auto ti = data::ReadStoreInfo(s.tgt_path);
  CHECK_OR_DIE(si.ok() && ti.ok(), "store info");
  s.src_hash = si->content_hash;
  s.tgt_hash = ti->content_hash;

  if (g_rank == 0) std::printf("mpi_data_parallel_check: 2 ranks (MPI reducer) vs 1 rank, same global batch\n");
  CheckEquivalent("uneven last batch (45 rows, bs 8)", Spec(s, 15, 8, false, 8), **red);
  CheckEquivalent("last batch < group (33 rows, bs 16)", Spec(s, 11, 16, false, 8), **red);
  CheckEquivalent("DANN, last batch < group", Spec(s, 11, 16, true, 8), **red);
  {
    // Class weights on imbalanced classes (15 / 7 / 11 rows): weighted CE divides by the batch's weight sum,
    // so shards are normalised by the global batch's mean weight (exact; a per-shard weighted mean is not).
    jobs::JobSpec w = Spec(s, 15, 8, false, 8);
    const int per_class = static_cast<int>(s.src.size() / 3);
    std::vector<std::string> ids;
    const int take[3] = {15, 7, 11};
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < take[k]; ++i) ids.push_back(s.src.utterances[static_cast<size_t>(k * per_class + i)].id);
    w.train = {{s.src_path, s.src_hash, ids}};
    w.train_config["class_weights"] = "balanced";
    w.id = w.ComputeId();
    CheckEquivalent("class-weighted, imbalanced (33 rows)", w, **red);
  }
  {
    // `torchscript` (issue 18): a scripted concat_mlp's parameters go through the same flat buffer and reducer,
    // its embedding through DANN's discriminator. Each rank writes its own copy of the file.
    const std::string ts = (dir / ("scripted_rank" + std::to_string(g_rank) + ".pt")).string();
    CHECK_OR_DIE(models::SaveScriptedConcatMlp(ts, {{"audio", 8}, {"text", 6}}, {32}, 0.0, 3).ok(), "write %s",
                 ts.c_str());
    jobs::JobSpec t = Spec(s, 11, 16, true, 8);
    t.model = {{"name", "torchscript"}, {"file", ts}};
    t.id = t.ComputeId();
    CheckEquivalent("torchscript, DANN, last batch < group", t, **red);
  }
  CheckStopAgreement(s, **red, dir);
  CheckBatchNormRanksAgree(s, **red);
  CheckDropoutStreams(s, **red, dir);

  CheckRanksAgree(comm, jobs::JobResult{}, "final barrier");
  if (g_rank == 0) fs::remove_all(dir);
  auto st = g_world->Finalize();
  if (g_rank == 0) std::printf("mpi_data_parallel_check: PASS\n");
  return st.ok() ? 0 : 1;
}
