// data/splits.cc: split methods, lint, split files (docs/formats/split-file.md).
#include "data/splits.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "core/files.h"
#include "core/hash.h"
#include "core/utf8.h"
#include "data/portable_rng.h"

namespace emosweep::data {
namespace {

constexpr char kFormat[] = "emosweep-splits";

struct Groups {
  std::vector<std::string> keys;                 // in first-seen order
  std::map<std::string, std::vector<size_t>> rows;  // key -> utterance indices (corpus order)
};

Result<std::string> GroupKey(const Utterance& u, const std::string& by) {
  const std::string* v = by == "speaker"   ? &u.speaker
                         : by == "session" ? &u.session
                         : by == "gender"  ? &u.gender
                         : by == "group"   ? &u.group
                                           : nullptr;
  if (!v) return Status::InvalidArgument("group_by must be speaker, session, gender or group, not '" + by + "'");
  if (v->empty())
    return Status::InvalidArgument("utterance '" + u.id + "' has no " + by + " (needed to group by " + by + ")");
  return *v;
}

Result<Groups> GroupBy(const Corpus& c, const std::string& by) {
  Groups g;
  for (size_t i = 0; i < c.size(); ++i) {
    ES_ASSIGN_OR_RETURN(std::string k, GroupKey(c.utterances[i], by));
    auto& rows = g.rows[k];
    if (rows.empty()) g.keys.push_back(k);
    rows.push_back(i);
  }
  return g;
}

// Fills train/val from the utterances not in `test_rows`: val is a seeded
// share of the training speakers (at least one when there are two or more).
void FillTrainVal(const Corpus& c, const std::vector<bool>& is_test, double val_fraction, uint64_t seed, Fold* f) {
  std::vector<std::string> speakers;
  std::set<std::string> seen;
  for (size_t i = 0; i < c.size(); ++i)
    if (!is_test[i] && seen.insert(c.utterances[i].speaker).second) speakers.push_back(c.utterances[i].speaker);
  std::sort(speakers.begin(), speakers.end());
  size_t n_val = 0;
  if (val_fraction > 0 && speakers.size() >= 2)
    n_val = std::clamp<size_t>(static_cast<size_t>(std::llround(val_fraction * speakers.size())), 1,
                               speakers.size() - 1);
  PortableRng rng(seed);
  rng.Shuffle(speakers);
  std::set<std::string> val(speakers.begin(), speakers.begin() + static_cast<long>(n_val));
  for (size_t i = 0; i < c.size(); ++i) {
    const auto& u = c.utterances[i];
    if (is_test[i]) f->test.push_back(u.id);
    else if (val.count(u.speaker)) f->val.push_back(u.id);
    else f->train.push_back(u.id);
  }
}

Result<std::vector<Fold>> SpeakerKFold(const Corpus& c, const SplitSpec& s) {
  ES_ASSIGN_OR_RETURN(Groups g, GroupBy(c, "speaker"));
  if (s.k < 2 || static_cast<size_t>(s.k) > g.keys.size())
    return Status::InvalidArgument("speaker_kfold: k = " + std::to_string(s.k) + " needs 2 <= k <= " +
                                   std::to_string(g.keys.size()) + " (the number of speakers)");
  // Shuffle first so ties in size are broken by the seed, then place the
  // largest speakers first into the currently smallest fold (greedy balance).
  std::vector<std::string> order = g.keys;
  std::sort(order.begin(), order.end());
  PortableRng rng(MixSeed(s.seed, 0));
  rng.Shuffle(order);
  std::stable_sort(order.begin(), order.end(),
                   [&](const auto& a, const auto& b) { return g.rows[a].size() > g.rows[b].size(); });
  std::vector<size_t> load(static_cast<size_t>(s.k), 0);
  std::unordered_map<std::string, size_t> fold_of;
  for (const auto& spk : order) {
    size_t best = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    fold_of[spk] = best;
    load[best] += g.rows[spk].size();
  }
  std::vector<Fold> folds(static_cast<size_t>(s.k));
  for (size_t k = 0; k < folds.size(); ++k) {
    folds[k].name = "fold" + std::to_string(k);
    std::vector<bool> is_test(c.size());
    for (size_t i = 0; i < c.size(); ++i) is_test[i] = fold_of[c.utterances[i].speaker] == k;
    FillTrainVal(c, is_test, s.val_fraction, MixSeed(s.seed, k + 1), &folds[k]);
  }
  return folds;
}

Result<std::vector<Fold>> Loso(const Corpus& c, const SplitSpec& s) {
  ES_ASSIGN_OR_RETURN(Groups g, GroupBy(c, s.group_by));
  if (g.keys.size() < 2)
    return Status::InvalidArgument("loso by " + s.group_by + " needs at least two distinct values, found " +
                                   std::to_string(g.keys.size()));
  std::vector<std::string> keys = g.keys;
  std::sort(keys.begin(), keys.end());
  std::vector<Fold> folds;
  for (size_t k = 0; k < keys.size(); ++k) {
    Fold f;
    f.name = s.group_by + "_" + keys[k];
    std::vector<bool> is_test(c.size());
    for (size_t i : g.rows[keys[k]]) is_test[i] = true;
    FillTrainVal(c, is_test, s.val_fraction, MixSeed(s.seed, k + 1), &f);
    folds.push_back(std::move(f));
  }
  return folds;
}

Result<std::vector<Fold>> Stratified(const Corpus& c, const SplitSpec& s) {
  // test_fraction 0: every row trains or validates (a corpus used only as training data).
  if (!(s.test_fraction >= 0) || !(s.val_fraction >= 0) || !(s.test_fraction + s.val_fraction < 1))
    return Status::InvalidArgument("stratified: need test_fraction >= 0, val_fraction >= 0 and their sum < 1");
  std::map<std::string, std::vector<size_t>> by_label;
  for (size_t i = 0; i < c.size(); ++i) by_label[c.utterances[i].label].push_back(i);
  std::vector<int> part(c.size(), 0);  // 0 train, 1 val, 2 test
  PortableRng rng(MixSeed(s.seed, 0));
  for (auto& [label, rows] : by_label) {  // std::map: labels in a fixed order
    rng.Shuffle(rows);
    const size_t n_test = static_cast<size_t>(std::llround(s.test_fraction * rows.size()));
    const size_t n_val = static_cast<size_t>(std::llround(s.val_fraction * rows.size()));
    for (size_t j = 0; j < rows.size(); ++j) part[rows[j]] = j < n_test ? 2 : j < n_test + n_val ? 1 : 0;
  }
  Fold f;
  f.name = "fold0";
  for (size_t i = 0; i < c.size(); ++i) {
    auto* dst = part[i] == 2 ? &f.test : part[i] == 1 ? &f.val : &f.train;
    dst->push_back(c.utterances[i].id);
  }
  return std::vector<Fold>{std::move(f)};
}

std::string JoinFirst(const std::vector<std::string>& v, size_t n) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < n; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > n) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

nlohmann::json SpecJson(const SplitSpec& s) {
  return {{"method", s.method},
          {"k", s.k},
          {"group_by", s.group_by},
          {"val_fraction", s.val_fraction},
          {"test_fraction", s.test_fraction},
          {"seed", s.seed},
          {"allow_speaker_overlap", s.allow_speaker_overlap}};
}

nlohmann::json BodyJson(const SplitSet& s) {
  nlohmann::json folds = nlohmann::json::array();
  for (const auto& f : s.folds) folds.push_back({{"name", f.name}, {"train", f.train}, {"val", f.val}, {"test", f.test}});
  return {{"format", kFormat}, {"version", s.version},         {"corpus", s.corpus},
          {"corpus_hash", s.corpus_hash}, {"spec", SpecJson(s.spec)}, {"folds", folds}};
}

}  // namespace

