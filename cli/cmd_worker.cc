// cli/cmd_worker.cc: `emosweep worker`, the child process of `run --parallel K`.
//
// Started by orchestrator::ProcessPool (orchestrator/process_pool.h), never by
// a person: loads the torch module at once (on a thread), reads one job
// request at a time from file descriptor 3, runs it
// with worker::RunJob (through the torch module, cli/torch_module.h) and writes the reply to descriptor 4, until descriptor
// 3 ends. A pack request ({"pack": [...]}, issue 16) runs through
// worker::RunPack and is answered with one reply per member; a member whose
// spec cannot be read fails alone. SIGINT/SIGTERM/SIGUSR1 ask the running job to checkpoint and come
// back interrupted (the parent forwards its own stop this way). When the
// parent dies (`kill -9` of a sweep) a watchdog sees the new parent pid within
// a second and stops the job the same way; the process then exits, leaving no
// orphan training. (Not PR_SET_PDEATHSIG: it fires when the parent *thread*
// that spawned the child ends, and the runner's threads end before the sweep
// does, which would stop a job another thread is still waiting for.)
#include <signal.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <map>
#include <vector>

#include "cli/commands.h"
#include "core/log.h"
#include "orchestrator/process_pool.h"
#include "cli/torch_module.h"

namespace emosweep::cli {
namespace {

std::atomic<bool> g_worker_stop{false};
void OnWorkerSignal(int) { g_worker_stop = true; }

constexpr int kRequestFd = 3;
constexpr int kReplyFd = 4;

}  // namespace

void WorkerOptions(po::options_description& o) {
  o.add_options()("slot", po::value<int>()->default_value(0), "worker number (log prefix)")(
      "parent-pid", po::value<long>()->default_value(0), "the run process; the worker stops when it is gone");
}

Status WorkerRun(const po::variables_map& vm) {
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) ::signal(sig, OnWorkerSignal);
  ::signal(SIGPIPE, SIG_IGN);
  const pid_t parent = static_cast<pid_t>(vm["parent-pid"].as<long>());
  if (parent > 0 && ::getppid() != parent) return Status::Aborted("worker: the parent process is gone");
  if (parent > 0)
    std::thread([parent] {
      while (::getppid() == parent) std::this_thread::sleep_for(std::chrono::seconds(1));
      g_worker_stop = true;  // the running job checkpoints and returns; the reply then fails and we exit
    }).detach();
  if (::fcntl(kRequestFd, F_GETFD) < 0 || ::fcntl(kReplyFd, F_GETFD) < 0)
    return Status::InvalidArgument(
        "worker: file descriptors 3 and 4 are not open ('emosweep worker' is started by 'emosweep run --parallel K')");
  SetLogRank(vm["slot"].as<int>());
  // The torch module loads now, while the parent sets up its sweep (it starts its children
  // early, ProcessPool::Start), not with the first job. A load error is the first job's to
  // report (TorchRunJob returns it again). Joined on every way out.
  struct Preload {
    std::thread t{[] { (void)LoadTorchModule(); }};
    ~Preload() { t.join(); }
  } preload;
  for (;;) {
    bool eof = false;
    auto frame = orchestrator::ReadFrame(kRequestFd, &eof);
    if (!frame.ok()) return frame.status();
    if (eof) return Status::Ok();
    const nlohmann::json request = nlohmann::json::parse(*frame, nullptr, false);
    if (!request.is_object() || (!request.contains("spec") && !(request.contains("pack") && request["pack"].is_array()))) {
      Result<jobs::JobResult> bad = Status::Internal("worker: malformed request");
      ES_RETURN_IF_ERROR(orchestrator::WriteFrame(kReplyFd, orchestrator::ReplyFor(bad).dump()));
      continue;
    }
    std::map<std::string, std::string> checkpoints;
    if (request.contains("checkpoints") && request["checkpoints"].is_object())
      checkpoints = request["checkpoints"].get<std::map<std::string, std::string>>();
    jobs::JobContext ctx;
    ctx.threads = request.value("threads", 1);
    ctx.device = request.value("device", std::string("cpu"));
    ctx.work_dir = request.value("work_dir", std::string());
    ctx.label = request.contains("label") && request["label"].is_string() ? request["label"].get<std::string>() : "";
    ctx.stop_requested = &g_worker_stop;
    ctx.checkpoint_of = [checkpoints](const std::string& id) {
      auto it = checkpoints.find(id);
      return it == checkpoints.end() ? std::string() : it->second;
    };
    if (request.contains("pack")) {
      // Members whose spec reads run as one pack; one that does not fails alone.
      const nlohmann::json& pack = request["pack"];
      std::vector<Result<jobs::JobResult>> outcomes(pack.size(), Status::Internal("worker: not run"));
      const nlohmann::json labels = request.value("labels", nlohmann::json::array());
      std::vector<jobs::JobSpec> members;
      std::vector<jobs::JobContext> contexts;
      std::vector<size_t> where;
      for (size_t i = 0; i < pack.size(); ++i) {
        auto spec = jobs::JobSpec::FromJson(pack[i], "job " + std::to_string(i + 1) + " of a pack from the parent process");
        if (!spec.ok()) {
          outcomes[i] = spec.status();
          continue;
        }
        members.push_back(std::move(spec).value());
        contexts.push_back(ctx);
        // A member's result goes to the parent as soon as it is final (recorded there at once).
        contexts.back().on_finished = [i](const jobs::JobResult& r) {
          try {  // a frame that cannot be written only loses the early delivery: the pack's reply carries it too
            jobs::JobResult sent = r;
            sent.info["worker_pid"] = static_cast<int64_t>(::getpid());
            (void)orchestrator::WriteFrame(kReplyFd, orchestrator::MemberDoneFor(i, sent).dump());
          } catch (const std::exception&) {
          }
        };
        contexts.back().label = labels.is_array() && i < labels.size() && labels[i].is_string() ? labels[i].get<std::string>() : "";
        where.push_back(i);
      }
      if (!members.empty()) {
        std::vector<Result<jobs::JobResult>> ran;
        try {
          ran = TorchRunPack(members, contexts);
        } catch (const std::exception& e) {
          ran.assign(members.size(), Status::Internal(std::string("pack threw: ") + e.what()));
        }
        for (size_t k = 0; k < where.size(); ++k) {
          outcomes[where[k]] = k < ran.size() ? std::move(ran[k]) : Status::Internal("the pack returned no outcome");
          if (outcomes[where[k]].ok()) outcomes[where[k]]->info["worker_pid"] = static_cast<int64_t>(::getpid());
        }
      }
      nlohmann::json reply = orchestrator::PackReplyFor(outcomes);
      if (g_worker_stop) reply["worker_exits"] = true;
      ES_RETURN_IF_ERROR(orchestrator::WriteFrame(kReplyFd, reply.dump()));
      if (g_worker_stop) return Status::Ok();  // see below
      continue;
    }
    Result<jobs::JobResult> outcome = Status::Internal("worker: malformed request");
    auto spec = jobs::JobSpec::FromJson(request["spec"], "job from the parent process");
    if (!spec.ok()) {
      outcome = spec.status();
    } else {
      try {
        outcome = TorchRunJob(*spec, ctx);
        if (outcome.ok()) outcome->info["worker_pid"] = static_cast<int64_t>(::getpid());
      } catch (const std::exception& e) {
        outcome = Status::Internal(std::string("job threw: ") + e.what());
      }
    }
    nlohmann::json reply = orchestrator::ReplyFor(outcome);
    if (g_worker_stop) reply["worker_exits"] = true;
    ES_RETURN_IF_ERROR(orchestrator::WriteFrame(kReplyFd, reply.dump()));
    // A stop request (the parent's, forwarded, or a signal to this process alone) ends this process once the job
    // has checkpointed and answered: the flag would stop every later job after one epoch. The parent reaps it on
    // "worker_exits" and starts another process for its next job.
    if (g_worker_stop) return Status::Ok();
  }
}

}  // namespace emosweep::cli
