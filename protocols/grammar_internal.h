// protocols/grammar_internal.h: pieces of the grammar parser shared between
// grammar.cc (top level), grammar_experiment.cc and tables.cc. Internal.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/toml_json.h"
#include "protocols/config_catalog.h"
#include "protocols/grammar.h"

namespace emosweep::protocols {

// [defaults], raw (each experiment merges and validates).
struct Defaults {
  nlohmann::json labels;                          // string (named set) or list; null = none
  std::string labels_where;
  std::map<std::string, std::string> features;
  std::vector<uint64_t> seeds;
  std::string selection;
  std::string oracle_eval;
  nlohmann::json split;                           // raw split table; null = none
  std::string split_pointer;
  int64_t split_seed = 0;
  nlohmann::json train = nlohmann::json::object();
  KeyLines train_lines;
  nlohmann::json finetune_train = nlohmann::json::object();
  KeyLines finetune_lines;
  std::map<std::string, nlohmann::json> model;    // model name -> config overrides
  std::map<std::string, KeyLines> model_lines;
  double adapt_weight = 0.1;
};

Result<Defaults> ParseDefaults(const TomlDocument& doc);
Result<ExperimentDecl> ParseExperiment(const TomlDocument& doc, const std::string& pointer, const Defaults& defaults,
                                       const ProtocolDecl& protocol);
Result<TableSpec> ParseTable(const TomlDocument& doc, const std::string& pointer, const ProtocolDecl& protocol);

class TableReader;
Result<std::vector<std::string>> ResolveLabels(const nlohmann::json& labels, const std::string& where);
Result<Budget> ParseBudget(const nlohmann::json& v, const TableReader& r);

// The split table grammar (shared by [defaults] and experiments).
Result<SplitDecl> ParseSplit(const TomlDocument& doc, const std::string& pointer, int64_t default_seed);

}  // namespace emosweep::protocols
