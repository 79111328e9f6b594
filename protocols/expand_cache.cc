// protocols/expand_cache.cc: see expand_cache.h. Two files per expansion key: the
// table cache (<key>.bin, binary, described at ReadCache) and the job ids (<key>.ids,
// text: a header line of backslash-escaped tab-separated fields, then one id a line).
#include "protocols/expand_cache.h"

#include "core/cache_dir.h"
#include "core/files.h"
#include "core/log.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string_view>
#include <unordered_map>

namespace emosweep::protocols {
namespace {

constexpr const char* kMagic = "emosweep-expansion-cache";
constexpr int kFormat = 2;      // the table cache (.bin)
constexpr int kIdsFormat = 1;   // the job ids (.ids)

void Put(std::string* out, const std::string& s) {
  out->push_back('\t');
  for (char c : s) {
    switch (c) {
      case '\\': out->append("\\\\"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      default: out->push_back(c);
    }
  }
}

// Splits one line into unescaped fields; false on a malformed escape.
bool Fields(const std::string& line, std::vector<std::string>* out) {
  out->clear();
  out->emplace_back();
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\t') {
      out->emplace_back();
    } else if (c == '\\') {
      if (++i == line.size()) return false;
      char e = line[i];
      out->back().push_back(e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e);
    } else {
      out->back().push_back(c);
    }
  }
  return true;
}

// --- The table cache, format 2 (binary; issue 15: 10^5 jobs read in < 0.2 s) ---
//   "emosweep-expansion-cache\t2\t<key>\t<jobs>\t<strings>\t<body bytes>\n"
//   body: <strings> strings (u32 length + bytes), then per job: u32 id, u8 reportable,
//         u64 seed, u32 selection, u32 oracle_eval, u32 n_labels, u32 label..., u32 n_attrs,
//         (u32 key, u32 value)...  (u32 = an index into the strings, little-endian)
//   trailer: u64 FNV-1a of the body, 8 bytes at a time.
// Every string a job holds is an index into one table: 10^5 jobs repeat a few hundred
// distinct attribute keys and values. Any mismatch (size, index, hash) rejects the file.
uint64_t BodyHash(const char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 1099511628211ull;
  }
  for (; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h ^ n;
}

class Reader {
 public:
  Reader(const char* p, size_t n) : p_(p), end_(p + n) {}
  template <typename T>
  bool Get(T* v) {
    if (static_cast<size_t>(end_ - p_) < sizeof(T)) return false;
    std::memcpy(v, p_, sizeof(T));
    p_ += sizeof(T);
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {  // a view into the buffer read
    if (static_cast<size_t>(end_ - p_) < n) return false;
    *out = std::string_view(p_, n);
    p_ += n;
    return true;
  }
  bool done() const { return p_ == end_; }
  const char* at() const { return p_; }

 private:
  const char* p_;
  const char* end_;
};

// The cache file, mapped read-only. Pages read are dropped again (Release) where the
// reader no longer needs them, so the file does not sit in the peak memory next to the
// jobs built from it (issue 15: 200 MB of a 10^6-job `table`'s 1 GB).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (m != MAP_FAILED) data_ = static_cast<const char*>(m), size_ = static_cast<size_t>(st.st_size);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  // Drops the whole pages inside [from, to) from this process (the page cache keeps them;
  // a later read maps them again).
  void Release(size_t from, size_t to) const {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    from = (from + page - 1) / page * page;
    to = std::min(to, size_) / page * page;
    if (data_ && from < to) ::madvise(const_cast<char*>(data_) + from, to - from, MADV_DONTNEED);
  }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

bool ReadCache(const std::string& path, const std::string& key, std::vector<PlannedJob>* jobs) {
  const MappedFile file(path);
  if (!file.data()) return false;
  const std::string_view data(file.data(), file.size());
  const size_t eol = data.find('\n');
  if (eol == std::string::npos) return false;
  std::vector<std::string> v;
  if (!Fields(std::string(data.substr(0, eol)), &v) || v.size() != 6 || v[0] != kMagic ||
      v[1] != std::to_string(kFormat) || v[2] != key)
    return false;
  const size_t n = std::strtoull(v[3].c_str(), nullptr, 10), ns = std::strtoull(v[4].c_str(), nullptr, 10),
               body = std::strtoull(v[5].c_str(), nullptr, 10);
  if (data.size() != eol + 1 + body + 8) return false;  // truncated or grown
  if (ns > body / 4 || n > body / 29) return false;      // counts no body of this size holds
  const char* b = data.data() + eol + 1;
  uint64_t want;
  std::memcpy(&want, b + body, 8);
  if (BodyHash(b, body) != want) return false;
  file.Release(0, file.size());  // read again below, a part at a time
  Reader r(b, body);
  std::vector<std::string_view> strings(ns);  // views into the file: every job's id is in here once (issue 15)
  for (auto& s : strings) {
    uint32_t len;
    if (!r.Get(&len) || !r.Bytes(len, &s)) return false;
  }
  const size_t records = static_cast<size_t>(r.at() - data.data());  // the strings stay mapped; records go
  size_t released = records;
  auto str = [&](std::string* out) {
    uint32_t i;
    if (!r.Get(&i) || i >= strings.size()) return false;
    *out = strings[i];
    return true;
  };
  auto pooled = [&](jobs::PooledString* out) {  // no std::string made (jobs/pooled_string.h)
    uint32_t i;
    if (!r.Get(&i) || i >= strings.size()) return false;
    *out = jobs::PooledString(strings[i]);
    return true;
  };
  std::vector<PlannedJob> out(n);
  std::unordered_map<uint64_t, Attrs::Entry> pairs;  // (key index, value index) -> interned pair
  std::vector<Attrs::Entry> entries;
  jobs::IdList last_labels;
  for (auto& j : out) {
    if (static_cast<size_t>(r.at() - data.data()) - released >= (size_t{1} << 20)) {
      file.Release(released, static_cast<size_t>(r.at() - data.data()));
      released = static_cast<size_t>(r.at() - data.data());
    }
    uint8_t reportable;
    uint32_t nl, na;
    if (!str(&j.spec.id) || !r.Get(&reportable) || !r.Get(&j.spec.seed) || !pooled(&j.spec.selection) ||
        !pooled(&j.spec.oracle_eval) || !r.Get(&nl) || nl > ns)
      return false;
    j.reportable = reportable != 0;
    std::vector<std::string> labels(nl);
    for (auto& l : labels)
      if (!str(&l)) return false;
    // Jobs share one interned list (jobs::IdList): consecutive jobs mostly repeat it.
    if (labels != last_labels) last_labels = jobs::IdList::Intern(std::move(labels));
    j.spec.labels = last_labels;
    if (!r.Get(&na) || na > ns) return false;
    entries.clear();
    for (uint32_t a = 0; a < na; ++a) {
      uint32_t k, val;
      if (!r.Get(&k) || !r.Get(&val) || k >= strings.size() || val >= strings.size()) return false;
      // One intern per distinct (key, value) of the file, not per job (issue 15).
      auto [it, added] = pairs.emplace(uint64_t{k} << 32 | val, nullptr);
      if (added) it->second = Attrs::Intern(strings[k], strings[val]);
      entries.push_back(it->second);
    }
    if (!Attrs::FromSorted(entries, &j.attrs)) return false;  // written in key order
  }
  if (!r.done()) return false;
  *jobs = std::move(out);
  return true;
}

// BodyHash over bytes that arrive in pieces: the same words, whatever the pieces' sizes.
class StreamHash {
 public:
  void Update(const char* p, size_t n) {
    size_ += n;
    if (tail_n_) {
      const size_t take = std::min(n, 8 - tail_n_);
      std::memcpy(tail_ + tail_n_, p, take);
      tail_n_ += take, p += take, n -= take;
      if (tail_n_ < 8) return;
      Word(tail_);
      tail_n_ = 0;
    }
    for (; n >= 8; p += 8, n -= 8) Word(p);
    std::memcpy(tail_, p, n);
    tail_n_ = n;
  }
  uint64_t size() const { return size_; }
  uint64_t Final() const {
    uint64_t h = h_;
    for (size_t i = 0; i < tail_n_; ++i) h = (h ^ static_cast<unsigned char>(tail_[i])) * 1099511628211ull;
    return h ^ size_;
  }

