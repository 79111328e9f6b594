#include "data/adapters/adapter.h"

#include <algorithm>
#include <unordered_set>

#include "core/log.h"
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data {

namespace {
constexpr size_t kMaxSkipNotes = 10;
}

Status ScanSink::Bad(const std::string& file, const std::string& why) {
  if (!options_.skip_bad) return Status::InvalidArgument(file + ": " + why + " (pass --skip-bad to skip such files)");
  ++out_->skipped;
  if (out_->skipped_notes.size() < kMaxSkipNotes) out_->skipped_notes.push_back(file + ": " + why);
  return Status::Ok();
}

void ScanSink::Known(const std::string& file, const std::string& why) {
  LOG_WARN << file << ": left out, a known defect of the release: " << why;
}

const std::vector<AdapterInfo>& Adapters() {
  using namespace adapters;  // NOLINT
  static const std::vector<AdapterInfo> kAdapters = {
      {"generic_csv", "", "", "ROOT/metadata.csv (file, speaker, label|emotion; optional transcript|text, session, gender, group, id)", ScanGenericCsv},
      {"iemocap", "en", "iemocap4", "IEMOCAP: Session*/dialog/EmoEvaluation, transcriptions, sentences/wav", ScanIemocap},
      {"crema_d", "en", "cremad", "CREMA-D: AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav", ScanCremaD},
      {"ravdess", "en", "ravdess", "RAVDESS: Actor_XX/03-01-EE-II-SS-RR-AA.wav", ScanRavdess},
      {"emodb", "de", "emodb", "EmoDB: wav/<speaker><text><emotion letter><version>.wav", ScanEmodb},
      {"emovo", "it", "emovo", "EMOVO: <speaker>/<emotion>-<speaker>-<sentence>.wav", ScanEmovo},
      {"tess", "en", "tess", "TESS: <speaker>_<emotion>/<speaker>_<word>_<emotion>.wav", ScanTess},
      {"esd", "", "esd", "ESD: <speaker>/<Emotion>/[split/]<speaker>_<n>.wav + <speaker>/<speaker>.txt", ScanEsd},
      {"meld", "en", "meld", "MELD: {train,dev,test}_sent_emo.csv + clips dia<D>_utt<U>.wav", ScanMeld},
  };
  return kAdapters;
}

const AdapterInfo* FindAdapter(const std::string& name) {
  for (const auto& a : Adapters())
    if (name == a.name) return &a;
  return nullptr;
}

std::string AdapterNamesForHelp() {
  std::string s;
  for (const auto& a : Adapters()) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

Result<ScanResult> ScanCorpus(const std::string& adapter, const std::string& root, const ScanOptions& options) {
  const AdapterInfo* info = FindAdapter(adapter);
  if (!info) return Status::InvalidArgument("unknown adapter '" + adapter + "' (known: " + AdapterNamesForHelp() + ")");
  if (root.empty()) return Status::InvalidArgument("--root is empty");
  if (!adapters::IsDirectory(root)) return Status::NotFound(root + ": corpus root is not a directory");
  ScanResult result;
  result.corpus = info->name;
  result.language = info->language;
  result.default_label_map = info->default_label_map;
  ScanSink sink(options, &result);
  ES_RETURN_IF_ERROR(info->scan(root, sink).WithContext(std::string(adapter) + " adapter"));
  auto& recs = result.records;
  std::sort(recs.begin(), recs.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (size_t i = 1; i < recs.size(); ++i)
    if (recs[i].id == recs[i - 1].id)
      return Status::InvalidArgument(root + ": utterance id '" + recs[i].id + "' occurs twice (" + recs[i - 1].wav_path +
                                     ", " + recs[i].wav_path + ")");
  if (recs.empty())
    return Status::InvalidArgument(root + ": the " + adapter + " adapter found no utterances (see docs/corpora.md for the expected layout)");
  if (options.limit > 0 && static_cast<int64_t>(recs.size()) > options.limit) {
    // N records spread evenly over the id order (the k-th of every size/N), not the first N: ids sort by speaker,
    // label or session in most corpora, so the first 40 of EMOVO were one label, useless for a trial run.
    const size_t n = static_cast<size_t>(options.limit), total = recs.size();
    std::vector<UtteranceRecord> kept;
    kept.reserve(n);
    for (size_t i = 0; i < n; ++i) kept.push_back(std::move(recs[i * total / n]));
    recs = std::move(kept);
  }
  if (result.skipped > 0) {
    LOG_WARN << adapter << " adapter: skipped " << result.skipped << " file(s) under --skip-bad, e.g. "
             << result.skipped_notes.front();
  }
  return result;
}

}  // namespace emosweep::data
