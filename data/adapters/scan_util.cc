#include "data/adapters/scan_util.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <utility>

#include <sys/stat.h>

#include "core/files.h"
#include "core/utf8.h"

namespace emosweep::data::adapters {
namespace fs = std::filesystem;

namespace {
bool EndsWithNoCase(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                std::tolower(static_cast<unsigned char>(b)); });
}
}  // namespace

bool IsDirectory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

Result<std::vector<std::string>> ListFiles(const std::string& dir, const std::string& ext, bool recursive) {
  if (!IsDirectory(dir)) return Status::NotFound(dir + ": no such directory");
  std::vector<std::string> out;
  // Directories reached through symbolic links are scanned too (a corpus assembled from links: helper-66's
  // RAVDESS with 12 of 24 actor folders linked imported half the corpus without a word); each directory once,
  // by device and inode, so a link loop ends.
  std::set<std::pair<dev_t, ino_t>> seen;
  std::vector<fs::path> todo{fs::path(dir)};
  while (!todo.empty()) {
    const fs::path d = todo.back();
    todo.pop_back();
    struct stat st {};
    if (::stat(d.c_str(), &st) != 0 || !seen.insert({st.st_dev, st.st_ino}).second) continue;
    std::error_code ec;
    std::vector<fs::directory_entry> entries;  // in name order: which spelling of a linked directory is kept
    // The corpus root itself unreadable is an error (skipped, it read as an empty corpus); a subfolder is skipped.
    fs::directory_iterator dit(d, d == fs::path(dir) ? fs::directory_options::none
                                                     : fs::directory_options::skip_permission_denied,
                               ec),
        end;
    for (; !ec && dit != end; dit.increment(ec)) entries.push_back(*dit);
    if (ec) return Status::IoError(d.string() + ": cannot list directory: " + ec.message());
    std::sort(entries.begin(), entries.end(), [](const fs::directory_entry& a, const fs::directory_entry& b) {
      return a.path().filename() < b.path().filename();
    });
    std::vector<fs::path> subdirs;
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      std::error_code fec;
      if (it->is_directory(fec)) {  // follows a link
        if (recursive) subdirs.push_back(it->path());
        continue;
      }
      if (!EndsWithNoCase(name, ext)) continue;
      if (it->is_symlink(fec) && !it->exists(fec)) {
        std::error_code rec;
        const fs::path target = fs::read_symlink(it->path(), rec);
        return Status::NotFound(fs::absolute(it->path()).string() + ": a symbolic link to a missing file (" +
                                target.string() + ")");
      }
      if (it->is_regular_file(fec)) out.push_back(fs::absolute(it->path()).string());
    }
    todo.insert(todo.end(), subdirs.rbegin(), subdirs.rend());  // depth first, in name order
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> ListDirs(const std::string& dir) {
  if (!IsDirectory(dir)) return Status::NotFound(dir + ": no such directory");
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code dec;
    if (!name.empty() && name[0] != '.' && it->is_directory(dec)) out.push_back(name);
  }
  if (ec) return Status::IoError(dir + ": cannot list directory: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::string JoinPath(const std::string& a, const std::string& b) { return (fs::path(a) / b).string(); }
std::string Stem(const std::string& path) { return fs::path(path).stem().string(); }
std::string BaseName(const std::string& path) { return fs::path(path).filename().string(); }
std::string ParentName(const std::string& path) { return fs::path(path).parent_path().filename().string(); }

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string NormaliseGender(const std::string& g) {
  const std::string l = Lower(Trim(g));
  if (l == "f" || l == "female" || l == "w" || l == "woman") return "f";
  if (l == "m" || l == "male" || l == "man") return "m";
  return "";
}

int CsvTable::Column(const std::string& name) const {
  const std::string want = Lower(name);
  for (size_t i = 0; i < header.size(); ++i)
    if (Lower(Trim(header[i])) == want) return static_cast<int>(i);
  return -1;
}

Result<CsvTable> ReadCsv(const std::string& path) {
  ES_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ES_RETURN_IF_ERROR(CheckUtf8Text(text, path));
  size_t pos = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
  CsvTable t;
  t.path = path;
  int line = 1;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  int row_line = 1;
  auto end_row = [&]() -> Status {
    row.push_back(std::move(field));
    field.clear();
    const bool blank = row.size() == 1 && row[0].empty();
    if (!blank) {
      if (t.header.empty()) {
        t.header = std::move(row);
      } else {
        if (row.size() != t.header.size())
          return Status::Corruption(path + ": line " + std::to_string(row_line) + " has " +
                                    std::to_string(row.size()) + " fields, the header has " +
                                    std::to_string(t.header.size()));
        t.rows.push_back(std::move(row));
        t.line_of_row.push_back(row_line);
      }
    }
    row.clear();
    any = false;
    return Status::Ok();
  };
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (quoted) {
      if (c == '"') {
        if (pos + 1 < text.size() && text[pos + 1] == '"') {
          field.push_back('"');
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (!any) row_line = line;
    any = true;
    if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ++pos;
      ES_RETURN_IF_ERROR(end_row());
      ++line;
    } else {
      field.push_back(c);
    }
  }
  if (quoted) return Status::Corruption(path + ": unterminated quoted field starting on line " + std::to_string(row_line));
  if (any) ES_RETURN_IF_ERROR(end_row());
  if (t.header.empty()) return Status::Corruption(path + ": empty CSV file (no header)");
  return t;
}

}  // namespace emosweep::data::adapters
