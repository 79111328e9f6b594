// Metadata CSV + feature files. The metadata decides the utterances and
// their order; every feature file is then read into rows for the kept
// utterances (those the label map did not drop), either by position
// (.npy, aligned .npz member) or by id (.npz per-utterance members, CSV).
#include "data/import/table_import.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "core/files.h"
#include "core/hash.h"
#include "data/import/csv.h"
#include "data/import/npy.h"

namespace emosweep::data {
namespace {

struct Rows {  // the utterances being imported
  std::vector<Utterance> utts;
  std::vector<size_t> csv_row;  // CSV row index of each kept utterance
  size_t total = 0;             // CSV rows before dropping
  std::unordered_map<std::string, size_t> by_id;
};

bool EndsWith(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string StemOf(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  size_t dot = base.rfind('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A field without surrounding blanks (helper-63: speaker "s1 " was another speaker than "s1", which can split one
// actor across a speaker-independent split).
std::string Trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A metadata column by any of `names` (lower case), in their order: the exact header, then the header
// case-insensitively and without surrounding blanks, as the generic_csv adapter matches (`Speaker`, ` gender` were
// ignored before). A name before its aliases: `Label` wins over an `emotion` column (helper-63: the alias won).
int FirstColumn(const CsvTable& t, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (int c = t.ColumnIndex(n); c >= 0) return c;
    for (size_t c = 0; c < t.header.size(); ++c)
      if (Lower(Trimmed(t.header[c])) == n) return static_cast<int>(c);
  }
  return -1;
}

Status CheckFinite(const FeatureSet& fs, const Rows& rows, const std::string& where) {
  for (size_t k = 0; k < fs.values.size(); ++k)
    if (!std::isfinite(fs.values[k]))
      return Status::InvalidArgument(where + ": non-finite value (" + std::to_string(fs.values[k]) +
                                     (std::isinf(fs.values[k]) ? ": infinite, or beyond float32's range of ±3.4e38"
                                                               : "") +
                                     ") for utterance '" + rows.utts[k / fs.dim].id + "', column " +
                                     std::to_string(k % fs.dim));
  return Status::Ok();
}

Status FromAligned(const NpyArray& a, const std::string& where, const Rows& rows, FeatureSet* fs) {
  if (a.shape.size() != 2)
    return Status::InvalidArgument(where + ": expected a 2-D [N, D] array, got " + std::to_string(a.shape.size()) +
                                   " dimensions");
  if (static_cast<size_t>(a.shape[0]) != rows.total)
    return Status::InvalidArgument(where + ": " + std::to_string(a.shape[0]) + " rows, but the metadata CSV has " +
                                   std::to_string(rows.total) + " rows (rows must align)");
  if (a.shape[1] <= 0) return Status::InvalidArgument(where + ": the array has no columns (shape [N, 0])");
  fs->dim = a.shape[1];
  fs->values.resize(rows.utts.size() * static_cast<size_t>(fs->dim));
  for (size_t i = 0; i < rows.utts.size(); ++i)
    std::copy_n(a.values.data() + rows.csv_row[i] * fs->dim, fs->dim, fs->values.data() + i * fs->dim);
  return Status::Ok();
}

Status FromNpz(const FeatureSource& src, const Rows& rows, FeatureSet* fs) {
  ES_ASSIGN_OR_RETURN(NpzArchive z, NpzArchive::Open(src.path));
  std::string member = src.column_spec;
  const auto keys = z.Keys();
  if (member.empty() && z.Has(src.name)) member = src.name;
  if (member.empty() && keys.size() == 1 && !rows.by_id.count(keys[0])) member = keys[0];
  if (!member.empty()) {
    ES_ASSIGN_OR_RETURN(NpyArray a, z.Read(member));
    fs->provenance["member"] = member;
    return FromAligned(a, src.path + ", member '" + member + "'", rows, fs);
  }
  fs->provenance["member"] = "per-utterance";
  for (size_t i = 0; i < rows.utts.size(); ++i) {
    const std::string& id = rows.utts[i].id;
    if (!z.Has(id))
      return Status::NotFound(src.path + ": no member for utterance '" + id + "' (members are per utterance id; " +
                              "or name an [N, D] member as PATH:MEMBER)");
    ES_ASSIGN_OR_RETURN(NpyArray a, z.Read(id));
    const std::string where = src.path + ", member '" + id + "'";
    if (!(a.shape.size() == 1 || (a.shape.size() == 2 && a.shape[0] == 1)))
      return Status::InvalidArgument(where + ": expected a [D] or [1, D] vector per utterance");
    const int64_t d = a.shape.back();
    if (i == 0) {
      fs->dim = d;
      fs->values.reserve(rows.utts.size() * static_cast<size_t>(d));
    } else if (d != fs->dim) {
      return Status::InvalidArgument(where + ": dimension " + std::to_string(d) + ", but member '" + rows.utts[0].id +
                                     "' has " + std::to_string(fs->dim));
    }
    fs->values.insert(fs->values.end(), a.values.begin(), a.values.end());
  }
  return Status::Ok();
}

Status FromCsv(const FeatureSource& src, const std::string& id_column, const Rows& rows, FeatureSet* fs,
               ImportReport* report) {
  ES_ASSIGN_OR_RETURN(CsvReader r, CsvReader::Open(src.path));
  const auto& h = r.header();
  int idc = -1;
  if (!id_column.empty()) {
    idc = r.ColumnIndex(id_column);
    if (idc < 0) return Status::InvalidArgument(src.path + ": no id column '" + id_column + "' in the header");
  } else {
    for (const char* n : {"id", "name", "file"})
      if (idc < 0) idc = r.ColumnIndex(n);
    if (idc < 0) return Status::InvalidArgument(src.path + ": no id column (id, name or file); pass --id-column");
  }
  std::vector<int> cols;
  size_t lo = 0, hi = h.size();
  if (!src.column_spec.empty()) {
    const size_t dots = src.column_spec.find("..");
    if (dots == std::string::npos)
      return Status::InvalidArgument("--features " + src.name + ": CSV column spec must be FIRST..LAST, got '" +
                                     src.column_spec + "'");
    const std::string a = src.column_spec.substr(0, dots), b = src.column_spec.substr(dots + 2);
    if (!a.empty()) {
      int c = r.ColumnIndex(a);
      if (c < 0) return Status::InvalidArgument(src.path + ": no column '" + a + "'");
      lo = static_cast<size_t>(c);
    }
    if (!b.empty()) {
      int c = r.ColumnIndex(b);
      if (c < 0) return Status::InvalidArgument(src.path + ": no column '" + b + "'");
      hi = static_cast<size_t>(c) + 1;
    }
  }
  for (size_t c = lo; c < hi; ++c)
    if (static_cast<int>(c) != idc && h[c] != "frameTime" && h[c] != "class" &&
        (src.column_spec.size() || (h[c] != "file" && h[c] != "name" && h[c] != "id")))
      cols.push_back(static_cast<int>(c));
  if (cols.empty()) return Status::InvalidArgument(src.path + ": no feature columns selected");
  fs->dim = static_cast<int64_t>(cols.size());
  fs->values.assign(rows.utts.size() * cols.size(), 0.f);
  std::vector<int64_t> seen_line(rows.utts.size(), 0);
  std::vector<std::string> f;
  int64_t unused = 0;
  while (true) {
    ES_ASSIGN_OR_RETURN(bool more, r.Next(&f));
    if (!more) break;
    std::string id = Trimmed(f[idc]);  // as the metadata's ids
    if (id.size() >= 2 && id.front() == '\'' && id.back() == '\'') id = id.substr(1, id.size() - 2);  // openSMILE
    if (id.find('/') != std::string::npos || EndsWith(id, ".wav")) id = StemOf(id);
    auto it = rows.by_id.find(id);
    if (it == rows.by_id.end()) {
      ++unused;
      continue;
    }
    const size_t i = it->second;
    if (seen_line[i])
      return Status::InvalidArgument(src.path + ": line " + std::to_string(r.line()) + ": second row for '" + id +
                                     "' (first on line " + std::to_string(seen_line[i]) +
                                     "); frame-level CSVs are not supported, use utterance-level functionals");
    seen_line[i] = r.line();
    float* out = fs->values.data() + i * cols.size();
    for (size_t k = 0; k < cols.size(); ++k) {
      const std::string& s = f[cols[k]];
      const char* b = s.data();
      const char* e = b + s.size();
      while (b < e && *b == ' ') ++b;
      if (b < e && *b == '+') ++b;
      auto [ptr, ec] = std::from_chars(b, e, out[k]);
      if (ec == std::errc::result_out_of_range && ptr == e)  // 1e50: a number, but not a float32
        return Status::InvalidArgument(src.path + ": line " + std::to_string(r.line()) + ", column '" + h[cols[k]] +
                                       "': '" + s + "' is out of the float32 range");
      if (ec != std::errc() || ptr != e)
        return Status::InvalidArgument(src.path + ": line " + std::to_string(r.line()) + ", column '" + h[cols[k]] +
                                       "': '" + s + "' is not a number");
    }
  }
  for (size_t i = 0; i < rows.utts.size(); ++i)
    if (!seen_line[i])
      return Status::NotFound(src.path + ": no row for utterance '" + rows.utts[i].id + "' (id column '" + h[idc] +
                              "')");
  if (unused) report->notes.push_back(src.path + ": " + std::to_string(unused) + " rows with ids not in the metadata were ignored");
  fs->provenance["id_column"] = h[idc];
  fs->provenance["columns"] = {h[cols.front()], h[cols.back()]};
  return Status::Ok();
}

}  // namespace

Result<FeatureSource> ParseFeatureSource(const std::string& text) {
  FeatureSource s;
  const size_t eq = text.find('='), colon = text.find(':', eq == std::string::npos ? 0 : eq);
  if (eq == std::string::npos || eq == 0 || colon == std::string::npos || colon + 1 >= text.size())
    return Status::InvalidArgument("--features '" + text + "': expected NAME=MODALITY:PATH[:COLUMN-SPEC]");
  s.name = text.substr(0, eq);
  s.modality = text.substr(eq + 1, colon - eq - 1);
  s.path = text.substr(colon + 1);
  if (!IsKnownModality(s.modality))
    return Status::InvalidArgument("--features '" + text + "': modality '" + s.modality +
                                   "' (expected audio, text or video)");
  if (!FileExists(s.path)) {
    const size_t last = s.path.rfind(':');
    if (last != std::string::npos && last > 0) {
      s.column_spec = s.path.substr(last + 1);
      s.path.resize(last);
    }
  }
  return s;
}

Result<Corpus> ImportTable(const TableImportOptions& opt, ImportReport* report) {
  if (opt.corpus_name.empty()) return Status::InvalidArgument("a corpus name is required (--corpus)");
  const std::string& mpath = opt.metadata_csv;
  ES_ASSIGN_OR_RETURN(CsvTable meta, ReadCsvTable(mpath));
  report->sources.push_back(mpath);
  const int c_id = FirstColumn(meta, {"id"}), c_file = FirstColumn(meta, {"file", "path"}),
            c_spk = FirstColumn(meta, {"speaker"}), c_lab = FirstColumn(meta, {"label", "emotion"}),
            c_tr = FirstColumn(meta, {"transcript", "text"}), c_ses = FirstColumn(meta, {"session"}),
            c_gen = FirstColumn(meta, {"gender"}), c_grp = FirstColumn(meta, {"group"}),
            c_dur = FirstColumn(meta, {"duration", "duration_s"});
  if (c_id < 0 && c_file < 0) return Status::InvalidArgument(mpath + ": no 'id' or 'file' column in the header");
  if (c_spk < 0) return Status::InvalidArgument(mpath + ": no 'speaker' column in the header");
  if (c_lab < 0) return Status::InvalidArgument(mpath + ": no 'label' (or 'emotion') column in the header");
  const int used[] = {c_id, c_file, c_spk, c_lab, c_tr, c_ses, c_gen, c_grp, c_dur};
  for (size_t c = 0; c < meta.header.size(); ++c)
    if (std::find(std::begin(used), std::end(used), static_cast<int>(c)) == std::end(used))
      report->ignored_keys.push_back(meta.header[c]);
  if (!report->ignored_keys.empty()) {
    std::string cols;
    for (const auto& k : report->ignored_keys) cols += (cols.empty() ? "'" : ", '") + k + "'";
    report->notes.push_back(mpath + ": columns not used: " + cols +
                            " (read: id, file/path, speaker, label/emotion, transcript/text, session, gender, group, "
                            "duration/duration_s)");
  }
  Rows rows;
  rows.total = meta.rows.size();
  if (rows.total == 0) return Status::InvalidArgument(mpath + ": no data rows");
  std::map<std::string, int64_t> id_lines;  // every row's id, dropped rows too (a duplicate is an error either way)
  for (size_t r = 0; r < meta.rows.size(); ++r) {
    const auto& f = meta.rows[r];
    const std::string at = mpath + ": line " + std::to_string(meta.lines[r]);
    ++report->records_read;
    const std::string row_id = Trimmed(c_id >= 0 ? f[c_id] : StemOf(f[c_file]));
    if (!row_id.empty()) {
      auto [seen, first] = id_lines.emplace(row_id, meta.lines[r]);
      if (!first)
        return Status::InvalidArgument(at + ": duplicate utterance id '" + row_id + "' (also on line " +
                                       std::to_string(seen->second) + ")");
    }
    ES_ASSIGN_OR_RETURN(std::optional<std::string> label, MapLabel(opt.label_map, Trimmed(f[c_lab]), at));
    if (!label) {
      ++report->records_dropped;
      continue;
    }
    Utterance u;
    u.id = row_id;
    if (c_file >= 0) u.source = f[c_file];
    u.speaker = Trimmed(f[c_spk]);
    if (u.id.empty()) return Status::InvalidArgument(at + ": empty id");
    if (u.speaker.empty()) return Status::InvalidArgument(at + ": empty speaker");
    u.label = *label;
    u.original_label = f[c_lab];
    if (c_tr >= 0) u.transcript = f[c_tr];
    if (c_ses >= 0) u.session = Trimmed(f[c_ses]);
    if (c_grp >= 0) u.group = Trimmed(f[c_grp]);
    if (c_gen >= 0) {
      const std::string g = Lower(Trimmed(f[c_gen]));
      u.gender = g == "f" || g == "female" || g == "w" ? "f" : g == "m" || g == "male" ? "m" : "";
    }
    if (c_dur >= 0 && !Trimmed(f[c_dur]).empty()) {
      const std::string s = Trimmed(f[c_dur]);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), u.duration_s);
      if (ec != std::errc() || p != s.data() + s.size() || !(u.duration_s >= 0) || !std::isfinite(u.duration_s))
        return Status::InvalidArgument(at + ": duration '" + s + "' is not a non-negative number");
    }
    auto [it, fresh] = rows.by_id.emplace(u.id, rows.utts.size());
    if (!fresh) return Status::InvalidArgument(at + ": duplicate utterance id '" + u.id + "'");
    rows.utts.push_back(std::move(u));
    rows.csv_row.push_back(r);
  }
  if (rows.utts.empty()) return Status::InvalidArgument(mpath + ": the label map drops every row");
  Corpus corpus;
  corpus.name = opt.corpus_name;
  corpus.language = opt.language;
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& src : opt.features) {
    if (corpus.FindFeature(src.name))
      return Status::InvalidArgument("--features: feature set '" + src.name + "' given twice");
    if (!FileExists(src.path)) return Status::NotFound(src.path + ": feature file not found (--features " + src.name + ")");
    FeatureSet fs;
    fs.name = src.name;
    fs.modality = src.modality;
    fs.provenance = {{"importer", "table"}, {"file", src.path.substr(src.path.find_last_of('/') + 1)}};
    if (EndsWith(src.path, ".npy")) {
      if (!src.column_spec.empty()) return Status::InvalidArgument(src.path + ": .npy files take no column spec");
      ES_ASSIGN_OR_RETURN(NpyArray a, ReadNpy(src.path));
      ES_RETURN_IF_ERROR(FromAligned(a, src.path, rows, &fs));
    } else if (EndsWith(src.path, ".npz")) {
      ES_RETURN_IF_ERROR(FromNpz(src, rows, &fs));
    } else if (EndsWith(src.path, ".csv") || EndsWith(src.path, ".txt")) {
      ES_RETURN_IF_ERROR(FromCsv(src, opt.id_column, rows, &fs, report));
    } else {
      return Status::InvalidArgument(src.path + ": unknown feature file type (expected .npy, .npz or .csv)");
    }
    ES_RETURN_IF_ERROR(CheckFinite(fs, rows, src.path));
    ES_ASSIGN_OR_RETURN(std::string bytes, ReadFile(src.path));
    fs.provenance["sha256"] = Sha256Hex(bytes);
    sources.push_back(fs.provenance);
    corpus.features.push_back(std::move(fs));
    report->sources.push_back(src.path);
  }
  corpus.utterances = std::move(rows.utts);
  corpus.label_set = PresentLabelsInOrder(corpus.utterances, opt.label_map);
  corpus.metadata = {{"importer", "table"}, {"metadata_csv", mpath.substr(mpath.find_last_of('/') + 1)},
                     {"features", sources}};
  if (opt.label_map) {
    corpus.metadata["label_map"] = opt.label_map->name();
    corpus.metadata["label_map_hash"] = opt.label_map->Hash();
  }
  ES_RETURN_IF_ERROR(corpus.Validate(mpath));
  return corpus;
}

}  // namespace emosweep::data
