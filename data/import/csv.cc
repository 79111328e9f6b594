#include "data/import/csv.h"

#include "core/files.h"
#include "core/utf8.h"

namespace emosweep::data {
namespace {

char DetectSeparator(std::string_view text) {
  std::string_view first = text.substr(0, text.find('\n'));
  const bool comma = first.find(',') != std::string_view::npos;
  if (!comma && first.find(';') != std::string_view::npos) return ';';
  if (!comma && first.find('\t') != std::string_view::npos) return '\t';
  return ',';
}

}  // namespace

Result<CsvReader> CsvReader::Open(const std::string& path, const CsvOptions& options) {
  ES_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return FromString(std::move(text), path, options);
}

Result<CsvReader> CsvReader::FromString(std::string text, const std::string& where, const CsvOptions& options) {
  ES_RETURN_IF_ERROR(CheckUtf8Text(text, where));  // ids, speakers, labels, transcripts: UTF-8 or refused
  CsvReader r;
  r.where_ = where;
  r.text_ = std::move(text);
  if (r.text_.compare(0, 3, "\xEF\xBB\xBF") == 0) r.pos_ = 3;
  // Header: skip leading blank lines, then one record of any width. The separator is detected on the header
  // line itself (helper-63: on the first physical line, so a blank line first made a ';' file comma-separated).
  while (r.pos_ < r.text_.size() && (r.text_[r.pos_] == '\n' || r.text_[r.pos_] == '\r')) {
    if (r.text_[r.pos_] == '\n') ++r.line_;
    ++r.pos_;
  }
  r.sep_ = options.separator ? options.separator : DetectSeparator(std::string_view(r.text_).substr(r.pos_));
  if (r.pos_ >= r.text_.size()) return Status::InvalidArgument(where + ": empty CSV file (no header line)");
  size_t count = 0;
  ES_RETURN_IF_ERROR(r.ParseRecord(&r.header_, &count));
  r.header_.resize(count);
  for (size_t c = 0; c < count; ++c)
    for (size_t d = 0; d < c; ++d)
      if (!r.header_[c].empty() && r.header_[c] == r.header_[d])
        return Status::InvalidArgument(where + ": line " + std::to_string(r.record_line_) + ": column '" +
                                       r.header_[c] + "' appears twice in the header");
  return r;
}

int CsvReader::ColumnIndex(const std::string& name) const {
  for (size_t c = 0; c < header_.size(); ++c)
    if (header_[c] == name) return static_cast<int>(c);
  return -1;
}

Status CsvReader::ParseRecord(std::vector<std::string>* fields, size_t* count) {
  record_line_ = line_;
  size_t n = 0;
  const size_t end = text_.size();
  while (true) {
    if (n == fields->size()) fields->emplace_back();
    std::string& f = (*fields)[n++];
    f.clear();
    if (pos_ < end && text_[pos_] == '"') {
      const int64_t open_line = line_;
      ++pos_;
      while (true) {
        size_t q = text_.find('"', pos_);
        if (q == std::string::npos)
          return Status::InvalidArgument(where_ + ": line " + std::to_string(open_line) +
                                         ": quoted field is never closed");
        for (size_t k = pos_; k < q; ++k) line_ += text_[k] == '\n';
        f.append(text_, pos_, q - pos_);
        pos_ = q + 1;
        if (pos_ < end && text_[pos_] == '"') {  // doubled quote
          f.push_back('"');
          ++pos_;
          continue;
        }
        break;
      }
      if (pos_ < end && text_[pos_] != sep_ && text_[pos_] != '\n' && text_[pos_] != '\r')
        return Status::InvalidArgument(where_ + ": line " + std::to_string(line_) +
                                       ": unexpected character after a closing quote");
    } else {
      size_t stop = pos_;
      while (stop < end && text_[stop] != sep_ && text_[stop] != '\n' && text_[stop] != '\r') ++stop;
      f.append(text_, pos_, stop - pos_);
      pos_ = stop;
    }
    if (pos_ < end && text_[pos_] == sep_) {
      ++pos_;
      continue;
    }
    // End of record: CRLF, LF, lone CR or end of file.
    if (pos_ < end && text_[pos_] == '\r') ++pos_;
    if (pos_ < end && text_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
    *count = n;
    return Status::Ok();
  }
}

Result<bool> CsvReader::Next(std::vector<std::string>* fields) {
  while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) {  // blank lines
    if (text_[pos_] == '\n') ++line_;
    ++pos_;
  }
  if (pos_ >= text_.size()) return false;
  size_t count = 0;
  ES_RETURN_IF_ERROR(ParseRecord(fields, &count));
  if (count != header_.size())
    return Status::InvalidArgument(where_ + ": line " + std::to_string(record_line_) + ": " + std::to_string(count) +
                                   " fields, but the header has " + std::to_string(header_.size()));
  fields->resize(count);
  return true;
}

int CsvTable::ColumnIndex(const std::string& name) const {
  for (size_t c = 0; c < header.size(); ++c)
    if (header[c] == name) return static_cast<int>(c);
  return -1;
}

Result<CsvTable> ReadCsvTable(const std::string& path, const CsvOptions& options) {
  ES_ASSIGN_OR_RETURN(CsvReader reader, CsvReader::Open(path, options));
  CsvTable t;
  t.header = reader.header();
  std::vector<std::string> fields;
  while (true) {
    ES_ASSIGN_OR_RETURN(bool more, reader.Next(&fields));
    if (!more) break;
    t.rows.push_back(fields);
    t.lines.push_back(reader.line());
  }
  return t;
}

}  // namespace emosweep::data
