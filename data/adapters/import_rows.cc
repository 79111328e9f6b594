#include "data/adapters/import_rows.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/files.h"
#include "core/log.h"
#include "data/feature_store.h"

namespace emosweep::data::import_detail {
namespace {

using Clock = std::chrono::steady_clock;

// An existing store (finished or checkpoint) whose rows may be reused.
struct Source {
  std::string path;
  struct timespec written {};  // the store file's modification time
  Corpus corpus;
  std::unordered_map<std::string, int64_t> row;  // utterance id -> row
};

// The sets of `names` that `path` holds (the cheap attribute read first, so
// sets nobody asked for, like a large tfidf, are never loaded); nothing when
// the file is absent, unreadable or holds none of them.
std::optional<Source> LoadSource(const std::string& path, const std::set<std::string>& names) {
  if (!FileExists(path)) return std::nullopt;
  auto info = ReadStoreInfo(path);
  if (!info.ok()) {
    LOG_WARN << path << ": existing store not reused (" << info.status().ToString() << ")";
    return std::nullopt;
  }
  StoreReadOptions ro;
  ro.load_frames = true;
  for (const auto& f : info->features)
    if (names.count(f.name)) ro.feature_sets.push_back(f.name);
  if (ro.feature_sets.empty()) return std::nullopt;
  auto c = ReadFeatureStore(path, ro);
  if (!c.ok()) {
    LOG_WARN << path << ": existing store not reused (" << c.status().ToString() << ")";
    return std::nullopt;
  }
  Source s;
  s.path = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  s.written = st.st_mtim;
  s.corpus = std::move(c).value();
  for (size_t i = 0; i < s.corpus.size(); ++i) s.row.emplace(s.corpus.utterances[i].id, static_cast<int64_t>(i));
  return s;
}

// Whether the audio file at `path` was modified or replaced after `t` (or cannot be read): its features in a store
// written at `t` may be stale (a clip converted again or corrected in place, under the same path). The later of
// mtime and ctime: a file replaced by one with an older mtime (`cp -p`, `rsync -a`, `tar x`) has a new ctime, which
// cannot be set back (helper-60); a chmod also counts, which only costs an extraction.
bool ModifiedAfter(const std::string& path, const struct timespec& t) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return true;
  auto after = [&](const struct timespec& m) {
    return m.tv_sec > t.tv_sec || (m.tv_sec == t.tv_sec && m.tv_nsec > t.tv_nsec);
  };
  return after(st.st_mtim) || after(st.st_ctim);
}

// Every key of `want` is in `have` with the same value ("dim" aside: an
// extractor learns it from its first row).
bool ProvenanceCovers(const nlohmann::json& have, const nlohmann::json& want) {
  if (!have.is_object()) return false;
  for (auto it = want.begin(); it != want.end(); ++it) {
    if (it.key() == "dim") continue;
    auto h = have.find(it.key());
    if (h == have.end() || *h != it.value()) return false;
  }
  return true;
}

// One unit of extraction: the audio front end's sets together, or one extractor's set.
struct Group {
  ImportExtractor* extractor = nullptr;  // null = the audio front end
  std::vector<FeatureSet> sets;          // being built; row i = utterance i
  // Per utterance: where to copy its rows from, or {nullptr, -1} to extract them.
  std::vector<std::pair<const Source*, int64_t>> reuse;
  int64_t todo = 0;
  bool text() const { return extractor && !extractor->audio_input(); }
};

// Whether `src` holds every set of `g` as `g` would compute it now.
bool Compatible(const Group& g, const Source& src) {
  for (const auto& want : g.sets) {
    const FeatureSet* have = src.corpus.FindFeature(want.name);
    if (!have) return false;
    if (g.extractor) {
      if (!ProvenanceCovers(have->provenance, want.provenance) || have->has_frames()) return false;
    } else if (have->dim != want.dim || have->frame_dim != want.frame_dim || have->provenance != want.provenance) {
      return false;
    }
  }
  return true;
}

void PlanReuse(const Corpus& corpus, const std::vector<Source>& sources, Group* g) {
  std::vector<const Source*> usable;
  for (const auto& s : sources) {
    if (Compatible(*g, s)) usable.push_back(&s);
    else LOG_INFO << s.path << ": " << (g->extractor ? "feature set " + g->sets[0].name : std::string("audio feature sets"))
                  << " missing or made with other parameters there; not reused";
  }
  g->reuse.assign(corpus.size(), {nullptr, -1});
  for (size_t i = 0; i < corpus.size(); ++i) {
    const Utterance& u = corpus.utterances[i];
    for (const Source* s : usable) {
      auto it = s->row.find(u.id);
      if (it == s->row.end()) continue;
      const Utterance& old = s->corpus.utterances[it->second];
      if (old.source != u.source || (g->text() && old.transcript != u.transcript)) continue;
      if (!g->text() && !u.source.empty() && ModifiedAfter(u.source, s->written)) continue;  // changed since
      g->reuse[i] = {s, it->second};
      break;
    }
    if (!g->reuse[i].first) ++g->todo;
  }
}

// Copies row `row` of `src` (values and frames) as the next row of `dst`.
Status AppendRow(const FeatureSet& src, int64_t row, FeatureSet* dst) {
  if (dst->values.empty() && dst->frame_dim == 0) dst->dim = src.dim;  // extractor sets learn their dim
  if (src.dim != dst->dim)
    return Status::InvalidArgument("feature set '" + dst->name + "': a row of dimension " + std::to_string(src.dim) +
                                   " after rows of dimension " + std::to_string(dst->dim));
  dst->values.insert(dst->values.end(), src.values.begin() + row * src.dim, src.values.begin() + (row + 1) * src.dim);
  if (dst->has_frames()) {
    const int64_t b = src.offsets[row], e = src.offsets[row + 1];
    dst->frames.insert(dst->frames.end(), src.frames.begin() + b * src.frame_dim, src.frames.begin() + e * src.frame_dim);
    dst->offsets.push_back(dst->offsets.back() + (e - b));
  }
  return Status::Ok();
}

// Utterances [b, e) of group `g`: extracts the ones not reused, appends all in order.
Status ExtractChunk(const ExtractPlan& plan, int64_t b, int64_t e, Corpus* corpus, Group* g,
                    ImportCorpusReport* report, Progress* progress) {
  std::vector<std::string> inputs;
  for (int64_t i = b; i < e; ++i) {
    if (g->reuse[i].first) continue;
    const Utterance& u = corpus->utterances[i];
    inputs.push_back(g->text() ? u.transcript : u.source);
  }
  std::vector<FeatureSet> fresh;
  std::vector<double> durations;
  if (!inputs.empty()) {
    if (!g->extractor) {
      ES_ASSIGN_OR_RETURN(audio::AudioBatch batch, audio::ExtractAudioFeatures(inputs, plan.audio, progress));
      fresh = std::move(batch.sets);
      durations = std::move(batch.durations_s);
    } else {
      ES_ASSIGN_OR_RETURN(FeatureSet fs, g->extractor->Extract(inputs, progress));
      if (fs.rows() != static_cast<int64_t>(inputs.size()))
        return Status::Internal("feature set '" + g->sets[0].name + "': extractor returned " +
                                std::to_string(fs.rows()) + " rows for " + std::to_string(inputs.size()) + " inputs");
      fresh.push_back(std::move(fs));
    }
  }
  int64_t k = 0;
  for (int64_t i = b; i < e; ++i) {
    const auto [src, row] = g->reuse[i];
    for (size_t s = 0; s < g->sets.size(); ++s) {
      const FeatureSet& f = src ? *src->corpus.FindFeature(g->sets[s].name) : fresh[s];
      ES_RETURN_IF_ERROR(AppendRow(f, src ? row : k, &g->sets[s]));
    }
    if (!g->extractor) {
      const double d = src ? src->corpus.utterances[row].duration_s : durations[k];
      corpus->utterances[i].duration_s = d;
      if (!src) report->audio_seconds += d;
    }
    if (!src) ++k;
  }
  return Status::Ok();
}

// Writes utterances [0, rows) with the rows built so far to `path` (atomic).
Status WriteCheckpoint(const std::string& path, const Corpus& corpus, std::vector<Group>* groups, int64_t rows) {
  Corpus c;
  c.name = corpus.name;
  c.language = corpus.language;
  c.label_set = corpus.label_set;
  c.metadata = corpus.metadata;
  c.metadata["checkpoint"] = true;
  c.utterances.assign(corpus.utterances.begin(), corpus.utterances.begin() + rows);
  // Moved in and back out: the sets can be large, and hold exactly `rows` rows now.
  for (auto& g : *groups)
    for (auto& s : g.sets) c.features.push_back(std::move(s));
  Status st = WriteFeatureStore(path, c);
  size_t k = 0;
  for (auto& g : *groups)
    for (auto& s : g.sets) s = std::move(c.features[k++]);
  if (st.ok()) LOG_INFO << path << ": checkpoint of " << rows << " utterances";
  return st;
}

}  // namespace

