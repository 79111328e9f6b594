// data/store_verify.cc: see store_verify.h.
#include "data/store_verify.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/cache_dir.h"
#include "core/files.h"
#include "core/log.h"
#include "data/feature_store.h"
#include "data/h5_util.h"

namespace emosweep::data {
namespace {

constexpr size_t kCompactAbove = 4000;  // lines; the file is rewritten with the newest half
std::atomic<int64_t> g_recomputations{0};
std::atomic<int64_t> g_children{0};
std::atomic<void (*)()> g_child_hook{nullptr};
constexpr size_t kMaxOutcomes = 1024;  // remembered child results (a fuzzer meets millions of files)

struct FileKey {
  std::string text;  // "dev\tino\tsize\tmtime_ns\tctime_ns\tpath"
};

Result<FileKey> KeyOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::NotFound(path + ": cannot open the feature store (no such file)");
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) abs = path;
  auto ns = [](const struct timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000LL + t.tv_nsec; };
  std::ostringstream k;
  k << static_cast<uint64_t>(st.st_dev) << '\t' << static_cast<uint64_t>(st.st_ino) << '\t'
    << static_cast<int64_t>(st.st_size) << '\t' << ns(st.st_mtim) << '\t' << ns(st.st_ctim) << '\t' << abs;
  return FileKey{k.str()};
}

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
// Keys verified by this process (value: content hash).
std::map<std::string, std::string>& Memo() {
  static std::map<std::string, std::string> memo;
  return memo;
}

// Reads the cache file: key -> hash (later lines win); also the line count.
std::map<std::string, std::string> LoadCache(const std::string& file, size_t* lines) {
  std::map<std::string, std::string> out;
  *lines = 0;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    ++*lines;
    // v1 \t hash \t key...
    if (line.rfind("v1\t", 0) != 0) continue;
    size_t a = line.find('\t', 3);
    if (a == std::string::npos) continue;
    out[line.substr(a + 1)] = line.substr(3, a - 3);
  }
  return out;
}

void AppendCache(const std::string& file, const std::string& key, const std::string& hash) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;  // no cache: only speed is lost
  if (::flock(fd, LOCK_EX) == 0) {
    std::string line = "v1\t" + hash + "\t" + key + "\n";
    ssize_t w = ::write(fd, line.data(), line.size());
    (void)w;
    size_t lines = 0;
    auto all = LoadCache(file, &lines);
    if (lines > kCompactAbove) {
      // Keep the newest entries: rewrite through a temporary (readers never
      // see a half file), still holding the lock against other writers.
      std::ifstream in(file);
      std::vector<std::string> kept;
      std::string l;
      while (std::getline(in, l)) kept.push_back(l);
      std::string body;
      for (size_t i = kept.size() / 2; i < kept.size(); ++i) body += kept[i] + "\n";
      (void)WriteFileAtomic(file, body);
    }
    ::flock(fd, LOCK_UN);
  }
  ::close(fd);
}


// What a child check found out about one file version.
struct Outcome {
  Status survived;   // Corruption when libhdf5 crashed or hung
  Status read;       // what reading everything gave (when it survived)
  std::string hash;  // the stored content hash (when the read was ok)
};

// Guarded by Mu(): child results of this process by file key.
std::map<std::string, Outcome>& Outcomes() {
  static std::map<std::string, Outcome> outcomes;
  return outcomes;
}

// Seconds the child may take: $EMOSWEEP_STORE_CHECK_TIMEOUT, else 30 s + 1 s per 10 MB (a network
// file system reading 10 MB/s still passes: a false "damaged" would stop a sweep).
// 0 means: no child.
double CheckTimeoutSeconds(const std::string& path) {
  if (const char* env = std::getenv("EMOSWEEP_STORE_CHECK_TIMEOUT"); env && *env) {
    char* end = nullptr;
    double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && std::isfinite(v) && v >= 0) return v;
  }
  struct stat st {};
  const double mb = ::stat(path.c_str(), &st) == 0 ? static_cast<double>(st.st_size) / (1024.0 * 1024.0) : 0;
  return 30.0 + mb / 10.0;
}

std::string SecondsText(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += static_cast<size_t>(w);
  }
}

// The child: reads everything, writes "<code>\n<hash>\n<message>" and _exit()s.
// Nothing here may take a lock another thread of the parent could hold (no
// logging), and nothing returns into the caller's code.
[[noreturn]] void ChildMain(const std::string& path, int out) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a parent that died waiting
  struct rlimit no_core {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);  // a libhdf5 crash is reported, not dumped
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);  // no crash handler of the parent
  // Ctrl-C / SIGTERM to the process group are the parent's to handle (it kills the child).
  for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) ::signal(sig, SIG_IGN);
  // The parent's other descriptors (worker pipes, locked files) are not the
  // child's to keep open while it lives.
  if (out > 3) ::close_range(3, static_cast<unsigned>(out) - 1, 0);
  ::close_range(static_cast<unsigned>(out) + 1, ~0U, 0);
  if (auto hook = g_child_hook.load()) hook();
  Result<std::string> r = internal::ReadEverythingLocked(path);
  std::string msg = r.ok() ? "0\n" + r.value() + "\n"
                           : std::to_string(static_cast<int>(r.status().code())) + "\n\n" + r.status().message();
  WriteAll(out, msg);
  ::_exit(0);
}

std::string SignalText(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    default: return "signal " + std::to_string(sig);
  }
}

