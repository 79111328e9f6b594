// data/store_verify.cc: see store_verify.h.
#include "data/store_verify.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace emosweep::data {
namespace {

constexpr size_t kCompactAbove = 4000;  // lines; the file is rewritten with the newest half
std::atomic<int64_t> g_recomputations{0};

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

}  // namespace

std::string StoreVerifyCachePath() {
  const std::string dir = CacheDir();
  return dir.empty() ? "" : dir + "/verified-stores.tsv";
}

int64_t StoreVerifyRecomputations() { return g_recomputations.load(); }

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
  StoreReadOptions o;
  o.verify = true;         // recompute the content hash over everything
  o.validate = false;      // structure only; values are validated by the caller's own read
  o.check_hash = false;    // (this is the check)
  o.load_frames = false;
  ++g_recomputations;
  auto c = ReadFeatureStore(path, o);
  if (!c.ok()) return c.status();
  auto info = ReadStoreInfo(path, /*check_hash=*/false);
  if (!info.ok()) return info.status();
  const std::string hash = info->content_hash;
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