Result<SplitSet> MakeSplits(const Corpus& corpus, const SplitSpec& spec) {
  SplitSet s;
  s.corpus = corpus.name;
  s.corpus_hash = corpus.ContentHash();
  s.spec = spec;
  if (spec.val_fraction < 0 || spec.val_fraction >= 1)
    return Status::InvalidArgument("val_fraction must be in [0, 1), got " + std::to_string(spec.val_fraction));
  Result<std::vector<Fold>> folds = Status::InvalidArgument(
      "unknown split method '" + spec.method + "' (expected speaker_kfold, loso or stratified)");
  if (spec.method == "speaker_kfold") folds = SpeakerKFold(corpus, spec);
  else if (spec.method == "loso") folds = Loso(corpus, spec);
  else if (spec.method == "stratified") folds = Stratified(corpus, spec);
  if (!folds.ok()) return folds.status().WithContext(corpus.name);
  s.folds = std::move(folds).value();
  ES_RETURN_IF_ERROR(LintSplits(corpus, s));
  return s;
}

Result<SplitSet> SplitFromIdLists(const Corpus& corpus, const std::vector<std::pair<std::string, std::string>>& parts,
                                  bool allow_speaker_overlap) {
  std::unordered_map<std::string, size_t> row;
  for (size_t i = 0; i < corpus.size(); ++i) row[corpus.utterances[i].id] = i;
  std::unordered_map<std::string, std::string> seen;  // id -> "file line N" where first listed
  std::vector<int> part_of(corpus.size(), -1);        // 0 train, 1 val, 2 test
  std::set<std::string> given;
  for (const auto& [part, path] : parts) {
    const int p = part == "train" ? 0 : part == "val" ? 1 : part == "test" ? 2 : -1;
    if (p < 0) return Status::InvalidArgument(path + ": part '" + part + "' is not one of train, val, test");
    if (!given.insert(part).second) return Status::InvalidArgument("the " + part + " list is given twice");
    ES_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    ES_RETURN_IF_ERROR(CheckUtf8Text(text, path));
    size_t line_no = 0;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string id = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      const size_t a = id.find_first_not_of(" \t\r"), b = id.find_last_not_of(" \t\r");
      id = a == std::string::npos ? "" : id.substr(a, b - a + 1);
      if (id.empty() || id[0] == '#') continue;
      const std::string at = path + " line " + std::to_string(line_no);
      auto r = row.find(id);
      if (r == row.end())
        return Status::InvalidArgument(at + ": utterance '" + id + "' is not in corpus '" + corpus.name + "'");
      auto [it, fresh] = seen.emplace(id, at);
      if (!fresh)
        return Status::InvalidArgument(at + ": utterance '" + id + "' (" + part + ") is already listed at " +
                                       it->second + (part_of[r->second] == p ? "" : " (a part may not share ids)"));
      part_of[r->second] = p;
    }
  }
  if (!given.count("train")) return Status::InvalidArgument("--from needs a train list (train=FILE)");
  SplitSet s;
  s.corpus = corpus.name;
  s.corpus_hash = corpus.ContentHash();
  s.spec.method = "id_lists";
  s.spec.k = 1;
  s.spec.val_fraction = 0;
  s.spec.test_fraction = 0;
  s.spec.allow_speaker_overlap = allow_speaker_overlap;
  Fold f;
  f.name = "fold0";
  for (size_t i = 0; i < corpus.size(); ++i) {  // corpus order, as every method writes
    if (part_of[i] < 0) continue;
    (part_of[i] == 0 ? f.train : part_of[i] == 1 ? f.val : f.test).push_back(corpus.utterances[i].id);
  }
  if (f.train.empty()) return Status::InvalidArgument("the train list names no utterance");
  s.folds.push_back(std::move(f));
  ES_RETURN_IF_ERROR(LintSplits(corpus, s));
  return s;
}