// Runs the child check of `path` (h5::Hdf5Mutex() held by the caller).
Outcome RunChildLocked(const std::string& path, double timeout_s) {
  Outcome o;
  const std::string damaged = path + ": damaged HDF5 file: libhdf5 ";
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    o.survived = Status::IoError(path + ": cannot check the feature store in a child process (pipe: " +
                                 std::strerror(errno) + ")");
    return o;
  }
  ++g_children;
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    o.survived = Status::IoError(path + ": cannot check the feature store in a child process (fork: " +
                                 std::strerror(e) + ")");
    return o;
  }
  if (pid == 0) {
    ::close(fds[0]);
    ChildMain(path, fds[1]);
  }
  ::close(fds[1]);
  std::string got;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd p {fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t r = ::read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // EOF: the child exited (or closed the pipe by dying)
    got.append(buf, static_cast<size_t>(r));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    o.survived = Status::Corruption(damaged + "did not finish within " + SecondsText(timeout_s) +
                                    " s while reading it (checked in a child process, killed; on a slow disk, raise "
                                    "EMOSWEEP_STORE_CHECK_TIMEOUT)");
    return o;
  }
  size_t a = got.find('\n');
  size_t b = a == std::string::npos ? std::string::npos : got.find('\n', a + 1);
  const bool clean_exit = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
  if (!clean_exit || b == std::string::npos) {
    std::string how = WIFSIGNALED(wstatus) ? "crashed (" + SignalText(WTERMSIG(wstatus)) + ")"
                      : WIFEXITED(wstatus)  ? "crashed (the checking process exited with status " +
                                                 std::to_string(WEXITSTATUS(wstatus)) + " without a result)"
                                            : "crashed";
    o.survived = Status::Corruption(damaged + how + " while reading it (checked in a child process)");
    return o;
  }
  const int code = std::atoi(got.substr(0, a).c_str());
  if (code == 0) {
    o.hash = got.substr(a + 1, b - a - 1);
  } else {
    o.read = Status(static_cast<StatusCode>(code), got.substr(b + 1));
  }
  return o;
}

// The child's outcome for `path` at `key`: remembered, or checked now.
// h5::Hdf5Mutex() held by the caller.
Outcome CheckedLocked(const std::string& path, const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(Mu());
    auto it = Outcomes().find(key);
    if (it != Outcomes().end()) return it->second;
  }
  const double timeout = CheckTimeoutSeconds(path);
  Outcome o;
  if (timeout == 0) {
    // No child (fuzzing libhdf5 itself): read right here.
    auto r = internal::ReadEverythingLocked(path);
    if (r.ok())
      o.hash = r.value();
    else
      o.read = r.status();
  } else {
    o = RunChildLocked(path, timeout);
  }
  std::lock_guard<std::mutex> lock(Mu());
  if (Outcomes().size() >= kMaxOutcomes) Outcomes().clear();
  Outcomes()[key] = o;
  return o;
}

}  // namespace

std::string StoreVerifyCachePath() {
  const std::string dir = CacheDir();
  return dir.empty() ? "" : dir + "/verified-stores.tsv";
}

int64_t StoreVerifyRecomputations() { return g_recomputations.load(); }

int64_t StoreCheckChildren() { return g_children.load(); }

void SetStoreCheckChildHook(void (*hook)()) { g_child_hook.store(hook); }

Status GuardStoreOpenLocked(const std::string& path) {
  auto key = KeyOf(path);
  if (!key.ok()) return Status::Ok();  // no such file: the reader says so
  {
    std::lock_guard<std::mutex> lock(Mu());
    if (Memo().count(key->text)) return Status::Ok();  // verified: libhdf5 read it all before
    const std::string cache = StoreVerifyCachePath();
    if (!cache.empty()) {
      size_t lines = 0;
      auto known = LoadCache(cache, &lines);
      auto it = known.find(key->text);
      if (it != known.end()) {
        Memo()[key->text] = it->second;
        return Status::Ok();
      }
    }
  }
  const Outcome o = CheckedLocked(path, key->text);
  return o.survived;
}

Status VerifyStore(const std::string& path) {
  ES_ASSIGN_OR_RETURN(FileKey before, KeyOf(path));
  const std::string cache = StoreVerifyCachePath();
  {
    std::lock_guard<std::mutex> lock(Mu());
    if (Memo().count(before.text)) return Status::Ok();
    if (!cache.empty()) {
      size_t lines = 0;
      auto known = LoadCache(cache, &lines);
      auto it = known.find(before.text);
      if (it != known.end()) {
        Memo()[before.text] = it->second;
        return Status::Ok();
      }
    }
  }
  // Recompute the content hash over everything, and validate every value (Corpus::Validate), in a
  // child process (see the header).
  std::string hash;
  {
    std::lock_guard<std::mutex> h5lock(h5::Hdf5Mutex());
    ++g_recomputations;
    const Outcome o = CheckedLocked(path, before.text);
    ES_RETURN_IF_ERROR(o.survived);
    ES_RETURN_IF_ERROR(o.read);
    hash = o.hash;
  }
  // A file that changed while it was read is not remembered (it was checked
  // as it was; the next open checks it again).
  auto after = KeyOf(path);
  if (!after.ok() || after->text != before.text) return Status::Ok();
  std::lock_guard<std::mutex> lock(Mu());
  Memo()[before.text] = hash;
  if (!cache.empty()) AppendCache(cache, before.text, hash);
  return Status::Ok();
}

}  // namespace emosweep::data
