// cli/cmd_ledger.cc: `emosweep ledger status|query|export`: reading a ledger;
// `ledger gc|vacuum`: its upkeep.
//
// status, query and export open the ledger read-only (SQLITE_OPEN_READONLY and
// PRAGMA query_only), so they are safe next to a running sweep and can never
// change results, including the raw `--sql` escape hatch. gc and vacuum write,
// and refuse while a sweep is running (orchestrator/ledger_gc.cc).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "cli/protocol_library.h"
#include "cli/protocol_args.h"
#include "core/files.h"
#include "orchestrator/ledger.h"
#include "protocols/expand.h"
#include "protocols/expand_cache.h"

namespace emosweep::cli {
namespace {

// Commands that maintain a ledger (gc --yes, vacuum) open it read-write, which would create a missing file or
// turn an empty one into a fresh ledger: they need an existing, non-empty file.
Status RequireLedgerFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::NotFound(path + ": no such ledger file");
  if (std::filesystem::file_size(path, ec) == 0 || ec)
    return Status::InvalidArgument(path + ": an empty file, not a ledger");
  return Status::Ok();
}

using orchestrator::Ledger;

Result<std::unique_ptr<Ledger>> OpenReadOnly(const po::variables_map& vm) {
  return Ledger::Open(vm["ledger"].as<std::string>(), {/*read_only=*/true});
}

std::string CsvField(const nlohmann::json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? "\"\"" : std::string(1, ch);
  return out + "\"";
}

std::string ToCsv(const nlohmann::json& q) {
  std::ostringstream o;
  bool first = true;
  for (const auto& c : q["columns"]) o << (first ? "" : ",") << CsvField(c), first = false;
  o << "\n";
  for (const auto& row : q["rows"]) {
    first = true;
    for (const auto& v : row) o << (first ? "" : ",") << CsvField(v), first = false;
    o << "\n";
  }
  return o.str();
}

// A job's human label (experiment, model, corpora, seed, fold: protocols::JobLabel) from its attrs_json.
std::string LabelOf(const nlohmann::json& attrs_json) {
  if (!attrs_json.is_string()) return "";
  auto j = nlohmann::json::parse(attrs_json.get<std::string>(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  std::map<std::string, std::string> attrs;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_string()) attrs[it.key()] = it.value().get<std::string>();
  return protocols::JobLabel(attrs);
}

// Rows as objects: [{"col": value, ...}, ...].
nlohmann::json ToObjects(const nlohmann::json& q) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : q["rows"]) {
    nlohmann::json o = nlohmann::json::object();
    for (size_t i = 0; i < row.size(); ++i) o[q["columns"][i].get<std::string>()] = row[i];
    out.push_back(o);
  }
  return out;
}

// `ledger export` (docs/formats/export.md): `probs` (hex of the float32 blob) as the class probabilities,
// space-separated in CSV and an array in JSON; in JSON, the columns that hold JSON text (attrs, config,
// info, val_metrics_json, ...) as nested values instead of strings.
uint32_t HexByte(char hi, char lo) {
  auto nibble = [](char c) -> uint32_t { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  return nibble(hi) << 4 | nibble(lo);
}

// Which columns of an export are decoded: `probs` always, the JSON-text columns in JSON output.
struct ExportDecoder {
  std::vector<char> probs, nested;
  ExportDecoder(const nlohmann::json& cols, bool json) {
    for (const auto& c : cols) {
      const std::string name = c.get<std::string>();
      probs.push_back(name == "probs");
      nested.push_back(json && (name == "attrs" || name == "deps" || name == "config" || name == "info" || name == "ids" ||
                                (name.size() > 5 && name.compare(name.size() - 5, 5, "_json") == 0)));
    }
  }
  void Row(nlohmann::json* row, bool json) const {
    for (size_t i = 0; i < probs.size() && i < row->size(); ++i) {
      if (!probs[i] && !nested[i]) continue;
      nlohmann::json& v = (*row)[i];
      if (!v.is_string()) continue;
      const std::string s = v.get<std::string>();
      if (probs[i]) {
        std::vector<float> p(s.size() / 8);
        for (size_t k = 0; k < p.size(); ++k) {
          uint32_t bits = 0;
          for (int b = 0; b < 4; ++b) bits |= HexByte(s[8 * k + 2 * b], s[8 * k + 2 * b + 1]) << (8 * b);  // LE
          std::memcpy(&p[k], &bits, sizeof bits);
        }
        if (s.empty()) {
          v = nullptr;
        } else if (json) {
          v = p;
        } else {
          std::string text;
          char buf[32];
          for (float x : p) std::snprintf(buf, sizeof buf, "%.9g", x), text += (text.empty() ? "" : " ") + std::string(buf);
          v = text;
        }
      } else {
        nlohmann::json parsed = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
        if (!parsed.is_discarded()) v = std::move(parsed);
      }
    }
  }
};

void PrintAligned(const nlohmann::json& q) {
  size_t n = q["columns"].size();
  std::vector<size_t> w(n, 0);
  auto text = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.is_null() ? std::string("") : v.dump();
  };
  for (size_t i = 0; i < n; ++i) w[i] = text(q["columns"][i]).size();
  for (const auto& row : q["rows"])
    for (size_t i = 0; i < n; ++i) w[i] = std::max(w[i], std::min<size_t>(60, text(row[i]).size()));
  auto line = [&](const nlohmann::json& r) {
    for (size_t i = 0; i < n; ++i) {
      std::string s = text(r[i]);
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      std::printf("%s%-*s", i ? "  " : "", static_cast<int>(w[i]), s.c_str());
    }
    std::printf("\n");
  };
  line(q["columns"]);
  for (const auto& row : q["rows"]) line(row);
}

