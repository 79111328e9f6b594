// orchestrator/process_pool.cc: see process_pool.h.
#include "orchestrator/process_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/log.h"

extern char** environ;

namespace emosweep::orchestrator {
namespace {

constexpr uint64_t kMaxFrame = uint64_t{1} << 32;  // 4 GiB: a reply larger than this is corrupt

// A descriptor >= 10 with FD_CLOEXEC, so dup2 onto 3/4 in the child never
// meets itself (dup2(fd, fd) would keep FD_CLOEXEC).
int HighCloexec(int fd) {
  int h = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return h;
}

std::string Describe(int wstatus) {
  if (WIFSIGNALED(wstatus)) return std::string("killed by signal ") + std::to_string(WTERMSIG(wstatus)) + " (" +
                                   ::strsignal(WTERMSIG(wstatus)) + ")";
  if (WIFEXITED(wstatus)) return "exited with code " + std::to_string(WEXITSTATUS(wstatus));
  return "ended";
}

}  // namespace

Status WriteFrame(int fd, const std::string& payload) {
  unsigned char len[8];
  uint64_t n = payload.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  std::string buf(reinterpret_cast<const char*>(len), 8);
  buf += payload;
  size_t off = 0;
  while (off < buf.size()) {
    ssize_t w = ::write(fd, buf.data() + off, buf.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::IoError(std::string("worker pipe: write failed (") + std::strerror(errno) + ")");
    off += static_cast<size_t>(w);
  }
  return Status::Ok();
}

namespace {
// Reads exactly n bytes; false at end of stream before the first byte (*eof) or on error.
Status ReadExact(int fd, char* out, size_t n, bool* eof) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = ::read(fd, out + off, n - off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IoError(std::string("worker pipe: read failed (") + std::strerror(errno) + ")");
    if (r == 0) {
      if (off == 0 && eof) {
        *eof = true;
        return Status::Ok();
      }
      return Status::IoError("worker pipe: stream ended inside a frame");
    }
    off += static_cast<size_t>(r);
  }
  return Status::Ok();
}
}  // namespace

Result<std::string> ReadFrame(int fd, bool* eof) {
  *eof = false;
  char len[8];
  ES_RETURN_IF_ERROR(ReadExact(fd, len, 8, eof));
  if (*eof) return std::string();
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(len[i])) << (8 * i);
  if (n > kMaxFrame) return Status::Corruption("worker pipe: frame of " + std::to_string(n) + " bytes");
  std::string payload(static_cast<size_t>(n), '\0');
  ES_RETURN_IF_ERROR(ReadExact(fd, payload.data(), payload.size(), nullptr));
  return payload;
}

nlohmann::json ReplyFor(const Result<jobs::JobResult>& outcome) {
  if (outcome.ok()) return {{"status", "ok"}, {"result", jobs::JobResultToJson(*outcome)}};
  if (outcome.status().code() == StatusCode::kAborted)
    return {{"status", "interrupted"}, {"error", outcome.status().message()}};
  return {{"status", "failed"}, {"code", static_cast<int>(outcome.status().code())}, {"error", outcome.status().message()}};
}

Result<jobs::JobResult> OutcomeOf(const nlohmann::json& reply, const std::string& where) {
  if (!reply.is_object() || !reply.contains("status") || !reply["status"].is_string())
    return Status::Internal(where + ": malformed reply from the worker process");
  const std::string status = reply["status"].get<std::string>();
  const std::string error = reply.value("error", std::string());
  if (status == "ok") {
    if (!reply.contains("result")) return Status::Internal(where + ": reply without a result");
    return jobs::JobResultFromJson(reply["result"], where);
  }
  if (status == "interrupted") return Status::Aborted(error);
  int code = reply.value("code", static_cast<int>(StatusCode::kInternal));
  if (code <= static_cast<int>(StatusCode::kOk) || code > static_cast<int>(StatusCode::kUnavailable))
    code = static_cast<int>(StatusCode::kInternal);
  return Status(static_cast<StatusCode>(code), error);
}

ProcessPool::ProcessPool(ProcessPoolOptions options) : options_(std::move(options)) {
  // Children run this very binary (/proc/self/exe stays the file this process
  // started from even if a rebuild replaced it: one sweep, one build), under
  // its real name so `ps` shows it.
  if (options_.executable.empty()) {
    options_.executable = "/proc/self/exe";
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    argv0_ = n > 0 ? std::string(buf, static_cast<size_t>(n)) : options_.executable;
  } else {
    argv0_ = options_.executable;
  }
  slots_.resize(static_cast<size_t>(std::max(1, options_.size)));
  // A child that died leaves a pipe whose write end is closed: EPIPE, not a signal.
  ::signal(SIGPIPE, SIG_IGN);
}

ProcessPool::~ProcessPool() {
  for (auto& s : slots_) Reap(&s, /*kill_first=*/false);
}

int ProcessPool::spawned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return spawned_;
}

std::vector<int> ProcessPool::pids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> out;
  for (const Slot& s : slots_)
    if (s.pid > 0) out.push_back(s.pid);
  return out;
}