 private:
  void Word(const char* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h_ = (h_ ^ w) * 1099511628211ull;
  }
  uint64_t h_ = 1469598103934665603ull;
  uint64_t size_ = 0;
  char tail_[8];
  size_t tail_n_ = 0;
};

// Streams a file to a temp name beside `path` through a 1 MB buffer and renames it onto
// `path` at Commit(); destroyed uncommitted (or on any write error) it leaves nothing.
// Bytes after StartBody() also feed the checksum. (Issue 15: the table cache of 10^6
// jobs was built as three 200 MB strings before a byte was written.)
class StreamFile {
 public:
  explicit StreamFile(const std::string& path) : path_(path) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (ec) return;
    // Temporaries of killed writers (every key is another file name): removed here, once their process is gone.
    RemoveStaleTemporariesIn(std::filesystem::path(path).parent_path().string());
    tmp_ = std::make_unique<TempPath>(path);
    f_ = std::fopen(tmp_->path().c_str(), "wb");
    buf_.reserve(kBuffer);
  }
  ~StreamFile() {
    if (f_) std::fclose(f_);  // an uncommitted TempPath removes its file
  }
  StreamFile(const StreamFile&) = delete;
  StreamFile& operator=(const StreamFile&) = delete;
  bool ok() const { return f_ != nullptr; }
  void Append(const char* p, size_t n) {
    if (buf_.size() + n > kBuffer) Flush();
    buf_.append(p, n);
  }
  void Append(std::string_view s) { Append(s.data(), s.size()); }
  template <typename T>
  void Put(T v) {
    Append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void StartBody() { hashing_ = true, hash_from_ = buf_.size(); }
  // The checksum of every byte since StartBody(), and their count; ends the body.
  uint64_t BodyHash(uint64_t* bytes) {
    Flush();
    hashing_ = false;
    *bytes = hash_.size();
    return hash_.Final();
  }
  bool Commit() {
    Flush();
    if (!f_) return false;
    const bool written = std::fflush(f_) == 0 && !std::ferror(f_);
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!written || !closed) return false;
    // Renamed without TempPath::Commit's fsync: a cache lost in a crash is only a slower next run.
    std::error_code ec;
    std::filesystem::rename(tmp_->path(), tmp_->final_path(), ec);  // a link's target, as TempPath resolved it
    return !ec;
  }