// --sweep names a sweep of the ledger: a mistyped id answered with an empty listing, a negative one with every
// sweep's jobs (helper-69).
Status CheckSweepArg(const po::variables_map& vm, orchestrator::Ledger* l) {
  if (!vm.count("sweep")) return Status::Ok();
  const int64_t id = vm["sweep"].as<int64_t>();
  if (id < 1) return Status::InvalidArgument("--sweep must be a sweep id (1 or more), got " + std::to_string(id));
  ES_ASSIGN_OR_RETURN(auto q, l->Query("SELECT count(*), max(id) FROM sweeps WHERE id = " + std::to_string(id) +
                                       " UNION ALL SELECT count(*), max(id) FROM sweeps"));
  if (q["rows"][0][0].get<int64_t>() == 0)
    return Status::NotFound(l->path() + ": no sweep " + std::to_string(id) + " (the ledger has " +
                            std::to_string(q["rows"][1][0].get<int64_t>()) + " sweeps; 'emosweep ledger status' "
                            "lists them)");
  return Status::Ok();
}

// The links of a sweep that shares another's (schema v3) are the holder's rows.
Result<std::string> SweepFilter(const po::variables_map& vm, orchestrator::Ledger* l, const std::string& alias) {
  if (!vm.count("sweep")) return std::string();
  ES_ASSIGN_OR_RETURN(const int64_t holder, l->LinkHolder(vm["sweep"].as<int64_t>()));
  return " AND " + alias + ".id IN (SELECT job_id FROM sweep_jobs WHERE sweep_id = " + std::to_string(holder) + ")";
}

}  // namespace

void LedgerStatusOptions(po::options_description& o) {
  o.add_options()("ledger", po::value<std::string>()->required(), "SQLite ledger file")(
      "sweep", po::value<int64_t>(), "only the jobs of this sweep id")("json", "print one JSON document");
}

