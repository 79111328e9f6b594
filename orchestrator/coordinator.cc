#include "orchestrator/coordinator.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/log.h"

namespace emosweep::orchestrator {
namespace {

enum Tag : int {
  kTagJob = 1,
  kTagGroupJob = 2,
  kTagResult = 3,
  kTagHeartbeat = 4,
  kTagStop = 5,
  kTagExit = 6,
  kTagHello = 7,  // CheckRanksAgree
};

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// "stall:2" -> ("stall", 2); anything else -> ("", -1).
std::pair<std::string, int> ParseFault(const std::string& f) {
  auto colon = f.find(':');
  if (colon == std::string::npos) return {"", -1};
  return {f.substr(0, colon), std::atoi(f.c_str() + colon + 1)};
}

// A job sent to a group: the one it runs, or the one queued behind it (prefetch).
struct InFlight {
  const protocols::PlannedJob* job = nullptr;
  Clock::time_point started;  // sent, or (queued) when the job before it came back
};

struct GroupState {
  int leader = 0;
  std::vector<int> ranks;
  std::deque<InFlight> jobs;  // in send order; the front one is running
  double last_job_s = -1;     // how long its last job took (-1: none yet)
  const protocols::PlannedJob* running() const { return jobs.empty() ? nullptr : jobs.front().job; }
};

}  // namespace

int GroupColor(int rank, int group_size) { return rank == 0 ? 0 : 1 + (rank - 1) / group_size; }
bool IsGroupLeader(int rank, int group_size) { return rank > 0 && (rank - 1) % group_size == 0; }

Status CheckLayout(int world_size, int group_size) {
  if (group_size < 1) return Status::InvalidArgument("--group-size must be >= 1");
  if (world_size > 1 && (world_size - 1) % group_size != 0)
    return Status::InvalidArgument("with " + std::to_string(world_size) + " ranks, rank 0 coordinates and the other " +
                                   std::to_string(world_size - 1) + " must split into groups of --group-size " +
                                   std::to_string(group_size));
  return Status::Ok();
}

Status CheckRanksAgree(cluster::Communicator& comm, const DistributedOptions& options, const std::string& revision,
                       double timeout_s) {
  if (comm.rank() != 0) {
    const nlohmann::json mine = {{"group_size", options.group_size}, {"revision", revision}, {"host", comm.host()}};
    return comm.Send(0, kTagHello, mine.dump());
  }
  for (int r = 1; r < comm.size(); ++r) {
    ES_ASSIGN_OR_RETURN(std::optional<cluster::Message> m, comm.Recv(r, kTagHello, timeout_s));
    if (!m)
      return Status::Unavailable("rank " + std::to_string(r) + " did not report its options within " +
                                 std::to_string(static_cast<int>(timeout_s)) + " s of starting");
    const nlohmann::json theirs = nlohmann::json::parse(m->payload, nullptr, /*allow_exceptions=*/false);
    if (!theirs.is_object() || !theirs.value("group_size", nlohmann::json()).is_number_integer() ||
        !theirs.value("revision", nlohmann::json()).is_string() || !theirs.value("host", nlohmann::json()).is_string())
      return Status::Corruption("rank " + std::to_string(r) + " sent a malformed start-up message (another program?)");
    const std::string where = "rank " + std::to_string(r) + " (" + theirs.value("host", std::string("?")) + ")";
    if (theirs.value("group_size", -1) != options.group_size)
      return Status::InvalidArgument(
          where + " was started with --group-size " + std::to_string(theirs.value("group_size", -1)) +
          " and rank 0 with " + std::to_string(options.group_size) +
          ": every rank needs the same options (one mpirun command line, or the same options in every part of an "
          "MPMD command line)");
    if (theirs.value("revision", std::string()) != revision)
      return Status::InvalidArgument(where + " runs emosweep " + theirs.value("revision", std::string("?")) +
                                     " and rank 0 runs " + revision + ": install the same build on every node");
  }
  return Status::Ok();
}

Result<CoordinatorSummary> RunCoordinator(cluster::Communicator& comm, Scheduler& scheduler,
                                          const DistributedOptions& options, const std::atomic<bool>& stop,
                                          const ProvenanceFn& provenance, const CheckpointLookup& checkpoint_of) {
  const int n = comm.size();
  ES_RETURN_IF_ERROR(CheckLayout(n, options.group_size));
  const auto t0 = Clock::now();
  CoordinatorSummary sum;

  std::map<int, GroupState> groups;  // by leader
  for (int r = 1; r < n; ++r) {
    int leader = 1 + (r - 1) / options.group_size * options.group_size;
    groups[leader].leader = leader;
    groups[leader].ranks.push_back(r);
  }
  std::vector<Clock::time_point> last_seen(static_cast<size_t>(n), Clock::now());
  std::vector<std::string> hosts(static_cast<size_t>(n), "?");
  bool stopping = false, nothing_left = false;
  // A stop seen by any rank (its signal, or a group that came back
  // interrupted) stops the whole sweep: otherwise the coordinator would hand
  // that rank's group job after job, each interrupted after one epoch.
  bool peer_stop = false;
  std::string stop_from;  // who asked first: "" (this rank's signal), or "rank N (host)"
  auto last_beat = Clock::now();

  auto busy_count = [&] {
    int b = 0;
    for (auto& [l, g] : groups) b += !g.jobs.empty();
    return b;
  };
  // A group gets its next job before it asks (one queued behind the running one) when
  // its last job was short: then the round trip (result to rank 0, claim, job back)
  // would idle it for a noticeable share of the job. Long jobs are not queued: a
  // queued job cannot move to a group that becomes idle first.
  auto may_queue = [&](const GroupState& g) {
    return options.group_size == 1 && g.jobs.size() == 1 && g.last_job_s >= 0 &&
           g.last_job_s < options.prefetch_below_s;
  };

  // Results are recorded in the ledger after the group that sent one has its
  // next job: the ledger write (a transaction, ~2-3 ms) then overlaps the
  // group's next job instead of idling it (bench/sweep_efficiency.sh).
  struct Arrived {
    const protocols::PlannedJob* job;
    nlohmann::json reply;
    int source;
    size_t group_size;
  };
  std::vector<Arrived> arrived;
  auto record = [&]() -> Status {
    for (Arrived& a : arrived) {
      const auto* job = a.job;
      const nlohmann::json& j = a.reply;
      const std::string status = j.value("status", "");
      if (status == "ok") {
        auto res = jobs::JobResultFromJson(j["result"], "result of job " + job->spec.id);
        if (!res.ok()) {
          ES_RETURN_IF_ERROR(scheduler.OnFailed(job->spec.id, res.status()));
          ++sum.failed;
        } else {
          nlohmann::json prov = provenance ? provenance(*job, *res) : nlohmann::json::object();
          prov["world_size"] = n;
          prov["group_size"] = a.group_size;
          prov["worker_host"] = j.value("host", "");
          prov["worker_rank"] = a.source;
          prov["pid"] = j.value("pid", int64_t{0});
          ES_RETURN_IF_ERROR(scheduler.OnFinished(job->spec.id, *res, prov));
          ++sum.finished;
        }
      } else if (status == "interrupted") {
        ES_RETURN_IF_ERROR(scheduler.OnInterrupted(job->spec.id));
        ++sum.interrupted;
      } else {
        Status err(static_cast<StatusCode>(j.value("code", static_cast<int>(StatusCode::kInternal))),
                   j.value("error", std::string("unknown error")));
        LOG_WARN << "job " << job->spec.id.substr(0, 12) << " failed on rank " << a.source << ": " << err.message();
        ES_RETURN_IF_ERROR(scheduler.OnFailed(job->spec.id, err));
        ++sum.failed;
      }
    }
    arrived.clear();
    return Status::Ok();
  };

  while (true) {
    if (!stopping && (stop.load() || peer_stop)) {
      stopping = true;
      // Name where the stop came from (helper-59: a stop through a worker rank was not named).
      LOG_WARN << "stop requested" << (stop.load() || stop_from.empty() ? std::string() : " by " + stop_from)
               << ": no new jobs; running jobs checkpoint and return";
      for (auto& [l, g] : groups)
        for (int r : g.ranks) (void)comm.Send(r, kTagStop, "");
    }
    // 2. Hand out work: idle groups first, then (prefetch) a queued job to groups whose
    //    jobs are short.
    for (int pass = 0; pass < 2 && !stopping && !nothing_left; ++pass) {
      bool wait = false;
      for (auto& [leader, g] : groups) {
        if (pass == 0 ? !g.jobs.empty() : !may_queue(g)) continue;
        ES_ASSIGN_OR_RETURN(Assignment a, scheduler.NextReady("rank" + std::to_string(leader)));
        if (a.kind == Assignment::Kind::kDone) {
          nothing_left = true;
          break;
        }
        if (a.kind == Assignment::Kind::kWait) {
          wait = true;
          break;
        }
        nlohmann::json spec = a.job->spec.ToJson();
        spec["id"] = a.job->spec.id;
        nlohmann::json checkpoints = nlohmann::json::object();
        for (const auto& dep : a.job->deps)
          if (checkpoint_of) checkpoints[dep] = checkpoint_of(dep);
        ES_RETURN_IF_ERROR(
            comm.Send(leader, kTagJob,
                      nlohmann::json{{"spec", spec}, {"checkpoints", checkpoints}, {"label", protocols::JobLabel(a.job->attrs)}}
                          .dump()));
        g.jobs.push_back(InFlight{a.job, Clock::now()});
        ++sum.jobs_sent;
        LOG_INFO << "job " << a.job->spec.id.substr(0, 12) << " [" << protocols::JobLabel(a.job->attrs)
                 << "] attempt " << a.attempt << " -> group of rank " << leader
                 << (g.jobs.size() > 1 ? " (queued)" : "");
      }
      if (wait) break;
    }
    if (!arrived.empty()) {
      ES_RETURN_IF_ERROR(record());
      // What was just recorded may have made jobs ready (dependents, retries):
      // hand them out before waiting for messages.
      if (!stopping && !nothing_left) continue;
    }
    if (busy_count() == 0 && (stopping || nothing_left || scheduler.Done())) break;

    // 3. Messages.
    ES_ASSIGN_OR_RETURN(auto msg, comm.Recv(cluster::kAnySource, cluster::kAnyTag, 0.25));
    if (msg) {
      last_seen[static_cast<size_t>(msg->source)] = Clock::now();
      if (msg->tag == kTagHeartbeat) {
        auto j = nlohmann::json::parse(msg->payload, nullptr, false);
        if (j.is_object()) {
          hosts[static_cast<size_t>(msg->source)] = j.value("host", "?");
          if (j.value("stopping", false) && !peer_stop) {
            peer_stop = true;
            stop_from = "rank " + std::to_string(msg->source) + " (" + j.value("host", std::string("?")) + ")";
            LOG_WARN << "rank " << msg->source << " reports a stop request";
          }
        }
      } else if (msg->tag == kTagResult) {
        auto it = groups.find(msg->source);
        auto j = nlohmann::json::parse(msg->payload, nullptr, false);
        // A group returns its jobs in the order it got them; the reply names the job.
        if (it == groups.end() || it->second.jobs.empty() || !j.is_object() ||
            j.value("id", it->second.running()->spec.id) != it->second.running()->spec.id) {
          LOG_WARN << "unexpected result message from rank " << msg->source;
        } else {
          GroupState& g = it->second;
          g.last_job_s = Since(g.jobs.front().started);
          sum.busy_s += g.last_job_s * static_cast<double>(g.ranks.size());
          if (j.value("status", "") == "interrupted" && !peer_stop) {
            peer_stop = true;
            stop_from = "rank " + std::to_string(msg->source) + " (" + j.value("host", std::string("?")) +
                        "), whose job came back interrupted";
          }
          arrived.push_back(Arrived{g.running(), std::move(j), msg->source, g.ranks.size()});
          g.jobs.pop_front();
          if (!g.jobs.empty()) g.jobs.front().started = Clock::now();  // the queued job starts now
        }
      }
    }
    if (Since(last_beat) > options.heartbeat_s) {
      ES_RETURN_IF_ERROR(scheduler.Heartbeat());
      last_beat = Clock::now();
    }
    // 4. Stall inspector.
    std::string missing;
    for (int r = 1; r < n; ++r) {
      double silent = Since(last_seen[static_cast<size_t>(r)]);
      if (silent <= options.stall_timeout_s) continue;
      const GroupState& g = groups[1 + (r - 1) / options.group_size * options.group_size];
      char buf[256];
      std::snprintf(buf, sizeof buf, "%srank %d (host %s, silent %.1f s, %s)", missing.empty() ? "" : "; ", r,
                    hosts[static_cast<size_t>(r)].c_str(), silent,
                    g.running() ? ("running job " + g.running()->spec.id.substr(0, 12)).c_str() : "idle");
      missing += buf;
    }
    if (!missing.empty()) {
      (void)record();  // results that arrived before the stall are kept
      for (auto& [l, g] : groups)
        for (const InFlight& f : g.jobs) (void)scheduler.OnInterrupted(f.job->spec.id);
      char within[32];
      std::snprintf(within, sizeof within, "%g", options.stall_timeout_s);
      return Status::Unavailable("stall inspector: no heartbeat within " + std::string(within) + " s from " + missing +
                                 "; their jobs were released for the next run");
    }
  }
  for (int r = 1; r < n; ++r) (void)comm.Send(r, kTagExit, "");
  sum.wall_s = Since(t0);
  sum.stopped = stopping;
  return sum;
}

void ReleaseWorkers(cluster::Communicator& comm) {
  for (int r = 1; r < comm.size(); ++r) (void)comm.Send(r, kTagExit, "");
}

Status RunWorkerRank(cluster::Communicator& comm, cluster::GradientReducer& reducer,
                     const DistributedOptions& options, const Executor& execute,
                     const ContextFactory& make_context, std::atomic<bool>& stop) {
  const int rank = comm.rank();
  const int leader = 1 + (rank - 1) / options.group_size * options.group_size;
  const bool is_leader = rank == leader;
  const auto [fault, fault_rank] = ParseFault(options.inject_fault);

  std::atomic<bool> quit{false}, silent{false};
  std::mutex job_mu;
  std::string current_job;
  std::thread beat([&] {
    const std::string host = comm.host();
    while (!quit.load()) {
      if (!silent.load()) {
        std::string job;
        {
          std::lock_guard<std::mutex> lock(job_mu);
          job = current_job;
        }
        (void)comm.Send(0, kTagHeartbeat,
                        nlohmann::json{{"host", host}, {"job", job}, {"stopping", stop.load()}}.dump());
      }
      auto m = comm.Recv(0, kTagStop, 0);
      if (m.ok() && m->has_value()) stop = true;
      for (int i = 0; i < 20 && !quit.load(); ++i)
        std::this_thread::sleep_for(std::chrono::duration<double>(options.heartbeat_s / 20));
    }
  });

  Status result;
  while (true) {
    auto exit_msg = comm.Recv(0, kTagExit, 0);
    if (!exit_msg.ok()) {
      result = exit_msg.status();
      break;
    }
    if (exit_msg->has_value()) break;
    auto m = comm.Recv(is_leader ? 0 : leader, is_leader ? kTagJob : kTagGroupJob, 0.2);
    if (!m.ok()) {
      result = m.status();
      break;
    }
    if (!m->has_value()) continue;
    const std::string payload = (*m)->payload;
    if (is_leader)
      for (int r = leader + 1; r < leader + options.group_size; ++r) (void)comm.Send(r, kTagGroupJob, payload);

    if (fault_rank == rank && fault == "die") {
      LOG_ERROR << "fault injection: rank " << rank << " dies";
      std::_Exit(9);
    }
    if (fault_rank == rank && fault == "stall") {
      LOG_ERROR << "fault injection: rank " << rank << " stalls";
      silent = true;
      // Hang until released (in-process tests) or killed (MPI_Abort from rank 0).
      while (true) {
        auto e = comm.Recv(0, kTagExit, 1.0);
        if (!e.ok() || e->has_value()) break;
      }
      break;
    }

    nlohmann::json reply;
    const nlohmann::json message = nlohmann::json::parse(payload, nullptr, false);
    auto spec = jobs::JobSpec::FromJson(message.is_object() ? message.value("spec", nlohmann::json()) : nlohmann::json(),
                                          "job from rank 0");
    std::map<std::string, std::string> checkpoints;
    if (message.is_object() && message.contains("checkpoints") && message["checkpoints"].is_object())
      checkpoints = message["checkpoints"].get<std::map<std::string, std::string>>();
    if (!spec.ok()) {
      reply = {{"status", "failed"}, {"error", spec.status().message()}, {"code", static_cast<int>(spec.status().code())}};
    } else if (options.group_size == 1 && stop.load()) {
      // A job queued behind the last one (prefetch) when the stop came: not started,
      // back to pending. (A group decides together, inside the trainer.)
      reply = {{"status", "interrupted"}, {"error", "stopped before it started"}};
    } else {
      {
        std::lock_guard<std::mutex> lock(job_mu);
        current_job = spec->id;
      }
      jobs::JobContext ctx = make_context();
      ctx.reducer = &reducer;
      ctx.stop_requested = &stop;
      if (message.contains("label") && message["label"].is_string()) ctx.label = message["label"].get<std::string>();
      ctx.checkpoint_of = [checkpoints](const std::string& id) {
        auto it = checkpoints.find(id);
        return it == checkpoints.end() ? std::string() : it->second;
      };
      Result<jobs::JobResult> r = execute(*spec, ctx);
      if (r.ok()) {
        reply = {{"status", "ok"}, {"result", jobs::JobResultToJson(*r)}};
      } else if (r.status().code() == StatusCode::kAborted) {
        // The trainer returns Aborted only when its group agreed to stop
        // (worker/trainer.cc): possibly on another rank's flag, not this one's.
        reply = {{"status", "interrupted"}, {"error", r.status().message()}};
      } else {
        reply = {{"status", "failed"}, {"error", r.status().message()}, {"code", static_cast<int>(r.status().code())}};
      }
      std::lock_guard<std::mutex> lock(job_mu);
      current_job.clear();
    }
    if (is_leader) {
      reply["host"] = comm.host();
      reply["pid"] = static_cast<int64_t>(::getpid());  // provenance: the process that ran it (helper-59: 0)
      if (spec.ok()) reply["id"] = spec->id;
      Status st = comm.Send(0, kTagResult, reply.dump());
      if (!st.ok()) {
        result = st;
        break;
      }
    }
  }
  quit = true;
  beat.join();
  return result;
}

}  // namespace emosweep::orchestrator
