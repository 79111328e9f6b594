// orchestrator/ledger_schema.cc: the schema (v1, and what v2, v3, v4 and v5 add) and the migration list.
//
// A ledger file carries PRAGMA application_id = "EMOS" and PRAGMA
// user_version = its schema version. Open() applies every migration from the
// file's version up to kLedgerSchemaVersion, each in its own transaction, and
// rejects files it cannot read: newer versions (written by a newer emosweep),
// foreign SQLite databases, and non-SQLite files. Never edit a migration that
// has shipped; append a new one (docs/formats/ledger.md, "Migration policy").
#include <sqlite3.h>

#include <string>
#include <vector>

#include "orchestrator/ledger.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>

namespace emosweep::orchestrator {
namespace {

struct Migration {
  int to_version;
  const char* sql;
};

// v0 -> v1: the initial schema.
constexpr const char* kSchemaV1 = R"SQL(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL);
CREATE TABLE sweeps(
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  protocol_name  TEXT NOT NULL,
  protocol_path  TEXT NOT NULL,
  protocol_hash  TEXT NOT NULL,
  effective_json TEXT NOT NULL,
  options_json   TEXT NOT NULL DEFAULT '{}',
  started_at     REAL NOT NULL,
  finished_at    REAL,
  status         TEXT NOT NULL DEFAULT 'running',
  summary_json   TEXT,
  host           TEXT NOT NULL,
  pid            INTEGER NOT NULL);
CREATE TABLE jobs(
  id             TEXT PRIMARY KEY,
  kind           TEXT NOT NULL,
  config_json    TEXT NOT NULL,
  attrs_json     TEXT NOT NULL DEFAULT '{}',
  deps_json      TEXT NOT NULL DEFAULT '[]',
  reportable     INTEGER NOT NULL DEFAULT 1,
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK(status IN ('pending','running','done','failed','blocked')),
  attempts       INTEGER NOT NULL DEFAULT 0,
  error          TEXT,
  owner          TEXT,
  worker         TEXT,
  heartbeat_at   REAL,
  created_at     REAL NOT NULL,
  claimed_at     REAL,
  started_at     REAL,
  finished_at    REAL,
  selected_epoch INTEGER,
  checkpoint     TEXT,
  info_json      TEXT);
CREATE INDEX jobs_by_status ON jobs(status);
CREATE TABLE sweep_jobs(
  sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  job_id   TEXT NOT NULL,
  ord      INTEGER NOT NULL,
  PRIMARY KEY(sweep_id, job_id));
CREATE TABLE metrics(
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  eval   TEXT NOT NULL,
  name   TEXT NOT NULL,
  value  REAL NOT NULL,
  PRIMARY KEY(job_id, eval, name));
CREATE TABLE eval_details(
  job_id       TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  eval         TEXT NOT NULL,
  details_json TEXT NOT NULL,
  PRIMARY KEY(job_id, eval));
CREATE TABLE curves(
  job_id           TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  epoch            INTEGER NOT NULL,
  train_loss       REAL,
  val_loss         REAL,
  val_metrics_json TEXT,
  lr               REAL,
  seconds          REAL,
  PRIMARY KEY(job_id, epoch));
CREATE TABLE predictions(
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  eval   TEXT NOT NULL,
  idx    INTEGER NOT NULL,
  utt_id TEXT NOT NULL,
  label  INTEGER NOT NULL,
  pred   INTEGER NOT NULL,
  probs  BLOB,
  PRIMARY KEY(job_id, eval, idx));
CREATE TABLE provenance(
  job_id       TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  git_revision TEXT,
  host         TEXT,
  pid          INTEGER,
  build_json   TEXT,
  world_size   INTEGER,
  device       TEXT,
  threads      INTEGER,
  started_at   REAL,
  finished_at  REAL,
  seconds      REAL,
  extra_json   TEXT);
INSERT INTO meta(key, value) VALUES ('identity_version', '1'), ('created_by', 'emosweep');
)SQL";

// v1 -> v2 (issue 15): what `ledger status` reads, so it touches no job row (a row
// keeps `status` after kilobytes of config_json, in overflow pages: counting 10^5 jobs
// from rows walked ~1 GB) and no sweep link (a 10^5-job protocol adds 10^5 per run):
// jobs_by_kind_status for the counts by kind and status, jobs_by_id_state for the
// same counts of one sweep (`--sweep`, joined from sweep_jobs by id), and sweeps.jobs,
// the number of jobs a sweep links (kept by RegisterJobs, LinkJobs and gc). Nothing
// is removed or changed, so a v2 reader reads a v1 file as it is (read-only opens do
// not migrate; Ledger::Sweeps counts the links there).
constexpr const char* kSchemaV2 = R"SQL(
CREATE INDEX IF NOT EXISTS jobs_by_kind_status ON jobs(kind, status);
CREATE INDEX IF NOT EXISTS jobs_by_id_state ON jobs(id, kind, status);
ALTER TABLE sweeps ADD COLUMN jobs INTEGER;
UPDATE sweeps SET jobs = (SELECT count(*) FROM sweep_jobs sj WHERE sj.sweep_id = sweeps.id);
)SQL";