Status LedgerStatusRun(const po::variables_map& vm) {
  ES_ASSIGN_OR_RETURN(auto l, OpenReadOnly(vm));
  ES_RETURN_IF_ERROR(CheckSweepArg(vm, l.get()));
  int64_t holder = -1;  // the sweep whose links are --sweep's (schema v3: it may share another's)
  if (vm.count("sweep")) {
    ES_ASSIGN_OR_RETURN(holder, l->LinkHolder(vm["sweep"].as<int64_t>()));
  }
  ES_ASSIGN_OR_RETURN(nlohmann::json by_rows, l->StatusCounts(vm.count("sweep") ? vm["sweep"].as<int64_t>() : -1));
  const nlohmann::json by = {{"rows", std::move(by_rows)}};
  ES_ASSIGN_OR_RETURN(auto failures, l->Query(orchestrator::Ledger::FailedJobsSql(holder)));
  ES_ASSIGN_OR_RETURN(auto running, l->Query(orchestrator::Ledger::RunningJobsSql(holder)));
  ES_ASSIGN_OR_RETURN(auto sweeps, l->Sweeps());
  std::map<std::string, int64_t> totals;
  std::map<std::string, std::map<std::string, int64_t>> kinds;
  for (const auto& r : by["rows"]) {
    totals[r[1].get<std::string>()] += r[2].get<int64_t>();
    kinds[r[0].get<std::string>()][r[1].get<std::string>()] = r[2].get<int64_t>();
  }
  // A sweep still 'running', or a running job's owner, whose process on this host is gone (kill -9, a crash):
  // marked interrupted / taken over by the next `run` only, so said here.
  auto sweep_gone = [](const nlohmann::json& s) {
    return s["status"] == "running" &&
           orchestrator::OwnerIsDeadHere(s["host"].get<std::string>() + ":" + std::to_string(s["pid"].get<int64_t>()));
  };
  auto owner_gone = [](const nlohmann::json& owner) {
    return owner.is_string() && orchestrator::OwnerIsDeadHere(owner.get<std::string>());
  };
  if (vm.count("json")) {
    nlohmann::json running_objects = ToObjects(running), sweep_objects = sweeps;
    for (size_t i = 0; i < running["rows"].size() && i < running_objects.size(); ++i) {
      running_objects[i]["owner_gone"] = owner_gone(running["rows"][i][2]);
      // The job's attributes as an object, as `ledger export --json` nests them (helper-58: a JSON string).
      nlohmann::json& attrs = running_objects[i]["attrs"];
      if (attrs.is_string()) {
        nlohmann::json parsed = nlohmann::json::parse(attrs.get<std::string>(), nullptr, false);
        if (!parsed.is_discarded()) attrs = std::move(parsed);
      }
    }
    for (auto& s : sweep_objects) s["process_gone"] = sweep_gone(s);
    PrintJson(nlohmann::json{{"ledger", l->path()},
                             {"schema_version", l->schema_version()},
                             {"by_status", totals},
                             {"by_kind", kinds},
                             {"failures", ToObjects(failures)},
                             {"running", running_objects},
                             {"sweeps", sweep_objects}}
                  .dump(2));
    return Status::Ok();
  }
  int64_t total = 0;
  for (const auto& [s, n] : totals) total += n;
  std::printf("ledger %s (schema v%d): %lld jobs", l->path().c_str(), l->schema_version(),
              static_cast<long long>(total));
  for (const char* s : {"done", "running", "pending", "failed", "blocked"})
    if (totals.count(s)) std::printf(", %lld %s", static_cast<long long>(totals[s]), s);
  std::printf("\n\nby kind:\n");
  for (const auto& [kind, m] : kinds) {
    std::printf("  %-12s", kind.c_str());
    for (const auto& [s, n] : m) std::printf(" %s %lld", s.c_str(), static_cast<long long>(n));
    std::printf("\n");
  }
  if (!sweeps.empty()) {
    std::printf("\nsweeps (latest last):\n");
    size_t from = sweeps.size() > 10 ? sweeps.size() - 10 : 0;
    for (size_t i = from; i < sweeps.size(); ++i) {
      const auto& s = sweeps[i];
      const bool gone = sweep_gone(s);
      std::printf("  #%-4lld %-24s %-11s %4lld jobs  host %s pid %lld%s\n", static_cast<long long>(s["id"]),
                  s["protocol"].get<std::string>().c_str(), s["status"].get<std::string>().c_str(),
                  static_cast<long long>(s["jobs"]), s["host"].get<std::string>().c_str(),
                  static_cast<long long>(s["pid"]), gone ? "  (process gone: the next run marks it interrupted)" : "");
    }
  }
  if (!running["rows"].empty()) {
    std::printf("\nrunning:\n");
    for (const auto& r : running["rows"])
      std::printf("  %.12s %-10s [%s] owner %s, heartbeat %.0fs ago%s\n", r[0].get<std::string>().c_str(),
                  r[1].get<std::string>().c_str(), LabelOf(r[5]).c_str(),
                  r[2].is_string() ? r[2].get<std::string>().c_str() : "?", r[4].is_number() ? r[4].get<double>() : -1.0,
                  owner_gone(r[2]) ? " (owner process gone: the next run takes it over)" : "");
  }
  if (!failures["rows"].empty()) {
    std::printf("\nfailed / blocked:\n");
    constexpr size_t kShown = 20;  // 1000 diverged jobs printed 936 lines (helper-67); --json has them all
    size_t n = 0;
    for (const auto& r : failures["rows"]) {
      if (n++ == kShown) break;
      std::printf("  %.12s %-10s [%s] %-8s after %lld attempt(s): %s\n", r[0].get<std::string>().c_str(),
                  r[1].get<std::string>().c_str(), LabelOf(r[5]).c_str(), r[2].get<std::string>().c_str(),
                  static_cast<long long>(r[3].get<int64_t>()), r[4].is_string() ? r[4].get<std::string>().c_str() : "");
    }
    if (failures["rows"].size() > kShown)
      std::printf("  ... and %zu more: emosweep ledger query --ledger %s --status failed (or --status blocked)\n",
                  failures["rows"].size() - kShown, vm["ledger"].as<std::string>().c_str());
  }
  return Status::Ok();
}

