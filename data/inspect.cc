// data/inspect.cc: the report behind `emosweep data inspect`.
#include "data/inspect.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace emosweep::data {
namespace {

// The provenance as one readable line: long lists (a feature set's 256 column names) shown by their length;
// the whole document is in `data inspect --json`.
std::string ProvenanceSummary(const nlohmann::json& provenance) {
  if (!provenance.is_object()) return provenance.dump();
  nlohmann::json shown = nlohmann::json::object();
  for (auto it = provenance.begin(); it != provenance.end(); ++it)
    shown[it.key()] = it->is_array() && it->size() > 8 ? nlohmann::json("[" + std::to_string(it->size()) + " items]")
                                                        : *it;
  return shown.dump();
}


void CountNonFinite(const std::vector<float>& v, int64_t* nan, int64_t* inf) {
  for (float x : v) {
    if (std::isnan(x)) ++*nan;
    else if (std::isinf(x)) ++*inf;
  }
}

std::string Pad(const std::string& s, size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }
std::string LPad(const std::string& s, size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }

}  // namespace

Result<InspectReport> InspectStore(const std::string& path) {
  InspectReport r;
  ES_ASSIGN_OR_RETURN(r.info, ReadStoreInfo(path, /*check_hash=*/false));
  StoreReadOptions o;
  o.load_frames = true;
  o.validate = false;
  o.check_hash = false;  // the report shows a mismatch itself
  ES_ASSIGN_OR_RETURN(Corpus c, ReadFeatureStore(path, o));

  r.labels = c.label_set;
  std::map<std::string, size_t> speaker_index;
  for (const auto& u : c.utterances) {
    speaker_index[u.speaker];
    if (std::find(r.labels.begin(), r.labels.end(), u.label) == r.labels.end()) r.labels.push_back(u.label);
  }
  for (auto& [s, i] : speaker_index) i = r.speakers.size(), r.speakers.push_back(s);
  r.counts.assign(r.speakers.size(), std::vector<int64_t>(r.labels.size(), 0));
  for (const auto& u : c.utterances) {
    size_t l = static_cast<size_t>(std::find(r.labels.begin(), r.labels.end(), u.label) - r.labels.begin());
    ++r.counts[speaker_index[u.speaker]][l];
  }
  for (size_t k = 0; k < c.features.size(); ++k) {
    const auto& f = c.features[k];
    FeatureCheck fc;
    fc.info = r.info.features[k];
    fc.rows = f.rows();
    CountNonFinite(f.values, &fc.nan, &fc.inf);
    if (f.has_frames()) {
      fc.frames = static_cast<int64_t>(f.frames.size()) / f.frame_dim;
      CountNonFinite(f.frames, &fc.frame_nan, &fc.frame_inf);
    }
    r.features.push_back(std::move(fc));
  }
  r.recomputed_hash = c.ContentHash();
  r.hash_matches = r.recomputed_hash == r.info.content_hash;
  Status v = c.Validate(path);
  if (!v.ok()) r.validation = v.message();
  return r;
}

bool InspectReport::ok() const {
  if (!hash_matches || !validation.empty()) return false;
  for (const auto& f : features)
    if (f.nan || f.inf || f.frame_nan || f.frame_inf) return false;
  return true;
}

