// bench/ledger_scale_gen.cc: writes an N-job protocol and a ledger in which
// every job of it is finished, without training (issue 15's scale bench).
//
// The protocol is the quick-start protocol (protocols/library/quickstart.toml:
// in_domain 4-fold, 3x3 cross-corpus, DA synth_a -> synth_b; 29 jobs per seed
// and grid point) widened with a 5-point learning-rate grid and as many seeds
// as it takes to reach N jobs (N = 10^4 gives 10 005 jobs, as in the issue).
// Jobs are registered and handed out by the real Scheduler (so identities,
// deps and the sweep are exactly what `emosweep run` would write) and
// completed through Ledger::Complete with fake metrics (a hash of the job id).
// It prints the jobs written and the scheduler's cost per job (NextReady +
// OnFinished, CPU µs).
//
// Usage: ledger_scale_gen --stores DIR --jobs N --protocol OUT.toml --ledger OUT.db
//        (DIR holds synth_a.h5, synth_b.h5, synth_c.h5: `emosweep data synth --out DIR`)
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "orchestrator/ledger.h"
#include "orchestrator/runner.h"
#include "orchestrator/scheduler.h"
#include "protocols/expand.h"

namespace {

using namespace emosweep;

constexpr int kJobsPerSeedAndPoint = 29;
constexpr int kGridPoints = 5;

std::string ProtocolText(const std::string& stores, int seeds) {
  std::string seed_list;
  for (int s = 1; s <= seeds; ++s) seed_list += (s > 1 ? ", " : "") + std::to_string(s);
  return "version = 1\n"
         "name = \"scale\"\n"
         "description = \"quickstart widened with seeds and a learning-rate grid (bench/ledger_scale_gen)\"\n"
         "[corpora.synth_a]\nstore = \"" + stores + "/synth_a.h5\"\n"
         "[corpora.synth_b]\nstore = \"" + stores + "/synth_b.h5\"\n"
         "[corpora.synth_c]\nstore = \"" + stores + "/synth_c.h5\"\n"
         "[defaults]\n"
         "labels = \"core4\"\n"
         "features = {audio = \"synth_audio\", text = \"synth_text\"}\n"
         "seeds = [" + seed_list + "]\n"
         "selection = \"source_val\"\n"
         "split = {method = \"speaker_kfold\", k = 4, val_fraction = 0.15}\n"
         "train = {optimizer = \"adamw\", lr = 0.002, batch_size = 32, epochs = 8, metric = \"ua\"}\n"
         "[[experiment]]\nname = \"in_domain\"\nkind = \"in_domain\"\ncorpora = [\"synth_a\"]\n"
         "models = [\"concat_mlp\", \"mer_gfl\"]\n"
         "grid = {\"train.lr\" = [0.0005, 0.001, 0.002, 0.004, 0.008]}\n"
         "[[experiment]]\nname = \"cross_corpus\"\nkind = \"cross_corpus\"\n"
         "corpora = [\"synth_a\", \"synth_b\", \"synth_c\"]\nmodels = [\"concat_mlp\", \"mer_gfl\"]\n"
         "grid = {\"train.lr\" = [0.0005, 0.001, 0.002, 0.004, 0.008]}\n"
         "[[experiment]]\nname = \"adapt\"\nkind = \"adapt\"\nsource = \"synth_a\"\ntarget = \"synth_b\"\n"
         "models = [\"concat_mlp\"]\nvariants = [\"none\", \"dann_ganin\", \"mmd_rbf\"]\nweight = 0.3\n"
         "grid = {\"train.lr\" = [0.0005, 0.001, 0.002, 0.004, 0.008]}\n"
         "[[table]]\nname = \"in_domain\"\nexperiment = \"in_domain\"\nrows = \"model\"\ncolumns = \"corpus\"\n"
         "metrics = [\"ua\", \"wa\"]\nspread = \"std\"\n"
         "[[table]]\nname = \"cross_corpus\"\nexperiment = \"cross_corpus\"\nrows = \"source\"\n"
         "columns = \"target\"\nmetrics = [\"ua\"]\nspread = \"std\"\nfilter = {model = \"concat_mlp\"}\n"
         "[[table]]\nname = \"adapt\"\nexperiment = \"adapt\"\nrows = \"variant\"\ncolumns = \"target\"\n"
         "metrics = [\"ua\", \"macro_f1\"]\nspread = \"std\"\n";
}

double CpuSeconds() {
  rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Deterministic fake metric in [0.3, 0.8) from the job id.
double Fake(const std::string& id, int salt) {
  size_t h = std::hash<std::string>()(id + std::to_string(salt));
  return 0.3 + 0.5 * static_cast<double>(h % 100000) / 100000.0;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "ledger_scale_gen: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string stores, protocol_path, ledger_path;
  long jobs = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--stores") stores = v;
    else if (k == "--jobs") jobs = std::atol(v.c_str());
    else if (k == "--protocol") protocol_path = v;
    else if (k == "--ledger") ledger_path = v;
    else {
      std::fprintf(stderr, "ledger_scale_gen: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (stores.empty() || jobs <= 0 || protocol_path.empty() || ledger_path.empty()) {
    std::fprintf(stderr, "usage: ledger_scale_gen --stores DIR --jobs N --protocol OUT.toml --ledger OUT.db\n");
    return 2;
  }
  const int seeds = static_cast<int>((jobs + kJobsPerSeedAndPoint * kGridPoints - 1) /
                                     (kJobsPerSeedAndPoint * kGridPoints));
  {
    std::ofstream f(protocol_path);
    f << ProtocolText(std::filesystem::absolute(stores).string(), seeds);
    if (!f) return Fail(Status::IoError(protocol_path + ": cannot write"));
  }
  protocols::LoadOptions lo;
  lo.max_jobs = 0;
  auto p = protocols::LoadProtocol(protocol_path, lo);
  if (!p.ok()) return Fail(p.status());
  std::filesystem::remove(ledger_path);
  std::filesystem::remove(ledger_path + "-wal");
  std::filesystem::remove(ledger_path + "-shm");
  std::ofstream(ledger_path + ".ckpt") << "stands for every kept checkpoint\n";
  auto ledger = orchestrator::Ledger::Open(ledger_path);
  if (!ledger.ok()) return Fail(ledger.status());
  orchestrator::RunOptions ro;
  auto started = orchestrator::StartSweep(&*p, ledger->get(), ro);  // the jobs move into the scheduler
  if (!started.ok()) return Fail(started.status());
  auto& sched = *started->scheduler;
  const double cpu0 = CpuSeconds();
  double sched_cpu = 0;
  long n = 0;
  for (;;) {
    const double t0 = CpuSeconds();
    auto a = sched.NextReady("bench");
    if (!a.ok()) return Fail(a.status());
    if (a->kind == orchestrator::Assignment::Kind::kDone) break;
    if (a->kind == orchestrator::Assignment::Kind::kWait) return Fail(Status::Internal("scheduler waits with nothing running"));
    const auto& spec = a->job->spec;
    jobs::JobResult r;
    for (const auto& [name, refs] : spec.eval) {
      (void)refs;
      r.evals[name].metrics = {{"ua", Fake(spec.id, 1)}, {"wa", Fake(spec.id, 2)},
                               {"macro_f1", Fake(spec.id, 3)}, {"weighted_f1", Fake(spec.id, 4)}};
    }
    r.evals["val"].metrics = {{"ua", Fake(spec.id, 5)}};
    r.selected_epoch = 1;
    if (spec.keep_checkpoint) r.checkpoint = ledger_path + ".ckpt";  // one non-empty file stands for all
    const double t1 = CpuSeconds();
    Status s = sched.OnFinished(spec.id, r, {{"host", "bench"}});
    if (!s.ok()) return Fail(s);
    sched_cpu += (t1 - t0) + (CpuSeconds() - t1);
    ++n;
  }
  Status fin = (*ledger)->FinishSweep(started->sweep_id, "done", {{"bench", true}});
  if (!fin.ok()) return Fail(fin);
  std::printf("{\"jobs\": %ld, \"seeds\": %d, \"fill_cpu_s\": %.3f, \"sched_us_per_job\": %.1f}\n", n, seeds,
              CpuSeconds() - cpu0, 1e6 * sched_cpu / std::max(1L, n));
  return 0;
}
