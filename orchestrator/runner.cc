// orchestrator/runner.cc: see runner.h.
#include "orchestrator/runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "core/build_info.h"
#include "core/cpu.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"

namespace emosweep::orchestrator {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

// State shared by the worker threads of one RunSweep.
struct Shared {
  Scheduler* scheduler;
  Ledger* ledger;
  const Executor* executor;
  const RunOptions* options;
  nlohmann::json build;
  std::atomic<bool> stop_jobs{false};   // what jobs see (external stop or a fatal error)
  std::atomic<bool> finished{false};
  std::mutex mu;
  std::condition_variable cv;
  Status fatal;                         // first ledger/scheduler error
  Progress* progress = nullptr;
  int parallel = 1;
  std::map<int, int> packs;             // guarded by mu: pack size -> count

  void SetFatal(const Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    if (fatal.ok()) fatal = s;
    stop_jobs = true;
    cv.notify_all();
  }
  bool Stopping() const { return stop_jobs.load() || (options->stop && options->stop->load()); }
};

Result<jobs::JobResult> RunOne(Shared& sh, const jobs::JobSpec& spec, const jobs::JobContext& ctx) {
  try {
    return (*sh.executor)(spec, ctx);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("job threw: ") + e.what());
  } catch (...) {
    return Status::Internal("job threw a non-standard exception");
  }
}

std::vector<Result<jobs::JobResult>> RunPackOf(Shared& sh, const std::vector<jobs::JobSpec>& specs,
                                               const std::vector<jobs::JobContext>& ctxs) {
  std::vector<Result<jobs::JobResult>> out;
  try {
    if (sh.options->pack_executor) {
      out = sh.options->pack_executor(specs, ctxs);
    } else {
      for (size_t i = 0; i < specs.size(); ++i) out.push_back(RunOne(sh, specs[i], ctxs[i]));
    }
  } catch (const std::exception& e) {
    out.assign(specs.size(), Status::Internal(std::string("pack threw: ") + e.what()));
  } catch (...) {
    out.assign(specs.size(), Status::Internal("pack threw a non-standard exception"));
  }
  while (out.size() < specs.size()) out.emplace_back(Status::Internal("the pack returned no outcome for this member"));
  out.resize(specs.size(), Status::Internal(""));
  return out;
}

// Records one job's (or pack member's) outcome as a single job's. `settled`: the job is done or failed for good
// (what the progress line counts), not back to pending (interrupted, or failed with an attempt left).
Status Record(Shared& sh, const std::string& worker, const PackMember& m, const Result<jobs::JobResult>& r,
              double t0, double secs, const nlohmann::json& pack, bool* settled) {
  *settled = false;
  const RunOptions& o = *sh.options;
  const protocols::PlannedJob& job = *m.job;
  const std::string label = protocols::JobLabel(job.attrs);
  if (r.ok()) {
    nlohmann::json extra = {{"worker", worker}, {"attempt", m.attempt},
                            {"cpu", r->info.value("cpu", CpuModelName())}};
    if (r->info.value("resumed_from_epoch", 0) > 0) extra["resumed_from_epoch"] = r->info["resumed_from_epoch"];
    double own = secs;
    if (!pack.is_null()) {
      extra["pack"] = pack;
      own = r->info.value("seconds_total", secs);  // the member's own time where the pack reports it
    }
    nlohmann::json prov = {{"git_revision", sh.build.value("git_revision", "unknown")},
                           {"host", HostName()},
                           {"pid", static_cast<int64_t>(::getpid())},
                           {"build", sh.build},
                           {"world_size", r->info.value("world_size", 1)},
                           {"device", o.device},
                           // what the job ran with (its train.threads wins over --threads; helper-73)
                           {"threads", r->info.value("threads", o.threads)},
                           {"started_at", t0},
                           {"seconds", own},
                           {"extra", extra}};
    Status st = sh.scheduler->OnFinished(job.spec.id, *r, prov);
    LOG_INFO << "job " << job.spec.id.substr(0, 12) << " [" << label << "] done in " << Progress::FormatDuration(own);
    *settled = true;
    return st;
  }
  if (sh.Stopping()) {
    LOG_INFO << "job " << job.spec.id.substr(0, 12) << " interrupted; back to pending";
    return sh.scheduler->OnInterrupted(job.spec.id);
  }
  if (r.status().code() == StatusCode::kAborted) {
    // Stopped on request, but not this sweep's: a signal to its worker process alone (which then exits, and the
    // pool starts another). Not the job's failure: back to pending, no attempt used.
    LOG_WARN << "job " << job.spec.id.substr(0, 12) << " [" << label << "] was stopped by a signal to its worker "
             << "process; back to pending";
    return sh.scheduler->OnInterrupted(job.spec.id);
  }
  // A member of a pack names it: the pack's other members finished (or failed) alongside.
  Status error = r.status();
  if (!pack.is_null())
    error = Status(error.code(), error.message() + " (in pack " + pack.value("id", std::string()).substr(0, 12) +
                                     ", member " + std::to_string(pack.value("index", 0) + 1) + " of " +
                                     std::to_string(pack.value("size", 0)) + ")");
  LOG_WARN << "job " << job.spec.id.substr(0, 12) << " [" << label << "] failed: " << error.message();
  bool retried = false;
  Status st = sh.scheduler->OnFailed(job.spec.id, error, &retried);
  *settled = !retried;
  return st;
}