nlohmann::json InspectReport::ToJson() const {
  nlohmann::json table = nlohmann::json::object();
  for (size_t s = 0; s < speakers.size(); ++s)
    for (size_t l = 0; l < labels.size(); ++l) table[speakers[s]][labels[l]] = counts[s][l];
  nlohmann::json per_label = nlohmann::json::object();
  for (size_t l = 0; l < labels.size(); ++l) {
    int64_t n = 0;
    for (const auto& row : counts) n += row[l];
    per_label[labels[l]] = n;
  }
  nlohmann::json feats = nlohmann::json::array();
  for (const auto& f : features)
    feats.push_back({{"name", f.info.name}, {"modality", f.info.modality}, {"dim", f.info.dim},
                     {"rows", f.rows}, {"frame_dim", f.info.frame_dim}, {"frames", f.frames},
                     {"provenance", f.info.provenance}, {"nan", f.nan}, {"inf", f.inf},
                     {"frame_nan", f.frame_nan}, {"frame_inf", f.frame_inf}});
  return {{"path", info.path},
          {"name", info.name},
          {"language", info.language},
          {"label_set", info.label_set},
          {"schema_version", info.schema_version},
          {"writer_version", info.writer_version},
          {"num_utterances", info.num_utterances},
          {"num_speakers", speakers.size()},
          {"utterances_per_label", per_label},
          {"utterances_per_speaker_label", table},
          {"features", feats},
          {"content_hash", {{"stored", info.content_hash}, {"recomputed", recomputed_hash}, {"matches", hash_matches}}},
          {"validation", validation.empty() ? nlohmann::json("ok") : nlohmann::json(validation)},
          {"metadata", info.metadata},
          {"ok", ok()}};
}

std::string InspectReport::ToText() const {
  std::ostringstream os;
  os << "store:        " << info.path << "\n"
     << "corpus:       " << info.name << " (language " << (info.language.empty() ? "?" : info.language)
     << "), schema v" << info.schema_version << ", written by emosweep " << info.writer_version << "\n"
     << "utterances:   " << info.num_utterances << " from " << speakers.size() << " speakers, " << labels.size()
     << " labels\n"
     << "content hash: " << info.content_hash
     << (hash_matches ? " (verified)\n" : "\n  MISMATCH: recomputed " + recomputed_hash + "\n");
  os << "feature sets:\n  " << Pad("name", 20) << Pad("modality", 9) << LPad("dim", 6) << LPad("frames", 10)
     << LPad("nan", 8) << LPad("inf", 8) << "  provenance\n";
  for (const auto& f : features) {
    std::string frames = f.frames ? std::to_string(f.frames) + "x" + std::to_string(f.info.frame_dim) : "-";
    os << "  " << Pad(f.info.name, 20) << Pad(f.info.modality, 9) << LPad(std::to_string(f.info.dim), 6)
       << LPad(frames, 10) << LPad(std::to_string(f.nan + f.frame_nan), 8)
       << LPad(std::to_string(f.inf + f.frame_inf), 8) << "  " << ProvenanceSummary(f.info.provenance) << "\n";
  }
  size_t w = 7;
  for (const auto& s : speakers) w = std::max(w, s.size() + 1);
  os << "utterances per speaker x label:\n  " << Pad("speaker", w);
  for (const auto& l : labels) os << LPad(l.substr(0, 10), std::max<size_t>(6, std::min<size_t>(l.size(), 10) + 1));
  os << LPad("total", 7) << "\n";
  std::vector<int64_t> totals(labels.size(), 0);
  for (size_t s = 0; s < speakers.size(); ++s) {
    os << "  " << Pad(speakers[s], w);
    int64_t row = 0;
    for (size_t l = 0; l < labels.size(); ++l) {
      os << LPad(std::to_string(counts[s][l]), std::max<size_t>(6, std::min<size_t>(labels[l].size(), 10) + 1));
      row += counts[s][l];
      totals[l] += counts[s][l];
    }
    os << LPad(std::to_string(row), 7) << "\n";
  }
  os << "  " << Pad("total", w);
  int64_t all = 0;
  for (size_t l = 0; l < labels.size(); ++l) {
    os << LPad(std::to_string(totals[l]), std::max<size_t>(6, std::min<size_t>(labels[l].size(), 10) + 1));
    all += totals[l];
  }
  os << LPad(std::to_string(all), 7) << "\n";
  os << "validation:   " << (validation.empty() ? "ok" : validation) << "\n";
  return os.str();
}

}  // namespace emosweep::data
