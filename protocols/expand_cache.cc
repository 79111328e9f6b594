// protocols/expand_cache.cc: see expand_cache.h. File format (one job per line,
// tab-separated, every field backslash-escaped: \\ \t \n \r):
//   emosweep-expansion-cache 1 <key> <jobs>
//   id reportable seed selection oracle_eval n_labels labels... n_attrs key value ...
#include "protocols/expand_cache.h"

#include "core/cache_dir.h"
#include "core/files.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

namespace emosweep::protocols {
namespace {

constexpr const char* kMagic = "emosweep-expansion-cache";
constexpr int kFormat = 1;

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

bool ReadCache(const std::string& path, const std::string& key, std::vector<PlannedJob>* jobs) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::string line;
  std::vector<std::string> v;
  if (!std::getline(f, line) || !Fields(line, &v) || v.size() != 4 || v[0] != kMagic ||
      v[1] != std::to_string(kFormat) || v[2] != key)
    return false;
  const size_t n = std::strtoull(v[3].c_str(), nullptr, 10);
  std::vector<PlannedJob> out;
  out.reserve(n);
  while (std::getline(f, line)) {
    if (!Fields(line, &v) || v.size() < 7) return false;
    PlannedJob j;
    j.spec.id = v[0];
    j.reportable = v[1] == "1";
    j.spec.seed = std::strtoull(v[2].c_str(), nullptr, 10);
    j.spec.selection = v[3];
    j.spec.oracle_eval = v[4];
    size_t k = 5, nl = std::strtoull(v[k++].c_str(), nullptr, 10);
    if (k + nl >= v.size()) return false;
    j.spec.labels.assign(v.begin() + k, v.begin() + k + nl);
    k += nl;
    size_t na = std::strtoull(v[k++].c_str(), nullptr, 10);
    if (k + 2 * na != v.size()) return false;
    for (size_t a = 0; a < na; ++a, k += 2) j.attrs.emplace_hint(j.attrs.end(), std::move(v[k]), std::move(v[k + 1]));
    out.push_back(std::move(j));
  }
  if (out.size() != n) return false;  // truncated
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
  std::string text = kMagic;
  Put(&text, std::to_string(kFormat));
  Put(&text, key);
  Put(&text, std::to_string(jobs.size()));
  text.push_back('\n');
  for (const auto& j : jobs) {
    std::string line;
    line.reserve(512);
    line.append(j.spec.id);
    Put(&line, j.reportable ? "1" : "0");
    Put(&line, std::to_string(j.spec.seed));
    Put(&line, j.spec.selection);
    Put(&line, j.spec.oracle_eval);
    Put(&line, std::to_string(j.spec.labels.size()));
    for (const auto& l : j.spec.labels) Put(&line, l);
    Put(&line, std::to_string(j.attrs.size()));
    for (const auto& [k, v] : j.attrs) Put(&line, k), Put(&line, v);
    text.append(line).push_back('\n');
  }
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
  return key.empty() || dir.empty() ? "" : dir + "/expansions/" + key + ".tsv";
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
      v[1] != std::to_string(kFormat) || v[2] != key)
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
  Put(&text, std::to_string(kFormat));
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