void WorkerLoop(Shared& sh, int k) {
  const RunOptions& o = *sh.options;
  std::string worker = "t" + std::to_string(k);
  while (!sh.Stopping()) {
    // --pack auto: share the open jobs of a key among all the worker threads, busy ones
    // included (one busy with a single job gets its share when it asks: no tail of one big pack).
    const int share = o.pack_share ? sh.parallel : 1;
    auto next = o.pack > 1 ? sh.scheduler->NextPack(worker, o.pack, share) : sh.scheduler->NextReady(worker);
    if (!next.ok()) return sh.SetFatal(next.status());
    if (next->kind == Assignment::Kind::kDone) return;
    if (next->kind == Assignment::Kind::kWait) {
      std::unique_lock<std::mutex> lock(sh.mu);
      sh.cv.wait_for(lock, std::chrono::duration<double>(o.poll_s));
      continue;
    }
    std::vector<PackMember> members = next->members;
    if (members.empty()) members.push_back({next->job, next->attempt});
    jobs::JobContext ctx;
    ctx.threads = o.threads;
    ctx.device = o.device;
    ctx.work_dir = o.work_dir;
    ctx.stop_requested = &sh.stop_jobs;
    Ledger* ledger = sh.ledger;
    ctx.checkpoint_of = [ledger](const std::string& id) {
      auto c = ledger->CheckpointOf(id);
      return c.ok() ? *c : std::string();
    };
    double t0 = NowSeconds();
    auto steady0 = std::chrono::steady_clock::now();
    auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - steady0).count(); };
    std::vector<Result<jobs::JobResult>> results;
    // The pack's id: HashJson of its member ids, sorted (what the batched trainer records in info.pack.id).
    std::vector<std::string> sorted_ids;
    for (const auto& m : members) sorted_ids.push_back(m.job->spec.id);
    std::sort(sorted_ids.begin(), sorted_ids.end());
    const std::string pack_id = members.size() > 1 ? HashJson(nlohmann::json(sorted_ids)) : std::string();
    // Members recorded while the pack still ran (JobContext::on_finished), and a ledger error met doing so.
    std::vector<char> recorded(members.size(), 0);
    Status early_fatal;
    auto pack_json = [&](size_t i) {
      return nlohmann::json{{"id", pack_id}, {"size", members.size()}, {"index", i}, {"seconds", since()}};
    };
    if (members.size() == 1) {
      const protocols::PlannedJob& job = *members[0].job;
      LOG_DEBUG << "job " << job.spec.id.substr(0, 12) << " [" << protocols::JobLabel(job.attrs)
               << "] started, attempt " << members[0].attempt;
      ctx.label = protocols::JobLabel(job.attrs);
      results.push_back(RunOne(sh, job.spec, ctx));
    } else {
      std::vector<jobs::JobSpec> specs;
      std::vector<jobs::JobContext> contexts;
      for (size_t i = 0; i < members.size(); ++i) {
        const PackMember& m = members[i];
        specs.push_back(m.job->spec);
        contexts.push_back(ctx);
        contexts.back().label = protocols::JobLabel(m.job->attrs);
        // A member that finished (stopped early, or its last epoch) is recorded now, not when the whole pack
        // returns: a crash of the pack then loses only the members still training, and its dependents may start
        // (helper-58). Called on this thread.
        // A ledger error here stops the sweep at once (the pack's members then come back interrupted) and sends
        // this member back to pending; nothing escapes into the pack (helper-65).
        contexts.back().on_finished = [&, i](const jobs::JobResult& r) {
          if (recorded[i] || !early_fatal.ok()) return;
          recorded[i] = 1;
          bool settled = false;
          const double secs = since();
          try {
            early_fatal = Record(sh, worker, members[i], r, t0, secs, pack_json(i), &settled);
          } catch (const std::exception& e) {
            early_fatal = Status::Internal(std::string("recording a pack member threw: ") + e.what());
          }
          if (!early_fatal.ok()) {
            (void)sh.scheduler->OnInterrupted(members[i].job->spec.id);
            sh.SetFatal(early_fatal);
            return;
          }
          if (sh.progress && settled) sh.progress->Add(1);
          sh.cv.notify_all();  // dependents may be ready now
        };
        LOG_DEBUG << "job " << m.job->spec.id.substr(0, 12) << " [" << protocols::JobLabel(m.job->attrs)
                 << "] started in pack " << pack_id.substr(0, 12) << ", attempt " << m.attempt;
      }
      LOG_INFO << "pack " << pack_id.substr(0, 12) << ": " << members.size() << " jobs handed out as one";
      results = RunPackOf(sh, specs, contexts);
    }
    double secs = since();
    // What ran as a pack: the members the batched trainer trained (a result's info names the pack); the others ran
    // one after another (a pack the trainer could not build, or a member it could not set up: a result without
    // info.pack) and name no pack. A failed member counts with its pack when any member shows that the pack ran.
    bool batched = false;
    for (size_t i = 0; i < members.size(); ++i)
      batched |= members.size() > 1 && (recorded[i] || (results[i].ok() && results[i]->info.contains("pack")));
    size_t packed = 0;
    std::vector<char> in_pack(members.size(), 0);
    for (size_t i = 0; i < members.size(); ++i) {
      in_pack[i] = batched && (recorded[i] || !results[i].ok() || results[i]->info.contains("pack"));
      packed += in_pack[i];
    }
    if (o.pack > 1) {
      std::lock_guard<std::mutex> lock(sh.mu);
      if (packed >= 2) sh.packs[static_cast<int>(packed)]++;
      sh.packs[1] += static_cast<int>(members.size() - (packed >= 2 ? packed : 0));
      if (sh.packs[1] == 0) sh.packs.erase(1);
    }
    for (size_t i = 0; i < members.size(); ++i) {
      if (recorded[i]) continue;
      bool settled = false;
      Status st = early_fatal.ok()
                      ? Record(sh, worker, members[i], results[i], t0, secs,
                               in_pack[i] ? pack_json(i) : nlohmann::json(), &settled)
                      : early_fatal;
      if (!st.ok()) {
        // The members not recorded yet go back to pending (they ran, but nothing of them is kept).
        for (size_t j = i + (early_fatal.ok() ? 1 : 0); j < members.size(); ++j)
          if (!recorded[j]) (void)sh.scheduler->OnInterrupted(members[j].job->spec.id);
        return sh.SetFatal(st);
      }
      if (sh.progress && settled) sh.progress->Add(1);
    }
    if (!early_fatal.ok()) return sh.SetFatal(early_fatal);  // also when every member was recorded early
    sh.cv.notify_all();  // dependents may be ready now
  }
}

