// cli/cmd_list.cc: `emosweep list WHAT`: what a protocol can name, from the binary itself.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/protocol_library.h"
#include "core/config_table.h"
#include "core/strings.h"
#include "data/adapters/adapter.h"
#include "data/audio/frontend.h"
#include "data/label_map.h"
#include "models/adapt_configs.h"
#include "models/model_configs.h"

namespace emosweep::cli {
namespace {

const char* kWhat = "models | label-maps | feature-sets | adapters | da-variants | protocols";

nlohmann::json KeysJson(const ConfigTable& t) {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : t.keys()) {
    nlohmann::json o = {{"name", k.name}, {"type", ConfigTypeName(k.type)}, {"help", k.help}};
    o["default"] = k.default_value;
    if (!k.choices.empty()) o["choices"] = k.choices;
    keys.push_back(o);
  }
  return keys;
}

// Rows of (name, detail, summary) for the text form.
struct Row {
  std::string name, detail, summary;
};

void PrintRows(const std::string& title, const std::vector<Row>& rows, const std::string& footer) {
  size_t w = 4;
  for (const auto& r : rows) w = std::max(w, r.name.size());
  size_t d = 0;
  for (const auto& r : rows) d = std::max(d, r.detail.size());
  std::cout << title << "\n";
  for (const auto& r : rows) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(w)) << r.name;
    if (d) std::cout << "  " << std::setw(static_cast<int>(d)) << r.detail;
    if (!r.summary.empty()) std::cout << "  " << r.summary;
    std::cout << "\n";
  }
  if (!footer.empty()) std::cout << footer << "\n";
}

}  // namespace

void ListOptions(po::options_description& o) {
  o.add_options()("what", po::value<std::string>()->required(), kWhat)("json", "print one JSON document");
}

Status ListRun(const po::variables_map& vm) {
  const std::string what = vm["what"].as<std::string>();
  const bool json = vm.count("json") > 0;
  nlohmann::json out = nlohmann::json::array();
  std::vector<Row> rows;
  std::string title, footer;
  if (what == "models") {
    for (const auto& m : models::ModelInfos()) {
      out.push_back({{"name", m.name}, {"summary", m.summary}, {"modalities", m.modalities},
                     {"keys", KeysJson(m.config)}});
      rows.push_back({m.name, JoinStrings(m.modalities, "+"), m.summary});
    }
    title = "models (protocol: models = [{name = ..., <keys>}]; keys: `emosweep list models --json`, docs/models.md)";
  } else if (what == "da-variants") {
    for (const auto& a : models::AdaptInfos()) {
      out.push_back({{"name", a.variant}, {"summary", a.summary}, {"keys", KeysJson(a.config)}});
      rows.push_back({a.variant, "", a.summary});
    }
    title = "domain-adaptation variants (adapt experiments: variants = [...]; docs/models.md)";
  } else if (what == "label-maps") {
    for (const auto& n : data::LabelMap::BuiltinNames()) {
      out.push_back({{"name", n}, {"kind", "label map"}});
      rows.push_back({n, "label map", ""});
    }
    for (const auto& [n, labels] : data::NamedLabelSets()) {
      out.push_back({{"name", n}, {"kind", "label set"}, {"labels", labels}});
      rows.push_back({n, "label set", JoinStrings(labels, ", ")});
    }
    title = "label maps (data import --label-map NAME) and label sets (protocol: labels = \"NAME\")";
    footer = "canonical labels: " + JoinStrings(data::CanonicalLabels(), ", ");
  } else if (what == "feature-sets") {
    for (const auto& n : data::audio::KnownAudioFeatureSets()) {
      out.push_back({{"name", n}, {"modality", "audio"}, {"source", "built-in front end"}});
      rows.push_back({n, "audio", "built-in front end (data import --adapter ... --features)"});
    }
    out.push_back({{"name", "tfidf"}, {"modality", "text"}, {"source", "built-in TF-IDF"}});
    rows.push_back({"tfidf", "text", "built-in TF-IDF of the transcripts"});
    title = "feature sets emosweep extracts itself (docs/features.md); imported and encoder sets keep the name you give";
  } else if (what == "adapters") {
    for (const auto& a : data::Adapters()) {
      out.push_back({{"name", a.name}, {"language", a.language}, {"default_label_map", a.default_label_map},
                     {"summary", a.summary}});
      rows.push_back({a.name, a.language, a.summary});
    }
    title = "corpus adapters (data import --adapter NAME --root DIR; docs/corpora.md)";
  } else if (what == "protocols") {
    for (const auto& p : ListLibraryProtocols()) {
      out.push_back({{"name", p.name}, {"path", p.path}, {"description", p.description}});
      rows.push_back({p.name, "", p.description});
    }
    const auto dirs = ProtocolLibraryDirs();
    title = "library protocols (emosweep plan|run|table NAME ...)";
    footer = "searched: " + (dirs.empty() ? std::string("no library directory found") : JoinStrings(dirs, ", ")) +
             " ($EMOSWEEP_PROTOCOL_PATH first)";
  } else {
    return Status::InvalidArgument("unknown WHAT '" + what + "' (expected " + kWhat + ")");
  }
  if (json) {
    PrintJson(nlohmann::json{{"what", what}, {"items", out}}.dump(2));
  } else {
    PrintRows(title, rows, footer);
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