// v2 -> v3 (issue 15, sixth pass): shared job sets, so a re-run of an unchanged protocol
// writes no links (10^6 sweep_jobs rows were most of a 10 s re-run at 10^6 jobs).
// sweeps.job_set is the SHA-256 of the ordered job ids a sweep linked in one go
// (Ledger::JobSetHash; NULL for a sweep linked in several calls, a v2 sweep, or one gc
// took links from); a sweep whose job set equals such a sweep's links nothing and names
// it in sweeps.links_from (the holder itself has links_from NULL). Readers resolve
// coalesce(links_from, id) (Ledger::LinkHolder, the view sweep_links); sweeps.jobs is
// kept on every sweep. The trigger keeps shared links when a holder row is deleted by
// hand: they move to the earliest sweep that shared them (sweep ids are > 0, so -1
// marks it while the others are re-pointed). Existing sweeps keep their own links.
constexpr const char* kSchemaV3 = R"SQL(
ALTER TABLE sweeps ADD COLUMN links_from INTEGER;
ALTER TABLE sweeps ADD COLUMN job_set TEXT;
CREATE INDEX sweeps_by_job_set ON sweeps(job_set);
CREATE VIEW sweep_links(sweep_id, job_id, ord) AS
  SELECT s.id, l.job_id, l.ord FROM sweeps s JOIN sweep_jobs l ON l.sweep_id = coalesce(s.links_from, s.id);
CREATE TRIGGER sweeps_keep_shared_links BEFORE DELETE ON sweeps
WHEN EXISTS (SELECT 1 FROM sweeps WHERE links_from = OLD.id)
BEGIN
  UPDATE sweeps SET links_from = -1 WHERE id = (SELECT min(id) FROM sweeps WHERE links_from = OLD.id);
  UPDATE sweeps SET links_from = (SELECT id FROM sweeps WHERE links_from = -1) WHERE links_from = OLD.id;
  UPDATE sweep_jobs SET sweep_id = (SELECT id FROM sweeps WHERE links_from = -1) WHERE sweep_id = OLD.id;
  UPDATE sweeps SET links_from = NULL, job_set = OLD.job_set WHERE links_from = -1;
END;
)SQL";

// v3 -> v4 (issue 15, seventh pass): `ledger status` reads counts the ledger keeps instead
// of counting (10^6 jobs: 72 ms over jobs_by_kind_status, 352 ms for one sweep's links).
// status_counts holds how many jobs have each (kind, status); sweep_status_counts the
// same for the jobs each holder sweep links in sweep_jobs (a sweep that shares another's
// links reads its holder's: Ledger::LinkHolder). Triggers keep both in the transaction
// that changes a job row or a link, whoever writes it (emosweep, `ledger gc`, raw SQL):
// a job inserted, deleted or updated in id, kind or status; a link inserted, deleted or
// moved. A row whose count fell to 0 stays (readers skip n = 0). sweep_jobs_by_job finds
// the links of a job whose status changes (one index probe a change). The migration fills
// both tables once from the indices (10^6 jobs: ~2 s).
constexpr const char* kSchemaV4 = R"SQL(
CREATE TABLE status_counts(
  kind   TEXT NOT NULL,
  status TEXT NOT NULL,
  n      INTEGER NOT NULL,
  PRIMARY KEY(kind, status)) WITHOUT ROWID;
CREATE TABLE sweep_status_counts(
  sweep_id INTEGER NOT NULL,
  kind     TEXT NOT NULL,
  status   TEXT NOT NULL,
  n        INTEGER NOT NULL,
  PRIMARY KEY(sweep_id, kind, status)) WITHOUT ROWID;
CREATE INDEX sweep_jobs_by_job ON sweep_jobs(job_id, sweep_id);
INSERT INTO status_counts(kind, status, n)
  SELECT kind, status, count(*) FROM jobs INDEXED BY jobs_by_kind_status GROUP BY kind, status;
INSERT INTO sweep_status_counts(sweep_id, kind, status, n)
  SELECT s.sweep_id, j.kind, j.status, count(*) FROM sweep_jobs s JOIN jobs j INDEXED BY jobs_by_id_state
  ON j.id = s.job_id GROUP BY s.sweep_id, j.kind, j.status;
CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs
BEGIN
  INSERT INTO status_counts(kind, status, n) VALUES (NEW.kind, NEW.status, 1)
    ON CONFLICT(kind, status) DO UPDATE SET n = n + 1;
  INSERT INTO sweep_status_counts(sweep_id, kind, status, n)
    SELECT sweep_id, NEW.kind, NEW.status, 1 FROM sweep_jobs WHERE job_id = NEW.id
    ON CONFLICT(sweep_id, kind, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
BEGIN
  UPDATE status_counts SET n = n - 1 WHERE kind = OLD.kind AND status = OLD.status;
  UPDATE sweep_status_counts SET n = n - 1 WHERE kind = OLD.kind AND status = OLD.status
    AND sweep_id IN (SELECT sweep_id FROM sweep_jobs WHERE job_id = OLD.id);
END;
CREATE TRIGGER jobs_count_update AFTER UPDATE OF id, kind, status ON jobs
WHEN OLD.id IS NOT NEW.id OR OLD.kind IS NOT NEW.kind OR OLD.status IS NOT NEW.status
BEGIN
  UPDATE status_counts SET n = n - 1 WHERE kind = OLD.kind AND status = OLD.status;
  INSERT INTO status_counts(kind, status, n) VALUES (NEW.kind, NEW.status, 1)
    ON CONFLICT(kind, status) DO UPDATE SET n = n + 1;
  UPDATE sweep_status_counts SET n = n - 1 WHERE kind = OLD.kind AND status = OLD.status
    AND sweep_id IN (SELECT sweep_id FROM sweep_jobs WHERE job_id = OLD.id);
  INSERT INTO sweep_status_counts(sweep_id, kind, status, n)
    SELECT sweep_id, NEW.kind, NEW.status, 1 FROM sweep_jobs WHERE job_id = NEW.id
    ON CONFLICT(sweep_id, kind, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER sweep_jobs_count_insert AFTER INSERT ON sweep_jobs
BEGIN
  INSERT INTO sweep_status_counts(sweep_id, kind, status, n)
    SELECT NEW.sweep_id, kind, status, 1 FROM jobs INDEXED BY jobs_by_id_state WHERE id = NEW.job_id
    ON CONFLICT(sweep_id, kind, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER sweep_jobs_count_delete AFTER DELETE ON sweep_jobs
BEGIN
  UPDATE sweep_status_counts SET n = n - 1 WHERE sweep_id = OLD.sweep_id
    AND (kind, status) = (SELECT kind, status FROM jobs INDEXED BY jobs_by_id_state WHERE id = OLD.job_id);
END;
CREATE TRIGGER sweep_jobs_count_update AFTER UPDATE OF sweep_id, job_id ON sweep_jobs
WHEN OLD.sweep_id IS NOT NEW.sweep_id OR OLD.job_id IS NOT NEW.job_id
BEGIN
  UPDATE sweep_status_counts SET n = n - 1 WHERE sweep_id = OLD.sweep_id
    AND (kind, status) = (SELECT kind, status FROM jobs INDEXED BY jobs_by_id_state WHERE id = OLD.job_id);
  INSERT INTO sweep_status_counts(sweep_id, kind, status, n)
    SELECT NEW.sweep_id, kind, status, 1 FROM jobs INDEXED BY jobs_by_id_state WHERE id = NEW.job_id
    ON CONFLICT(sweep_id, kind, status) DO UPDATE SET n = n + 1;
END;
)SQL";

// v4 -> v5 (helper-67's scale audit): utterance-id lists stored once each. A job row kept the ids of every
// data reference in config_json (377 KB a job on 20 000-utterance corpora: 384 MB for 1008 jobs; a status
// change rewrote the row's overflow chain, 797 KB of WAL a claim). From v5 a reference in config_json names
// its list ("ids_list": the SHA-256 of the list's compact JSON, "n_ids": its length) and id_lists holds each
// list once. Rows written before keep their inline "ids" (readers take both forms); `ledger gc` drops lists
// no job names. Also (helper-73): meta rows 'result_build:<git revision>', one per emosweep build whose results
// the ledger holds (kept by Ledger::Complete, recounted by gc; filled here once from provenance, a scan of it), so
// that `run` can say when it reuses done jobs of other builds without reading provenance.
constexpr const char* kSchemaV5 = R"SQL(
CREATE TABLE id_lists(
  hash     TEXT PRIMARY KEY,
  n        INTEGER NOT NULL,
  ids_json TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value)
  SELECT 'result_build:' || git_revision, '' FROM provenance WHERE coalesce(git_revision, '') != ''
  GROUP BY git_revision;
)SQL";

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, kSchemaV1}, {2, kSchemaV2}, {3, kSchemaV3}, {4, kSchemaV4}, {5, kSchemaV5}};
  return kMigrations;
}

