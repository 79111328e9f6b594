// cli/cmd_data_import.cc: `emosweep data import`.
//
// One command, several input forms, each one function returning the Corpus
// it built: the table form (--metadata + --features), the seed-pickle form
// (--pickle) and the corpus-adapter form (--adapter + --root, in
// cmd_data_import_adapter.cc). The
// shared tail of the first two (write the store atomically, print the
// summary) is written once in DataImportRun.
#include <chrono>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/files.h"
#include "core/log.h"
#include "data/feature_store.h"
#include "data/import/pickle_import.h"
#include "data/import/table_import.h"
#include "data/label_map.h"

namespace emosweep::cli {
namespace {

using Strings = std::vector<std::string>;

std::string Opt(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

Result<std::unique_ptr<data::LabelMap>> LoadMap(const po::variables_map& vm) {
  const std::string name = Opt(vm, "label-map");
  if (name.empty()) return std::unique_ptr<data::LabelMap>();
  ES_ASSIGN_OR_RETURN(data::LabelMap m, data::LabelMap::Load(name));
  return std::make_unique<data::LabelMap>(std::move(m));
}

Result<data::Corpus> ImportTableForm(const po::variables_map& vm, const data::LabelMap* map,
                                     data::ImportReport* report) {
  data::TableImportOptions o;
  o.metadata_csv = Opt(vm, "metadata");
  o.corpus_name = Opt(vm, "corpus");
  o.language = Opt(vm, "language");
  o.id_column = Opt(vm, "id-column");
  o.label_map = map;
  if (!vm.count("features")) return Status::InvalidArgument("--metadata needs at least one --features NAME=MODALITY:PATH");
  for (const auto& spec : vm["features"].as<Strings>()) {
    ES_ASSIGN_OR_RETURN(data::FeatureSource src, data::ParseFeatureSource(spec));
    o.features.push_back(std::move(src));
  }
  return data::ImportTable(o, report);
}

Result<data::Corpus> ImportPickleForm(const po::variables_map& vm, const data::LabelMap* map,
                                      data::ImportReport* report) {
  data::PickleImportOptions o;
  o.corpus_name = Opt(vm, "corpus");
  o.language = vm.count("language") ? Opt(vm, "language") : "en";
  o.label_map = map;
  return data::ImportSeedPickles(vm["pickle"].as<Strings>(), o, report);
}

// The adapter branch takes --features as one comma-separated list; ours is repeatable.
Status ImportAdapterForm(const po::variables_map& vm) {
  po::variables_map adapted = vm;
  if (vm.count("features")) {
    std::string joined;
    for (const auto& f : vm["features"].as<Strings>()) joined += (joined.empty() ? "" : ",") + f;
    adapted.erase("features");
    adapted.emplace("features", po::variable_value(joined, false));
  }
  return DataImportAdapterRun(adapted);
}

nlohmann::json Summary(const data::Corpus& c, const std::string& out, const data::ImportReport& report,
                       double seconds) {
  std::map<std::string, int64_t> labels;
  std::map<std::string, int64_t> speakers;
  for (const auto& u : c.utterances) {
    labels[u.label]++;
    speakers[u.speaker]++;
  }
  nlohmann::json features = nlohmann::json::array();
  for (const auto& f : c.features)
    features.push_back({{"name", f.name}, {"modality", f.modality}, {"dim", f.dim}, {"rows", f.rows()}});
  return {{"out", out},
          {"corpus", c.name},
          {"language", c.language},
          {"utterances", c.size()},
          {"records_read", report.records_read},
          {"records_dropped", report.records_dropped},
          {"label_set", c.label_set},
          {"labels", labels},
          {"speakers", speakers.size()},
          {"features", features},
          {"sources", report.sources},
          {"ignored_keys", report.ignored_keys},
          {"notes", report.notes},
          {"content_hash", c.ContentHash()},
          {"elapsed_s", seconds}};
}

}  // namespace

void DataImportOptions(po::options_description& o) {
  o.add_options()
      ("metadata", po::value<std::string>(), "table form: metadata CSV (id|file, speaker, label; optional transcript, "
                                             "session, gender, group, duration)")
      ("features", po::value<Strings>()->composing(),
       "table form, repeatable: NAME=MODALITY:PATH[:COLUMN-SPEC], PATH a .npy, .npz or .csv; "
       "adapter form: feature-set names, repeated or comma-separated (default logmel64_stats)")
      ("id-column", po::value<std::string>(), "table form: id column of feature CSVs (default id, name or file)")
      ("pickle", po::value<Strings>()->composing(), "pickle form, repeatable: a seed feature pickle (.pkl)")
      ("label-map", po::value<std::string>(), "built-in label map name or TOML file (required unless labels are "
                                              "already canonical)")
      ("corpus", po::value<std::string>(), "corpus name stored in the feature store (required; --adapter form: "
                                           "default the adapter's corpus name)")
      ("language", po::value<std::string>(), "corpus language, e.g. en, de (pickle form default: en)")
      ("out", po::value<std::string>(), "output feature store (.h5), written atomically; its directory is created (required)")
      ("json", "print one JSON summary document");
  // Adapter form (--adapter NAME --root DIR, cmd_data_import_adapter.cc): its options come after
  // ours, so shared names (--out, --label-map, --features, --json) are defined once, here.
  DataImportAdapterOptions(o);
}

Status DataImportRun(const po::variables_map& vm) {
  const auto start = std::chrono::steady_clock::now();
  const int forms = (vm.count("metadata") ? 1 : 0) + (vm.count("pickle") ? 1 : 0) + (vm.count("adapter") ? 1 : 0);
  if (forms != 1)
    return Status::InvalidArgument(
        "give exactly one input form: --metadata META.csv --features ..., --pickle FILE.pkl, or --adapter NAME --root DIR");
  if (vm.count("adapter")) return ImportAdapterForm(vm);
  // The adapter form's own options would be ignored here: refuse them rather than import otherwise than asked.
  for (const char* name : {"root", "threads", "limit", "skip-bad", "normalise", "tfidf-dim", "audio-encoder",
                           "audio-encoder-name", "text-encoder", "text-encoder-name", "checkpoint-every"})
    if (vm.count(name) && !vm[name].defaulted())
      return Status::InvalidArgument(std::string("--") + name + " applies to the --adapter form only");
  if (vm.count("pickle") && vm.count("id-column"))
    return Status::InvalidArgument("--id-column applies to the table form (--metadata) only");
  if (!vm.count("out")) return Status::InvalidArgument("--out STORE.h5 is required");
  if (!vm.count("corpus")) return Status::InvalidArgument("--corpus NAME is required");
  if (!vm.count("metadata") && vm.count("features")) return Status::InvalidArgument("--features needs --metadata");
  const std::string out = Opt(vm, "out");
  ES_ASSIGN_OR_RETURN(std::unique_ptr<data::LabelMap> map, LoadMap(vm));
  data::ImportReport report;
  Result<data::Corpus> corpus = Status::Internal("no input form");
  if (vm.count("metadata")) {
    corpus = ImportTableForm(vm, map.get(), &report);
  } else if (vm.count("pickle")) {
    corpus = ImportPickleForm(vm, map.get(), &report);
  }
  if (!corpus.ok()) return corpus.status();
  for (const auto& n : report.notes) LOG_WARN << n;
  ES_RETURN_IF_ERROR(data::WriteFeatureStore(out, *corpus));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json s = Summary(*corpus, out, report, secs);
  if (vm.count("json")) {
    PrintJson(s.dump(2));
  } else {
    std::cout << "wrote " << out << ": corpus '" << corpus->name << "', " << corpus->size() << " utterances, "
              << s["speakers"].get<int64_t>() << " speakers";
    if (report.records_dropped) std::cout << " (" << report.records_dropped << " dropped by the label map)";
    std::cout << "\n  labels:";
    for (auto& [l, n] : s["labels"].items()) std::cout << " " << l << "=" << n.get<int64_t>();
    std::cout << "\n";
    for (const auto& f : corpus->features)
      std::cout << "  feature set '" << f.name << "' (" << f.modality << "): " << f.rows() << " x " << f.dim << "\n";
    std::cout << "  content hash " << s["content_hash"].get<std::string>() << "\n";
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
