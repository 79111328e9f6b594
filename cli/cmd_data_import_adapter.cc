// cli/cmd_data_import_adapter.cc: the `--adapter` branch of `emosweep data import`:
//   emosweep data import --adapter NAME --root DIR --out STORE.h5 [--features LIST]
//       [--label-map MAP] [--threads N] [--limit N] [--skip-bad] [--normalise M] [--json]
//       [--audio-encoder FILE.pt [--audio-encoder-name NAME]]
//       [--text-encoder FILE.pt [--text-encoder-name NAME]] [--checkpoint-every SECONDS]
// SIGINT/SIGTERM stop the import after the current chunk of utterances; the
// finished rows go to STORE.h5.partial and the same command resumes (exit 3).
// A second SIGINT ends the process at once.
// Not a row of the command table: `data import` (cmd_data_import.cc) adds
// these options to its own description (after its own, so options both
// branches use, like --out or --threads, are defined once) and calls
// DataImportAdapterRun when --adapter is given. The pipeline is
// data/adapters/import_corpus.h; the corpora are documented in docs/corpora.md.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/torch_module.h"
#include "core/log.h"
#include "data/adapters/import_corpus.h"
#include "data/audio/decode.h"
#include "data/encoder/torchscript_encoder.h"

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

std::atomic<bool> g_stop{false};

extern "C" void OnImportSignal(int sig) {
  g_stop.store(true);
  if (sig == SIGINT) std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process
}

// Installs the stop handlers for the lifetime of one import.
class StopSignals {
 public:
  StopSignals() {
    g_stop.store(false);
    std::signal(SIGINT, OnImportSignal);
    std::signal(SIGTERM, OnImportSignal);
  }
  ~StopSignals() {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  }
};

}  // namespace

void DataImportAdapterOptions(po::options_description& o) {
  const std::string adapters = "corpus adapter: " + data::AdapterNamesForHelp() + " (docs/corpora.md)";
  static const std::string kAdapterHelp = adapters;  // Boost keeps the pointer
  AddOnce(o, "adapter", po::value<std::string>(), kAdapterHelp.c_str());
  AddOnce(o, "root", po::value<std::string>(), "--adapter: corpus root directory");
  AddOnce(o, "out", po::value<std::string>(), "output feature store (.h5); its directory is created");
  AddOnce(o, "features", po::value<std::string>()->default_value("logmel64_stats"),
          "--adapter: comma-separated feature sets (audio sets of docs/features.md, and/or tfidf)");
  AddOnce(o, "label-map", po::value<std::string>(), "label map name or TOML file (default: the adapter's)");
  AddOnce(o, "threads", po::value<int>()->default_value(0), "--adapter: worker threads (0 = all cores)");
  AddOnce(o, "limit", po::value<int64_t>()->default_value(0),
          "--adapter: import only N utterances, spread evenly over the id order (0 = all)");
  AddFlagOnce(o, "skip-bad", "--adapter: skip files whose names do not parse (counted) instead of failing");
  AddOnce(o, "normalise", po::value<std::string>()->default_value("none"), "--adapter: audio gain normalisation none|peak|rms");
  AddOnce(o, "tfidf-dim", po::value<int64_t>()->default_value(4096), "--adapter: TF-IDF dimension");
  AddOnce(o, "audio-encoder", po::value<std::string>(),
          "--adapter: TorchScript audio encoder (.pt): waveform [1, T] -> [1, T', D], mean-pooled (docs/features.md)");
  AddOnce(o, "audio-encoder-name", po::value<std::string>(), "--adapter: its feature set name (default enc_audio_<stem>)");
  AddOnce(o, "text-encoder", po::value<std::string>(),
          "--adapter: TorchScript text encoder (.pt): UTF-8 bytes [1, L] -> [1, L', D], mean-pooled");
  AddOnce(o, "text-encoder-name", po::value<std::string>(), "--adapter: its feature set name (default enc_text_<stem>)");
  AddOnce(o, "checkpoint-every", po::value<double>()->default_value(60.0),
          "--adapter: seconds between checkpoints of finished rows to STORE.h5.partial (0 = only on SIGINT/SIGTERM)");
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
  opt.corpus_name = StringOption(vm, "corpus");  // "" = the adapter's corpus name
  opt.language = StringOption(vm, "language");   // "" = the adapter's language
  const int64_t threads = IntOption(vm, "threads", 0);
  if (threads < 0 || threads > 1024) return Status::InvalidArgument("--threads must be between 0 (all cores) and 1024");
  opt.threads = static_cast<int>(threads);
  if (opt.threads == 0) opt.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opt.limit = IntOption(vm, "limit", 0);
  if (opt.limit < 0) return Status::InvalidArgument("--limit must be >= 0");
  opt.skip_bad = vm.count("skip-bad") > 0;
  if (vm.count("normalise")) opt.normalisation = StringOption(vm, "normalise");
  opt.tfidf_dim = IntOption(vm, "tfidf-dim", 4096);
  if (opt.tfidf_dim <= 0) return Status::InvalidArgument("--tfidf-dim must be > 0");
  opt.checkpoint_seconds = vm.count("checkpoint-every") ? vm["checkpoint-every"].as<double>() : 60.0;
  if (!(opt.checkpoint_seconds >= 0)) return Status::InvalidArgument("--checkpoint-every must be >= 0");
  if (vm.count("audio-encoder-name") && !vm.count("audio-encoder"))
    return Status::InvalidArgument("--audio-encoder-name needs --audio-encoder");
  if (vm.count("text-encoder-name") && !vm.count("text-encoder"))
    return Status::InvalidArgument("--text-encoder-name needs --text-encoder");

  // Encoders load before the scan: a missing or broken .pt fails at once.
  std::vector<std::unique_ptr<data::ImportExtractor>> encoders;
  data::audio::DecodeOptions decode;
  ES_ASSIGN_OR_RETURN(decode.normalisation, data::audio::ParseNormalisation(opt.normalisation));
  for (const auto& [flag, modality] : {std::pair{"audio-encoder", data::encoder::EncoderModality::kAudio},
                                       std::pair{"text-encoder", data::encoder::EncoderModality::kText}}) {
    if (!vm.count(flag)) continue;
    ES_ASSIGN_OR_RETURN(auto x, TorchLoadEncoderExtractor(StringOption(vm, flag), modality,
                                                          StringOption(vm, (std::string(flag) + "-name").c_str()),
                                                          decode, opt.threads));
    opt.extractors.push_back(x.get());
    encoders.push_back(std::move(x));
  }

  StopSignals signals;
  opt.stop = &g_stop;
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
