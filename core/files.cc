#include "core/files.h"
#include "core/cache_dir.h"

#include <fcntl.h>
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
}  // namespace

TempPath::TempPath(std::string final_path) : final_(std::move(final_path)) {
  tmp_ = final_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
}

TempPath::~TempPath() {
  if (!committed_) std::remove(tmp_.c_str());
}

Status TempPath::Commit() {
  int fd = ::open(tmp_.c_str(), O_RDONLY);
  if (fd < 0) return Status::IoError(final_ + ": temporary file " + tmp_ + " vanished: " + ErrnoText());
  ::fsync(fd);
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
