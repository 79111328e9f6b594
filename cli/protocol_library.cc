// cli/protocol_library.cc: library directories, name lookup, listing.
#include "cli/protocol_library.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace emosweep::cli {
namespace fs = std::filesystem;
namespace {

std::string ExecutableDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

bool IsDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// The `description = "..."` line of a protocol file (a plain string on one line, as the library writes it).
std::string ReadDescription(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    size_t k = line.find_first_not_of(" \t");
    if (k == std::string::npos || line.compare(k, 11, "description") != 0) continue;
    size_t q1 = line.find('"', k);
    size_t q2 = q1 == std::string::npos ? q1 : line.rfind('"');
    if (q1 == std::string::npos || q2 <= q1) return "";
    return line.substr(q1 + 1, q2 - q1 - 1);
  }
  return "";
}

}  // namespace

std::vector<std::string> ProtocolLibraryDirs() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("EMOSWEEP_PROTOCOL_PATH")) {
    std::string s = env;
    size_t pos = 0;
    while (pos <= s.size()) {
      size_t colon = s.find(':', pos);
      if (colon == std::string::npos) colon = s.size();
      if (colon > pos) candidates.push_back(s.substr(pos, colon - pos));
      pos = colon + 1;
    }
  }
  const std::string exe_dir = ExecutableDir();
  if (!exe_dir.empty()) candidates.push_back(exe_dir + "/../share/emosweep/protocols");
#ifdef EMOSWEEP_SOURCE_PROTOCOL_DIR
  candidates.push_back(EMOSWEEP_SOURCE_PROTOCOL_DIR);
#endif
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& c : candidates) {
    if (!IsDir(c)) continue;
    std::error_code ec;
    std::string canon = fs::weakly_canonical(c, ec).string();
    if (ec) canon = c;
    if (seen.insert(canon).second) out.push_back(canon);
  }
  return out;
}

Result<std::string> ResolveProtocolPath(const std::string& arg) {
  std::error_code ec;
  if (arg.empty()) return Status::InvalidArgument("empty protocol argument");
  // A file of that name, or a path; a directory of that name (./quickstart/) does not hide the library's.
  if (fs::is_regular_file(arg, ec) || arg.find('/') != std::string::npos) return arg;
  const std::string file = arg.size() > 5 && arg.compare(arg.size() - 5, 5, ".toml") == 0 ? arg : arg + ".toml";
  const auto dirs = ProtocolLibraryDirs();
  for (const auto& d : dirs) {
    fs::path p = fs::path(d) / file;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  std::string msg = arg + ": no such protocol file, and no library protocol of that name (searched: ";
  if (dirs.empty()) msg += "no library directory found";
  for (size_t i = 0; i < dirs.size(); ++i) msg += (i ? ", " : "") + dirs[i];
  msg += ")";
  auto known = ListLibraryProtocols();
  if (!known.empty()) {
    msg += "; library protocols:";
    for (const auto& k : known) msg += " " + k.name;
  }
  return Status::NotFound(msg);
}

std::vector<LibraryProtocol> ListLibraryProtocols() {
  std::map<std::string, LibraryProtocol> by_name;
  for (const auto& d : ProtocolLibraryDirs()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      if (!e.is_regular_file(ec) || e.path().extension() != ".toml") continue;
      std::string name = e.path().stem().string();
      if (by_name.count(name)) continue;  // an earlier directory wins
      by_name[name] = {name, e.path().string(), ReadDescription(e.path().string())};
    }
  }
  std::vector<LibraryProtocol> out;
  for (auto& [n, p] : by_name) out.push_back(std::move(p));
  return out;
}

}  // namespace emosweep::cli