void LedgerQueryOptions(po::options_description& o) {
  o.add_options()("ledger", po::value<std::string>()->required(), "SQLite ledger file")(
      "status", po::value<std::string>(), "pending|running|done|failed|blocked")(
      "kind", po::value<std::string>(), "job kind (supervised, pretrain, finetune, adapt, eval)")(
      "attr", po::value<std::vector<std::string>>()->composing(), "KEY=VALUE on the job's table attributes (repeatable)")(
      "sweep", po::value<int64_t>(), "only the jobs of this sweep id")(
      "sql", po::value<std::string>(), "one read-only SQL statement instead of the filters")(
      "timeout", po::value<double>()->default_value(30.0), "seconds a query may run (0 = no limit)")(
      "csv", "print CSV instead of aligned columns")("json", "print one JSON document");
}

Status LedgerQueryRun(const po::variables_map& vm) {
  const double timeout = vm["timeout"].as<double>();
  if (!(timeout >= 0)) return Status::InvalidArgument("--timeout must be >= 0 seconds");
  if (vm.count("csv") && vm.count("json")) return Status::InvalidArgument("--csv and --json exclude each other");
  ES_ASSIGN_OR_RETURN(auto l, OpenReadOnly(vm));
  if (!vm.count("sql")) ES_RETURN_IF_ERROR(CheckSweepArg(vm, l.get()));
  nlohmann::json q;
  if (vm.count("sql")) {
    if (vm.count("status") || vm.count("kind") || vm.count("attr") || vm.count("sweep"))
      return Status::InvalidArgument("--sql cannot be combined with --status/--kind/--attr/--sweep");
    ES_ASSIGN_OR_RETURN(q, l->Query(vm["sql"].as<std::string>(), timeout));
  } else {
    if (vm.count("status")) ES_RETURN_IF_ERROR(orchestrator::ParseJobStatus(vm["status"].as<std::string>()).status());
    if (vm.count("kind")) {  // a misspelt kind matched no job and printed nothing, as an empty result would
      const std::string k = vm["kind"].as<std::string>();
      if (k != "supervised" && k != "pretrain" && k != "finetune" && k != "adapt" && k != "eval")
        return Status::InvalidArgument("--kind '" + k + "': expected supervised, pretrain, finetune, adapt or eval");
    }
    // Values are SQL string literals with quotes doubled; the handle is query_only anyway.
    ES_ASSIGN_OR_RETURN(const std::string sweep_filter, SweepFilter(vm, l.get(), "j"));
    std::string where = " WHERE 1" + sweep_filter;
    auto quote = [](const std::string& s) {
      std::string out = "'";
      for (char ch : s) out += ch == '\'' ? "''" : std::string(1, ch);
      return out + "'";
    };
    if (vm.count("status")) where += " AND j.status = " + quote(vm["status"].as<std::string>());
    if (vm.count("kind")) where += " AND j.kind = " + quote(vm["kind"].as<std::string>());
    if (vm.count("attr"))
      for (const auto& kv : vm["attr"].as<std::vector<std::string>>()) {
        size_t eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) return Status::InvalidArgument("--attr expects KEY=VALUE, got '" + kv + "'");
        where += " AND json_extract(j.attrs_json, " + quote("$.\"" + kv.substr(0, eq) + "\"") + ") = " +
                 quote(kv.substr(eq + 1));
      }
    ES_ASSIGN_OR_RETURN(q, l->Query("SELECT j.id, j.kind, j.status, j.attempts, j.attrs_json AS attrs, "
                                    "(SELECT value FROM metrics m WHERE m.job_id = j.id AND m.eval = 'test' AND "
                                    "m.name = 'ua') AS test_ua, j.error FROM jobs j" + where +
                                    " ORDER BY j.created_at, j.id", timeout));
  }
  if (vm.count("json")) {
    // attrs as an object, as `ledger status --json` and `ledger export --json` give it (it was a string).
    if (!vm.count("sql")) {
      const ExportDecoder decode(q["columns"], /*json=*/true);
      for (auto& row : q["rows"]) decode.Row(&row, /*json=*/true);
    }
    PrintJson(ToObjects(q).dump(2));
  } else if (vm.count("csv"))
    std::cout << ToCsv(q);
  else
    PrintAligned(q);
  return Status::Ok();
}