// Heartbeats and the external stop flag, until the workers are done.
void Monitor(Shared& sh) {
  auto last_beat = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(sh.mu);
  while (!sh.finished) {
    sh.cv.wait_for(lock, std::chrono::milliseconds(100));
    if (sh.options->stop && sh.options->stop->load() && !sh.stop_jobs) {
      sh.stop_jobs = true;
      sh.cv.notify_all();
    }
    auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_beat).count() >= sh.options->heartbeat_s) {
      last_beat = now;
      lock.unlock();
      Status s = sh.scheduler->Heartbeat();
      if (!s.ok()) {
        LOG_WARN << "heartbeat failed: " << s.ToString();
      }
      lock.lock();
    }
  }
}

}  // namespace

nlohmann::json RunSummary::ToJson() const {
  nlohmann::json f = nlohmann::json::array();
  for (const auto& [id, err] : failures) f.push_back({{"id", id}, {"error", err}});
  nlohmann::json out = {{"sweep_id", sweep_id},
          {"total", counts.total},
          {"skipped", counts.skipped},
          {"ran", counts.finished_here},
          {"done", counts.done},
          {"failed", counts.failed},
          {"blocked", counts.blocked},
          {"pending", counts.pending + counts.running_elsewhere + counts.running_here},
          {"retried", counts.retried_here},
          {"interrupted", counts.interrupted_here},
          {"seconds", seconds},
          {"stopped", stopped},
          {"failures", f}};
  if (pack_limit > 1) {
    // {"limit": K, "sizes": {"8": 2, "1": 3}}: how many packs of each size ran (size 1 = alone).
    nlohmann::json sizes = nlohmann::json::object();
    for (const auto& [size, n] : packs) sizes[std::to_string(size)] = n;
    out["packs"] = {{"limit", pack_limit}, {"sizes", sizes}};
  }
  return out;
}

