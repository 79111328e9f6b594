#include "data/import/pickle_import.h"

#include <cctype>

#include "core/files.h"
#include "core/hash.h"
#include "data/import/pickle.h"

namespace emosweep::data {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Stem(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  size_t dot = base.rfind('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

std::string Basename(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

// One feature set being filled across files; the first record fixes the dimension.
struct Slot {
  Slot(const char* n, const char* m, std::vector<std::string> k) : name(n), modality(m), keys(std::move(k)) {}
  const char* name;
  const char* modality;
  std::vector<std::string> keys;  // accepted pickle keys (first = canonical)
  int64_t dim = 0;
  std::string dim_from;           // "<file> record <r>" that fixed dim
  std::vector<float> values;
  bool present = false;
};

const PickledValue* FindAny(const PickledRecord& rec, const std::vector<std::string>& keys, std::string* used) {
  for (const auto& k : keys) {
    if (const PickledValue* v = rec.Find(k)) {
      *used = k;
      return v;
    }
  }
  return nullptr;
}

}  // namespace

DerivedIds DeriveFromSampleId(const std::string& sample_id) {
  DerivedIds d;
  d.id = sample_id;
  if (EndsWith(d.id, "_original")) d.id.resize(d.id.size() - 9);
  if (EndsWith(d.id, ".wav")) d.id.resize(d.id.size() - 4);
  const std::string& s = d.id;
  // Ses03F_script01_3_F011: "Ses" NN [FM] "_" (impro|script) ... "_" [FM] digits
  if (s.size() < 12 || s.compare(0, 3, "Ses") != 0 || !std::isdigit(static_cast<unsigned char>(s[3])) ||
      !std::isdigit(static_cast<unsigned char>(s[4])) || (s[5] != 'F' && s[5] != 'M') || s[6] != '_')
    return d;
  const bool impro = s.compare(7, 5, "impro") == 0, script = s.compare(7, 6, "script") == 0;
  size_t last = s.rfind('_');
  if ((!impro && !script) || last <= 6 || last + 2 >= s.size() + 0 || (s[last + 1] != 'F' && s[last + 1] != 'M'))
    return d;
  for (size_t k = last + 2; k < s.size(); ++k)
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return d;
  if (last + 2 == s.size()) return d;
  const char who = s[last + 1];
  d.session = std::to_string((s[3] - '0') * 10 + (s[4] - '0'));
  d.speaker = s.substr(0, 5) + "_" + who;
  d.gender = who == 'F' ? "f" : "m";
  d.group = impro ? "improvised" : "scripted";
  d.known = true;
  return d;
}

Result<Corpus> ImportSeedPickles(const std::vector<std::string>& paths, const PickleImportOptions& options,
                                 ImportReport* report) {
  if (paths.empty()) return Status::InvalidArgument("no pickle files given");
  if (options.corpus_name.empty()) return Status::InvalidArgument("a corpus name is required (--corpus)");
  Corpus corpus;
  corpus.name = options.corpus_name;
  corpus.language = options.language;
  Slot slots[] = {Slot("text", "text", {"text_embed", "text_features"}),
                  Slot("audio", "audio", {"audio_embed", "audio_features"})};
  const std::vector<std::string> label_keys = {"label", "emotion"};
  const std::vector<std::string> known_keys = {"text_embed", "text_features", "audio_embed", "audio_features",
                                               "label", "emotion", "sample_id"};
  nlohmann::json sources = nlohmann::json::array();
  int64_t unknown_speaker = 0;
  for (size_t f = 0; f < paths.size(); ++f) {
    const std::string& path = paths[f];
    ES_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    ES_ASSIGN_OR_RETURN(std::vector<PickledRecord> records, ParseSeedPickle(bytes, path));
    if (records.empty()) return Status::InvalidArgument(path + ": the pickle holds no records");
    sources.push_back({{"file", Basename(path)}, {"sha256", Sha256Hex(bytes)}, {"records", records.size()}});
    bytes.clear();
    bytes.shrink_to_fit();
    if (f == 0) {
      std::string used;
      for (auto& s : slots) s.present = FindAny(records[0], s.keys, &used) != nullptr;
      if (!slots[0].present && !slots[1].present)
        return Status::InvalidArgument(path + ": record 0 has no text_embed/text_features or audio_embed/audio_features");
    }
    for (size_t r = 0; r < records.size(); ++r) {
      const PickledRecord& rec = records[r];
      const std::string rw = path + ": record " + std::to_string(r);
      for (const auto& [key, value] : rec.fields) {
        (void)value;
        if (std::find(known_keys.begin(), known_keys.end(), key) == known_keys.end() &&
            std::find(report->ignored_keys.begin(), report->ignored_keys.end(), key) == report->ignored_keys.end())
          report->ignored_keys.push_back(key);
      }
      // Label first: a dropped record contributes no feature rows.
      std::string key;
      const PickledValue* lv = FindAny(rec, label_keys, &key);
      if (!lv) return Status::InvalidArgument(rw + " has no 'label' (or 'emotion') key");
      std::string original;
      if (lv->kind == PickledValue::Kind::kTensor) {
        ES_ASSIGN_OR_RETURN(int64_t v, lv->tensor.ScalarInt(rw + ", key '" + key + "'"));
        original = std::to_string(v);
      } else if (lv->kind == PickledValue::Kind::kInt) {
        original = std::to_string(lv->i);
      } else if (lv->kind == PickledValue::Kind::kString) {
        original = lv->s;
      } else {
        return Status::InvalidArgument(rw + ": label is a " + lv->KindName() + ", expected an int, tensor or str");
      }
      ++report->records_read;
      ES_ASSIGN_OR_RETURN(std::optional<std::string> label, MapLabel(options.label_map, original, rw));
      if (!label) {
        ++report->records_dropped;
        continue;
      }
      Utterance u;
      const PickledValue* sid = rec.Find("sample_id");
      if (sid && sid->kind == PickledValue::Kind::kString) {
        DerivedIds d = DeriveFromSampleId(sid->s);
        const PickledValue* aug = rec.Find("is_augmented");
        u.id = aug && aug->kind == PickledValue::Kind::kBool && aug->b ? sid->s : d.id;
        u.speaker = d.speaker;
        u.gender = d.gender;
        u.session = d.session;
        u.group = d.group;
        u.source = sid->s;
        unknown_speaker += !d.known;
      } else {
        u.id = Stem(path) + "_" + std::to_string(r);
        u.speaker = "unknown";
        u.source = Basename(path) + "#" + std::to_string(r);
        ++unknown_speaker;
      }
      u.label = *label;
      u.original_label = original;
      for (auto& s : slots) {
        const PickledValue* v = FindAny(rec, s.keys, &key);
        if (!s.present) {
          if (v) return Status::InvalidArgument(rw + " has '" + key + "' but the first record of " + paths[0] + " has no " + s.name + " features");
          continue;
        }
        const std::string kw = rw + " ('" + u.id + "')";
        if (!v) return Status::InvalidArgument(kw + " has no " + s.keys[0] + " (or " + s.keys[1] + ")");
        if (v->kind != PickledValue::Kind::kTensor)
          return Status::InvalidArgument(kw + ": '" + key + "' is a " + v->KindName() + ", expected a tensor");
        const auto& shape = v->tensor.shape;
        if (!(shape.size() == 1 || (shape.size() == 2 && shape[0] == 1)))
          return Status::InvalidArgument(kw + ": '" + key + "' has " + std::to_string(shape.size()) +
                                         " dimensions; expected an utterance-level vector [D] or [1, D]");
        const int64_t d = shape.back();
        if (s.dim == 0) {
          s.dim = d;
          s.dim_from = rw;
          s.values.reserve(static_cast<size_t>(d) * records.size() * paths.size());
        } else if (d != s.dim) {
          return Status::InvalidArgument(kw + ": '" + key + "' has dimension " + std::to_string(d) + ", but " +
                                         s.dim_from + " has " + std::to_string(s.dim));
        }
        ES_ASSIGN_OR_RETURN(std::vector<float> row, v->tensor.ToFloat32(kw + ": '" + key + "'"));
        s.values.insert(s.values.end(), row.begin(), row.end());
      }
      corpus.utterances.push_back(std::move(u));
    }
    report->sources.push_back(path);
  }
  for (auto& s : slots) {
    if (!s.present) continue;
    FeatureSet fs;
    fs.name = s.name;
    fs.modality = s.modality;
    fs.dim = s.dim;
    fs.values = std::move(s.values);
    fs.provenance = {{"importer", "seed-pickle"}, {"keys", s.keys}, {"sources", sources}};
    corpus.features.push_back(std::move(fs));
  }
  corpus.label_set = PresentLabelsInOrder(corpus.utterances, options.label_map);
  corpus.metadata = {{"importer", "seed-pickle"}, {"sources", sources}};
  if (options.label_map) {
    corpus.metadata["label_map"] = options.label_map->name();
    corpus.metadata["label_map_hash"] = options.label_map->Hash();
  }
  if (unknown_speaker)
    report->notes.push_back("speaker unknown for " + std::to_string(unknown_speaker) +
                            " utterances (no IEMOCAP-style sample_id); speaker-independent splits are not possible");
  std::string where = paths.size() == 1 ? paths[0] : paths[0] + " (+" + std::to_string(paths.size() - 1) + " more)";
  ES_RETURN_IF_ERROR(corpus.Validate(where));
  return corpus;
}

}  // namespace emosweep::data
