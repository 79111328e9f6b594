#include "orchestrator/sqlite_util.h"

#include <sqlite3.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace emosweep::orchestrator {

Db::~Db() { Close(); }

void Db::Close() {
  for (auto& [sql, st] : kept_) sqlite3_finalize(st);
  kept_.clear();
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Status Db::Open(const std::string& path, int flags, int busy_timeout_ms, const std::string& uri) {
  path_ = path;
  int rc = sqlite3_open_v2(uri.empty() ? path.c_str() : uri.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status s = Error("cannot open", rc);
    if (rc == SQLITE_CANTOPEN) {
      // Every reason reads "unable to open database file": name the system's (a read-only directory, a name too
      // long, ...), "missing" only when it is that (helper-66).
      const int sys = db_ ? sqlite3_system_errno(db_) : 0;
      std::string dir = std::filesystem::path(path).parent_path().string();
      if (dir.empty()) dir = ".";
      std::error_code ec;
      if ((flags & SQLITE_OPEN_CREATE) && !std::filesystem::exists(path, ec) && std::filesystem::is_directory(dir, ec) &&
          ::access(dir.c_str(), W_OK | X_OK) != 0)
        s = Status::InvalidArgument(path + ": cannot create the ledger: directory " + dir + " is not writable (" +
                                    std::strerror(errno) + ")");
      else if (sys == 0 || sys == ENOENT)
        s = Status::NotFound(path + ": cannot open ledger (missing file or directory)");
      else
        s = Status::IoError(path + ": cannot open ledger: " + std::strerror(sys));
    }
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return s;
  }
  sqlite3_busy_timeout(db_, busy_timeout_ms);
  sqlite3_extended_result_codes(db_, 1);
  return Status::Ok();
}

Status Db::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Error(msg, rc);
}

Status Db::Error(const std::string& what, int rc) const {
  std::string msg = path_ + ": " + what;
  if (db_ && rc != SQLITE_OK) {
    const char* m = sqlite3_errmsg(db_);
    if (m && what.find(m) == std::string::npos) msg += ": " + std::string(m);
  }
  // The system's reason behind an I/O failure ("disk I/O error" for a full disk, EFBIG, a failed fsync).
  const int code = rc & 0xff;
  if (db_ && (code == SQLITE_IOERR || code == SQLITE_FULL || code == SQLITE_CANTOPEN || code == SQLITE_READONLY)) {
    const int sys = sqlite3_system_errno(db_);
    if (sys != 0) msg += " (" + std::string(std::strerror(sys)) + ")";
  }
  switch (code) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(msg + " (the file is not a valid SQLite ledger)");
    case SQLITE_CANTOPEN:
      return Status::NotFound(msg);
    case SQLITE_READONLY:
      return Status::FailedPrecondition(msg);
    case SQLITE_ERROR:
      return Status::InvalidArgument(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(msg + " (ledger busy beyond the timeout)");
    default:
      return Status::IoError(msg);
  }
}

Stmt::Stmt(Db* db, std::string_view sql) : db_(db) {
  ++db->statements_;
  int rc = sqlite3_prepare_v2(db->raw(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) status_ = db->Error("cannot prepare '" + std::string(sql.substr(0, 60)) + "'", rc);
}

Stmt::Stmt(Db* db, std::string_view sql, Keep) : db_(db), keep_(sql) {
  auto it = db->kept_.find(keep_);
  if (it != db->kept_.end()) {  // idle: take it (the Db keeps none while it is in use)
    stmt_ = it->second;
    db->kept_.erase(it);
    return;
  }
  ++db->statements_;
  int rc = sqlite3_prepare_v2(db->raw(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) status_ = db->Error("cannot prepare '" + std::string(sql.substr(0, 60)) + "'", rc);
}

Stmt::~Stmt() {
  if (!stmt_) return;
  if (!keep_.empty() && status_.ok() && db_->raw() && !db_->kept_.count(keep_)) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    db_->kept_.emplace(std::move(keep_), stmt_);
    return;
  }
  sqlite3_finalize(stmt_);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  if (stmt_) sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  if (stmt_) sqlite3_bind_double(stmt_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, const std::string& v) {
  if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindText(int i, std::string_view v) {
  if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindBlob(int i, const void* data, size_t n) {
  if (stmt_) sqlite3_bind_blob(stmt_, i, data, static_cast<int>(n), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  if (stmt_) sqlite3_bind_null(stmt_, i);
  return *this;
}

Result<bool> Stmt::Step() {
  if (!stmt_) return status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error("query failed", rc);
}

Status Stmt::Run() {
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

void Stmt::Reset() {
  if (!stmt_) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Stmt::Columns() const { return stmt_ ? sqlite3_column_count(stmt_) : 0; }
std::string Stmt::ColumnName(int i) const { return sqlite3_column_name(stmt_, i); }
bool Stmt::IsNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
int Stmt::ColumnType(int i) const { return sqlite3_column_type(stmt_, i); }
int64_t Stmt::Int(int i) const { return sqlite3_column_int64(stmt_, i); }
double Stmt::Double(int i) const { return sqlite3_column_double(stmt_, i); }
std::string Stmt::Text(int i) const {
  const unsigned char* t = sqlite3_column_text(stmt_, i);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, i)) : std::string();
}
std::string_view Stmt::TextView(int i) const {
  const unsigned char* t = sqlite3_column_text(stmt_, i);
  return t ? std::string_view(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, i)) : std::string_view();
}
std::vector<unsigned char> Stmt::Blob(int i) const {
  const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt_, i));
  int n = sqlite3_column_bytes(stmt_, i);
  return p ? std::vector<unsigned char>(p, p + n) : std::vector<unsigned char>();
}

Transaction::Transaction(Db* db) : db_(db) {
  status_ = db_->Exec("BEGIN IMMEDIATE");
  open_ = status_.ok();
}

Transaction::~Transaction() {
  if (open_) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  if (!open_) return status_.ok() ? Status::Internal("transaction already closed") : status_;
  Status s = db_->Exec("COMMIT");
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace emosweep::orchestrator