std::string RunSummary::PacksText() const {
  if (pack_limit <= 1) return "";
  std::string s = "packs of up to " + std::to_string(pack_limit) + ":";
  if (packs.empty()) return s + " none ran";
  bool first = true;
  for (auto it = packs.rbegin(); it != packs.rend(); ++it) {
    s += (first ? " " : ", ") + std::to_string(it->second) + " x " + std::to_string(it->first);
    first = false;
  }
  return s;
}

namespace {
SweepInfo InfoOf(const protocols::Protocol& protocol, const RunOptions& options) {
  nlohmann::json settings = {{"threads", options.threads},
                             {"parallel", options.parallel},
                             {"max_attempts", options.scheduler.max_attempts},
                             {"work_dir", options.work_dir},
                             {"device", options.device}};
  if (options.pack > 1) settings["pack"] = options.pack;  // packs of up to this many jobs (issue 16)
  return {protocol.name, protocol.path, HashJson(protocol.effective), protocol.effective, settings};
}
}  // namespace

Result<std::optional<RunSummary>> RecordFinishedRerun(const protocols::Protocol& protocol,
                                                      const std::vector<std::string>& ids, Ledger* ledger,
                                                      const RunOptions& options) {
  if (ids.empty() || !protocol.missing_inputs.empty()) return std::optional<RunSummary>();
  auto start = std::chrono::steady_clock::now();
  // The same job list as a sweep that holds its links: count that sweep's jobs by
  // status (id-ordered index scans) instead of looking every id up (issue 15).
  const std::string job_set = Ledger::JobSetHash(ids);
  ES_ASSIGN_OR_RETURN(std::optional<int64_t> holder, ledger->FindJobSet(job_set, ids.size()));
  size_t done = 0;
  if (holder) {
    ES_ASSIGN_OR_RETURN(nlohmann::json counts, ledger->StatusCounts(*holder));
    for (const auto& r : counts)
      if (r[1] == "done") done += r[2].get<size_t>();
  } else {
    ES_ASSIGN_OR_RETURN(done, ledger->CountDone(ids));
  }
  if (done != ids.size()) return std::optional<RunSummary>();
  ES_ASSIGN_OR_RETURN(int dead, ledger->MarkDeadSweeps(options.scheduler.stale_after_s));
  if (dead > 0) LOG_WARN << dead << " earlier sweep(s) whose process is gone marked 'interrupted' in the ledger";
  RunSummary summary;
  ES_ASSIGN_OR_RETURN(summary.sweep_id, ledger->BeginSweep(InfoOf(protocol, options)));
  Status linked = ledger->LinkJobs(summary.sweep_id, ids, job_set);
  if (!linked.ok()) {
    (void)ledger->FinishSweep(summary.sweep_id, "error", {{"error", linked.ToString()}});
    return linked;
  }
  summary.counts.total = summary.counts.skipped = summary.counts.done = static_cast<int>(ids.size());
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LOG_INFO << "sweep " << summary.sweep_id << " '" << protocol.name << "': " << ids.size()
           << " jobs, all already done (cached expansion), 0 to run";
  ES_RETURN_IF_ERROR(ledger->FinishSweep(summary.sweep_id, "done", summary.ToJson()));
  return std::optional<RunSummary>(std::move(summary));
}