Status LintSplits(const Corpus& corpus, const SplitSet& splits) {
  std::unordered_map<std::string, const Utterance*> by_id;
  for (const auto& u : corpus.utterances) by_id[u.id] = &u;
  std::string overlaps;
  for (const auto& f : splits.folds) {
    std::set<std::string> ids, train_spk, test_spk;
    for (const auto* part : {&f.train, &f.val, &f.test}) {
      for (const auto& id : *part) {
        auto it = by_id.find(id);
        if (it == by_id.end())
          return Status::InvalidArgument("fold '" + f.name + "': utterance '" + id + "' is not in corpus '" +
                                         corpus.name + "'");
        if (!ids.insert(id).second)
          return Status::InvalidArgument("fold '" + f.name + "': utterance '" + id + "' appears twice");
        (part == &f.test ? test_spk : train_spk).insert(it->second->speaker);
      }
    }
    std::vector<std::string> both;
    std::set_intersection(train_spk.begin(), train_spk.end(), test_spk.begin(), test_spk.end(),
                          std::back_inserter(both));
    if (!both.empty()) overlaps += "\n  fold '" + f.name + "': " + JoinFirst(both, 8);
  }
  if (!overlaps.empty() && !splits.spec.allow_speaker_overlap)
    return Status::FailedPrecondition("speakers appear in both train/val and test (not speaker-independent):" +
                                      overlaps + "\n(allow it explicitly: allow_speaker_overlap = true in a protocol's "
                                      "split, --allow-speaker-overlap for `data split`)");
  return Status::Ok();
}

