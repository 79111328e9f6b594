#include "core/files.h"
#include "core/cache_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace emosweep {
namespace {
std::atomic<unsigned> g_counter{0};

std::string ErrnoText() { return std::strerror(errno); }

// This host's name as it appears in temporary names (no '/', never empty).
const std::string& HostTag() {
  static const std::string tag = [] {
    char buf[256] = {0};
    std::string h = ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : "localhost";
    for (char& c : h)
      if (c == '/') c = '_';
    return h;
  }();
  return tag;
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
}  // namespace

namespace {
// Removes "<base>.tmp-<this host>-<pid>-<n>" files in `dir` whose process is gone; only those of `base` when given.
void RemoveStale(const std::filesystem::path& dir, const std::string* base) {
  namespace fs = std::filesystem;
  const std::string mark = ".tmp-" + HostTag() + "-";
  std::error_code ec;
  fs::directory_iterator it(dir.empty() ? fs::path(".") : dir, ec);
  if (ec) return;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return;
    const std::string name = it->path().filename().string();
    const size_t at = base ? (name.compare(0, base->size() + mark.size(), *base + mark) == 0 ? base->size() : std::string::npos)
                           : name.rfind(mark);
    if (at == std::string::npos || at == 0) continue;
    const std::string rest = name.substr(at + mark.size());  // "<pid>-<n>"
    const size_t dash = rest.find('-');
    if (dash == std::string::npos || !AllDigits(rest.substr(0, dash)) || !AllDigits(rest.substr(dash + 1))) continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    // Only a process that no longer exists on this host: a live one (or a reused pid) keeps its file.
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    fs::remove(it->path(), rm);
  }
}
}  // namespace

// The file-name part a temporary of `name` starts with: the name itself, cut where the longest suffix
// ".tmp-<host>-<pid>-<n>" would take it past NAME_MAX (255 bytes; a legal 249-byte --out failed with
// "File name too long"). Names of ordinary length are unchanged.
std::string TempBase(const std::string& name) {
  const size_t longest_suffix = (".tmp-" + HostTag() + "-").size() + 10 + 1 + 10;
  return name.size() + longest_suffix <= 255 ? name : name.substr(0, 255 > longest_suffix ? 255 - longest_suffix : 1);
}

void RemoveStaleTemporaries(const std::string& final_path) {
  const std::filesystem::path p(final_path);
  const std::string base = TempBase(p.filename().string());
  RemoveStale(p.parent_path(), &base);
}

void RemoveStaleTemporariesIn(const std::string& dir) { RemoveStale(dir, nullptr); }

TempPath::TempPath(std::string final_path) : final_(std::move(final_path)) {
  // A symbolic link is written through: its target is replaced and the link kept (a rename onto the link
  // replaced the link with a regular file and left its target as it was).
  struct stat ls {}, st {};
  if (::lstat(final_.c_str(), &ls) == 0 && S_ISLNK(ls.st_mode) && ::stat(final_.c_str(), &st) == 0) {
    std::error_code ec;
    const std::filesystem::path target = std::filesystem::canonical(final_, ec);
    if (!ec) final_ = target.string();
  }
  RemoveStaleTemporaries(final_);
  const std::filesystem::path p(final_);
  const std::string suffix = ".tmp-" + HostTag() + "-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
  tmp_ = (p.parent_path() / (TempBase(p.filename().string()) + suffix)).string();
}

TempPath::~TempPath() {
  if (!committed_) std::remove(tmp_.c_str());
}

Status TempPath::Commit() {
  int fd = ::open(tmp_.c_str(), O_RDONLY);
  if (fd < 0) return Status::IoError(final_ + ": temporary file " + tmp_ + " vanished: " + ErrnoText());
  // A failed fsync means the content may not be on disk (a full disk, an I/O error): not committed.
  if (::fsync(fd) != 0) {
    const std::string err = ErrnoText();
    ::close(fd);
    return Status::IoError(final_ + ": cannot write temporary file " + tmp_ + " to disk (fsync): " + err);
  }
  ::close(fd);
  if (std::rename(tmp_.c_str(), final_.c_str()) != 0) {
    return Status::IoError(final_ + ": cannot rename temporary file: " + ErrnoText());
  }
  committed_ = true;
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  {  // a directory opens as a stream and reads as an empty file: "/tmp: byte 0: truncated pickle"
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      return Status::InvalidArgument(path + ": is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!FileExists(path)) return Status::NotFound(path + ": no such file");
    return Status::IoError(path + ": cannot open: " + ErrnoText());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError(path + ": read failed");
  return ss.str();
}

Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  TempPath tmp(path);
  {
    std::ofstream out(tmp.path(), std::ios::binary | std::ios::trunc);
    if (!out) return Status::IoError(path + ": cannot create: " + ErrnoText());
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) return Status::IoError(path + ": write failed: " + ErrnoText());
  }
  return tmp.Commit();
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (a.empty() || b.empty() || ::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

Status CheckOutputFile(const std::string& path, bool creates_dir) {
  namespace fs = std::filesystem;
  if (path.empty()) return Status::InvalidArgument("an empty output path");
  if (path == "-")
    return Status::InvalidArgument("'-' is taken as a file name, not standard output: commands that print results "
                                   "write them to standard output without --out (for a file named '-', write ./-)");
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Status::InvalidArgument(path + ": is a directory, not a file");
  // An existing device, FIFO or socket (/dev/stdout, /dev/null, a named pipe, "-" is a file name) would be
  // replaced by a regular file: outputs are written to a temporary file renamed over the path.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return Status::InvalidArgument(path + ": is not a regular file (a device, a pipe or a socket): outputs are written "
                                          "to a temporary file and renamed over the path, which would replace it; name a "
                                          "file (commands that print results write them to standard output without --out)");
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return Status::Ok();
  if (!fs::exists(parent, ec)) {
    if (creates_dir) return Status::Ok();
    return Status::InvalidArgument(path + ": directory " + parent.string() + " does not exist");
  }
  if (!fs::is_directory(parent, ec))
    return Status::InvalidArgument(path + ": " + parent.string() + " is not a directory");
  if (::access(parent.c_str(), W_OK | X_OK) != 0)
    return Status::InvalidArgument(path + ": cannot write in directory " + parent.string() + ": " + ErrnoText());
  return Status::Ok();
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError(dir + ": cannot create directory: " + ec.message());
  return Status::Ok();
}

std::string CacheDir() {
  if (const char* d = std::getenv("EMOSWEEP_CACHE_DIR"); d && *d) return std::string(d) == "off" ? "" : d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/emosweep";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/emosweep";
  return "";
}

}  // namespace emosweep
