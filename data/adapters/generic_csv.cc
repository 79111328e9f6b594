// Generic adapter: <root>/metadata.csv with one row per audio file.
// Required columns: file (path relative to the root), speaker, and label (or
// emotion). Optional: id (default: the file's stem), transcript (or text),
// session, gender, group. Labels go through the label map given with
// --label-map; without one they must already be canonical names.
#include <algorithm>
#include <iterator>

#include "core/files.h"
#include "core/log.h"
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {

Status ScanGenericCsv(const std::string& root, ScanSink& sink) {
  const std::string csv = JoinPath(root, "metadata.csv");
  if (!FileExists(csv)) return Status::NotFound(csv + ": no such file (the generic_csv adapter reads ROOT/metadata.csv)");
  ES_ASSIGN_OR_RETURN(CsvTable t, ReadCsv(csv));
  auto col = [&](const char* a, const char* b = nullptr) { int c = t.Column(a); return c >= 0 || !b ? c : t.Column(b); };
  const int file = col("file", "path"), speaker = col("speaker"), label = col("label", "emotion");
  const int id = col("id"), transcript = col("transcript", "text"), session = col("session"), gender = col("gender"),
            group = col("group");
  if (file < 0 || speaker < 0 || label < 0)
    return Status::InvalidArgument(csv + ": needs columns file, speaker and label (or emotion)");
  {  // A column this adapter does not read is named, not silently dropped (a misspelt "gendre").
    const int used[] = {file, speaker, label, id, transcript, session, gender, group};
    std::string unused;
    for (size_t c = 0; c < t.header.size(); ++c)
      if (std::find(std::begin(used), std::end(used), static_cast<int>(c)) == std::end(used))
        unused += (unused.empty() ? "'" : ", '") + t.header[c] + "'";
    if (!unused.empty())
      LOG_WARN << csv << ": columns not used: " << unused
               << " (read: file/path, speaker, label/emotion, id, transcript/text, session, gender, group)";
  }
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const auto& row = t.rows[i];
    const std::string where = csv + ":" + std::to_string(t.line_of_row[i]);
    UtteranceRecord r;
    r.origin = csv + " line " + std::to_string(t.line_of_row[i]);
    const std::string rel = Trim(row[file]);
    r.speaker = Trim(row[speaker]);
    r.original_label = Trim(row[label]);
    if (rel.empty() || r.speaker.empty() || r.original_label.empty()) {
      ES_RETURN_IF_ERROR(sink.Bad(where, "empty file, speaker or label"));
      continue;
    }
    r.wav_path = rel[0] == '/' ? rel : JoinPath(root, rel);
    if (!FileExists(r.wav_path)) {
      ES_RETURN_IF_ERROR(sink.Bad(r.wav_path, "audio file listed at " + where + " does not exist"));
      continue;
    }
    r.id = id >= 0 && !Trim(row[id]).empty() ? Trim(row[id]) : Stem(rel);
    if (transcript >= 0) r.transcript = row[transcript];
    if (session >= 0) r.session = Trim(row[session]);
    if (gender >= 0) r.gender = NormaliseGender(row[gender]);
    if (group >= 0) r.group = Trim(row[group]);
    sink.Add(std::move(r));
  }
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
