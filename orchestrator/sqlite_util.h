// orchestrator/sqlite_util.h: a thin RAII layer over the SQLite C API.
//
// Used by the ledger (and only by it and its read-only query path): prepared
// statements that finalize themselves, binders, a transaction guard that
// rolls back unless committed, and errors as Status naming the database file.
// Thread-safety: a Db is one connection; callers serialize access (the
// Ledger holds a mutex around every use).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace emosweep::orchestrator {

class Db {
 public:
  Db() = default;
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // flags: SQLITE_OPEN_* (read-write-create or read-only). `uri`, when given, is
  // what SQLite opens (with SQLITE_OPEN_URI in flags); messages still name `path`.
  Status Open(const std::string& path, int flags, int busy_timeout_ms, const std::string& uri = "");
  void Close();
  Status Exec(const std::string& sql);  // one or more statements, no results
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }
  // "ledger.db: <what>: <sqlite message>", classified (corrupt → Corruption).
  Status Error(const std::string& what, int rc) const;
  // Statements prepared on this connection so far (tests count the reads of a command).
  int64_t statements() const { return statements_; }

 private:
  friend class Stmt;
  sqlite3* db_ = nullptr;
  std::string path_;
  int64_t statements_ = 0;
  // Idle statements of Stmt(db, sql, Stmt::kKeep), by SQL text (finalized by Close).
  std::unordered_map<std::string, sqlite3_stmt*> kept_;
};

class Stmt {
 public:
  Stmt(Db* db, std::string_view sql);
  // kKeep: the prepared statement is kept by the Db when this Stmt ends (reset, bindings
  // cleared) and handed to the next Stmt of the same SQL text instead of preparing it
  // again: for the per-job writes whose preparing costs most (an UPDATE of jobs.status
  // compiles the ledger's count triggers into it, ~45 us, schema v4). Not for SQL built
  // with values in it: one kept statement per distinct text, for the connection's life.
  enum Keep { kKeep };
  Stmt(Db* db, std::string_view sql, Keep);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  const Status& status() const { return status_; }  // preparation error, if any
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, const std::string& v);
  Stmt& BindText(int i, std::string_view v);  // a view (no overload of Bind: "x" would be ambiguous)
  Stmt& BindBlob(int i, const void* data, size_t n);
  Stmt& BindNull(int i);
  // Returns true while a row is available; errors are reported by Done().
  Result<bool> Step();
  Status Run();  // Step until done (for INSERT/UPDATE/DELETE)
  void Reset();  // keeps the statement prepared, clears bindings

  int Columns() const;
  std::string ColumnName(int i) const;
  bool IsNull(int i) const;
  int ColumnType(int i) const;  // SQLITE_INTEGER/FLOAT/TEXT/BLOB/NULL
  int64_t Int(int i) const;
  double Double(int i) const;
  std::string Text(int i) const;
  std::string_view TextView(int i) const;  // valid until the next Step (no copy)
  std::vector<unsigned char> Blob(int i) const;

 private:
  Db* db_;
  sqlite3_stmt* stmt_ = nullptr;
  Status status_;
  std::string keep_;  // kKeep: the SQL text it is kept under
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, so two
// processes never deadlock upgrading read locks); ROLLBACK unless Commit().
class Transaction {
 public:
  explicit Transaction(Db* db);
  ~Transaction();
  const Status& status() const { return status_; }
  Status Commit();

 private:
  Db* db_;
  Status status_;
  bool open_ = false;
};

// Runs `fn(stmt)` for every row of "<prefix> IN (?,...)<suffix>" over `ids` (a vector
// of std::string or std::string_view), in chunks of at most 500 bound parameters, so any
// number of ids works without temporary tables. `fn` returns void or a Status (the first
// error stops); it may also take (stmt, start, n): the row answers ids[start, start + n).
template <typename Ids, typename Fn>
Status ForChunks(Db* db, const Ids& ids, const std::string& prefix, const std::string& suffix, Fn fn) {
  constexpr size_t kChunk = 500;
  auto sql_of = [&](size_t n) {
    std::string sql = prefix + " IN (";
    for (size_t i = 0; i < n; ++i) sql += i ? ",?" : "?";
    return sql + ")" + suffix;
  };
  // Every full chunk reuses one prepared statement (issue 15: at 10^6 ids, parsing and
  // planning a 500-parameter statement per chunk was ~9 % of `table`); the last, shorter
  // chunk prepares its own.
  std::unique_ptr<Stmt> full, rest;
  for (size_t start = 0; start < ids.size(); start += kChunk) {
    size_t n = std::min(kChunk, ids.size() - start);
    std::unique_ptr<Stmt>& slot = n == kChunk ? full : rest;
    if (!slot) slot = std::make_unique<Stmt>(db, sql_of(n));
    else slot->Reset();
    Stmt& st = *slot;
    ES_RETURN_IF_ERROR(st.status());
    for (size_t i = 0; i < n; ++i) st.BindText(static_cast<int>(i + 1), std::string_view(ids[start + i]));
    for (;;) {
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      if constexpr (std::is_invocable_v<Fn&, Stmt&, size_t, size_t>) {
        if constexpr (std::is_void_v<decltype(fn(st, start, n))>) {
          fn(st, start, n);
        } else {
          ES_RETURN_IF_ERROR(fn(st, start, n));
        }
      } else if constexpr (std::is_void_v<decltype(fn(st))>) {
        fn(st);
      } else {
        ES_RETURN_IF_ERROR(fn(st));
      }
    }
  }
  return Status::Ok();
}

}  // namespace emosweep::orchestrator