namespace {

Result<StartedSweep> Start(const protocols::Protocol& protocol, std::vector<protocols::PlannedJob> jobs, Ledger* ledger,
                           const RunOptions& options) {
  SweepInfo info = InfoOf(protocol, options);
  StartedSweep out;
  // A sweep killed with -9 (or on a lost node) never wrote its end: say so now.
  ES_ASSIGN_OR_RETURN(int dead, ledger->MarkDeadSweeps(options.scheduler.stale_after_s));
  if (dead > 0) LOG_WARN << dead << " earlier sweep(s) whose process is gone marked 'interrupted' in the ledger";
  ES_ASSIGN_OR_RETURN(out.sweep_id, ledger->BeginSweep(info));
  SchedulerOptions so = options.scheduler;
  so.max_pack = std::max(so.max_pack, options.pack);  // pack keys are computed only when packs may form
  ES_ASSIGN_OR_RETURN(out.scheduler, Scheduler::Create(ledger, out.sweep_id, std::move(jobs), so));
  return out;
}

// RunSweep's body; `movable` is &protocol when the jobs may move into the scheduler.
Result<RunSummary> Run(const protocols::Protocol& protocol, protocols::Protocol* movable, Ledger* ledger,
                       const Executor& executor, const RunOptions& options);

}  // namespace

Result<StartedSweep> StartSweep(const protocols::Protocol& protocol, Ledger* ledger, const RunOptions& options) {
  return Start(protocol, protocol.jobs, ledger, options);
}

Result<StartedSweep> StartSweep(protocols::Protocol* protocol, Ledger* ledger, const RunOptions& options) {
  std::vector<protocols::PlannedJob> jobs = std::move(protocol->jobs);
  protocol->jobs.clear();
  return Start(*protocol, std::move(jobs), ledger, options);
}

Result<RunSummary> RunSweep(const protocols::Protocol& protocol, Ledger* ledger, const Executor& executor,
                            const RunOptions& options) {
  return Run(protocol, nullptr, ledger, executor, options);
}

Result<RunSummary> RunSweep(protocols::Protocol* protocol, Ledger* ledger, const Executor& executor,
                            const RunOptions& options) {
  return Run(*protocol, protocol, ledger, executor, options);
}

