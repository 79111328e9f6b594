// orchestrator/scheduler.cc: see scheduler.h for the algorithm.
#include "orchestrator/scheduler.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/log.h"
#include "jobs/pack.h"

namespace emosweep::orchestrator {
namespace {
bool Terminal(JobStatus s) { return s == JobStatus::kDone || s == JobStatus::kFailed || s == JobStatus::kBlocked; }
}  // namespace

double ExpectedCost(const jobs::JobSpec& spec) {
  double utts = 0;
  for (const auto& r : spec.train) utts += static_cast<double>(r.ids.size());
  double epochs = 1;
  if (spec.train_config.is_object()) {
    auto it = spec.train_config.find("epochs");
    if (it != spec.train_config.end() && it->is_number()) epochs = std::max(1.0, it->get<double>());
  }
  return utts * epochs;
}

Scheduler::Scheduler(Ledger* ledger, int64_t sweep_id, std::vector<protocols::PlannedJob> jobs,
                     SchedulerOptions options)
    : ledger_(ledger), sweep_id_(sweep_id), jobs_(std::move(jobs)), options_(std::move(options)) {
  if (options_.owner.empty()) options_.owner = ThisOwner();
}

Result<std::unique_ptr<Scheduler>> Scheduler::Create(Ledger* ledger, int64_t sweep_id,
                                                     std::vector<protocols::PlannedJob> jobs,
                                                     SchedulerOptions options) {
  std::unique_ptr<Scheduler> s(new Scheduler(ledger, sweep_id, std::move(jobs), std::move(options)));
  ES_RETURN_IF_ERROR(s->Build());
  // Seconds to minutes for 10^5-10^6 jobs, said before (helper-67: a 10^6-job first run was silent 2.5 min).
  const auto t0 = std::chrono::steady_clock::now();
  if (s->jobs_.size() >= 20000) LOG_INFO << "registering " << s->jobs_.size() << " jobs in the ledger";
  ES_RETURN_IF_ERROR(ledger->RegisterJobs(sweep_id, s->jobs_));
  if (s->jobs_.size() >= 20000)
    LOG_INFO << "registered in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
             << " s";
  if (s->options_.retry_failed) {
    std::vector<std::string_view> ids;  // views: a copy of every id was ~100 bytes a job (issue 15)
    ids.reserve(s->jobs_.size());
    for (const auto& j : s->jobs_) ids.push_back(j.spec.id);
    ES_RETURN_IF_ERROR(ledger->ResetFailed(ids));
  }
  std::lock_guard<std::mutex> lock(s->mu_);
  // Initial state in one batch: statuses, then deps_left, then the ready set. The states
  // go straight into the nodes (a map of every id was the run's peak, issue 15).
  ES_RETURN_IF_ERROR(ledger->ForEachSweepState(sweep_id, [&s](std::string_view id, JobState&& state) {
    const int i = s->Find(id);
    if (i >= 0) s->nodes_[i].state = state;
  }));
  for (size_t i = 0; i < s->jobs_.size(); ++i)
    if (!Terminal(s->nodes_[i].state.status)) s->open_++;
  for (size_t i = 0; i < s->jobs_.size(); ++i) {
    for (const auto& d : s->jobs_[i].deps)
      if (s->nodes_[s->Find(d.view())].state.status != JobStatus::kDone) s->nodes_[i].deps_left++;
    if (s->nodes_[i].state.status == JobStatus::kDone) {
      s->counts_.skipped++;
      s->nodes_[i].skipped = true;
    }
  }
  for (size_t i = 0; i < s->jobs_.size(); ++i) {
    s->UpdateReadyLocked(static_cast<int>(i));
    if (s->nodes_[i].state.status == JobStatus::kFailed)
      ES_RETURN_IF_ERROR(s->BlockDependentsLocked(static_cast<int>(i), s->nodes_[i].state.error));
  }
  s->last_refresh_ = std::chrono::steady_clock::now();
  return s;
}

Status Scheduler::Build() {
  nodes_.assign(jobs_.size(), Node());
  size_t cap = 16;
  while (cap < jobs_.size() * 2) cap *= 2;
  index_.assign(cap, 0);
  for (size_t i = 0; i < jobs_.size(); ++i) {
    size_t slot = std::hash<std::string_view>()(jobs_[i].spec.id) & (cap - 1);
    for (; index_[slot]; slot = (slot + 1) & (cap - 1))
      if (jobs_[index_[slot] - 1].spec.id == jobs_[i].spec.id)
        return Status::InvalidArgument("job " + jobs_[i].spec.id + " appears twice in the plan");
    index_[slot] = static_cast<uint32_t>(i + 1);
    nodes_[i].cost = ExpectedCost(jobs_[i].spec);
  }
  // Pack groups (step 7): a job's key is computed when it first becomes ready
  // (UpdateReadyLocked), once; a hand-out then never hashes.
  if (options_.max_pack > 1)
    for (Node& n : nodes_) n.pack_group = kNoGroupYet;
  for (size_t i = 0; i < jobs_.size(); ++i) {
    for (const auto& d : jobs_[i].deps) {
      const int at = Find(d.view());
      if (at < 0)
        return Status::InvalidArgument("job " + jobs_[i].spec.id + " depends on " + d + ", which is not in the plan");
      if (at >= static_cast<int>(i))
        return Status::InvalidArgument("job " + jobs_[i].spec.id + " depends on " + d +
                                       ", which does not come before it (cycle or unordered plan)");
      nodes_[at].dependents.push_back(static_cast<int>(i));
    }
  }
  // Plans are topologically ordered, so one backward pass counts what lies downstream.
  for (size_t k = jobs_.size(); k-- > 0;) {
    long n = 0;
    for (int d : nodes_[k].dependents) n += 1 + nodes_[d].transitive_dependents;
    nodes_[k].transitive_dependents = static_cast<int>(std::min<long>(n, 1 << 30));
  }
  return Status::Ok();
}

bool Scheduler::LooksDeadLocked(const Node& n) const {
  if (n.state.owner.empty() || n.state.owner == options_.owner) return false;
  return OwnerIsDeadHere(n.state.owner) || NowSeconds() - n.state.heartbeat_at > options_.stale_after_s;
}

void Scheduler::AssignPackGroupLocked(int i) {
  const std::string key = jobs::PackKey(jobs_[i].spec);
  if (key.empty()) {
    nodes_[i].pack_group = -1;
    return;
  }
  auto [it, added] = pack_groups_.emplace(key, static_cast<int>(pack_groups_.size()));
  nodes_[i].pack_group = it->second;
  if (added) {
    pack_cap_.push_back(options_.pack_cap ? std::max(1, options_.pack_cap(jobs_[i].spec)) : 1 << 30);
    pack_ready_.emplace_back();
    pack_running_.push_back(0);
  }
}

void Scheduler::UpdateReadyLocked(int i) {
  const Node& n = nodes_[i];
  bool ready = !n.here && n.deps_left == 0 &&
               (n.state.status == JobStatus::kPending || (n.state.status == JobStatus::kRunning && LooksDeadLocked(n)));
  if (!ready) return EraseReadyLocked(i);
  if (n.pack_group == kNoGroupYet) AssignPackGroupLocked(i);
  ready_.insert(KeyOf(i));
  if (n.pack_group >= 0) pack_ready_[n.pack_group].insert(KeyOf(i));
}

void Scheduler::LeaveHereLocked(int i) {
  Node& n = nodes_[i];
  n.here = false;
  here_.erase(i);
  if (n.pack_group >= 0) pack_running_[n.pack_group]--;
}

void Scheduler::EraseReadyLocked(int i) {
  ready_.erase(KeyOf(i));
  if (nodes_[i].pack_group >= 0) pack_ready_[nodes_[i].pack_group].erase(KeyOf(i));
}

void Scheduler::SetStatusLocked(int i, JobStatus s) {
  JobStatus old = nodes_[i].state.status;
  nodes_[i].state.status = s;
  if (Terminal(old) != Terminal(s)) open_ += Terminal(s) ? -1 : 1;
  if (old != s && (old == JobStatus::kDone || s == JobStatus::kDone)) {
    for (int d : nodes_[i].dependents) {
      nodes_[d].deps_left += s == JobStatus::kDone ? -1 : 1;
      UpdateReadyLocked(d);
    }
  }
  UpdateReadyLocked(i);
}

Status Scheduler::BlockDependentsLocked(int i, const std::string& reason) {
  std::vector<int> stack(nodes_[i].dependents.begin(), nodes_[i].dependents.end());
  std::string why = "blocked: dependency " + jobs_[i].spec.id.substr(0, 12) + " failed: " + reason;
  while (!stack.empty()) {
    int d = stack.back();
    stack.pop_back();
    if (nodes_[d].state.status != JobStatus::kPending) continue;
    ES_RETURN_IF_ERROR(ledger_->Block(jobs_[d].spec.id, why));
    nodes_[d].state.error = why;
    SetStatusLocked(d, JobStatus::kBlocked);
    stack.insert(stack.end(), nodes_[d].dependents.begin(), nodes_[d].dependents.end());
  }
  return Status::Ok();
}

Status Scheduler::RefreshLocked() {
  last_refresh_ = std::chrono::steady_clock::now();
  // Each state is applied as it is read (no map of every id, issue 15). The final
  // statuses, deps_left and ready sets do not depend on the order; blocking does (the
  // reason names the failed dependency), so it runs afterwards in protocol order.
  std::vector<int> newly_failed;
  ES_RETURN_IF_ERROR(ledger_->ForEachSweepState(sweep_id_, [&](std::string_view id, JobState&& state) {
    const int i = Find(id);
    if (i < 0) return;
    Node& n = nodes_[i];
    if (n.here) return;  // our own view of a job we run is authoritative
    JobStatus old = n.state.status;
    JobStatus now = state.status;
    n.state.attempts = state.attempts;
    n.state.owner = std::move(state.owner);
    n.state.heartbeat_at = state.heartbeat_at;
    n.state.error = std::move(state.error);
    SetStatusLocked(i, now);
    if (now == JobStatus::kFailed && old != JobStatus::kFailed) newly_failed.push_back(i);
  }));
  std::sort(newly_failed.begin(), newly_failed.end());
  for (int i : newly_failed) ES_RETURN_IF_ERROR(BlockDependentsLocked(i, nodes_[i].state.error));
  return Status::Ok();
}

Result<bool> Scheduler::DepCheckpointsUsableLocked(int i) {
  for (const auto& dep : jobs_[i].deps) {
    const int d = Find(dep.view());
    // Once per producer and process: a checkpoint this process cannot see even after
    // re-running its producer (a work dir local to another node) must not loop; the
    // dependent then runs and reports the path it could not read.
    if (!jobs_[d].spec.keep_checkpoint || nodes_[d].superseded) continue;
    auto path = ledger_->CheckpointOf(dep);
    if (!path.ok()) {
      // Not done any more (another process superseded it): the next refresh tells.
      if (path.status().code() == StatusCode::kFailedPrecondition) {
        last_refresh_ = {};
        return false;
      }
      // It recorded no checkpoint: running it again would not make one either.
      if (path.status().code() == StatusCode::kNotFound) continue;
      return path.status();
    }
    std::string why;
    struct stat sb;
    if (::stat(path->c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) {
      why = *path + ": missing";
    } else {
      const std::pair<int64_t, int64_t> key{static_cast<int64_t>(sb.st_size),
                                            static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec};
      auto it = checked_.find(*path);
      if (it != checked_.end() && it->second == key) continue;
      Status ok = options_.check_checkpoint ? options_.check_checkpoint(*path)
                  : sb.st_size > 0              ? Status::Ok()
                                                : Status::Corruption(*path + ": empty checkpoint file");
      if (ok.ok()) {
        checked_[*path] = key;
        continue;
      }
      why = ok.message();
    }
    LOG_WARN << "checkpoint of done job " << dep.substr(0, 12) << " cannot be used (" << why
             << "); running that job again before " << jobs_[i].spec.id.substr(0, 12);
    ES_RETURN_IF_ERROR(ledger_->Supersede(dep, "checkpoint lost: " + why));
    nodes_[d].superseded = true;
    nodes_[d].state.error = "checkpoint lost: " + why;
    nodes_[d].state.attempts = 0;
    if (nodes_[d].skipped) counts_.skipped--;
    nodes_[d].skipped = false;
    SetStatusLocked(d, JobStatus::kPending);
    return false;
  }
  return true;
}

Result<int> Scheduler::IndexOf(const std::string& id) const {
  const int i = Find(id);
  if (i < 0) return Status::Internal("scheduler: unknown job " + id);
  return i;
}

int Scheduler::Find(std::string_view id) const {
  if (index_.empty()) return -1;
  const size_t mask = index_.size() - 1;
  for (size_t slot = std::hash<std::string_view>()(id) & mask; index_[slot]; slot = (slot + 1) & mask)
    if (jobs_[index_[slot] - 1].spec.id == id) return static_cast<int>(index_[slot] - 1);
  return -1;
}

Result<bool> Scheduler::TryClaimLocked(int i, const ClaimOptions& co) {
  Node& n = nodes_[i];
  ES_ASSIGN_OR_RETURN(bool deps_usable, DepCheckpointsUsableLocked(i));
  if (!deps_usable) return false;
  ES_ASSIGN_OR_RETURN(ClaimResult c, ledger_->Claim(jobs_[i].spec.id, options_.owner, co));
  switch (c.outcome) {
    case ClaimOutcome::kClaimed:
    case ClaimOutcome::kTaken:
      if (c.outcome == ClaimOutcome::kTaken) {
        LOG_WARN << "taking over job " << jobs_[i].spec.id.substr(0, 12) << " from " << n.state.owner
                 << " (process gone or silent)";
      }
      n.here = true;
      here_.insert(i);
      if (n.pack_group >= 0) pack_running_[n.pack_group]++;
      n.state.status = JobStatus::kRunning;
      n.state.owner = options_.owner;
      n.state.attempts = c.attempts;
      return true;
    case ClaimOutcome::kExhausted:
      n.state.error = "its process died while running it; attempts exhausted";
      SetStatusLocked(i, JobStatus::kFailed);
      ES_RETURN_IF_ERROR(BlockDependentsLocked(i, n.state.error));
      return false;
    case ClaimOutcome::kNotClaimable:
      // Someone else has it (or finished it); the next refresh tells which.
      n.state.status = JobStatus::kRunning;
      n.state.owner = "?";
      n.state.heartbeat_at = NowSeconds();
      return false;
  }
  return false;
}

Result<Assignment> Scheduler::NextReady(const std::string& worker) { return NextPack(worker, 1, 1); }

Result<Assignment> Scheduler::NextPack(const std::string& worker, int max_members, int share) {
  std::lock_guard<std::mutex> lock(mu_);
  double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_refresh_).count();
  // A refresh reads every job of the sweep: with work ready here, at most ~5 % of the
  // time goes to it (issue 15: at 10^5 jobs a refresh every second cost 3 ms per job).
  const bool spaced_out = since >= std::max(options_.refresh_s, 20 * refresh_cost_s_);
  // With nothing to do here (waiting on jobs other processes run), at most ~5 % too: a refresh at every poll
  // (0.25 s) kept 0.37 of a core busy at 10^5 jobs (helper-67). A small sweep's refresh costs well under a
  // millisecond, so it still refreshes at every call (below 5 ms a refresh per 0.25 s poll is 2 % at most).
  const bool idle = ready_.empty() && here_.empty();
  // (At most 30 s: one slow refresh, a stalled file system, must not hide a finished dependency for minutes.)
  if ((idle && (refresh_cost_s_ < 0.005 || since >= std::min(20 * refresh_cost_s_, 30.0))) || spaced_out) {
    auto t0 = std::chrono::steady_clock::now();
    ES_RETURN_IF_ERROR(RefreshLocked());
    refresh_cost_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  ClaimOptions co{options_.stale_after_s, options_.max_attempts, worker};
  while (!ready_.empty()) {
    int i = std::get<2>(*ready_.begin());
    EraseReadyLocked(i);
    ES_ASSIGN_OR_RETURN(bool claimed, TryClaimLocked(i, co));
    if (!claimed) continue;
    Assignment a{Assignment::Kind::kJob, &jobs_[i], nodes_[i].state.attempts, {}};
    a.members.push_back({&jobs_[i], nodes_[i].state.attempts});
    const int g = nodes_[i].pack_group;
    if (g < 0 || max_members <= 1) return a;
    // The rest of the pack: the next ready jobs of the same key, in the usual order.
    std::set<Key>& same = pack_ready_[g];
    size_t want = static_cast<size_t>(std::min(max_members, pack_cap_[g]));
    if (share > 1) {
      // This worker's share of the key's open work here: the ready jobs (i included, now
      // running) and those the other workers already run.
      const size_t open = same.size() + static_cast<size_t>(pack_running_[g]);
      want = std::min(want, (open + static_cast<size_t>(share) - 1) / static_cast<size_t>(share));
    }
    while (a.members.size() < want && !same.empty()) {
      int j = std::get<2>(*same.begin());
      EraseReadyLocked(j);
      ES_ASSIGN_OR_RETURN(bool got, TryClaimLocked(j, co));
      if (got) a.members.push_back({&jobs_[j], nodes_[j].state.attempts});
    }
    return a;
  }
  if (open_ > 0 || !here_.empty()) {
    if (here_.empty()) WaitNoteLocked();
    return Assignment{Assignment::Kind::kWait, nullptr, 0, {}};
  }
  return Assignment{Assignment::Kind::kDone, nullptr, 0, {}};
}

// This process has nothing to run and jobs are running under other owners (another sweep, or a process that
// died on another host, which only --stale-after of silence reveals): say so, at most once a minute, with the
// owner heard from least recently and when its jobs would be taken over.
void Scheduler::WaitNoteLocked() {
  const auto now = std::chrono::steady_clock::now();
  if (last_wait_note_ != std::chrono::steady_clock::time_point{} && now - last_wait_note_ < std::chrono::seconds(60))
    return;
  int elsewhere = 0, oldest = -1;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    if (n.state.status != JobStatus::kRunning || n.state.owner.empty() || n.state.owner == options_.owner) continue;
    ++elsewhere;
    if (n.state.owner == "?") continue;  // a claim just lost: the next refresh reads its owner
    if (oldest < 0 || n.state.heartbeat_at < nodes_[oldest].state.heartbeat_at) oldest = static_cast<int>(i);
  }
  if (oldest < 0) return;
  last_wait_note_ = now;
  const Node& n = nodes_[oldest];
  const double silent = std::max(0.0, NowSeconds() - n.state.heartbeat_at);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f s ago; --stale-after %.0f s", silent, options_.stale_after_s);
  LOG_INFO << "waiting: " << elsewhere << (elsewhere == 1 ? " job of this sweep runs" : " jobs of this sweep run")
           << " under other owners (e.g. job " << jobs_[oldest].spec.id.substr(0, 12) << " of " << n.state.owner
           << ", last heartbeat " << buf << "): a silent owner's jobs are taken over once its heartbeat is older "
           << "than --stale-after; its dependents wait for it";
}

Status Scheduler::OnFinished(const std::string& id, const jobs::JobResult& result,
                             const nlohmann::json& provenance) {
  std::lock_guard<std::mutex> lock(mu_);
  ES_ASSIGN_OR_RETURN(int i, IndexOf(id));
  Node& n = nodes_[i];
  if (!n.here) return Status::Internal("scheduler: job " + id + " finished but was not running here");
  LeaveHereLocked(i);
  // The ledger refuses a result with a non-finite metric (an infinite eval loss): that is this job's failure
  // (bad input: no retry, its dependents blocked), not the sweep's.
  for (const auto& [name, ev] : result.evals)
    if (ev.metrics.is_object())
      for (auto it = ev.metrics.begin(); it != ev.metrics.end(); ++it)
        if (it->is_number() && !std::isfinite(it->get<double>()))
          return FailLocked(i, Status::InvalidArgument("eval '" + name + "': metric '" + it.key() +
                                                       "' is not finite (" + it->dump() + ")"));
  ES_ASSIGN_OR_RETURN(bool recorded, ledger_->Complete(id, options_.owner, result, provenance));
  if (!recorded) {
    LOG_WARN << "job " << id.substr(0, 12) << " was taken over by another process; its result there is kept";
    n.state.owner = "?";
    last_refresh_ = {};
    return Status::Ok();
  }
  n.state.owner.clear();
  counts_.finished_here++;
  SetStatusLocked(i, JobStatus::kDone);
  return Status::Ok();
}

Status Scheduler::OnFailed(const std::string& id, const Status& error, bool* retried) {
  std::lock_guard<std::mutex> lock(mu_);
  ES_ASSIGN_OR_RETURN(int i, IndexOf(id));
  Node& n = nodes_[i];
  if (!n.here) return Status::Internal("scheduler: job " + id + " failed but was not running here");
  LeaveHereLocked(i);
  return FailLocked(i, error, retried);
}

Status Scheduler::FailLocked(int i, const Status& error, bool* retried) {
  Node& n = nodes_[i];
  const std::string& id = jobs_[i].spec.id;
  bool retry = n.state.attempts < options_.max_attempts && !error.IsBadInput();
  if (retried) *retried = retry;
  std::string text = error.message() + " (attempt " + std::to_string(n.state.attempts) + ")";
  ES_RETURN_IF_ERROR(ledger_->Fail(id, options_.owner, text, retry));
  n.state.error = text;
  n.state.owner.clear();
  if (retry) {
    counts_.retried_here++;
    SetStatusLocked(i, JobStatus::kPending);
    return Status::Ok();
  }
  counts_.failed_here++;
  SetStatusLocked(i, JobStatus::kFailed);
  return BlockDependentsLocked(i, text);
}

Status Scheduler::OnInterrupted(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ES_ASSIGN_OR_RETURN(int i, IndexOf(id));
  Node& n = nodes_[i];
  if (!n.here) return Status::Internal("scheduler: job " + id + " interrupted but was not running here");
  LeaveHereLocked(i);
  ES_RETURN_IF_ERROR(ledger_->Release(id, options_.owner));
  n.state.owner.clear();
  n.state.attempts = std::max(0, n.state.attempts - 1);
  counts_.interrupted_here++;
  SetStatusLocked(i, JobStatus::kPending);
  return Status::Ok();
}

Status Scheduler::Heartbeat() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (int i : here_) ids.push_back(jobs_[i].spec.id);
  return ledger_->Heartbeat(ids, options_.owner);
}

bool Scheduler::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  return open_ == 0 && here_.empty();
}

SchedulerCounts Scheduler::Counts() {
  std::lock_guard<std::mutex> lock(mu_);
  SchedulerCounts c = counts_;
  c.total = static_cast<int>(nodes_.size());
  for (const Node& n : nodes_) {
    switch (n.state.status) {
      case JobStatus::kDone: c.done++; break;
      case JobStatus::kFailed: c.failed++; break;
      case JobStatus::kBlocked: c.blocked++; break;
      case JobStatus::kPending: c.pending++; break;
      case JobStatus::kRunning: (n.here ? c.running_here : c.running_elsewhere)++; break;
    }
  }
  return c;
}

std::vector<std::pair<std::string, std::string>> Scheduler::Failures() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].state.status == JobStatus::kFailed || nodes_[i].state.status == JobStatus::kBlocked)
      out.emplace_back(jobs_[i].spec.id, nodes_[i].state.error);
  return out;
}

std::vector<std::string> Scheduler::RunningHere() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (int i : here_) ids.push_back(jobs_[i].spec.id);
  return ids;
}

}  // namespace emosweep::orchestrator
