#include "data/adapters/import_corpus.h"

#include <filesystem>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/files.h"
#include "data/adapters/import_rows.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/utf8.h"
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
    const std::string where = !r.origin.empty() ? r.origin : r.wav_path.empty() ? r.id : r.wav_path;
    // Names from file names (no line to name) and fields from files the
    // adapter read line by line are checked before anything is mapped.
    for (const auto& [what, s] : {std::pair<const char*, const std::string*>{"audio path", &r.wav_path},
                                  {"id", &r.id}, {"speaker", &r.speaker}, {"gender", &r.gender},
                                  {"session", &r.session}, {"group", &r.group}, {"label", &r.original_label},
                                  {"transcript", &r.transcript}})
      ES_RETURN_IF_ERROR(CheckUtf8(*s, r.origin.empty() ? EscapeBytes(where, 200) : where, what));
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

}  // namespace

std::string ImportCheckpointPath(const std::string& out) { return out + ".partial"; }

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
    if (std::find(out.begin(), out.end(), name) != out.end())  // was merged without a word
      return Status::InvalidArgument("--features: feature set '" + name + "' is listed twice");
    out.push_back(name);
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
  const std::string adapter_name = scan.corpus;  // the adapter's own corpus name, for the provenance
  if (!o.corpus_name.empty()) scan.corpus = o.corpus_name;  // --corpus NAME (default: the adapter's name)
  if (!o.language.empty()) scan.language = o.language;      // --language LANG (default: the adapter's)
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

  // Every input check before any extraction starts.
  bool any_transcript = false;
  for (const auto& u : corpus.utterances) any_transcript |= !u.transcript.empty();
  if (want_tfidf && !any_transcript)
    return Status::InvalidArgument(o.root + ": the " + scan.corpus + " adapter found no transcripts, so tfidf cannot be built");
  bool need_audio = !ao.feature_sets.empty();
  std::set<std::string> names(o.features.begin(), o.features.end());
  for (const ImportExtractor* x : o.extractors) {
    const std::string name = x->EmptySet().name;
    need_audio |= x->audio_input();
    if (!names.insert(name).second)
      return Status::InvalidArgument("encoder feature set name '" + name + "' is already taken (by --features or the other encoder); pick another name");
    if (!x->audio_input() && !any_transcript)
      return Status::InvalidArgument(o.root + ": the " + scan.corpus + " adapter found no transcripts, so a text encoder cannot be run");
  }
  if (need_audio) {
    for (const auto& u : corpus.utterances)
      if (u.source.empty())
        return Status::InvalidArgument(o.root + ": utterance '" + u.id + "' has no audio file (" + scan.corpus +
                                       " clips not found), so audio feature sets cannot be extracted; "
                                       "use --features tfidf for a text-only import");
  }
  corpus.metadata = {{"importer", "adapter"},
                     {"adapter", adapter_name},
                     {"root", o.root},
                     // The map's name, as the table and pickle imports record it (a map file's `name`, not
                     // its path), so that a protocol's `label_map` matches stores imported either way.
                     {"label_map", map ? map->name() : report.label_map},
                     {"label_map_hash", map ? map->Hash() : ""},
                     {"dropped_by_label_map", report.dropped},
                     {"skipped_files", report.skipped_files},
                     {"limit", o.limit}};
  import_detail::ExtractPlan plan;
  if (!ao.feature_sets.empty()) {
    ES_ASSIGN_OR_RETURN(plan.front_end, audio::AudioFrontEnd::Create(ao));
  }
  plan.audio = ao;
  plan.extractors = o.extractors;
  ES_RETURN_IF_ERROR(import_detail::ExtractRows(o, plan, &corpus, &report));

  if (want_tfidf) {
    std::vector<std::string> docs;
    docs.reserve(corpus.size());
    for (const auto& u : corpus.utterances) docs.push_back(u.transcript);
    // A transcript with text but no token (only punctuation, or a script the tokenizer does not read as letters,
    // docs/features.md) becomes a zero vector: say how many, with an example.
    int64_t tokenless = 0;
    const Utterance* example = nullptr;
    for (const auto& u : corpus.utterances)
      if (u.transcript.find_first_not_of(" \t\r\n") != std::string::npos && text::Tokenize(u.transcript).empty()) {
        ++tokenless;
        if (!example) example = &u;
      }
    if (tokenless > 0) {
      size_t cut = std::min<size_t>(example->transcript.size(), 60);  // not inside a UTF-8 sequence
      while (cut < example->transcript.size() && cut > 0 && (example->transcript[cut] & 0xC0) == 0x80) --cut;
      LOG_WARN << corpus.name << ": " << tokenless << " of " << corpus.size()
               << " transcripts hold no word the tfidf tokenizer reads (e.g. '" << example->id << "': \""
               << example->transcript.substr(0, cut) << "\"), so their tfidf rows are all zero (docs/features.md "
               << "lists the scripts it reads)";
    }
    text::TfidfOptions to;
    to.dim = o.tfidf_dim;
    ES_ASSIGN_OR_RETURN(text::TfidfVectorizer vec, text::TfidfVectorizer::Fit(docs, to));
    corpus.features.push_back(vec.Transform(docs, kTfidf));
  }

  ES_RETURN_IF_ERROR(WriteFeatureStore(o.out, corpus));
  // The finished store holds everything the checkpoint did.
  std::error_code ec;
  std::filesystem::remove(ImportCheckpointPath(o.out), ec);
  report.utterances = static_cast<int64_t>(corpus.size());
  report.content_hash = corpus.ContentHash();
  report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace emosweep::data