Result<int64_t> PragmaInt(Db* db, const char* pragma) {
  Stmt st(db, std::string("PRAGMA ") + pragma);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status::Corruption(db->path() + ": PRAGMA " + pragma + " returned nothing");
  return st.Int(0);
}

}  // namespace

Status Ledger::Migrate() {
  // One read snapshot for the three facts: another process may create the
  // schema between two separate reads (version 0 read before its commit,
  // 19 tables after it), which would look like a foreign database.
  ES_RETURN_IF_ERROR(db_.Exec("BEGIN DEFERRED"));
  auto read = [&]() -> Result<std::array<int64_t, 3>> {
    ES_ASSIGN_OR_RETURN(int64_t version, PragmaInt(&db_, "user_version"));
    ES_ASSIGN_OR_RETURN(int64_t app_id, PragmaInt(&db_, "application_id"));
    Stmt st(&db_, "SELECT count(*) FROM sqlite_master");
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    return std::array<int64_t, 3>{version, app_id, row ? st.Int(0) : 0};
  }();
  (void)db_.Exec("COMMIT");
  if (!read.ok()) return read.status();
  int64_t version = (*read)[0];
  const int64_t app_id = (*read)[1], tables = (*read)[2];
  const std::string& p = db_.path();
  if (app_id != 0 && app_id != kLedgerApplicationId)
    return Status::InvalidArgument(p + ": not an emosweep ledger (SQLite application_id " + std::to_string(app_id) +
                                   ")");
  if (version == 0 && tables > 0)
    return Status::InvalidArgument(p + ": not an emosweep ledger (an SQLite database with " +
                                   std::to_string(tables) + " objects but no ledger schema version)");
  if (version > kLedgerSchemaVersion)
    return Status::FailedPrecondition(p + ": ledger schema v" + std::to_string(version) +
                                      " is newer than this emosweep supports (v" +
                                      std::to_string(kLedgerSchemaVersion) + "); use a newer emosweep");
  if (version < 0) return Status::Corruption(p + ": negative ledger schema version " + std::to_string(version));
  if (version < kLedgerSchemaVersion && options_.read_only) {
    if (version == 0) return Status::NotFound(p + ": empty file, not a ledger yet (no sweep has run on it)");
    // Read-only opens (status, query, table, report) do not migrate: a file from
    // kLedgerMinReadableVersion on is read as it is: later migrations only add indices
    // and columns that the readers do without (they look at schema_version()).
    if (version >= kLedgerMinReadableVersion) {
      schema_version_ = static_cast<int>(version);
      return Status::Ok();
    }
    return Status::FailedPrecondition(p + ": ledger schema v" + std::to_string(version) +
                                      " needs migrating to v" + std::to_string(kLedgerSchemaVersion) +
                                      "; run 'emosweep run' on it once (read-write)");
  }
  if (!options_.read_only) {
    // Only now, the file known to be a ledger (or empty): WAL, so readers (ledger status,
    // table) never block the writer; NORMAL sync is durable against process kills (power
    // loss may drop the last commits).
    // Two processes opening a new ledger at once: SQLite answers the journal-mode
    // switch with SQLITE_BUSY at once (no busy handler) while the other one is
    // creating the schema; retry within the busy timeout.
    Status wal = db_.Exec("PRAGMA journal_mode = WAL");
    for (int waited_ms = 0; !wal.ok() && wal.code() == StatusCode::kUnavailable &&
                            waited_ms < std::max(1000, options_.busy_timeout_ms);
         waited_ms += 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      wal = db_.Exec("PRAGMA journal_mode = WAL");
    }
    ES_RETURN_IF_ERROR(wal);
    ES_RETURN_IF_ERROR(db_.Exec("PRAGMA synchronous = NORMAL"));
  }
  for (const Migration& m : Migrations()) {
    if (m.to_version <= version) continue;
    Transaction tx(&db_);
    ES_RETURN_IF_ERROR(tx.status());
    // Re-check under the write lock: a concurrent process may have migrated it meanwhile.
    ES_ASSIGN_OR_RETURN(int64_t now_version, PragmaInt(&db_, "user_version"));
    if (now_version >= m.to_version) continue;
    ES_RETURN_IF_ERROR(db_.Exec(m.sql).WithContext("migrating ledger to v" + std::to_string(m.to_version)));
    ES_RETURN_IF_ERROR(db_.Exec("PRAGMA application_id = " + std::to_string(kLedgerApplicationId)));
    ES_RETURN_IF_ERROR(db_.Exec("PRAGMA user_version = " + std::to_string(m.to_version)));
    ES_RETURN_IF_ERROR(tx.Commit());
    version = m.to_version;
  }
  schema_version_ = static_cast<int>(version);
  return Status::Ok();
}

}  // namespace emosweep::orchestrator
