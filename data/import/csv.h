// data/import/csv.h: an RFC 4180 CSV reader that knows its line numbers.
//
// Quoted fields with embedded separators, newlines and doubled quotes; a
// UTF-8 BOM; CRLF or LF line ends; blank lines skipped. The separator is
// ',' by default, or detected from the header (',', ';' as openSMILE writes,
// or tab). Records are streamed into a caller-owned vector whose strings are
// reused, so reading a wide feature CSV (openSMILE: thousands of columns)
// allocates nothing per row once the first row is read. Every error names
// the file and the line where the offending record starts.
// Thread-safety: a CsvReader is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace emosweep::data {

struct CsvOptions {
  char separator = 0;  // 0: detect from the header line (',' unless it has ';' or tab and no ',')
};

class CsvReader {
 public:
  // Reads the whole file and its header record.
  static Result<CsvReader> Open(const std::string& path, const CsvOptions& options = {});
  static Result<CsvReader> FromString(std::string text, const std::string& where, const CsvOptions& options = {});

  const std::vector<std::string>& header() const { return header_; }
  int ColumnIndex(const std::string& name) const;  // -1 when absent
  char separator() const { return sep_; }
  const std::string& where() const { return where_; }

  // Reads the next record into *fields (resized to the header width). Returns
  // false at the end of the file. A record with a different number of fields
  // than the header is an error naming its line.
  Result<bool> Next(std::vector<std::string>* fields);
  int64_t line() const { return record_line_; }  // 1-based line where the last record started

 private:
  // Parses one record starting at pos_ into *fields; *count = number of fields.
  Status ParseRecord(std::vector<std::string>* fields, size_t* count);

  std::string where_;
  std::string text_;
  size_t pos_ = 0;
  int64_t line_ = 1;  // line of pos_
  int64_t record_line_ = 0;
  char sep_ = ',';
  std::vector<std::string> header_;
};

// Whole-table convenience for small files (metadata).
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lines;  // line of each row
  int ColumnIndex(const std::string& name) const;
};
Result<CsvTable> ReadCsvTable(const std::string& path, const CsvOptions& options = {});

}  // namespace emosweep::data