Status ProcessPool::Spawn(Slot* slot) {
  int req[2], rep[2];
  if (::pipe(req) != 0 || ::pipe(rep) != 0)
    return Status::IoError(std::string("cannot create a pipe for a worker process: ") + std::strerror(errno));
  for (int* fd : {&req[0], &req[1], &rep[0], &rep[1]}) *fd = HighCloexec(*fd);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, req[0], 3);
  posix_spawn_file_actions_adddup2(&fa, rep[1], 4);
  std::vector<std::string> argv_s = {argv0_};
  argv_s.insert(argv_s.end(), options_.args.begin(), options_.args.end());
  argv_s.push_back("--slot");
  argv_s.push_back(std::to_string(1 + (slot - slots_.data())));
  if (options_.args.size() && options_.args[0] == "worker") {
    argv_s.push_back("--parent-pid");
    argv_s.push_back(std::to_string(::getpid()));
  }
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; e && *e; ++e) env_s.emplace_back(*e);
  for (const auto& [k, v] : options_.env)
    if (!std::getenv(k.c_str())) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, options_.executable.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(req[0]);
  ::close(rep[1]);
  if (rc != 0) {
    ::close(req[1]);
    ::close(rep[0]);
    return Status::IoError("cannot start a worker process (" + options_.executable + "): " + std::strerror(rc));
  }
  slot->to_child = req[1];
  slot->from_child = rep[0];
  std::lock_guard<std::mutex> lock(mu_);
  slot->pid = pid;
  ++spawned_;
  return Status::Ok();
}

void ProcessPool::SetPid(Slot* slot, int pid) {
  std::lock_guard<std::mutex> lock(mu_);
  slot->pid = pid;
}

void ProcessPool::Reap(Slot* slot, bool kill_first) {
  if (slot->to_child >= 0) ::close(slot->to_child);
  if (slot->from_child >= 0) ::close(slot->from_child);
  slot->to_child = slot->from_child = -1;
  if (slot->pid <= 0) return;
  if (kill_first) ::kill(slot->pid, SIGKILL);
  // The child exits when it reads the end of its input; give it 10 s.
  int wstatus = 0;
  for (int i = 0; i < 1000; ++i) {
    pid_t r = ::waitpid(slot->pid, &wstatus, WNOHANG);
    if (r == slot->pid || r < 0) {
      SetPid(slot, -1);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(slot->pid, SIGKILL);
  ::waitpid(slot->pid, &wstatus, 0);
  SetPid(slot, -1);
}

Result<nlohmann::json> ProcessPool::Exchange(Slot* slot, const std::string& request,
                                             const jobs::JobContext& context, const std::string& job,
                                             const std::function<void(const nlohmann::json&)>& on_member_done) {
  auto died = [&](const std::string& when) -> Status {
    int wstatus = 0;
    std::string how = "ended";
    if (slot->pid > 0 && ::waitpid(slot->pid, &wstatus, 0) == slot->pid) how = Describe(wstatus);
    SetPid(slot, -1);
    Reap(slot, false);
    return Status::Internal("the worker process running job " + job + " " + how + " " + when);
  };
  if (!WriteFrame(slot->to_child, request).ok()) return died("before it took the job");
  bool forwarded_stop = false;
  for (;;) {
    if (!forwarded_stop && context.stop_requested && context.stop_requested->load()) {
      ::kill(slot->pid, SIGTERM);  // the child's trainer checkpoints and returns Aborted
      forwarded_stop = true;
    }
    struct pollfd p {slot->from_child, POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IoError(std::string("worker pipe: poll failed (") + std::strerror(errno) + ")");
    if (r == 0) continue;
    bool eof = false;
    auto frame = ReadFrame(slot->from_child, &eof);
    if (eof || !frame.ok()) return died("while running it");
    nlohmann::json reply = nlohmann::json::parse(*frame, nullptr, false);
    if (reply.is_discarded()) return Status::Internal("job " + job + ": the worker process sent a malformed reply");
    if (reply.is_object() && reply.contains("member_done")) {  // a pack member ahead of the reply
      if (on_member_done) on_member_done(reply);
      continue;
    }
    // A worker that was asked to stop answers, then ends: reaped now, so the slot's next job starts a new one.
    if (reply.is_object() && reply.value("worker_exits", false)) Reap(slot, /*kill_first=*/false);
    return reply;
  }
}

Result<ProcessPool::Slot*> ProcessPool::Acquire() {
  Slot* slot = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : slots_)
      if (!s.busy) {
        slot = &s;
        s.busy = true;
        break;
      }
  }
  if (!slot) return Status::Internal("process pool: more concurrent jobs than worker processes");
  if (slot->pid <= 0) {
    Status st = Spawn(slot);
    if (!st.ok()) {
      Release(slot);
      return st;
    }
  }
  return slot;
}

void ProcessPool::Start() {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot* slot = &slots_[i];
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (slot->busy || slot->pid > 0) continue;
      slot->busy = true;
    }
    (void)Spawn(slot);  // a failure is reported by the Run that needs this slot
    Release(slot);
  }
}

