// data/adapters/scan_util.h: small helpers the corpus adapters share
// (directory walks, a CSV reader, string splitting). Internal to data/adapters.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::data::adapters {

// Regular files under `dir` (recursively) whose name ends with `ext`
// (case-insensitive, e.g. ".wav"), skipping names that start with '.'.
// Returns absolute paths, sorted. NotFound when `dir` is not a directory.
Result<std::vector<std::string>> ListFiles(const std::string& dir, const std::string& ext, bool recursive = true);
// Immediate subdirectories of `dir` (names only, sorted, no dot-names).
Result<std::vector<std::string>> ListDirs(const std::string& dir);

bool IsDirectory(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);
std::string Stem(const std::string& path);      // "a/b/03a01Fa.wav" -> "03a01Fa"
std::string BaseName(const std::string& path);  // "a/b/03a01Fa.wav" -> "03a01Fa.wav"
std::string ParentName(const std::string& path);  // "a/b/c.wav" -> "b"
std::vector<std::string> Split(const std::string& s, char sep);
std::string Trim(const std::string& s);
std::string Lower(std::string s);
bool AllDigits(const std::string& s);
// "f"/"female"/"w" -> "f", "m"/"male" -> "m" (any case), else "".
std::string NormaliseGender(const std::string& g);

// A parsed CSV file (RFC 4180: quoted fields, doubled quotes, newlines inside
// quotes, CRLF, UTF-8 BOM). Rows have as many fields as the header.
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> line_of_row;  // 1-based source line where each row starts
  int Column(const std::string& name) const;  // -1 when absent (case-insensitive)
};
// Corruption naming the file and line for an unterminated quote or a row
// whose field count differs from the header's; NotFound for a missing file.
Result<CsvTable> ReadCsv(const std::string& path);

}  // namespace emosweep::data::adapters