void LedgerExportOptions(po::options_description& o) {
  o.add_options()("ledger", po::value<std::string>()->required(), "SQLite ledger file")(
      "what", po::value<std::string>()->default_value("metrics"),
      "metrics | jobs | curves | predictions | provenance | sweeps | eval_details | id_lists")(
      "format", po::value<std::string>()->default_value("csv"), "csv | json")(
      "json", "same as --format json")(
      "out", po::value<std::string>(), "write to this file (atomically) instead of stdout");
}

Status LedgerExportRun(const po::variables_map& vm) {
  static const std::map<std::string, std::string> kQueries = {
      {"metrics",
       "SELECT m.job_id, j.kind, j.attrs_json AS attrs, m.eval, m.name, m.value FROM metrics m "
       "JOIN jobs j ON j.id = m.job_id ORDER BY m.job_id, m.eval, m.name"},
      {"jobs",
       "SELECT id, kind, status, attempts, error, attrs_json AS attrs, deps_json AS deps, config_json AS config, "
       "reportable, selected_epoch, info_json AS info, checkpoint, owner, worker, created_at, claimed_at, "
       "started_at, heartbeat_at, finished_at FROM jobs ORDER BY created_at, id"},
      {"curves", "SELECT * FROM curves ORDER BY job_id, epoch"},
      {"predictions",
       "SELECT job_id, eval, idx, utt_id, label, pred, hex(probs) AS probs FROM predictions "
       "ORDER BY job_id, eval, idx"},
      {"provenance", "SELECT * FROM provenance ORDER BY job_id"},
      {"sweeps", "SELECT * FROM sweeps ORDER BY id"},
      {"eval_details", "SELECT * FROM eval_details ORDER BY job_id, eval"},
      {"id_lists", "SELECT hash, n, ids_json AS ids FROM id_lists ORDER BY hash"},
  };
  std::string what = vm["what"].as<std::string>(), format = vm["format"].as<std::string>();
  if (vm.count("json")) {
    if (!vm["format"].defaulted() && format != "json")
      return Status::InvalidArgument("--json and --format " + format + " exclude each other");
    format = "json";
  }
  auto it = kQueries.find(what);
  if (it == kQueries.end())
    return Status::InvalidArgument("--what must be metrics, jobs, curves, predictions, provenance, sweeps, "
                                   "eval_details or id_lists, got '" + what + "'");
  if (format != "csv" && format != "json") return Status::InvalidArgument("--format must be csv or json");
  ES_ASSIGN_OR_RETURN(auto l, OpenReadOnly(vm));
  std::string sql = it->second;
  // A ledger older than schema v5 (read as it is) keeps its id lists in config_json: no list table.
  if (what == "id_lists" && l->schema_version() < 5) sql = "SELECT '' AS hash, 0 AS n, '' AS ids WHERE 0";
  // Row by row to the output (helper-67: the whole result, then its text, took 2-3 GB for 1.6M predictions).
  // To a temporary renamed at the end with --out; the text equals a whole-result dump's (docs/formats/export.md).
  const bool json = format == "json";
  std::unique_ptr<TempPath> tmp;
  std::ofstream file;
  if (vm.count("out")) {
    tmp = std::make_unique<TempPath>(vm["out"].as<std::string>());
    file.open(tmp->path(), std::ios::binary | std::ios::trunc);
    if (!file) return Status::IoError(tmp->final_path() + ": cannot create: " + std::strerror(errno));
  }
  std::ostream& out = tmp ? static_cast<std::ostream&>(file) : std::cout;
  nlohmann::json cols;
  std::unique_ptr<ExportDecoder> decode;
  size_t rows = 0;
  ES_RETURN_IF_ERROR(l->QueryEach(
      sql, 0,
      [&](const nlohmann::json& c) {
        cols = c;
        decode = std::make_unique<ExportDecoder>(cols, json);
        if (!json) {
          bool first = true;
          for (const auto& name : cols) out << (first ? "" : ",") << CsvField(name), first = false;
          out << "\n";
        }
      },
      [&](nlohmann::json& row) {
        decode->Row(&row, json);
        if (json) {
          nlohmann::json o = nlohmann::json::object();
          for (size_t i = 0; i < row.size(); ++i) o[cols[i].get<std::string>()] = std::move(row[i]);
          // As the element of an array dumped with indent 2: every line two spaces deeper.
          std::string text = o.dump(2);
          out << (rows ? ",\n  " : "[\n  ");
          for (char ch : text) {
            out << ch;
            if (ch == '\n') out << "  ";
          }
        } else {
          bool first = true;
          for (const auto& v : row) out << (first ? "" : ",") << CsvField(v), first = false;
          out << "\n";
        }
        ++rows;
        return out ? Status::Ok()
                   : Status::IoError((tmp ? tmp->final_path() : std::string("standard output")) + ": write failed: " +
                                     std::strerror(errno));
      }));
  if (json) out << (rows ? "\n]\n" : "[]\n");
  out.flush();
  if (!tmp) return Status::Ok();  // main() checks that standard output took it all
  file.close();
  if (!file) return Status::IoError(tmp->final_path() + ": write failed: " + std::strerror(errno));
  return tmp->Commit();
}