 private:
  static constexpr size_t kBuffer = size_t{1} << 20;
  void Flush() {
    if (hashing_) hash_.Update(buf_.data() + hash_from_, buf_.size() - hash_from_);
    hash_from_ = 0;
    if (f_ && !buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) {
      std::fclose(f_);
      f_ = nullptr;
    }
    buf_.clear();
  }
  std::string path_;
  std::unique_ptr<TempPath> tmp_;  // "<path>.tmp-<host>-<pid>-<n>"; removed if never renamed
  std::FILE* f_ = nullptr;
  std::string buf_;
  bool hashing_ = false;
  size_t hash_from_ = 0;
  StreamHash hash_;
};

// Writes the table cache of `jobs` (format 2, described at ReadCache); false when it
// could not be written (nothing is left behind then). Two passes over the jobs instead
// of the file built in memory: the first numbers the distinct strings in order of first
// use (views of the jobs' own strings) and sizes the body, the second streams the
// records. The bytes are those the one-pass writer built (issue 15).
bool WriteCache(const std::string& path, const std::string& key, const std::vector<PlannedJob>& jobs) {
  std::unordered_map<std::string_view, uint32_t> index;
  std::vector<std::string_view> strings;
  index.reserve(jobs.size() + 1024);
  strings.reserve(jobs.size() + 1024);
  uint64_t body = 0;
  auto number = [&](std::string_view s) {
    auto [it, added] = index.emplace(s, static_cast<uint32_t>(strings.size()));
    if (added) strings.push_back(s), body += sizeof(uint32_t) + s.size();
    return it->second;
  };
  // An attribute is an interned (key, value) pair: numbered once per distinct pair.
  std::unordered_map<Attrs::Entry, uint64_t> pairs;
  auto pair = [&](Attrs::Entry e) {
    auto it = pairs.find(e);
    if (it != pairs.end()) return it->second;
    const uint64_t k = number(e->first);
    return pairs.emplace(e, k << 32 | number(e->second)).first->second;
  };
  std::vector<uint32_t> ids;  // each job's id's number: no second lookup of 64 bytes
  ids.reserve(jobs.size());
  for (const auto& j : jobs) {
    ids.push_back(number(j.spec.id));
    number(j.spec.selection.str());
    number(j.spec.oracle_eval.str());
    for (const auto& l : j.spec.labels) number(l);
    for (Attrs::Entry e : j.attrs.entries()) pair(e);
    body += 29 + 4 * j.spec.labels.size() + 8 * j.attrs.size();  // the job's record
  }
  StreamFile out(path);
  if (!out.ok()) return false;
  std::string header = kMagic;
  Put(&header, std::to_string(kFormat));
  Put(&header, key);
  Put(&header, std::to_string(jobs.size()));
  Put(&header, std::to_string(strings.size()));
  Put(&header, std::to_string(body));
  header.push_back('\n');
  out.Append(header);
  out.StartBody();
  for (std::string_view s : strings) {
    out.Put(static_cast<uint32_t>(s.size()));
    out.Append(s);
  }
  auto at = [&](std::string_view s) { return index.find(s)->second; };
  for (size_t i = 0; i < jobs.size(); ++i) {
    const PlannedJob& j = jobs[i];
    out.Put(ids[i]);
    out.Put(static_cast<uint8_t>(j.reportable ? 1 : 0));
    out.Put(static_cast<uint64_t>(j.spec.seed));
    out.Put(at(j.spec.selection.str()));
    out.Put(at(j.spec.oracle_eval.str()));
    out.Put(static_cast<uint32_t>(j.spec.labels.size()));
    for (const auto& l : j.spec.labels) out.Put(at(l));
    out.Put(static_cast<uint32_t>(j.attrs.size()));
    for (Attrs::Entry e : j.attrs.entries()) {
      const uint64_t kv = pairs.find(e)->second;
      out.Put(static_cast<uint32_t>(kv >> 32)), out.Put(static_cast<uint32_t>(kv));
    }
  }
  uint64_t written = 0;
  const uint64_t hash = out.BodyHash(&written);
  if (written != body) return false;  // the header would not match: write nothing
  out.Put(hash);
  return out.Commit();
}

constexpr const char* kIdsMagic = "emosweep-expansion-ids";

bool IsHexId(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A cache file read: its mtime is now, so PruneExpansionCache removes keys unused longest first (no error
// when it cannot be set: a read-only cache is only pruned by age of writing).
void MarkUsed(const std::string& path) { (void)::utimensat(AT_FDCWD, path.c_str(), nullptr, 0); }

}  // namespace

std::string ExpansionCachePath(const std::string& key) {
  const std::string dir = CacheDir();
  return key.empty() || dir.empty() ? "" : dir + "/expansions/" + key + ".bin";
}

std::string ExpansionIdsPath(const std::string& key) {
  const std::string dir = CacheDir();
  return key.empty() || dir.empty() ? "" : dir + "/expansions/" + key + ".ids";
}

bool ReadExpansionIds(const std::string& key, std::vector<std::string>* ids) {
  const std::string path = ExpansionIdsPath(key);
  if (path.empty()) return false;
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::string line;
  std::vector<std::string> v;
  if (!std::getline(f, line) || !Fields(line, &v) || v.size() != 4 || v[0] != kIdsMagic ||
      v[1] != std::to_string(kIdsFormat) || v[2] != key)
    return false;
  const size_t n = std::strtoull(v[3].c_str(), nullptr, 10);
  std::vector<std::string> out;
  out.reserve(n);
  while (std::getline(f, line)) {
    if (!IsHexId(line) || out.size() == n) return false;
    out.push_back(std::move(line));
  }
  if (out.size() != n || n == 0) return false;  // truncated
  *ids = std::move(out);
  MarkUsed(path);
  return true;
}

void WriteExpansionIds(const std::string& key, const std::vector<PlannedJob>& jobs) {
  const std::string path = ExpansionIdsPath(key);
  if (path.empty() || jobs.empty()) return;
  for (const auto& j : jobs)
    if (!IsHexId(j.spec.id)) return;  // not an identity this file can hold: no cache
  std::string header = kIdsMagic;
  Put(&header, std::to_string(kIdsFormat));
  Put(&header, key);
  Put(&header, std::to_string(jobs.size()));
  header.push_back('\n');
  StreamFile out(path);  // streamed: 65 MB at 10^6 jobs (issue 15)
  out.Append(header);
  for (const auto& j : jobs) {
    out.Append(j.spec.id);
    out.Append("\n", 1);
  }
  if (out.Commit()) PruneExpansionCache(key, ExpansionCacheBudget());
}

uint64_t ExpansionCacheBudget() {
  const char* v = std::getenv("EMOSWEEP_CACHE_MAX_MB");
  if (v && *v) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(v, &end, 10);
    if (end && *end == '\0' && mb < (uint64_t{1} << 40)) return mb << 20;
    static std::once_flag said;
    std::call_once(said, [v] {
      LOG_WARN << "EMOSWEEP_CACHE_MAX_MB='" << v << "' is not a number of MiB; the expansion cache keeps 2048 MiB";
    });
  }
  return uint64_t{2048} << 20;
}

size_t PruneExpansionCache(const std::string& keep_key, uint64_t budget_bytes) {
  const std::string dir = CacheDir();
  if (dir.empty()) return 0;
  namespace fs = std::filesystem;
  struct Entry {
    uint64_t bytes = 0;
    fs::file_time_type used = fs::file_time_type::min();
    std::vector<fs::path> files;
  };
  std::map<std::string, Entry> keys;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir + "/expansions", ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string ext = p.extension().string(), stem = p.stem().string();
    // .tsv: the table cache's format 1 (before s8-i15m), never read now.
    if ((ext != ".bin" && ext != ".ids" && ext != ".tsv") || !IsHexId(stem)) continue;
    std::error_code e;
    const uint64_t bytes = fs::file_size(p, e);
    if (e) continue;
    const auto used = fs::last_write_time(p, e);
    if (e) continue;
    Entry& k = keys[stem];
    k.bytes += bytes;
    k.used = std::max(k.used, used);
    k.files.push_back(p);
    total += bytes;
  }
  if (total <= budget_bytes) return 0;
  std::vector<std::pair<fs::file_time_type, std::string>> order;  // oldest use first
  for (const auto& [key, k] : keys)
    if (key != keep_key) order.emplace_back(k.used, key);
  std::sort(order.begin(), order.end());
  size_t removed = 0;
  for (const auto& [used, key] : order) {
    if (total <= budget_bytes) break;
    for (const auto& f : keys[key].files) fs::remove(f, ec);
    total -= keys[key].bytes;
    ++removed;
  }
  return removed;
}