Status ExtractRows(const ImportCorpusOptions& o, const ExtractPlan& plan, Corpus* corpus, ImportCorpusReport* report) {
  const int64_t n = static_cast<int64_t>(corpus->size());
  std::vector<Group> groups;
  if (plan.front_end) {
    groups.emplace_back();
    groups.back().sets = plan.front_end->MakeEmptySets();
  }
  for (ImportExtractor* x : plan.extractors) {
    groups.emplace_back();
    groups.back().extractor = x;
    groups.back().sets.push_back(x->EmptySet());
  }
  if (groups.empty()) return Status::Ok();

  std::set<std::string> names;
  for (const auto& g : groups)
    for (const auto& s : g.sets) names.insert(s.name);
  const std::string ckpt = ImportCheckpointPath(o.out);
  int64_t ckpt_rows = 0;
  if (FileExists(ckpt))
    if (auto info = ReadStoreInfo(ckpt); info.ok()) ckpt_rows = info->num_utterances;
  std::vector<Source> sources;
  sources.reserve(2);  // Group::reuse points into it
  for (const std::string& p : {o.out, ckpt})
    if (auto s = LoadSource(p, names)) sources.push_back(std::move(*s));

  int64_t todo_total = 0;
  for (auto& g : groups) {
    PlanReuse(*corpus, sources, &g);
    todo_total += g.todo;
  }
  std::unique_ptr<Progress> progress;
  if (o.progress && todo_total > 0) progress = std::make_unique<Progress>("extract " + corpus->name, todo_total);

  // One chunk when nothing can interrupt; otherwise chunks sized to take ~1 s,
  // so a stop request is honoured quickly without starving the threads. A chunk
  // counts the rows it extracts: rows reused from an earlier store or checkpoint
  // cost next to nothing, and sizing by them grew a resumed import's chunks to
  // thousands of rows to extract (10 s and more between checkpoints and before a
  // stop was honoured; a resume killed every few seconds made no progress).
  const bool chunked = o.stop != nullptr || o.checkpoint_seconds > 0;
  int64_t chunk = chunked ? std::max<int64_t>(8, 4 * int64_t(std::max(1, plan.audio.num_threads))) : n;
  std::vector<char> to_extract(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    for (const auto& g : groups) to_extract[static_cast<size_t>(i)] |= g.reuse[static_cast<size_t>(i)].first == nullptr;
  auto last_ckpt = Clock::now();
  int64_t done = 0;
  while (done < n) {
    if (o.stop && o.stop->load()) break;
    int64_t end = done, extracting = 0;
    while (end < n && extracting < chunk) extracting += to_extract[static_cast<size_t>(end++)];
    const auto t0 = Clock::now();
    for (auto& g : groups) ES_RETURN_IF_ERROR(ExtractChunk(plan, done, end, corpus, &g, report, progress.get()));
    for (int64_t i = done; i < end; ++i) {
      bool all = true;
      for (const auto& g : groups) all &= g.reuse[i].first != nullptr;
      ++(all ? report->reused : report->extracted);
    }
    done = end;
    LOG_DEBUG << o.out << ": " << done << " of " << n << " utterances done";
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    if (extracting > 0 && took < 0.5 && chunk < 4096) chunk *= 2;  // a reused-only chunk says nothing
    else if (took > 2.0 && chunk > 1) chunk /= 2;
    if (o.checkpoint_seconds > 0 && done < n &&
        std::chrono::duration<double>(Clock::now() - last_ckpt).count() >= o.checkpoint_seconds) {
      ES_RETURN_IF_ERROR(WriteCheckpoint(ckpt, *corpus, &groups, done));
      ckpt_rows = std::max(ckpt_rows, done);
      last_ckpt = Clock::now();
    }
  }
  if (progress) progress->Finish();
  if (done < n) {
    // Never replace a checkpoint with a smaller one (a stop right after start).
    std::string kept = "nothing new to keep";
    if (done > ckpt_rows) {
      ES_RETURN_IF_ERROR(WriteCheckpoint(ckpt, *corpus, &groups, done));
      kept = std::to_string(done) + " kept in " + ckpt;
    }
    return Status::Aborted(o.out + ": import interrupted after " + std::to_string(done) + " of " + std::to_string(n) +
                           " utterances (" + kept + "); run the same command again to resume");
  }
  for (auto& g : groups) {
    for (auto& s : g.sets) {
      if (g.extractor) s.provenance["dim"] = s.dim;
      corpus->features.push_back(std::move(s));
    }
  }
  return Status::Ok();
}

}  // namespace emosweep::data::import_detail
