// protocols/grammar.h: protocol file grammar v1 (docs/formats/protocol.md),
// parsed and checked into plain declarations, before any store is opened.
//
// ParseProtocol turns a TOML document into a ProtocolDecl: unknown keys,
// wrong types, missing required fields (the selection policy above all),
// unknown model names and DA variants, bad budgets are errors that name the
// file and the line. Model/train/adapt configs are validated against their
// typed tables (protocols/config_catalog.h) for every grid point here too, so
// a malformed protocol fails before it touches data. What needs the stores
// (utterance ids, splits, subsets) happens in expansion (expand.cc).
// Thread-safety: pure functions; the structs are plain values.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "core/toml_json.h"
#include "jobs/shared_json.h"
#include "protocols/expand.h"

namespace emosweep::protocols {

inline constexpr int kProtocolVersion = 1;

struct SplitDecl {
  std::string method = "speaker_kfold";  // speaker_kfold | loso | stratified | file
  int k = 5;
  std::string group_by = "speaker";
  double val_fraction = 0.1;
  double test_fraction = 0.1;
  uint64_t seed = 0;
  bool allow_speaker_overlap = false;
  std::string file;                      // method "file": path, "{corpus}" replaced by the corpus name
  std::vector<std::string> folds;        // fold names or indices ("0", "1"); empty = all (in_domain) / first
  nlohmann::json ToJson() const;
};

struct CorpusDecl {
  std::string name;
  std::string store;       // as written (before ${VAR} expansion)
  std::string path;        // resolved (vars expanded, relative to the protocol's directory)
  std::string label_map;   // "" = not checked
  // Evaluation set of the corpus wherever it is a target or held out (every kind but in_domain and joint):
  // "test" (its test share) or "whole" (every utterance); "" = each kind's own default (loco: whole,
  // the others: test share), which keeps protocols written before the key unchanged.
  std::string evaluate_on;
  std::string evaluate_on_where;  // "file line N" of the key
  bool has_split = false;  // the corpus's own split replaces the experiments' for this corpus
  SplitDecl split;
  std::string where;       // "file line N" of its store key
};


struct ModelDecl {
  std::string name;        // registry name (models/model_configs.h)
  std::string label;       // table row name (defaults to name)
  nlohmann::json config;   // defaults.model.<name> merged with the inline keys (before the grid)
  std::map<std::string, int> lines;  // config key -> source line (for messages)
  std::string where;
};

struct Budget {
  std::string label;       // "10%" or "5-shot"
  double fraction = 0;     // (0, 1] when a percentage
  int shots = 0;           // > 0 when shots per class
};

// One grid point: effective configs (defaults filled) and its attributes.
struct GridPoint {
  jobs::SharedJson model;          // {"name": ..., effective config}; interned: every job of the point shares it
  jobs::SharedJson train;          // effective train config (interned)
  jobs::SharedJson finetune;       // effective train config of the fine-tune stage (finetune/fewshot)
  nlohmann::json adapt_extra;      // grid "adapt.*" values
  std::map<std::string, std::string> attrs;  // "train.lr" -> "0.001", ...; "hp" -> "train.lr=0.001,..."
};

struct ExperimentDecl {
  std::string name;
  std::string kind;
  std::string where;                       // "file line N" of the [[experiment]]
  std::vector<ModelDecl> models;
  std::map<std::string, std::vector<nlohmann::json>> grid;  // "train.lr" -> values (sorted keys)
  std::vector<uint64_t> seeds;
  std::string selection;
  std::string oracle_eval;
  std::vector<std::string> labels;
  std::map<std::string, std::string> features;
  nlohmann::json train = nlohmann::json::object();     // defaults.train + experiment train (raw)
  nlohmann::json finetune_train = nlohmann::json::object();
  SplitDecl split;
  std::vector<std::string> corpora;        // in_domain, loco, cross_corpus (matrix form), joint
  std::vector<std::string> heldout;        // loco: held-out corpora (default: corpora)
  // Corpus roles of finetune, fewshot, adapt and cross_corpus (source form): `source` (one corpus or a
  // list), `target` / `targets`. `pool`: "all" trains once on the pooled sources, "each" once per source.
  std::vector<std::string> sources;
  std::vector<std::string> pool;           // "all" and/or "each", in declaration order
  std::vector<std::string> targets;        // also cross_corpus matrix form (default: corpora)
  std::string source, target;              // single source / target as written (ToJson of older protocols)
  std::vector<Budget> budgets;             // fewshot
  std::vector<std::string> variants;       // adapt
  double weight = 0.1;                     // adapt
  nlohmann::json adapt_options = nlohmann::json::object();
  // Model × grid points, expanded and validated at parse time.
  // (index into models, grid point), in a stable order.
  std::vector<std::pair<size_t, GridPoint>> points;
  // Model files (`torchscript`) that do not exist: a missing input like a missing store (plan
  // reports it, the experiment is not expanded, run refuses).
  std::set<std::string> missing_files;
  // Jobs it expands to at least (counted before the points are made).
  double min_jobs = 0;
  // A [[table]] selects this experiment's grid by leave-one-source-out: exp_lodo.cc adds the validation jobs.
  bool lodo = false;

  std::vector<std::string> Corpora() const;  // every corpus read, in a stable order
  // The training corpus sets of the source form (one per source for "each", the pooled list for "all").
  std::vector<std::vector<std::string>> SourceSets() const;
  nlohmann::json ToJson() const;             // effective declaration (for Protocol::effective)
};

struct ProtocolDecl {
  std::string path;
  std::string dir;                          // directory of the file (relative paths resolve here)
  int version = kProtocolVersion;
  std::string name;
  std::string description;
  std::map<std::string, std::string> vars;  // effective variables (after overrides)
  std::vector<CorpusDecl> corpora;
  std::vector<ExperimentDecl> experiments;
  std::vector<TableSpec> tables;
  std::vector<std::string> warnings;
  uint64_t max_jobs = kDefaultMaxJobs;      // LoadOptions::max_jobs (0 = no limit)

  const CorpusDecl* FindCorpus(const std::string& name) const;
};

Result<ProtocolDecl> ParseProtocol(const TomlDocument& doc, const LoadOptions& options);

}  // namespace emosweep::protocols
