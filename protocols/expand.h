// protocols/expand.h: a validated protocol expanded into a job DAG.
//
// This is the contract between protocols/ (which parses TOML protocol files,
// validates them and expands experiments × models × hyperparameter grid ×
// seeds × folds into jobs) and orchestrator/ (which schedules, runs and
// records them and renders tables). Job identities come from
// jobs::JobSpec::ComputeId(); shared pre-training jobs appear once and
// are listed in the `deps` of every job that starts from them.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "jobs/job.h"
#include "protocols/attrs.h"

namespace emosweep::protocols {

struct PlannedJob {
  jobs::JobSpec spec;            // spec.id is set
  // Ids of jobs that must finish first (shared pre-training, the trained job of an eval job);
  // each reads like a const std::string and is the copy the dependents share with init_from.
  std::vector<jobs::SharedId> deps;
  // Table coordinates: "experiment", "kind", "model", "corpus", "source", "target",
  // "fold", "seed", "budget", "variant", "hp" (grid point as "lr=0.001,..."), ...
  // A flat, interned value that reads like a std::map (protocols/attrs.h; issue 15).
  Attrs attrs;
  bool reportable = true;          // false for helper jobs (pre-training) that no table cell reads
};

// A readable one-line description of a job for progress lines and status:
// "loco mlp_wide heldout=emovo seed=2 fold=0", "adapt concat_mlp dann_ganin
// synth_a->synth_b seed=1", "fewshot ... budget=10% (pretrain)".
inline std::string JobLabel(const Attrs& attrs) {
  auto get = [&](const char* k) {
    auto it = attrs.find(k);
    return it == attrs.end() ? std::string() : it->second;
  };
  std::string out = get("experiment");
  auto add = [&](const std::string& part) {
    if (part.empty()) return;
    out += out.empty() ? part : " " + part;
  };
  add(get("model"));
  add(get("variant"));
  const std::string source = get("source"), target = get("target"), heldout = get("heldout");
  if (!heldout.empty())
    add("heldout=" + heldout);
  else if (!source.empty() && !target.empty() && source != target)
    add(source + "->" + target);
  else
    add(!get("corpus").empty() ? get("corpus") : target);
  if (!get("budget").empty()) add("budget=" + get("budget"));
  if (!get("hp").empty()) add(get("hp"));
  if (!get("seed").empty()) add("seed=" + get("seed"));
  if (!get("fold").empty()) add("fold=" + get("fold"));
  if (!get("role").empty()) add("(" + get("role") + ")");
  return out;
}

struct TableSpec {
  std::string name;
  std::string experiment;          // which experiment's jobs feed it ("" = all)
  std::string rows;                // attribute for rows (e.g. "model")
  std::string columns;             // attribute for columns (e.g. "target")
  std::vector<std::string> metrics;   // "ua", "wa", "macro_f1", "weighted_f1"
  std::string eval = "test";       // which JobResult eval set the metric is read from
  std::string spread = "std";      // std | sem | ci95
  std::string aggregate_over = "seed,fold";  // attributes averaged away
  double scale = 100.0;            // 0.634 -> 63.4
  int decimals = 1;
  std::string missing = "—";
  std::map<std::string, double> published;  // "row|column" -> value, for --reproduce
  double tolerance = 0.0;
  nlohmann::json raw;              // the table's TOML as given, for captions/extensions
  // Added after v1 of this contract (all optional):
  std::map<std::string, std::string> filter;  // only jobs whose attrs match every entry feed the table
  std::string caption;             // user text placed before the generated caption
  std::string selection;           // the feeding experiment's selection policy (for the caption)
  std::string oracle_eval;         // non-empty when that policy is "oracle" (flag it)
  std::vector<uint64_t> seeds;     // the feeding experiment's seeds (for the caption)
  // Issue 14 (tables over several experiments, grid selection; all optional):
  std::vector<std::string> experiments;  // `experiments = [...]`: jobs of any of these feed it (else `experiment`)
  std::vector<std::string> row_attrs;    // `rows = [...]`: the row key joins these attributes (else {rows})
  bool average = false;            // an "average" column: mean over the columns of the per-column means
  double alpha = 0.05;             // significance level of the paired t-test behind "best"
  // "" | training_domain | lodo | oracle | im | snd | dev: one grid point (hp) per cell (im, snd and dev: the
  // unlabeled target's criterion at each adaptation run's selected epoch, UnsupervisedGridRule)
  std::string grid_selection;
  // `grid_selection_by = {EXPERIMENT = RULE}`: a rule per experiment, overriding grid_selection for its rows
  // (one table can then show the same grid chosen by training-domain validation and by LODO side by side).
  std::map<std::string, std::string> grid_selection_by;
  const std::string& GridRuleFor(const std::string& experiment) const {
    auto it = grid_selection_by.find(experiment);
    return it == grid_selection_by.end() ? grid_selection : it->second;
  }
  bool HasGridSelection() const {
    if (!grid_selection.empty()) return true;
    for (const auto& [e, r] : grid_selection_by)
      if (!r.empty()) return true;
    return false;
  }
  // The rules in use, in a fixed order (for captions).
  std::vector<std::string> GridRules() const {
    std::vector<std::string> out;
    for (const char* r : {"training_domain", "lodo", "oracle", "im", "snd", "dev"}) {
      bool used = grid_selection == r;
      for (const auto& [e, rule] : grid_selection_by) used = used || rule == r;
      if (used) out.push_back(r);
    }
    return out;
  }
};

// Grid rules that rank an adaptation experiment's grid points without target labels, by the criterion its
// runs record at their selected epoch (info.da_selected): im and snd higher is better, dev lower.
inline bool UnsupervisedGridRule(const std::string& rule) { return rule == "im" || rule == "snd" || rule == "dev"; }

// What `plan` prints per experiment: its job count, or why it was not expanded.
struct ExperimentSummary {
  std::string name;
  std::string kind;                // in_domain | loco | cross_corpus | finetune | fewshot | adapt | joint
  std::string selection;
  std::vector<std::string> corpora;           // every corpus it reads
  bool expanded = false;
  std::string reason;              // why not expanded (missing stores), "" when expanded
  std::map<std::string, int> jobs_by_kind;    // JobSpec::kind -> count (shared jobs counted once, where first made)
  int jobs = 0;
};

struct Protocol {
  std::string path;
  std::string name;
  int version = 1;
  std::string description;
  nlohmann::json effective;        // the effective protocol (defaults filled), stored in the ledger
  std::vector<PlannedJob> jobs;    // topologically ordered (deps before dependents)
  std::vector<TableSpec> tables;
  std::vector<std::string> missing_inputs;  // stores that do not exist (plan reports them; run refuses)
  // Added after v1 of this contract:
  std::vector<ExperimentSummary> experiments;  // in file order
  std::vector<std::string> warnings;           // non-fatal findings (class absent from a corpus, ...)
  // What the expansion did to the data that a reader should know, not a problem: the utterances of each corpus
  // whose class is outside an experiment's label set, left out ("corpus 'emodb' (labels core4 of experiment
  // 'in_domain'): 339 of 535 utterances kept; left out: boredom 81, disgust 46, fear 69"). `plan` prints them.
  // Not kept in the expansion cache (tables do not read them).
  std::vector<std::string> notes;
  std::map<std::string, std::string> stores;   // corpus name -> resolved store path
  // SHA-256 of what the expansion depends on: the effective protocol (store content
  // hashes included), the bytes of split files, the identity version and this build's
  // version. Equal keys expand to the same jobs (protocols/expand_cache.h).
  std::string expansion_key;
};

// Where stores are found. `--store-dir DIR` on the command line sets the
// variable STORE_DIR; `vars` override the environment, which overrides the
// protocol's own [vars] table. Relative values given here or in the
// environment resolve against the current directory; paths written in the
// protocol file resolve against the file's directory.
// A protocol that would expand to more than `max_jobs` jobs is refused before
// its jobs (or its grid points) are materialised: models x grid points x seeds
// x corpora/budgets/variants are counted first (a 60x60x60 grid once grew
// `plan` to 9 GB). 0 = no limit.
constexpr uint64_t kDefaultMaxJobs = 200000;

struct LoadOptions {
  std::string store_dir;                       // sets ${STORE_DIR} when non-empty
  std::map<std::string, std::string> vars;     // --var NAME=VALUE
  bool use_environment = true;
  uint64_t max_jobs = kDefaultMaxJobs;         // --max-jobs
  bool expand = true;                          // false: parse, resolve and hash only (jobs left empty)
  // false: each job's data references keep their store and hash but drop their utterance
  // ids, its model, train_config and adapt become null and its features and init_from
  // empty, once the job's identity is computed (what plan, table and gc read of a job is
  // its id, kind, labels, seed, selection, attributes and deps; issue 15). Such jobs
  // cannot run.
  bool keep_data = true;
  // With keep_data = false, true keeps only what `plan` reads of a job (its id, kind,
  // deps, reportable and attributes): its labels and data references are dropped too
  // (~250 bytes a job; issue 15). The table cache and gc need labels and references.
  bool plan_only = false;
  // With keep_data = false, true keeps only what tables read of a job (its id, kind,
  // reportable, attributes, seed, selection, oracle eval and labels): its data references
  // and deps are dropped too (the expansion a cold `table` writes to its cache; issue 15).
  bool table_only = false;
};

// Parses, validates and expands a protocol file. Missing feature stores are
// not an error here: they are listed in missing_inputs (so `plan` works
// without data) and jobs that need them are not expanded.
Result<Protocol> LoadProtocol(const std::string& path);
Result<Protocol> LoadProtocol(const std::string& path, const LoadOptions& options);

}  // namespace emosweep::protocols
