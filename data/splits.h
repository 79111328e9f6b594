// data/splits.h: speaker-independent splits, as versioned, hashed split files.
//
// A SplitSet is a list of folds over one corpus (identified by its content
// hash); each fold names utterance ids for train / val / test. Methods:
// "speaker_kfold" (k folds over speakers, val drawn from the training
// speakers), "loso" (leave one speaker, or one value of --group-by, out),
// "stratified" (random, class-stratified; speakers may overlap and the file
// says so). Lint refuses speaker overlap between train and test unless
// allow_speaker_overlap is set. File format: docs/formats/split-file.md (JSON).
// Thread-safety: pure functions over const inputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/corpus.h"

namespace emosweep::data {

inline constexpr int kSplitFileVersion = 1;

struct Fold {
  std::string name;  // "fold0", "speaker_03", ...
  std::vector<std::string> train, val, test;
};

struct SplitSpec {
  std::string method = "speaker_kfold";  // speaker_kfold | loso | stratified
  int k = 5;                              // speaker_kfold
  std::string group_by = "speaker";       // loso: speaker | session | gender | group
  double val_fraction = 0.1;              // share of training speakers (or rows, for stratified) held out for val
  double test_fraction = 0.1;             // stratified only
  uint64_t seed = 0;
  bool allow_speaker_overlap = false;
};

struct SplitSet {
  int version = kSplitFileVersion;
  std::string corpus;
  std::string corpus_hash;
  SplitSpec spec;
  std::vector<Fold> folds;

  nlohmann::json ToJson() const;                       // includes "hash"
  static Result<SplitSet> FromJson(const nlohmann::json& j, const std::string& where);
  std::string Hash() const;                            // over everything but the hash itself
};

Result<SplitSet> MakeSplits(const Corpus& corpus, const SplitSpec& spec);

// A given split (a published one, a paper's exact val ids): one fold "fold0"
// from id lists, `parts` = (train|val|test, file) with one id per line (blank
// lines and lines starting with '#' skipped, spaces around an id trimmed).
// train is required; val and test may be absent or empty. An id that is not
// in the corpus, listed twice, or in two parts is an error naming the file
// and line (and the other line); utterances in no list are left out. Method
// "id_lists" in the file; the speaker lint applies as for every method.
Result<SplitSet> SplitFromIdLists(const Corpus& corpus, const std::vector<std::pair<std::string, std::string>>& parts,
                                  bool allow_speaker_overlap);
// Speaker-overlap lint: error naming the fold and the speakers, unless allowed.
Status LintSplits(const Corpus& corpus, const SplitSet& splits);
// A split file read for a corpus (`where` names the file): the corpus name it records, then LintSplits.
Status CheckSplitForCorpus(const SplitSet& splits, const Corpus& corpus, const std::string& where);
Status WriteSplitFile(const std::string& path, const SplitSet& splits);
// Checks the hash, and that no fold names an utterance twice (within a part or across train/val/test) and
// no two folds share a name; what needs the corpus (ids present, speaker overlap) is CheckSplitForCorpus.
Result<SplitSet> ReadSplitFile(const std::string& path);

// Few-shot subset: for each class take max(1, floor(n_c * fraction)) ids (or
// `shots` per class when shots > 0), seeded; error naming the class when a
// class has no utterance to draw from.
Result<std::vector<std::string>> StratifiedSubset(const Corpus& corpus, const std::vector<std::string>& ids,
                                                  double fraction, int shots, uint64_t seed,
                                                  const std::string& where);

}  // namespace emosweep::data
