#include "tests/orchestrator/fake_jobs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace emosweep::testing {

protocols::PlannedJob MakeJob(const std::string& experiment, const std::string& model, const std::string& column,
                              uint64_t seed, std::vector<std::string> deps, int train_utts, const std::string& kind) {
  protocols::PlannedJob j;
  j.spec.kind = kind;
  j.spec.labels = {"ang", "hap", "neu", "sad"};
  j.spec.model = {{"name", model}};
  j.spec.seed = seed;
  jobs::DataRef train{"/nonexistent/" + column + ".h5", "hash-" + column, {}};
  for (int i = 0; i < train_utts; ++i) train.ids.push_back(column + "-u" + std::to_string(i));
  j.spec.train = {train};
  j.spec.eval["test"] = {jobs::DataRef{"/nonexistent/" + column + ".h5", "hash-" + column, {"t1"}}};
  j.spec.train_config = {{"epochs", 3}, {"experiment", experiment}};
  j.spec.id = j.spec.ComputeId();
  j.deps.assign(deps.begin(), deps.end());
  j.attrs = {{"experiment", experiment}, {"model", model}, {"target", column}, {"seed", std::to_string(seed)},
             {"kind", "loco"}};
  return j;
}

std::vector<protocols::PlannedJob> MakeGrid(const std::string& experiment, const std::vector<std::string>& models,
                                            const std::vector<std::string>& columns, int seeds) {
  std::vector<protocols::PlannedJob> out;
  for (const auto& m : models)
    for (const auto& c : columns)
      for (int s = 1; s <= seeds; ++s) out.push_back(MakeJob(experiment, m, c, static_cast<uint64_t>(s)));
  return out;
}

jobs::JobResult FakeResult(const jobs::JobSpec& spec) {
  std::string model = spec.model.value("name", "");
  double acc = model == "good" ? 0.9 : model == "mid" ? 0.7 : 0.5;
  jobs::JobResult r;
  jobs::EvalResult ev;
  const int n = 40, classes = 4;
  int correct_target = static_cast<int>(acc * n) + static_cast<int>(spec.seed % 3) - 1;
  std::vector<std::vector<int>> confusion(classes, std::vector<int>(classes, 0));
  int correct = 0;
  for (int i = 0; i < n; ++i) {
    jobs::Prediction p;
    p.utt_id = "utt" + std::to_string(i);
    p.label = i % classes;
    p.pred = i < correct_target ? p.label : (p.label + 1) % classes;
    p.probs = {0.1f, 0.2f, 0.3f, 0.4f};
    correct += p.pred == p.label;
    confusion[p.label][p.pred]++;
    ev.predictions.push_back(p);
  }
  double wa = static_cast<double>(correct) / n;
  ev.metrics = {{"ua", wa}, {"wa", wa}, {"macro_f1", wa - 0.01}, {"weighted_f1", wa - 0.02},
                {"n", n}, {"per_class_recall", {wa, wa, wa, wa}}, {"confusion", confusion}};
  r.evals["test"] = ev;
  for (int e = 1; e <= 3; ++e) {
    jobs::EpochRecord rec;
    rec.epoch = e;
    rec.train_loss = 1.5 / e;
    rec.val_loss = 1.6 / e + 0.1;
    rec.val_metrics = {{"ua", wa * e / 3}};
    rec.lr = 1e-3;
    rec.seconds = 0.01;
    r.curve.push_back(rec);
  }
  r.selected_epoch = 3;
  r.info = {{"params", 1234}};
  return r;
}

Result<jobs::JobResult> FakeExecutor::operator()(const jobs::JobSpec& spec, const jobs::JobContext& ctx) {
  int call;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call = ++calls_[spec.id];
  }
  if (spec.id == block_until_stop) {
    blocking_started = true;
    while (!(ctx.stop_requested && ctx.stop_requested->load()))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Status::Aborted("stopped on request");
  }
  if (bad_input.count(spec.id)) return Status::InvalidArgument("bad feature set for " + spec.id);
  if (fail_always.count(spec.id)) return Status::Internal("simulated crash in " + spec.id);
  auto it = fail_times.find(spec.id);
  if (it != fail_times.end() && call <= it->second) return Status::Internal("transient failure");
  std::lock_guard<std::mutex> lock(mu_);
  ran_.push_back(spec.id);
  return FakeResult(spec);
}

std::vector<std::string> FakeExecutor::ran() {
  std::lock_guard<std::mutex> lock(mu_);
  return ran_;
}

int FakeExecutor::calls(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_[id];
}

std::vector<protocols::PlannedJob> FakeSweepPlan(int n) {
  std::vector<protocols::PlannedJob> jobs;
  auto pre = MakeJob("fake", "pre", "all", 1, {}, 10, "pretrain");
  jobs.push_back(pre);
  for (int i = 1; i < n; ++i) {
    std::vector<std::string> deps;
    if (i % 4 == 0) deps.push_back(pre.spec.id);
    jobs.push_back(MakeJob("fake", i % 2 ? "good" : "mid", "c" + std::to_string(i), static_cast<uint64_t>(i % 3 + 1),
                           deps, 10, deps.empty() ? "supervised" : "finetune"));
  }
  return jobs;
}

namespace {
// Removes this process's test directories when it exits (not in forked
// children, which exit while the parent still uses them).
struct RemoveAtExit {
  pid_t owner = ::getpid();
  std::filesystem::path root;
  ~RemoveAtExit() {
    std::error_code ec;
    if (::getpid() == owner && !root.empty()) std::filesystem::remove_all(root, ec);
  }
};
}  // namespace

std::string TestDir() {
  static RemoveAtExit cleanup;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  cleanup.root = std::filesystem::temp_directory_path() / ("emosweep-orch-" + std::to_string(::getpid()));
  std::filesystem::path dir = cleanup.root / (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace emosweep::testing