std::string SplitSet::Hash() const { return HashJson(BodyJson(*this)); }

nlohmann::json SplitSet::ToJson() const {
  nlohmann::json j = BodyJson(*this);
  j["hash"] = Hash();
  return j;
}

Result<SplitSet> SplitSet::FromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || j.value("format", "") != kFormat)
    return Status::Corruption(where + ": not an emosweep split file (format is not '" + std::string(kFormat) + "')");
  SplitSet s;
  try {
    s.version = j.at("version").get<int>();
    if (s.version > kSplitFileVersion)
      return Status::FailedPrecondition(where + ": written by a newer emosweep (split file version " +
                                        std::to_string(s.version) + "; this build reads up to " +
                                        std::to_string(kSplitFileVersion) + ")");
    s.corpus = j.at("corpus").get<std::string>();
    s.corpus_hash = j.at("corpus_hash").get<std::string>();
    const auto& sp = j.at("spec");
    s.spec.method = sp.at("method").get<std::string>();
    s.spec.k = sp.at("k").get<int>();
    s.spec.group_by = sp.at("group_by").get<std::string>();
    s.spec.val_fraction = sp.at("val_fraction").get<double>();
    s.spec.test_fraction = sp.at("test_fraction").get<double>();
    s.spec.seed = sp.at("seed").get<uint64_t>();
    s.spec.allow_speaker_overlap = sp.at("allow_speaker_overlap").get<bool>();
    for (const auto& f : j.at("folds")) {
      Fold fold;
      fold.name = f.at("name").get<std::string>();
      fold.train = f.at("train").get<std::vector<std::string>>();
      fold.val = f.at("val").get<std::vector<std::string>>();
      fold.test = f.at("test").get<std::vector<std::string>>();
      s.folds.push_back(std::move(fold));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(where + ": malformed split file: " + e.what());
  }
  std::string stored = j.value("hash", "");
  if (stored != s.Hash())
    return Status::Corruption(where + ": split file hash mismatch (stored '" + stored + "', computed '" + s.Hash() +
                              "'); the file was edited or is corrupt");
  // What holds for every file this build writes, checked again on read: a file whose hash was recomputed
  // after an edit must not put one utterance in two parts (test rows trained on) or name two folds alike.
  std::set<std::string> names;
  for (const auto& f : s.folds) {
    if (f.name.empty()) return Status::InvalidArgument(where + ": a fold has an empty name");
    if (!names.insert(f.name).second)
      return Status::InvalidArgument(where + ": two folds are named '" + f.name + "'");
    std::unordered_map<std::string, const char*> part_of;
    for (const auto& [part, ids] : {std::pair<const char*, const std::vector<std::string>*>{"train", &f.train},
                                    {"val", &f.val},
                                    {"test", &f.test}}) {
      for (const auto& id : *ids) {
        auto [it, fresh] = part_of.emplace(id, part);
        if (!fresh)
          return Status::InvalidArgument(where + ": fold '" + f.name + "': utterance '" + id + "' is listed in " +
                                         it->second + (std::string(it->second) == part ? " twice" : std::string(" and in ") + part));
      }
    }
  }
  return s;
}

