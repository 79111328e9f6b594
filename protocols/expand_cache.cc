// protocols/expand_cache.cc: see expand_cache.h. Two files per expansion key: the
// table cache (<key>.bin, binary, described at ReadCache) and the job ids (<key>.ids,
// text: a header line of backslash-escaped tab-separated fields, then one id a line).
#include "protocols/expand_cache.h"

#include "core/cache_dir.h"
#include "core/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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

// Writes `text` to `path` through a temp name + rename; silently nothing on failure.
void WriteAtomically(const std::string& path, const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return;
  char nonce[16];
  std::snprintf(nonce, sizeof nonce, "%08x", std::random_device()());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + nonce;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f.flush()) {
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

void WriteCache(const std::string& path, const std::string& key, const std::vector<PlannedJob>& jobs) {
  std::unordered_map<std::string, uint32_t> index;
  std::vector<const std::string*> strings;
  auto id = [&](const std::string& s) {
    auto [it, added] = index.emplace(s, static_cast<uint32_t>(strings.size()));
    if (added) strings.push_back(&it->first);
    return it->second;
  };
  std::string records;
  auto put = [&records](auto v) { records.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (const auto& j : jobs) {
    put(id(j.spec.id));
    put(static_cast<uint8_t>(j.reportable ? 1 : 0));
    put(static_cast<uint64_t>(j.spec.seed));
    put(id(j.spec.selection));
    put(id(j.spec.oracle_eval));
    put(static_cast<uint32_t>(j.spec.labels.size()));
    for (const auto& l : j.spec.labels) put(id(l));
    put(static_cast<uint32_t>(j.attrs.size()));
    for (const auto& [k, v] : j.attrs) put(id(k)), put(id(v));
  }
  std::string body;
  for (const auto* s : strings) {
    const auto len = static_cast<uint32_t>(s->size());
    body.append(reinterpret_cast<const char*>(&len), sizeof len).append(*s);
  }
  body += records;
  std::string text = kMagic;
  Put(&text, std::to_string(kFormat));
  Put(&text, key);
  Put(&text, std::to_string(jobs.size()));
  Put(&text, std::to_string(strings.size()));
  Put(&text, std::to_string(body.size()));
  text.push_back('\n');
  text += body;
  const uint64_t h = BodyHash(body.data(), body.size());
  text.append(reinterpret_cast<const char*>(&h), sizeof h);
  WriteAtomically(path, text);
}

constexpr const char* kIdsMagic = "emosweep-expansion-ids";

bool IsHexId(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

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
  return true;
}

void WriteExpansionIds(const std::string& key, const std::vector<PlannedJob>& jobs) {
  const std::string path = ExpansionIdsPath(key);
  if (path.empty() || jobs.empty()) return;
  std::string text = kIdsMagic;
  Put(&text, std::to_string(kIdsFormat));
  Put(&text, key);
  Put(&text, std::to_string(jobs.size()));
  text.push_back('\n');
  text.reserve(text.size() + 65 * jobs.size());
  for (const auto& j : jobs) {
    if (!IsHexId(j.spec.id)) return;  // not an identity this file can hold: no cache
    text.append(j.spec.id).push_back('\n');
  }
  WriteAtomically(path, text);
}

Result<Protocol> LoadProtocolForTables(const std::string& path, const LoadOptions& options) {
  LoadOptions shallow = options;
  shallow.expand = false;
  ES_ASSIGN_OR_RETURN(Protocol p, LoadProtocol(path, shallow));
  const std::string cache = p.missing_inputs.empty() ? ExpansionCachePath(p.expansion_key) : "";
  if (!cache.empty() && ReadCache(cache, p.expansion_key, &p.jobs)) {
    if (options.max_jobs && p.jobs.size() > options.max_jobs)
      return Status::InvalidArgument(path + ": the protocol expands to " + std::to_string(p.jobs.size()) +
                                     " jobs: more than --max-jobs " + std::to_string(options.max_jobs) +
                                     " (shrink the grid, or raise --max-jobs)");
    return p;
  }
  LoadOptions lean = options;
  lean.keep_data = false;  // tables never read utterance ids
  ES_ASSIGN_OR_RETURN(Protocol full, LoadProtocol(path, lean));
  if (!cache.empty() && full.missing_inputs.empty() && full.expansion_key == p.expansion_key) {
    WriteCache(cache, full.expansion_key, full.jobs);
    WriteExpansionIds(full.expansion_key, full.jobs);
  }
  return full;
}

}  // namespace emosweep::protocols
