#include "data/corpus.h"

#include <algorithm>
#include <unordered_set>

#include "core/hash.h"
#include "core/utf8.h"

namespace emosweep::data {

bool IsKnownModality(const std::string& modality) {
  return modality == "audio" || modality == "text" || modality == "video";
}

const FeatureSet* Corpus::FindFeature(const std::string& n) const {
  for (const auto& f : features)
    if (f.name == n) return &f;
  return nullptr;
}

FeatureSet* Corpus::FindFeature(const std::string& n) {
  for (auto& f : features)
    if (f.name == n) return &f;
  return nullptr;
}

Status Corpus::Validate(const std::string& where) const {
  const size_t n = utterances.size();
  std::unordered_set<std::string> ids;
  std::unordered_set<std::string> labels(label_set.begin(), label_set.end());
  if (labels.size() != label_set.size()) return Status::Corruption(where + ": label set has duplicates");
  ES_RETURN_IF_ERROR(CheckUtf8(name, where, "corpus name"));
  ES_RETURN_IF_ERROR(CheckUtf8(language, where, "language"));
  for (size_t i = 0; i < n; ++i) {
    const auto& u = utterances[i];
    if (u.id.empty()) return Status::Corruption(where + ": utterance " + std::to_string(i) + " has an empty id");
    if (!ids.insert(u.id).second) return Status::Corruption(where + ": duplicate utterance id '" + u.id + "'");
    if (u.speaker.empty()) return Status::Corruption(where + ": utterance '" + u.id + "' has no speaker");
    // Every text field reaches JSON (inspect --json, the ledger): refuse invalid UTF-8 here, whatever
    // importer made the corpus (CSV readers name the line earlier).
    for (const auto& [what, s] : {std::pair<const char*, const std::string*>{"id", &u.id}, {"speaker", &u.speaker},
                                  {"gender", &u.gender}, {"session", &u.session}, {"group", &u.group},
                                  {"label", &u.label}, {"original label", &u.original_label},
                                  {"transcript", &u.transcript}, {"source", &u.source}})
      ES_RETURN_IF_ERROR(CheckUtf8(*s, where + ": utterance " + std::to_string(i), what));
    if (!labels.count(u.label))
      return Status::InvalidArgument(where + ": utterance '" + u.id + "' has label '" + u.label +
                                     "' outside the corpus label set");
  }
  std::unordered_set<std::string> names;
  for (const auto& f : features) {
    const std::string fw = where + ": feature set '" + f.name + "'";
    if (f.name.empty() || !names.insert(f.name).second) return Status::Corruption(where + ": feature set name empty or repeated");
    if (!IsKnownModality(f.modality))
      return Status::Corruption(fw + " has modality '" + f.modality + "' (expected audio, text or video)");
    if (f.dim <= 0) return Status::Corruption(fw + " has dimension " + std::to_string(f.dim));
    if (f.values.size() != n * static_cast<size_t>(f.dim))
      return Status::Corruption(fw + " has " + std::to_string(f.values.size() / f.dim) + " rows for " +
                                std::to_string(n) + " utterances");
    for (size_t k = 0; k < f.values.size(); ++k) {
      if (!std::isfinite(f.values[k])) {
        size_t r = k / f.dim;
        return Status::InvalidArgument(fw + " has a non-finite value (" + std::to_string(f.values[k]) +
                                       ") at utterance '" + utterances[r].id + "', column " +
                                       std::to_string(k % f.dim));
      }
    }
    if (f.has_frames()) {
      if (f.offsets.size() != n + 1 || f.offsets.front() != 0)
        return Status::Corruption(fw + " frame offsets must have N + 1 entries starting at 0");
      for (size_t i = 0; i < n; ++i)
        if (f.offsets[i + 1] < f.offsets[i]) return Status::Corruption(fw + " frame offsets decrease");
      if (static_cast<int64_t>(f.frames.size()) != f.offsets.back() * f.frame_dim)
        return Status::Corruption(fw + " frame count does not match the offsets");
      if (!std::all_of(f.frames.begin(), f.frames.end(), [](float v) { return std::isfinite(v); }))
        return Status::InvalidArgument(fw + " has non-finite frame values");
    }
  }
  return Status::Ok();
}

std::string Corpus::ContentHash() const {
  Sha256 h;
  h.UpdateField("emosweep-corpus-v1");
  h.UpdateField(name);
  h.UpdateField(language);
  for (const auto& l : label_set) h.UpdateField(l);
  for (const auto& u : utterances) {
    for (const std::string* s : {&u.id, &u.speaker, &u.gender, &u.session, &u.group, &u.label,
                                 &u.original_label, &u.transcript})
      h.UpdateField(*s);
  }
  std::vector<const FeatureSet*> sorted;
  for (const auto& f : features) sorted.push_back(&f);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const auto* f : sorted) {
    h.UpdateField(f->name);
    h.UpdateField(f->modality);
    h.Update(&f->dim, sizeof f->dim);
    h.Update(f->values.data(), f->values.size() * sizeof(float));
    h.Update(&f->frame_dim, sizeof f->frame_dim);
    h.Update(f->frames.data(), f->frames.size() * sizeof(float));
    h.Update(f->offsets.data(), f->offsets.size() * sizeof(int64_t));
    h.UpdateField(CanonicalJson(f->provenance));
  }
  return h.HexDigest();
}

}  // namespace emosweep::data
