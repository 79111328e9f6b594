// cli/cmd_data_store.cc: `emosweep data synth`, `data inspect`, `data split`.
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/files.h"
#include "core/strings.h"
#include "data/feature_store.h"
#include "data/inspect.h"
#include "data/label_map.h"
#include "data/splits.h"
#include "data/synth.h"

namespace emosweep::cli {
namespace {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

Result<std::vector<std::string>> ParseClasses(const std::string& text) {
  if (text.find(',') == std::string::npos) {
    auto named = data::NamedLabelSet(text);
    if (named.ok()) return named;
  }
  auto list = SplitComma(text);
  for (const auto& l : list)
    if (!data::IsCanonicalLabel(l))
      return Status::InvalidArgument("--classes: '" + l + "' is neither a named label set nor a canonical label");
  return list;
}

}  // namespace

// ---- data synth ---------------------------------------------------------------

void DataSynthOptions(po::options_description& o) {
  o.add_options()
      ("out", po::value<std::string>()->required(), "output directory (created); writes DIR/<name>.h5 per corpus")
      ("corpora", po::value<int>()->default_value(3), "number of corpora (1..26)")
      ("speakers", po::value<int>()->default_value(8), "speakers per corpus")
      ("per-speaker", po::value<int>()->default_value(40), "utterances per speaker")
      ("classes", po::value<std::string>()->default_value("core4"), "named label set or comma-separated canonical labels")
      ("shift", po::value<double>()->default_value(1.0), "per-corpus domain shift (0 = none)")
      ("rotation", po::value<double>()->default_value(0.0), "per-corpus rotation angle in radians (needs real alignment)")
      ("imbalance", po::value<double>()->default_value(0.0), "class imbalance (0 = balanced)")
      ("separation", po::value<double>()->default_value(4.0), "distance between class means")
      ("noise", po::value<double>()->default_value(1.0), "within-class noise std")
      ("speaker-std", po::value<double>()->default_value(0.5), "per-speaker offset std")
      ("audio-dim", po::value<int64_t>()->default_value(64), "audio feature dimension (0 = none)")
      ("text-dim", po::value<int64_t>()->default_value(32), "text feature dimension (0 = none)")
      ("video-dim", po::value<int64_t>()->default_value(0), "video feature dimension (0 = none)")
      ("frames", "also write frame-level sequences for the audio feature set")
      ("prefix", po::value<std::string>()->default_value("synth"), "corpus name prefix (<prefix>_a, <prefix>_b, ...)")
      ("seed", po::value<uint64_t>()->default_value(0), "random seed (output is identical for a seed)")
      ("json", "print one JSON document");
}

Status DataSynthRun(const po::variables_map& vm) {
  data::SynthSpec s;
  s.num_corpora = vm["corpora"].as<int>();
  s.speakers_per_corpus = vm["speakers"].as<int>();
  s.utterances_per_speaker = vm["per-speaker"].as<int>();
  ES_ASSIGN_OR_RETURN(s.classes, ParseClasses(vm["classes"].as<std::string>()));
  s.shift = vm["shift"].as<double>();
  s.rotation = vm["rotation"].as<double>();
  s.imbalance = vm["imbalance"].as<double>();
  s.separation = vm["separation"].as<double>();
  s.noise = vm["noise"].as<double>();
  s.speaker_std = vm["speaker-std"].as<double>();
  s.frames = vm.count("frames") > 0;
  s.name_prefix = vm["prefix"].as<std::string>();
  s.seed = vm["seed"].as<uint64_t>();
  s.modalities.clear();
  const std::pair<const char*, double> kinds[] = {{"audio", 1.0}, {"text", 0.8}, {"video", 0.6}};
  for (const auto& [kind, sep] : kinds) {
    int64_t dim = vm[std::string(kind) + "-dim"].as<int64_t>();
    if (dim < 0) return Status::InvalidArgument(std::string("--") + kind + "-dim must be >= 0");
    if (dim > 0) s.modalities.push_back({"synth_" + std::string(kind), kind, dim, sep});
  }
  ES_ASSIGN_OR_RETURN(auto corpora, data::MakeSynthCorpora(s));
  const std::string dir = vm["out"].as<std::string>();
  ES_RETURN_IF_ERROR(MakeDirs(dir));
  nlohmann::json stores = nlohmann::json::array();
  for (const auto& c : corpora) {
    const std::string path = dir + "/" + c.name + ".h5";
    ES_RETURN_IF_ERROR(data::WriteFeatureStore(path, c));
    nlohmann::json feats = nlohmann::json::array();
    std::string desc;
    for (const auto& f : c.features) {
      feats.push_back({{"name", f.name}, {"modality", f.modality}, {"dim", f.dim}, {"frame_dim", f.frame_dim}});
      desc += " " + f.name + "[" + std::to_string(f.dim) + (f.has_frames() ? ", frames" : "") + "]";
    }
    std::string hash = c.ContentHash();
    stores.push_back({{"path", path}, {"name", c.name}, {"num_utterances", c.size()},
                      {"num_speakers", s.speakers_per_corpus}, {"label_set", c.label_set},
                      {"content_hash", hash}, {"features", feats}});
    if (!vm.count("json"))
      std::cout << "wrote " << path << ": " << c.size() << " utterances, " << s.speakers_per_corpus
                << " speakers, labels " << JoinStrings(c.label_set, ", ") << ";" << desc << "; hash " << hash.substr(0, 12)
                << "\n";
  }
  if (vm.count("json")) PrintJson(nlohmann::json({{"out", dir}, {"stores", stores}}).dump(2));
  return Status::Ok();
}

// ---- data inspect -------------------------------------------------------------

void DataInspectOptions(po::options_description& o) {
  o.add_options()("store", po::value<std::string>()->required(), "feature store (.h5)")(
      "json", "print one JSON document");
}

Status DataInspectRun(const po::variables_map& vm) {
  const std::string path = vm["store"].as<std::string>();
  ES_ASSIGN_OR_RETURN(data::InspectReport r, data::InspectStore(path));
  // A store written before imports checked UTF-8 may hold invalid strings: they print as U+FFFD
  // (the validation below names them) instead of aborting the JSON document.
  if (vm.count("json")) PrintJson(r.ToJson().dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  else std::cout << r.ToText();
  if (!r.ok()) {
    std::string what;
    if (!r.hash_matches) what += " content hash mismatch;";
    for (const auto& f : r.features)
      if (f.nan || f.inf || f.frame_nan || f.frame_inf) what += " non-finite values in '" + f.info.name + "';";
    if (!r.validation.empty()) what += " " + r.validation + ";";
    what.pop_back();
    return Status::Corruption(path + ": problems found:" + what);
  }
  return Status::Ok();
}

// ---- data split ---------------------------------------------------------------

void DataSplitOptions(po::options_description& o) {
  o.add_options()
      ("store", po::value<std::string>()->required(), "feature store (.h5)")
      ("method", po::value<std::string>()->default_value("speaker_kfold"), "speaker_kfold | loso | stratified")
      ("k", po::value<int>()->default_value(5), "folds (speaker_kfold)")
      ("group-by", po::value<std::string>()->default_value("speaker"), "loso: speaker | session | gender | group")
      ("val-fraction", po::value<double>()->default_value(0.1, "0.1"), "share of training speakers (rows, stratified) for val")
      ("test-fraction", po::value<double>()->default_value(0.1, "0.1"), "stratified: share of rows for test (0 = no test part)")
      ("seed", po::value<uint64_t>()->default_value(0), "random seed")
      ("allow-speaker-overlap", "accept speakers in both train and test (stratified needs it)")
      ("from", po::value<std::vector<std::string>>()->composing(),
       "PART=FILE, repeatable (PART train, val or test; FILE one utterance id per line): write this given split "
       "instead of making one (train required; ids are checked against the store)")
      ("out", po::value<std::string>()->required(), "split file to write (JSON)")
      ("json", "print one JSON document");
}

Status DataSplitRun(const po::variables_map& vm) {
  const std::string path = vm["store"].as<std::string>();
  data::SplitSpec spec;
  spec.method = vm["method"].as<std::string>();
  spec.k = vm["k"].as<int>();
  spec.group_by = vm["group-by"].as<std::string>();
  spec.val_fraction = vm["val-fraction"].as<double>();
  spec.test_fraction = vm["test-fraction"].as<double>();
  spec.seed = vm["seed"].as<uint64_t>();
  spec.allow_speaker_overlap = vm.count("allow-speaker-overlap") > 0;
  if (!vm.count("from")) {  // an option of another method was ignored without a word (--test-fraction with loso)
    for (const auto& [option, method] : {std::pair<const char*, const char*>{"test-fraction", "stratified"},
                                         {"k", "speaker_kfold"},
                                         {"group-by", "loso"}})
      if (!vm[option].defaulted() && spec.method != method)
        return Status::InvalidArgument(std::string("--") + option + " applies to --method " + method + " only (this is " +
                                       spec.method + ")");
  }
  ES_ASSIGN_OR_RETURN(data::Corpus corpus, data::ReadFeatureStore(path));
  Result<data::SplitSet> made = Status::Internal("no split made");
  if (vm.count("from")) {
    for (const char* made_by : {"method", "k", "group-by", "val-fraction", "test-fraction", "seed"})
      if (!vm[made_by].defaulted())
        return Status::InvalidArgument(std::string("--from writes a given split: --") + made_by + " does not apply");
    std::vector<std::pair<std::string, std::string>> parts;
    for (const auto& kv : vm["from"].as<std::vector<std::string>>()) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size())
        return Status::InvalidArgument("--from expects PART=FILE (PART train, val or test), got '" + kv + "'");
      parts.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    made = data::SplitFromIdLists(corpus, parts, spec.allow_speaker_overlap);
    spec = made.ok() ? made->spec : spec;
  } else {
    made = data::MakeSplits(corpus, spec);
  }
  if (!made.ok()) return made.status().WithContext(path);
  const data::SplitSet& splits = *made;
  const std::string out = vm["out"].as<std::string>();
  ES_RETURN_IF_ERROR(data::WriteSplitFile(out, splits));

  std::map<std::string, const data::Utterance*> by_id;
  for (const auto& u : corpus.utterances) by_id[u.id] = &u;
  nlohmann::json folds = nlohmann::json::array();
  for (const auto& f : splits.folds) {
    std::set<std::string> test_speakers;
    for (const auto& id : f.test) test_speakers.insert(by_id[id]->speaker);
    folds.push_back({{"name", f.name}, {"train", f.train.size()}, {"val", f.val.size()}, {"test", f.test.size()},
                     {"test_speakers", test_speakers}});
  }
  const std::string hash = splits.Hash();
  if (vm.count("json")) {
    PrintJson(nlohmann::json({{"path", out}, {"hash", hash}, {"corpus", splits.corpus},
                              {"corpus_hash", splits.corpus_hash}, {"method", spec.method}, {"folds", folds}})
                  .dump(2));
    return Status::Ok();
  }
  std::cout << "wrote " << out << ": " << splits.folds.size() << " folds (" << spec.method << ", seed " << spec.seed
            << ") over " << corpus.name << ", hash " << hash.substr(0, 12) << "\n";
  for (const auto& f : folds)
    std::cout << "  " << f["name"].get<std::string>() << ": train " << f["train"] << ", val " << f["val"]
              << ", test " << f["test"] << " (" << f["test_speakers"].size() << " test speakers)\n";
  return Status::Ok();
}

}  // namespace emosweep::cli