namespace {

Result<RunSummary> Run(const protocols::Protocol& protocol, protocols::Protocol* movable, Ledger* ledger,
                       const Executor& executor, const RunOptions& options) {
  if (!protocol.missing_inputs.empty()) {
    std::string names;
    for (const auto& m : protocol.missing_inputs) names += "\n  " + m;
    return Status::FailedPrecondition(protocol.path + ": cannot run, missing inputs:" + names);
  }
  if (options.parallel < 0 || options.threads < 1)
    return Status::InvalidArgument("--parallel must be at least 0 (auto) and --threads at least 1");
  auto start = std::chrono::steady_clock::now();
  ES_ASSIGN_OR_RETURN(StartedSweep started,
                      movable ? StartSweep(movable, ledger, options) : StartSweep(protocol, ledger, options));
  const int64_t sweep_id = started.sweep_id;
  auto& scheduler = started.scheduler;
  SchedulerCounts c0 = scheduler->Counts();
  LOG_INFO << "sweep " << sweep_id << " '" << protocol.name << "': " << c0.total << " jobs, " << c0.skipped
           << " already done, " << (c0.total - c0.skipped) << " to run";
  if (std::string w = OtherBuildsWarning(ledger, c0.skipped); !w.empty()) LOG_WARN << w;
  const int to_run = c0.total - c0.skipped;
  const int parallel = std::max(1, std::min(options.parallel > 0 ? options.parallel : UsableCores(), to_run));
  if (to_run > 0) {
    LOG_INFO << parallel << " job(s) at a time, " << options.threads << " intra-op thread(s) each"
             << (options.job_threads > 0 ? " (jobs that set train.threads take theirs: up to " +
                                               std::to_string(options.job_threads) + ")"
                                         : std::string());
    if (std::string busy = BusyHostWarning(); !busy.empty()) LOG_WARN << busy;
  }

  Shared sh;
  sh.scheduler = scheduler.get();
  sh.ledger = ledger;
  sh.executor = &executor;
  sh.options = &options;
  sh.build = BuildInfo();
  sh.parallel = parallel;
  if (options.pack > 1 && to_run > 0)
    LOG_INFO << "packs: up to " << options.pack << " jobs of one pack key at once"
             << (options.pack_share ? " (shared among the workers)" : "");
  std::unique_ptr<Progress> progress;
  if (options.progress && c0.total > c0.skipped)
    progress = std::make_unique<Progress>(
        options.pack > 1 ? "sweep (packs <= " + std::to_string(options.pack) + ")" : "sweep", c0.total - c0.skipped);
  sh.progress = progress.get();

  std::thread monitor(Monitor, std::ref(sh));
  std::vector<std::thread> workers;
  for (int k = 0; k < parallel; ++k) workers.emplace_back(WorkerLoop, std::ref(sh), k);
  for (auto& t : workers) t.join();
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.finished = true;
    sh.cv.notify_all();
  }
  monitor.join();
  if (progress) progress->Finish();

  RunSummary summary;
  summary.sweep_id = sweep_id;
  summary.counts = scheduler->Counts();
  summary.failures = scheduler->Failures();
  summary.pack_limit = options.pack;
  summary.packs = sh.packs;
  summary.stopped = options.stop && options.stop->load();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!sh.fatal.ok()) {
    // Jobs still marked ours go back to pending so a re-run takes them at once.
    for (const auto& id : scheduler->RunningHere()) (void)scheduler->OnInterrupted(id);
    (void)ledger->FinishSweep(sweep_id, "error", {{"error", sh.fatal.ToString()}});
    return sh.fatal;
  }
  std::string status = summary.stopped ? "interrupted" : (summary.failures.empty() ? "done" : "failed");
  ES_RETURN_IF_ERROR(ledger->FinishSweep(sweep_id, status, summary.ToJson()));
  return summary;
}

}  // namespace

std::string OtherBuildsWarning(Ledger* ledger, int skipped) {
  if (skipped <= 0) return "";
  auto builds = ledger->ResultBuilds();
  const std::string here = BuildInfo().value("git_revision", std::string());
  if (!builds.ok() || builds->empty() || (builds->size() == 1 && builds->front() == here)) return "";
  std::string others;
  size_t listed = 0, more = 0;
  for (const auto& b : *builds) {
    if (b == here) continue;
    if (listed++ < 3) others += (others.empty() ? "" : ", ") + b;
    else ++more;
  }
  if (more) others += " and " + std::to_string(more) + " more";
  return ledger->path() + " holds results of other emosweep builds (" + others + "; this one is " + here +
         "): the " + std::to_string(skipped) + " done jobs are reused whichever build computed them; a fix that "
         "changed what a job computes does not show in them (docs/trainer.md, \"Determinism\": provenance.git_revision "
         "names each result's build)";
}

}  // namespace emosweep::orchestrator