void ProcessPool::Release(Slot* slot) {
  std::lock_guard<std::mutex> lock(mu_);
  slot->busy = false;
}

namespace {
nlohmann::json SpecJson(const jobs::JobSpec& spec) {
  nlohmann::json j = spec.ToJson();
  j["id"] = spec.id;
  return j;
}
}  // namespace

Result<jobs::JobResult> ProcessPool::Run(const jobs::JobSpec& spec, const jobs::JobContext& context) {
  ES_ASSIGN_OR_RETURN(Slot* slot, Acquire());
  struct Releaser {
    ProcessPool* pool;
    Slot* slot;
    ~Releaser() { pool->Release(slot); }
  } release{this, slot};
  nlohmann::json checkpoints = nlohmann::json::object();
  if (!spec.init_from.empty() && context.checkpoint_of) checkpoints[spec.init_from] = context.checkpoint_of(spec.init_from);
  const nlohmann::json request = {{"spec", SpecJson(spec)},
                                  {"threads", context.threads},
                                  {"device", context.device},
                                  {"work_dir", context.work_dir},
                                  {"label", context.label},
                                  {"checkpoints", checkpoints}};
  const std::string job = spec.id.substr(0, 12);
  ES_ASSIGN_OR_RETURN(nlohmann::json reply, Exchange(slot, request.dump(), context, job));
  return OutcomeOf(reply, "job " + job);
}

nlohmann::json PackReplyFor(const std::vector<Result<jobs::JobResult>>& outcomes) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& o : outcomes) results.push_back(ReplyFor(o));
  return {{"results", results}};
}

nlohmann::json MemberDoneFor(size_t index, const jobs::JobResult& result) {
  return {{"member_done", index}, {"reply", ReplyFor(result)}};
}

std::vector<Result<jobs::JobResult>> PackOutcomesOf(const nlohmann::json& reply, const std::vector<std::string>& ids) {
  std::vector<Result<jobs::JobResult>> out;
  const bool per_member = reply.is_object() && reply.contains("results") && reply["results"].is_array();
  if (per_member && reply["results"].size() != ids.size()) {
    const Status bad = Status::Internal("the worker process answered a pack of " + std::to_string(ids.size()) +
                                        " jobs with " + std::to_string(reply["results"].size()) + " results");
    return std::vector<Result<jobs::JobResult>>(ids.size(), bad);
  }
  for (size_t i = 0; i < ids.size(); ++i)
    out.push_back(OutcomeOf(per_member ? reply["results"][i] : reply, "job " + ids[i].substr(0, 12)));
  return out;
}

std::vector<Result<jobs::JobResult>> ProcessPool::RunPack(const std::vector<jobs::JobSpec>& members,
                                                          const std::vector<jobs::JobContext>& contexts) {
  if (members.empty()) return {};
  if (contexts.size() != members.size())
    return std::vector<Result<jobs::JobResult>>(
        members.size(), Status::Internal("process pool: a pack needs one context per member"));
  Result<Slot*> slot = Acquire();
  if (!slot.ok()) return std::vector<Result<jobs::JobResult>>(members.size(), slot.status());
  struct Releaser {
    ProcessPool* pool;
    Slot* slot;
    ~Releaser() { pool->Release(slot); }
  } release{this, *slot};
  nlohmann::json specs = nlohmann::json::array();
  nlohmann::json checkpoints = nlohmann::json::object();
  std::vector<std::string> ids;
  nlohmann::json labels = nlohmann::json::array();
  for (size_t i = 0; i < members.size(); ++i) {
    specs.push_back(SpecJson(members[i]));
    labels.push_back(contexts[i].label);
    ids.push_back(members[i].id);
    const std::string& from = members[i].init_from;
    if (!from.empty() && contexts[i].checkpoint_of) checkpoints[from] = contexts[i].checkpoint_of(from);
  }
  const jobs::JobContext& context = contexts[0];
  const nlohmann::json request = {{"pack", specs},
                                  {"threads", context.threads},
                                  {"device", context.device},
                                  {"work_dir", context.work_dir},
                                  {"labels", labels},
                                  {"checkpoints", checkpoints}};
  const std::string label = members[0].id.substr(0, 12) + " (in a pack of " + std::to_string(members.size()) + ")";
  auto member_done = [&](const nlohmann::json& note) {
    const size_t i = note.value("member_done", members.size());
    if (i >= members.size() || !contexts[i].on_finished || !note.contains("reply")) return;
    Result<jobs::JobResult> r = OutcomeOf(note["reply"], "job " + ids[i].substr(0, 12));
    if (r.ok()) contexts[i].on_finished(*r);
  };
  Result<nlohmann::json> reply = Exchange(*slot, request.dump(), context, label, member_done);
  if (!reply.ok()) return std::vector<Result<jobs::JobResult>>(members.size(), reply.status());
  return PackOutcomesOf(*reply, ids);
}

}  // namespace emosweep::orchestrator