Result<Protocol> LoadProtocolForTables(const std::string& path, const LoadOptions& options) {
  LoadOptions shallow = options;
  shallow.expand = false;
  ES_ASSIGN_OR_RETURN(Protocol p, LoadProtocol(path, shallow));
  const std::string cache = p.missing_inputs.empty() ? ExpansionCachePath(p.expansion_key) : "";
  if (!cache.empty() && ReadCache(cache, p.expansion_key, &p.jobs)) {
    MarkUsed(cache);
    if (options.max_jobs && p.jobs.size() > options.max_jobs)
      return Status::InvalidArgument(path + ": the protocol expands to " + std::to_string(p.jobs.size()) +
                                     " jobs: more than --max-jobs " + std::to_string(options.max_jobs) +
                                     " (shrink the grid, or raise --max-jobs)");
    return p;
  }
  LoadOptions lean = options;
  lean.keep_data = false;   // tables never read utterance ids,
  lean.table_only = true;   // nor data references and deps
  ES_ASSIGN_OR_RETURN(Protocol full, LoadProtocol(path, lean));
  if (cache.empty() || !full.missing_inputs.empty() || full.expansion_key != p.expansion_key ||
      !WriteCache(cache, full.expansion_key, full.jobs))
    return full;  // no cache to fill: the expansion as it is
  WriteExpansionIds(full.expansion_key, full.jobs);
  // The jobs handed on are the file's, read back once the expansion is freed: the list a
  // cached `table` reads, exactly sized (the expansion's grew by doubling; issue 15: a
  // cold `table` held both and the writer's buffers at once, ~2 KB a job).
  std::vector<PlannedJob>().swap(full.jobs);
  // The freed jobs' small blocks (ids, attributes, labels, the expansion's transients) stay
  // in the heap as free memory still counted in RSS, beside the new list the read-back
  // maps (at 10^5: 76 MB after the free, 118 MB while reading back): return the free pages.
  ::malloc_trim(0);
  if (ReadCache(cache, full.expansion_key, &full.jobs)) return full;
  // Replaced or damaged between the write and the read (another writer of the key writes
  // an equal file): expand again.
  return LoadProtocol(path, lean);
}

}  // namespace emosweep::protocols