Status CheckSplitForCorpus(const SplitSet& splits, const Corpus& corpus, const std::string& where) {
  if (splits.corpus != corpus.name)
    return Status::FailedPrecondition(where + ": split file is for corpus '" + splits.corpus + "', the store holds '" +
                                      corpus.name + "'");
  Status st = LintSplits(corpus, splits);
  if (!st.ok()) return st.WithContext(where);
  return Status::Ok();
}

Status WriteSplitFile(const std::string& path, const SplitSet& splits) {
  return WriteFileAtomic(path, splits.ToJson().dump(1) + "\n");
}

Result<SplitSet> ReadSplitFile(const std::string& path) {
  ES_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON (truncated or corrupt split file)");
  return SplitSet::FromJson(j, path);
}

Result<std::vector<std::string>> StratifiedSubset(const Corpus& corpus, const std::vector<std::string>& ids,
                                                  double fraction, int shots, uint64_t seed,
                                                  const std::string& where) {
  if (shots <= 0 && !(fraction > 0 && fraction <= 1))
    return Status::InvalidArgument(where + ": few-shot fraction must be in (0, 1], got " + std::to_string(fraction));
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < corpus.size(); ++i) index[corpus.utterances[i].id] = i;
  std::map<std::string, std::vector<size_t>> by_label;
  for (const auto& id : ids) {
    auto it = index.find(id);
    if (it == index.end())
      return Status::NotFound(where + ": utterance '" + id + "' is not in corpus '" + corpus.name + "'");
    by_label[corpus.utterances[it->second].label].push_back(it->second);
  }
  std::vector<size_t> chosen;
  PortableRng rng(MixSeed(seed, 0));
  for (const auto& label : corpus.label_set) {  // label_set order keeps draws stable
    auto& rows = by_label[label];
    if (rows.empty())
      return Status::InvalidArgument(where + ": class '" + label + "' has no utterance to draw a few-shot subset from");
    // floor(n * p), with a tolerance for the fraction's binary rounding: "70%" is 0.7 = 0.69999..., and 90 * 0.7
    // fell to 62 (helper-62); a percentage has at most a few decimals, so 1e-9 cannot lift a real fraction.
    size_t take = shots > 0 ? static_cast<size_t>(shots)
                            : std::max<size_t>(1, static_cast<size_t>(std::floor(rows.size() * fraction + 1e-9)));
    if (take > rows.size())
      return Status::InvalidArgument(where + ": class '" + label + "' has " + std::to_string(rows.size()) +
                                     " utterances, fewer than the " + std::to_string(take) + " requested");
    std::sort(rows.begin(), rows.end());
    rng.Shuffle(rows);
    chosen.insert(chosen.end(), rows.begin(), rows.begin() + static_cast<long>(take));
  }
  std::sort(chosen.begin(), chosen.end());
  std::vector<std::string> out;
  out.reserve(chosen.size());
  for (size_t i : chosen) out.push_back(corpus.utterances[i].id);
  return out;
}

}  // namespace emosweep::data
