// cli/cmd_data_import_adapter.cc: the `--adapter` branch of `emosweep data import`:
//   emosweep data import --adapter NAME --root DIR --out STORE.h5 [--features LIST]
//       [--label-map MAP] [--threads N] [--limit N] [--skip-bad] [--normalise M] [--json]
// Not a row of the command table: `data import` (cmd_data_import.cc) adds
// these options to its own description (after its own, so options both
// branches use, like --out or --threads, are defined once) and calls
// DataImportAdapterRun when --adapter is given. The pipeline is
// data/adapters/import_corpus.h; the corpora are documented in docs/corpora.md.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/log.h"
#include "data/adapters/import_corpus.h"

namespace emosweep::cli {
namespace {

// Adds an option unless the description already has one of that name.
template <typename Value>
void AddOnce(po::options_description& o, const char* name, Value* semantic, const char* help) {
  if (o.find_nothrow(name, false)) {
    delete semantic;
    return;
  }
  o.add_options()(name, semantic, help);
}

void AddFlagOnce(po::options_description& o, const char* name, const char* help) {
  if (!o.find_nothrow(name, false)) o.add_options()(name, help);
}

// Reads an integer option whatever integer type the owner of the option declared.
int64_t IntOption(const po::variables_map& vm, const char* name, int64_t fallback) {
  if (!vm.count(name)) return fallback;
  const boost::any& v = vm[name].value();
  if (auto* i = boost::any_cast<int>(&v)) return *i;
  if (auto* l = boost::any_cast<int64_t>(&v)) return *l;
  if (auto* u = boost::any_cast<unsigned>(&v)) return *u;
  if (auto* s = boost::any_cast<std::string>(&v)) return std::stoll(*s);
  return fallback;
}

std::string StringOption(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

}  // namespace

void DataImportAdapterOptions(po::options_description& o) {
  const std::string adapters = "corpus adapter: " + data::AdapterNamesForHelp() + " (docs/corpora.md)";
  static const std::string kAdapterHelp = adapters;  // Boost keeps the pointer
  AddOnce(o, "adapter", po::value<std::string>(), kAdapterHelp.c_str());
  AddOnce(o, "root", po::value<std::string>(), "--adapter: corpus root directory");
  AddOnce(o, "out", po::value<std::string>(), "output feature store (.h5)");
  AddOnce(o, "features", po::value<std::string>()->default_value("logmel64_stats"),
          "--adapter: comma-separated feature sets (audio sets of docs/features.md, and/or tfidf)");
  AddOnce(o, "label-map", po::value<std::string>(), "label map name or TOML file (default: the adapter's)");
  AddOnce(o, "threads", po::value<int>()->default_value(0), "worker threads (0 = all cores)");
  AddOnce(o, "limit", po::value<int64_t>()->default_value(0), "import only the first N utterances (0 = all)");
  AddFlagOnce(o, "skip-bad", "--adapter: skip files whose names do not parse (counted) instead of failing");
  AddOnce(o, "normalise", po::value<std::string>()->default_value("none"), "--adapter: audio gain normalisation none|peak|rms");
  AddOnce(o, "tfidf-dim", po::value<int64_t>()->default_value(4096), "--adapter: TF-IDF dimension");
  AddFlagOnce(o, "json", "print one JSON document");
}

Status DataImportAdapterRun(const po::variables_map& vm) {
  data::ImportCorpusOptions opt;
  opt.adapter = StringOption(vm, "adapter");
  opt.root = StringOption(vm, "root");
  opt.out = StringOption(vm, "out");
  if (opt.adapter.empty()) return Status::InvalidArgument("--adapter is required");
  if (opt.root.empty()) return Status::InvalidArgument("--adapter needs --root DIR");
  if (opt.out.empty()) return Status::InvalidArgument("--adapter needs --out STORE.h5");
  ES_ASSIGN_OR_RETURN(opt.features, data::ParseImportFeatures(vm.count("features") ? StringOption(vm, "features")
                                                                                   : "logmel64_stats"));
  opt.label_map = StringOption(vm, "label-map");
  opt.threads = static_cast<int>(IntOption(vm, "threads", 0));
  if (opt.threads <= 0) opt.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opt.limit = IntOption(vm, "limit", 0);
  if (opt.limit < 0) return Status::InvalidArgument("--limit must be >= 0");
  opt.skip_bad = vm.count("skip-bad") > 0;
  if (vm.count("normalise")) opt.normalisation = StringOption(vm, "normalise");
  opt.tfidf_dim = IntOption(vm, "tfidf-dim", 4096);
  if (opt.tfidf_dim <= 0) return Status::InvalidArgument("--tfidf-dim must be > 0");
  ES_ASSIGN_OR_RETURN(data::ImportCorpusReport r, data::ImportCorpus(opt));

  nlohmann::json j = {{"corpus", r.corpus},
                      {"out", r.out},
                      {"label_map", r.label_map},
                      {"utterances", r.utterances},
                      {"reused", r.reused},
                      {"extracted", r.extracted},
                      {"dropped_by_label_map", r.dropped},
                      {"skipped_files", r.skipped_files},
                      {"per_label", r.per_label},
                      {"audio_seconds", r.audio_seconds},
                      {"wall_seconds", r.wall_seconds},
                      {"content_hash", r.content_hash}};
  if (vm.count("json")) {
    PrintJson(j.dump(2));
  } else {
    std::cout << r.out << ": " << r.corpus << ", " << r.utterances << " utterances (" << r.extracted << " extracted, "
              << r.reused << " reused, " << r.dropped << " dropped by " << r.label_map << ", " << r.skipped_files
              << " files skipped)";
    if (r.extracted > 0 && r.wall_seconds > 0)
      std::cout << ", " << static_cast<int64_t>(r.audio_seconds / r.wall_seconds) << "x real time";
    std::cout << "\n  labels:";
    for (const auto& [label, n] : r.per_label) std::cout << " " << label << "=" << n;
    std::cout << "\n  content hash " << r.content_hash << "\n";
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
