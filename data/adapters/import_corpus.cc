#include "data/adapters/import_corpus.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/files.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/audio/frontend.h"
#include "data/feature_store.h"
#include "data/label_map.h"
#include "data/text/tfidf.h"

namespace emosweep::data {
namespace {

constexpr const char* kTfidf = "tfidf";

struct Mapped {
  UtteranceRecord rec;
  std::string label;
};

// Applies the label map (or, with no map, requires canonical labels).
Result<std::vector<Mapped>> MapLabels(const ScanResult& scan, const std::optional<LabelMap>& map,
                                      ImportCorpusReport* report) {
  std::vector<Mapped> out;
  out.reserve(scan.records.size());
  for (const auto& r : scan.records) {
    const std::string where = r.wav_path.empty() ? r.id : r.wav_path;
    if (!map) {
      if (!IsCanonicalLabel(r.original_label))
        return Status::InvalidArgument(where + ": label '" + r.original_label +
                                       "' is not a canonical label; pass --label-map to map it");
      out.push_back({r, r.original_label});
      continue;
    }
    ES_ASSIGN_OR_RETURN(std::optional<std::string> label, map->Map(r.original_label, where));
    if (!label) {
      ++report->dropped;
      continue;
    }
    out.push_back({r, *label});
  }
  if (out.empty()) return Status::InvalidArgument(scan.corpus + ": the label map drops every utterance");
  return out;
}

// Copies row `row` of `src` (values and frames) as the next row of `dst`.
void AppendRow(const FeatureSet& src, int64_t row, FeatureSet* dst) {
  dst->values.insert(dst->values.end(), src.values.begin() + row * src.dim, src.values.begin() + (row + 1) * src.dim);
  if (dst->has_frames()) {
    const int64_t b = src.offsets[row], e = src.offsets[row + 1];
    dst->frames.insert(dst->frames.end(), src.frames.begin() + b * src.frame_dim, src.frames.begin() + e * src.frame_dim);
    dst->offsets.push_back(dst->offsets.back() + (e - b));
  }
}

// The existing store at `path` when every requested audio set is in it with
// the same provenance (and frame layout); otherwise nothing to reuse.
std::optional<Corpus> LoadReusable(const std::string& path, const std::vector<FeatureSet>& want) {
  if (!FileExists(path)) return std::nullopt;
  StoreReadOptions ro;
  ro.load_frames = true;
  for (const auto& s : want) ro.feature_sets.push_back(s.name);
  auto old = ReadFeatureStore(path, ro);
  if (!old.ok()) {
    LOG_WARN << path << ": existing store not reused (" << old.status().ToString() << "); extracting everything";
    return std::nullopt;
  }
  for (const auto& s : want) {
    const FeatureSet* f = old->FindFeature(s.name);
    if (!f || f->dim != s.dim || f->frame_dim != s.frame_dim || f->provenance != s.provenance) {
      LOG_INFO << path << ": feature set " << s.name << " missing or extracted with other parameters; extracting everything";
      return std::nullopt;
    }
  }
  return std::move(old).value();
}

}  // namespace

Result<std::vector<std::string>> ParseImportFeatures(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t p = text.find(',', start);
    std::string name = text.substr(start, p == std::string::npos ? std::string::npos : p - start);
    start = p == std::string::npos ? text.size() + 1 : p + 1;
    if (name.empty()) continue;
    const auto& known = audio::KnownAudioFeatureSets();
    if (name != kTfidf && std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list = kTfidf;
      for (const auto& k : known) list += ", " + k;
      return Status::InvalidArgument("unknown feature set '" + name + "' (known: " + list + ")");
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  if (out.empty()) return Status::InvalidArgument("--features is empty");
  return out;
}

Result<ImportCorpusReport> ImportCorpus(const ImportCorpusOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.out.empty()) return Status::InvalidArgument("--out is required");
  ImportCorpusReport report;
  report.out = o.out;

  ScanOptions so;
  so.skip_bad = o.skip_bad;
  so.limit = o.limit;
  ES_ASSIGN_OR_RETURN(ScanResult scan, ScanCorpus(o.adapter, o.root, so));
  report.corpus = scan.corpus;
  report.scanned = static_cast<int64_t>(scan.records.size());
  report.skipped_files = scan.skipped;

  const std::string map_name = o.label_map.empty() ? scan.default_label_map : o.label_map;
  std::optional<LabelMap> map;
  if (!map_name.empty()) {
    ES_ASSIGN_OR_RETURN(LabelMap m, LabelMap::Load(map_name));
    map = std::move(m);
  }
  report.label_map = map_name.empty() ? "(canonical labels)" : map_name;
  ES_ASSIGN_OR_RETURN(std::vector<Mapped> rows, MapLabels(scan, map, &report));

  // Split the requested sets into audio and text.
  audio::AudioFeatureOptions ao;
  ao.feature_sets.clear();
  bool want_tfidf = false;
  for (const auto& f : o.features) {
    if (f == kTfidf) want_tfidf = true;
    else ao.feature_sets.push_back(f);
  }
  ao.num_threads = o.threads;
  ES_ASSIGN_OR_RETURN(ao.decode.normalisation, audio::ParseNormalisation(o.normalisation));

  Corpus corpus;
  corpus.name = scan.corpus;
  corpus.language = scan.language;
  for (const auto& m : rows) {
    Utterance u;
    u.id = m.rec.id;
    u.speaker = m.rec.speaker;
    u.gender = m.rec.gender;
    u.session = m.rec.session;
    u.group = m.rec.group;
    u.label = m.label;
    u.original_label = m.rec.original_label;
    u.transcript = m.rec.transcript;
    u.source = m.rec.wav_path;
    corpus.utterances.push_back(std::move(u));
    ++report.per_label[m.label];
  }
  const std::vector<std::string>& order = map ? map->targets() : CanonicalLabels();
  for (const auto& l : order)
    if (report.per_label.count(l)) corpus.label_set.push_back(l);

  if (!ao.feature_sets.empty()) {
    for (const auto& u : corpus.utterances)
      if (u.source.empty())
        return Status::InvalidArgument(o.root + ": utterance '" + u.id + "' has no audio file (" + scan.corpus +
                                       " clips not found), so audio feature sets cannot be extracted; "
                                       "use --features tfidf for a text-only import");
    ES_ASSIGN_OR_RETURN(auto fe, audio::AudioFrontEnd::Create(ao));
    std::vector<FeatureSet> sets = fe->MakeEmptySets();
    std::optional<Corpus> old = LoadReusable(o.out, sets);
    std::unordered_map<std::string, int64_t> old_row;
    if (old)
      for (size_t i = 0; i < old->utterances.size(); ++i) old_row[old->utterances[i].id] = static_cast<int64_t>(i);
    std::vector<int64_t> reuse(corpus.size(), -1);
    std::vector<std::string> todo;
    std::vector<size_t> todo_index;
    for (size_t i = 0; i < corpus.size(); ++i) {
      auto it = old_row.find(corpus.utterances[i].id);
      if (it != old_row.end() && old->utterances[it->second].source == corpus.utterances[i].source) {
        reuse[i] = it->second;
      } else {
        todo.push_back(corpus.utterances[i].source);
        todo_index.push_back(i);
      }
    }
    audio::AudioBatch batch;
    if (!todo.empty()) {
      std::unique_ptr<Progress> progress;
      if (o.progress) progress = std::make_unique<Progress>("extract " + scan.corpus, static_cast<int64_t>(todo.size()));
      ES_ASSIGN_OR_RETURN(batch, audio::ExtractAudioFeatures(todo, ao, progress.get()));
      if (progress) progress->Finish();
    }
    std::vector<int64_t> batch_row(corpus.size(), -1);
    for (size_t k = 0; k < todo_index.size(); ++k) batch_row[todo_index[k]] = static_cast<int64_t>(k);
    for (size_t s = 0; s < sets.size(); ++s) {
      FeatureSet& dst = sets[s];
      dst.values.reserve(corpus.size() * dst.dim);
      const FeatureSet* old_set = old ? old->FindFeature(dst.name) : nullptr;
      for (size_t i = 0; i < corpus.size(); ++i) {
        if (reuse[i] >= 0) AppendRow(*old_set, reuse[i], &dst);
        else AppendRow(batch.sets[s], batch_row[i], &dst);
      }
    }
    for (size_t i = 0; i < corpus.size(); ++i) {
      auto& u = corpus.utterances[i];
      if (reuse[i] >= 0) {
        u.duration_s = old->utterances[reuse[i]].duration_s;
        ++report.reused;
      } else {
        u.duration_s = batch.durations_s[batch_row[i]];
        report.audio_seconds += u.duration_s;
        ++report.extracted;
      }
    }
    for (auto& s : sets) corpus.features.push_back(std::move(s));
  }

  if (want_tfidf) {
    std::vector<std::string> docs;
    docs.reserve(corpus.size());
    bool any = false;
    for (const auto& u : corpus.utterances) {
      docs.push_back(u.transcript);
      any |= !u.transcript.empty();
    }
    if (!any) return Status::InvalidArgument(o.root + ": the " + scan.corpus + " adapter found no transcripts, so tfidf cannot be built");
    text::TfidfOptions to;
    to.dim = o.tfidf_dim;
    ES_ASSIGN_OR_RETURN(text::TfidfVectorizer vec, text::TfidfVectorizer::Fit(docs, to));
    corpus.features.push_back(vec.Transform(docs, kTfidf));
  }

  corpus.metadata = {{"importer", "adapter"},
                     {"adapter", scan.corpus},
                     {"root", o.root},
                     {"label_map", report.label_map},
                     {"label_map_hash", map ? map->Hash() : ""},
                     {"dropped_by_label_map", report.dropped},
                     {"skipped_files", report.skipped_files},
                     {"limit", o.limit}};
  ES_RETURN_IF_ERROR(WriteFeatureStore(o.out, corpus));
  report.utterances = static_cast<int64_t>(corpus.size());
  report.content_hash = corpus.ContentHash();
  report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace emosweep::data
