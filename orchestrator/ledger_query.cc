// orchestrator/ledger_query.cc: `ledger query --sql`: one read-only statement (an authorizer vets it
// before it runs) with a time limit.
#include <sqlite3.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "orchestrator/ledger.h"

namespace emosweep::orchestrator {

namespace {

// What raw SQL may do: read tables, call functions, query pragmas. Everything else
// (writes, ATTACH, pragma assignments such as query_only = OFF) is refused while the
// statement is prepared, before anything runs or any file is created.
struct AuthState {
  bool pragma = false;  // the statement queries a pragma (these are not "read-only" to SQLite)
  bool other = false;   // and does something besides
};

int ReadOnlyAuthorizer(void* p, int action, const char* a1, const char* a2, const char*, const char*) {
  auto* st = static_cast<AuthState*>(p);
  switch (action) {
    case SQLITE_SELECT:
      return SQLITE_OK;
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      st->other = true;
      return SQLITE_OK;
    case SQLITE_UPDATE:
      // Preparing a table-valued pragma (pragma_table_info('jobs')) re-reads the schema and
      // asks for sqlite_master; a real write there is still caught by sqlite3_stmt_readonly.
      if (a1 == nullptr || (sqlite3_stricmp(a1, "sqlite_master") != 0 && sqlite3_stricmp(a1, "sqlite_temp_master") != 0))
        return SQLITE_DENY;
      st->other = true;
      return SQLITE_OK;
    case SQLITE_PRAGMA: {
      // Pragmas that only read; those whose argument would set something take none.
      static const char* const kWithArgument[] = {
          "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
          "foreign_key_list", "integrity_check", "quick_check"};
      static const char* const kNoArgument[] = {
          "user_version", "application_id", "schema_version", "page_count", "page_size", "freelist_count",
          "encoding", "database_list", "collation_list", "function_list", "module_list", "pragma_list",
          "compile_options", "data_version", "journal_mode"};
      if (a1 == nullptr) return SQLITE_DENY;
      st->pragma = true;
      for (const char* k : kWithArgument)
        if (sqlite3_stricmp(a1, k) == 0) return SQLITE_OK;
      if (a2 != nullptr) return SQLITE_DENY;
      for (const char* k : kNoArgument)
        if (sqlite3_stricmp(a1, k) == 0) return SQLITE_OK;
      return SQLITE_DENY;
    }
    default:
      return SQLITE_DENY;
  }
}

struct Deadline {
  std::chrono::steady_clock::time_point at;
  bool hit = false;
};

int PastDeadline(void* p) {
  auto* d = static_cast<Deadline*>(p);
  if (std::chrono::steady_clock::now() < d->at) return 0;
  d->hit = true;
  return 1;
}

}  // namespace

Result<nlohmann::json> Ledger::Query(const std::string& sql, double timeout_s) {
  nlohmann::json cols, rows = nlohmann::json::array();
  ES_RETURN_IF_ERROR(QueryEach(
      sql, timeout_s, [&](const nlohmann::json& c) { cols = c; },
      [&](nlohmann::json& r) {
        rows.push_back(std::move(r));
        return Status::Ok();
      }));
  return nlohmann::json{{"columns", cols}, {"rows", rows}};
}

Status Ledger::QueryEach(const std::string& sql, double timeout_s,
                         const std::function<void(const nlohmann::json&)>& on_columns,
                         const std::function<Status(nlohmann::json&)>& on_row) {
  if (!options_.read_only)
    return Status::FailedPrecondition("raw SQL needs a ledger opened read-only (PRAGMA query_only)");
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  AuthState auth;
  sqlite3_set_authorizer(db_.raw(), ReadOnlyAuthorizer, &auth);
  std::unique_ptr<sqlite3, void (*)(sqlite3*)> unset(db_.raw(), [](sqlite3* db) {
    sqlite3_set_authorizer(db, nullptr, nullptr);
    sqlite3_progress_handler(db, 0, nullptr, nullptr);
  });
  int rc = sqlite3_prepare_v2(db_.raw(), sql.c_str(), static_cast<int>(sql.size()), &raw, &tail);
  if ((rc & 0xff) == SQLITE_AUTH)
    return Status::InvalidArgument(path() + ": refused: --sql runs read-only statements (SELECT, read-only "
                                            "PRAGMA) only: " + sql.substr(0, 80));
  if (rc != SQLITE_OK) return db_.Error("bad SQL", rc);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(raw, sqlite3_finalize);
  if (!raw) return Status::InvalidArgument("empty SQL statement");
  for (const char* t = tail; t && *t; ++t)
    if (!std::isspace(static_cast<unsigned char>(*t)) && *t != ';')
      return Status::InvalidArgument("--sql takes exactly one statement");
  // SQLite counts a pragma query (journal_mode) as not read-only; the authorizer vetted those.
  if (!sqlite3_stmt_readonly(raw) && !(auth.pragma && !auth.other))
    return Status::InvalidArgument(path() + ": refused: --sql runs read-only statements only: " +
                                   sql.substr(0, 80));
  Deadline deadline;
  if (timeout_s > 0) {
    deadline.at = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(timeout_s));
    sqlite3_progress_handler(db_.raw(), 1000, PastDeadline, &deadline);
  }
  nlohmann::json cols = nlohmann::json::array();
  int n = sqlite3_column_count(raw);
  for (int i = 0; i < n; ++i) cols.push_back(sqlite3_column_name(raw, i));
  on_columns(cols);
  for (;;) {
    rc = sqlite3_step(raw);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      if (deadline.hit) {
        char b[32];
        std::snprintf(b, sizeof b, "%g", timeout_s);
        return Status::Unavailable(path() + ": query stopped after the --timeout of " + std::string(b) +
                                   " s (raise --timeout, or 0 for none)");
      }
      return db_.Error("query failed", rc);
    }
    nlohmann::json r = nlohmann::json::array();
    for (int i = 0; i < n; ++i) {
      switch (sqlite3_column_type(raw, i)) {
        case SQLITE_INTEGER: r.push_back(sqlite3_column_int64(raw, i)); break;
        case SQLITE_FLOAT: r.push_back(sqlite3_column_double(raw, i)); break;
        case SQLITE_NULL: r.push_back(nullptr); break;
        case SQLITE_BLOB: r.push_back("<blob " + std::to_string(sqlite3_column_bytes(raw, i)) + " bytes>"); break;
        default: r.push_back(reinterpret_cast<const char*>(sqlite3_column_text(raw, i)));
      }
    }
    ES_RETURN_IF_ERROR(on_row(r));
  }
  return Status::Ok();
}

}  // namespace emosweep::orchestrator