void LedgerGcOptions(po::options_description& o) {
  o.add_options()("protocol", po::value<std::vector<std::string>>()->required(),
                  "protocol(s) whose jobs to keep (TOML, grammar v1)")(
      "ledger", po::value<std::string>()->required(), "SQLite ledger file")(
      "yes", "drop (default: a dry run that only prints what would be dropped)")(
      "store-dir", po::value<std::string>(), "directory of the feature stores (sets ${STORE_DIR})")(
      "var", po::value<std::vector<std::string>>()->composing(), "NAME=VALUE: set a protocol variable (repeatable)")(
      "max-jobs", po::value<uint64_t>()->default_value(0), "refuse a protocol that expands to more jobs (0 = no limit)")(
      "json", "print one JSON document");
}

Status LedgerGcRun(const po::variables_map& vm) {
  ES_ASSIGN_OR_RETURN(protocols::LoadOptions lo, LoadOptionsFromArgs(vm));
  // The kept ids: each protocol's cached expansion ids when there are (protocols/expand_cache.h), else
  // its expansion. A protocol whose stores are missing cannot say which jobs it references: refuse.
  std::vector<std::string> keep;
  const auto paths = vm["protocol"].as<std::vector<std::string>>();
  for (const auto& arg : paths) {
    // A library protocol by name, as plan, run, table, report and submit take it (cli/protocol_library.h).
    ES_ASSIGN_OR_RETURN(const std::string path, ResolveProtocolPath(arg));
    protocols::LoadOptions shallow = lo;
    shallow.expand = false;
    ES_ASSIGN_OR_RETURN(protocols::Protocol p, protocols::LoadProtocol(path, shallow));
    ES_RETURN_IF_ERROR(RequireInputs(p, "tell which jobs it keeps (ledger gc)"));
    std::vector<std::string> ids;
    if (!protocols::ReadExpansionIds(p.expansion_key, &ids)) {
      protocols::LoadOptions lean = lo;
      lean.keep_data = false;
      ES_ASSIGN_OR_RETURN(protocols::Protocol full, protocols::LoadProtocol(path, lean));
      ES_RETURN_IF_ERROR(RequireInputs(full, "tell which jobs it keeps (ledger gc)"));
      protocols::WriteExpansionIds(full.expansion_key, full.jobs);
      for (const auto& j : full.jobs) ids.push_back(j.spec.id);
    }
    keep.insert(keep.end(), ids.begin(), ids.end());
  }
  const bool apply = vm.count("yes") > 0;
  ES_RETURN_IF_ERROR(RequireLedgerFile(vm["ledger"].as<std::string>()));  // --yes must not create one
  ES_ASSIGN_OR_RETURN(auto l, Ledger::Open(vm["ledger"].as<std::string>(), {/*read_only=*/!apply}));
  ES_ASSIGN_OR_RETURN(orchestrator::GcReport r, l->CollectGarbage(keep, apply));
  if (vm.count("json")) {
    PrintJson(nlohmann::json{{"ledger", l->path()},
                             {"applied", r.applied},
                             {"protocols", paths},
                             {"kept_jobs", keep.size()},
                             {"unreferenced_jobs", r.unreferenced_jobs},
                             {"dropped_jobs", r.dropped_jobs},
                             {"dropped_job_ids", r.dropped_job_ids},
                             {"predictions_dropped_jobs", r.dropped_prediction_jobs},
                             {"prediction_rows", r.prediction_rows},
                             {"stale_result_rows", r.stale_result_rows},
                             {"id_lists_dropped", r.dropped_id_lists},
                             {"bytes_freed", r.bytes},
                             {"file_bytes_before", r.file_bytes_before},
                             {"file_bytes_after", r.applied ? r.file_bytes_after : r.file_bytes_before}}
                  .dump(2));
    return Status::Ok();
  }
  std::printf("ledger gc %s%s: keeping the %zu job(s) of %zu protocol(s)\n", l->path().c_str(),
              r.applied ? "" : " (dry run: --yes drops)", keep.size(), paths.size());
  std::printf("  jobs no kept protocol references: %lld\n", static_cast<long long>(r.unreferenced_jobs));
  std::printf("    not done, %s with their rows: %lld\n", r.applied ? "dropped" : "to drop",
              static_cast<long long>(r.dropped_jobs));
  constexpr size_t kListed = 10;  // dropped job ids named here (--json names them all)
  for (size_t i = 0; i < r.dropped_job_ids.size() && i < kListed; ++i)
    std::printf("      %s\n", r.dropped_job_ids[i].c_str());
  if (r.dropped_jobs > static_cast<long long>(std::min(kListed, r.dropped_job_ids.size())))
    std::printf("      ... and %lld more\n",
                static_cast<long long>(r.dropped_jobs - std::min(kListed, r.dropped_job_ids.size())));
  std::printf("    done, predictions %s (metrics, curves, provenance kept): %lld job(s), %lld row(s)\n",
              r.applied ? "dropped" : "to drop", static_cast<long long>(r.dropped_prediction_jobs),
              static_cast<long long>(r.prediction_rows));
  std::printf("  result rows of superseded attempts or of no job: %lld\n",
              static_cast<long long>(r.stale_result_rows));
  std::printf("  utterance-id lists no job left names: %lld\n", static_cast<long long>(r.dropped_id_lists));
  if (r.applied)
    std::printf("  %lld bytes freed (ledger %lld -> %lld bytes)\n", static_cast<long long>(r.bytes),
                static_cast<long long>(r.file_bytes_before), static_cast<long long>(r.file_bytes_after));
  else
    std::printf("  about %lld bytes to free (payload; --yes then vacuums)\n", static_cast<long long>(r.bytes));
  return Status::Ok();
}

void LedgerVacuumOptions(po::options_description& o) {
  o.add_options()("ledger", po::value<std::string>()->required(), "SQLite ledger file")(
      "json", "print one JSON document");
}

Status LedgerVacuumRun(const po::variables_map& vm) {
  const std::string path = vm["ledger"].as<std::string>();
  ES_RETURN_IF_ERROR(RequireLedgerFile(path));
  ES_ASSIGN_OR_RETURN(auto l, Ledger::Open(path));
  ES_ASSIGN_OR_RETURN(auto sizes, l->Vacuum());
  const long long freed = std::max<long long>(0, sizes.first - sizes.second);
  if (vm.count("json")) {
    PrintJson(nlohmann::json{{"ledger", l->path()},
                             {"file_bytes_before", sizes.first},
                             {"file_bytes_after", sizes.second},
                             {"bytes_freed", freed}}
                  .dump(2));
  } else {
    std::printf("ledger vacuum %s: %lld -> %lld bytes (%lld freed)\n", l->path().c_str(),
                static_cast<long long>(sizes.first), static_cast<long long>(sizes.second), freed);
  }
  return Status::Ok();
}

}  // namespace emosweep::cli
