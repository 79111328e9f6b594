// orchestrator/ledger.cc: opening, claiming and recording (schema in ledger_schema.cc).
#include "orchestrator/ledger.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <sys/stat.h>

#include "core/hash.h"

namespace emosweep::orchestrator {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

// sweeps.jobs (schema v2) = how many jobs the sweep links: `ledger status` reads it
// instead of counting every sweep's links (a 10^5-job protocol adds 10^5 per run).
// From v3 on the links may be another sweep's (links_from).
Status RecountSweepJobs(Db* db, int schema_version, int64_t sweep_id) {
  Stmt st(db, schema_version >= 3
                  ? "UPDATE sweeps SET jobs = (SELECT count(*) FROM sweep_jobs WHERE sweep_id = "
                    "coalesce(sweeps.links_from, sweeps.id)) WHERE id = ?1"
                  : "UPDATE sweeps SET jobs = (SELECT count(*) FROM sweep_jobs WHERE sweep_id = ?1) WHERE id = ?1");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, sweep_id);
  return st.Run();
}

// Runs `sql` with ?1, ?2, ... bound to `args`.
Status RunWith(Db* db, const char* sql, std::initializer_list<int64_t> args) {
  Stmt st(db, sql);
  ES_RETURN_IF_ERROR(st.status());
  int i = 0;
  for (int64_t a : args) st.Bind(++i, a);
  return st.Run();
}

}  // namespace

const char* JobStatusName(JobStatus s) {
  switch (s) {
    case JobStatus::kPending: return "pending";
    case JobStatus::kRunning: return "running";
    case JobStatus::kDone: return "done";
    case JobStatus::kFailed: return "failed";
    case JobStatus::kBlocked: return "blocked";
  }
  return "?";
}

Result<JobStatus> ParseJobStatus(const std::string& s) {
  for (JobStatus v : {JobStatus::kPending, JobStatus::kRunning, JobStatus::kDone, JobStatus::kFailed,
                      JobStatus::kBlocked})
    if (s == JobStatusName(v)) return v;
  return Status::InvalidArgument("unknown job status '" + s + "' (pending|running|done|failed|blocked)");
}

std::string ThisOwner() {
  // host:pid:nonce. The nonce tells this process from an earlier one that had the
  // same pid (containers restart with the same pids), whose claims are stale.
  static const std::string kOwner = [] {
    std::random_device rd;
    char nonce[9];
    std::snprintf(nonce, sizeof nonce, "%08x", rd());
    return HostName() + ":" + std::to_string(::getpid()) + ":" + nonce;
  }();
  return kOwner;
}

bool OwnerIsDeadHere(const std::string& owner) {
  size_t a = owner.find(':');
  if (a == std::string::npos) return false;
  size_t b = owner.find(':', a + 1);
  if (owner.substr(0, a) != HostName()) return false;  // another host: only heartbeats tell
  long pid = std::strtol(owner.c_str() + a + 1, nullptr, 10);
  if (pid <= 0) return false;
  if (pid == ::getpid()) return owner != ThisOwner();  // an earlier process with our pid
  (void)b;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "file:" URI of `path` with ?immutable=1, for a read-only open where SQLite cannot
// create the -shm/-wal files next to the ledger (a read-only directory).
std::string ImmutableUri(const std::string& path) {
  std::string abs = path;
  std::error_code ec;
  auto a = std::filesystem::absolute(path, ec);
  if (!ec) abs = a.string();
  std::string uri = "file:";
  for (unsigned char c : abs) {
    if (c == '%' || c == '?' || c == '#' || c < 0x21 || c >= 0x7f) {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      uri += b;
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri + "?immutable=1";
}

bool DirWritable(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return ::access(dir.c_str(), W_OK) == 0;
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path, const LedgerOptions& options) {
  std::unique_ptr<Ledger> l(new Ledger());
  l->options_ = options;
  struct stat sb;
  const bool exists = ::stat(path.c_str(), &sb) == 0;
  if (exists && S_ISDIR(sb.st_mode))
    return Status::InvalidArgument(path + ": is a directory, not a ledger file (--ledger takes a file, e.g. " +
                                   (path.empty() || path.back() == '/' ? path : path + "/") + "ledger.db)");
  if (exists && !S_ISREG(sb.st_mode))
    return Status::InvalidArgument(path + ": not a regular file, cannot be a ledger");
  if (options.read_only && !exists) return Status::NotFound(path + ": no such ledger file");
  {
    std::error_code ec;
    // Through a symbolic link, the real file's directory: checkpoint paths relative to the link's directory
    // were not found when the ledger was later opened by its real path (helper-66: 12 finished jobs re-ran).
    // A link whose file does not exist yet (the first run creates it through the link) counts too.
    std::filesystem::path real = path;
    for (int hops = 0; hops < 40 && std::filesystem::is_symlink(real, ec); ++hops) {
      const std::filesystem::path target = std::filesystem::read_symlink(real, ec);
      if (ec) break;
      real = target.is_absolute() ? target : real.parent_path() / target;
    }
    auto abs = exists ? std::filesystem::canonical(path, ec) : std::filesystem::absolute(real, ec);
    if (ec) abs = std::filesystem::absolute(real, ec);
    // Normalised: "../proj/l.db" from elsewhere/ must give .../proj, not .../elsewhere/../proj, whose
    // lexically_relative answers are wrong (StoredCheckpointPath).
    l->base_dir_ = ec ? std::filesystem::path(path).parent_path().lexically_normal().string()
                      : abs.lexically_normal().parent_path().string();
    std::error_code gec;
    l->given_dir_ = std::filesystem::absolute(path, gec).lexically_normal().parent_path().string();
  }
  // A file that is not a ledger (truncated, foreign) fails below, possibly after SQLite made its -wal and
  // -shm beside it: those are removed again when this call made them and the -wal is empty.
  struct stat wal_sb, shm_sb;
  const bool had_wal = ::stat((path + "-wal").c_str(), &wal_sb) == 0;
  const bool had_shm = ::stat((path + "-shm").c_str(), &shm_sb) == 0;
  const int64_t wal_bytes = had_wal ? static_cast<int64_t>(wal_sb.st_size) : 0;
  const bool wal_has_data = wal_bytes > 0;
  Status opened = [&]() -> Status {
    int flags = (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    // Another user's ledger, read: SQLite would make the -wal and -shm files beside it, owned by this user, and
    // lock its owner out ("attempt to write a readonly database", helper-66). Without a -wal no sweep has it open
    // and the file holds everything: read it as immutable, creating nothing.
    if (options.read_only && !had_wal && !had_shm && ::access(path.c_str(), W_OK) != 0) {
      ES_RETURN_IF_ERROR(l->db_.Open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                                     options.busy_timeout_ms, ImmutableUri(path)));
      ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA query_only = ON"));
      ES_RETURN_IF_ERROR(l->Migrate());
      return Status::Ok();
    }
    ES_RETURN_IF_ERROR(l->db_.Open(path, flags, options.busy_timeout_ms));
    if (options.read_only) {
      ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA query_only = ON"));
      // A WAL ledger in a directory this process cannot write: SQLite cannot create the
      // -shm file a reader needs. Nobody can be writing there either, so read the file
      // as immutable (no locks, no -shm), unless its -wal holds results not yet in the file
      // (a killed sweep, a copy taken while one ran): an immutable read would ignore them.
      Status probe = l->db_.Exec("SELECT count(*) FROM sqlite_master");
      if (!probe.ok() && !DirWritable(path) && wal_has_data)
        return Status::FailedPrecondition(
            path + ": its write-ahead log " + path + "-wal holds " + std::to_string(wal_bytes) +
            " bytes of results not yet in the ledger file, which SQLite cannot read in a directory this process "
            "cannot write; copy the ledger together with its -wal to a writable directory (or open it once where "
            "it can be written, which merges the log)");
      if (!probe.ok() && !DirWritable(path)) {
        l->db_.Close();
        ES_RETURN_IF_ERROR(l->db_.Open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                                       options.busy_timeout_ms, ImmutableUri(path)));
        ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA query_only = ON"));
      }
    }
    ES_RETURN_IF_ERROR(l->db_.Exec("PRAGMA foreign_keys = ON"));
    // Migrate() checks that the file is a ledger (or empty) before it changes anything:
    // a foreign SQLite file is refused untouched (no WAL switch, no schema).
    ES_RETURN_IF_ERROR(l->Migrate());
    return Status::Ok();
  }();
  if (opened.ok() && ::stat(path.c_str(), &sb) == 0) {
    l->file_dev_ = static_cast<uint64_t>(sb.st_dev);
    l->file_ino_ = static_cast<uint64_t>(sb.st_ino);
  }
  if (!opened.ok()) {
    l->db_.Close();
    if (!had_wal && !had_shm && ::stat((path + "-wal").c_str(), &wal_sb) == 0 && wal_sb.st_size == 0) {
      std::remove((path + "-wal").c_str());
      std::remove((path + "-shm").c_str());
    }
    return opened;
  }
  return l;
}

Result<int64_t> Ledger::BeginSweep(const SweepInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "INSERT INTO sweeps(protocol_name, protocol_path, protocol_hash, effective_json, options_json, "
          "started_at, host, pid) VALUES (?,?,?,?,?,?,?,?)");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, info.protocol_name).Bind(2, info.protocol_path).Bind(3, info.protocol_hash);
  st.Bind(4, info.effective.dump()).Bind(5, info.options.dump()).Bind(6, NowSeconds());
  st.Bind(7, HostName()).Bind(8, static_cast<int64_t>(::getpid()));
  ES_RETURN_IF_ERROR(st.Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_.raw()));
}

Status Ledger::FinishSweep(int64_t sweep_id, const std::string& status, const nlohmann::json& summary) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_, "UPDATE sweeps SET finished_at = ?, status = ?, summary_json = ? WHERE id = ?");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, NowSeconds()).Bind(2, status).Bind(3, summary.dump()).Bind(4, sweep_id);
  ES_RETURN_IF_ERROR(st.Run());
  // A ledger deleted (or replaced) while the sweep wrote to it: SQLite went on writing to the deleted file and
  // the run said "68 ran, 0 left" with no ledger left (helper-66).
  struct stat sb;
  if (file_ino_ != 0 && (::stat(db_.path().c_str(), &sb) != 0 || static_cast<uint64_t>(sb.st_dev) != file_dev_ ||
                         static_cast<uint64_t>(sb.st_ino) != file_ino_))
    return Status::IoError(db_.path() + ": the ledger file was deleted or replaced while this sweep wrote to it; "
                           "the results of this run went to the deleted file and are lost (re-run to redo them)");
  return Status::Ok();
}

Status Ledger::RegisterJobs(int64_t sweep_id, const std::vector<protocols::PlannedJob>& jobs) {
  std::lock_guard<std::mutex> lock(mu_);
  // Jobs already in the ledger keep their rows: look their ids up first (one indexed
  // query per 500), so a re-run does not serialise every job's config for an INSERT
  // OR IGNORE that inserts nothing (issue 15).
  // Views of the jobs' ids (a copy of every id was ~100 bytes a job at a re-run's peak).
  std::vector<std::string_view> ids;
  ids.reserve(jobs.size());
  for (const auto& j : jobs) {
    if (j.spec.id.empty()) return Status::InvalidArgument("planned job without an id (kind " + j.spec.kind + ")");
    ids.push_back(j.spec.id);
  }
  // Which are there: one bit a job (a set of the found ids held a copy of nearly every id
  // on a re-run, ~150 bytes a job at the run's peak, issue 15); a found id is placed by a
  // small map of its chunk's ids.
  std::vector<bool> have(jobs.size());
  {
    std::unordered_map<std::string_view, size_t> chunk;
    size_t chunk_start = std::string::npos;
    ES_RETURN_IF_ERROR(
        ForChunks(&db_, ids, "SELECT id FROM jobs WHERE id", "", [&](Stmt& st, size_t start, size_t n) {
          if (start != chunk_start) {
            chunk.clear();
            for (size_t i = start; i < start + n; ++i) chunk.emplace(ids[i], i);
            chunk_start = start;
          }
          auto it = chunk.find(st.Text(0));
          if (it != chunk.end()) have[it->second] = true;
        }));
  }
  // The new rows go in in transactions of at most kChunkJobs jobs or kChunkBytes of JSON: one transaction for a
  // whole protocol held the ledger's write lock for minutes (10^6 jobs, or 10^4 jobs of 377 KB each: 141 s),
  // and another sweep writing to the ledger failed after its busy timeout (helper-67). A row without its sweep
  // link (a registration killed half way) is a job like any other: the next run links it, gc removes it.
  constexpr size_t kChunkJobs = 2000;
  constexpr size_t kChunkBytes = size_t{32} << 20;
  const double now = NowSeconds();
  // Utterance-id lists are stored once each, in id_lists (schema v5), and config_json names them by hash:
  // every job of a split held its own copy (377 KB a job on 20 000-utterance corpora: 384 MB for 1008 jobs),
  // and a status change rewrote the row's overflow chain (797 KB of WAL for a claim; helper-67). A list is
  // hashed once per call (by the list the jobs share) and inserted (or found, INSERT OR IGNORE) in every
  // transaction whose rows name it, so a committed row never names a missing list, even if a gc from another
  // host dropped an earlier chunk's rows and their lists between two transactions (helper-74).
  std::unordered_map<const void*, std::string> list_hash;
  std::unordered_set<std::string> lists_stored;
  std::string scratch;
  Status list_status;
  Stmt* ins_list = nullptr;
  auto list_ref = [&](const jobs::IdList& ids) -> std::string {
    auto [it, fresh] = list_hash.try_emplace(ids.shared());
    if (fresh) it->second = IdListHash(ids, &scratch);
    if (list_status.ok() && lists_stored.insert(it->second).second) {
      ins_list->Reset();
      ins_list->Bind(1, it->second).Bind(2, static_cast<int64_t>(ids.size())).BindText(3, ids.CanonicalJson(&scratch));
      list_status = ins_list->Run();
      if (!list_status.ok()) lists_stored.erase(it->second);
    }
    return it->second;
  };
  const bool lists_apart = schema_version_ >= 5;
  size_t k = 0;
  while (k < jobs.size()) {
    Transaction tx(&db_);
    ES_RETURN_IF_ERROR(tx.status());
    Stmt ins(&db_,
             "INSERT OR IGNORE INTO jobs(id, kind, config_json, attrs_json, deps_json, reportable, created_at) "
             "VALUES (?,?,?,?,?,?,?)");
    ES_RETURN_IF_ERROR(ins.status());
    std::unique_ptr<Stmt> ins_list_here;
    lists_stored.clear();  // per transaction (above)
    if (lists_apart) {
      ins_list_here = std::make_unique<Stmt>(&db_, "INSERT OR IGNORE INTO id_lists(hash, n, ids_json) VALUES (?,?,?)");
      ES_RETURN_IF_ERROR(ins_list_here->status());
      ins_list = ins_list_here.get();
    }
    size_t rows = 0, bytes = 0;
    for (; k < jobs.size() && rows < kChunkJobs && bytes < kChunkBytes; ++k) {
      if (have[k]) continue;
      const auto& j = jobs[k];
      const std::string config = lists_apart ? j.spec.ToJson(list_ref).dump() : j.spec.ToJson().dump();
      ES_RETURN_IF_ERROR(list_status);
      ins.Reset();
      ins.Bind(1, j.spec.id).Bind(2, j.spec.kind).Bind(3, config);
      ins.Bind(4, j.attrs.ToJson().dump()).Bind(5, nlohmann::json(j.deps).dump());
      ins.Bind(6, j.reportable ? 1 : 0).Bind(7, now);
      ES_RETURN_IF_ERROR(ins.Run());
      ++rows;
      bytes += config.size();
    }
    if (rows == 0) break;  // the rest were all there
    ES_RETURN_IF_ERROR(tx.Commit());
  }
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  ES_RETURN_IF_ERROR(LinkLocked(sweep_id, ids, JobSetHash(ids)));
  return tx.Commit();
}

namespace {
template <typename Ids>
std::string HashJobSet(const Ids& ids) {
  // Batched: one digest update per ~64 KB instead of two per id (10^6 ids: 65 MB).
  Sha256 h;
  std::string buf;
  buf.reserve(1 << 16);
  for (const auto& id : ids) {
    buf.append(id).push_back('\n');
    if (buf.size() >= (1 << 16) - 128) {
      h.Update(buf);
      buf.clear();
    }
  }
  h.Update(buf);
  return h.HexDigest();
}

template <typename Ids>
std::vector<std::string_view> Views(const Ids& ids) {
  return std::vector<std::string_view>(ids.begin(), ids.end());
}
}  // namespace

std::string Ledger::JobSetHash(const std::vector<std::string>& ids) { return HashJobSet(ids); }

std::string Ledger::IdListHash(const jobs::IdList& ids, std::string* scratch) {
  Sha256 h;
  h.Update(ids.CanonicalJson(scratch));
  return h.HexDigest();
}
std::string Ledger::JobSetHash(const std::vector<std::string_view>& ids) { return HashJobSet(ids); }

Result<std::optional<int64_t>> Ledger::FindJobSet(const std::string& hash, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  return FindJobSetLocked(hash, n, -1);
}

Result<std::optional<int64_t>> Ledger::FindJobSetLocked(const std::string& hash, size_t n, int64_t other_than) {
  if (schema_version_ < 3 || hash.empty()) return std::optional<int64_t>();
  Stmt st(&db_, FindJobSetSql());
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, hash).Bind(2, other_than);
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<int64_t>();
    if (!st.IsNull(1) && st.Int(1) == static_cast<int64_t>(n)) return std::optional<int64_t>(st.Int(0));
  }
}

std::string Ledger::FindJobSetSql() {
  return "SELECT id, jobs FROM sweeps WHERE job_set = ? AND links_from IS NULL AND id != ? ORDER BY id DESC";
}

Result<int64_t> Ledger::LinkHolder(int64_t sweep_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return LinkHolderLocked(sweep_id);
}

Result<int64_t> Ledger::LinkHolderLocked(int64_t sweep_id) {
  if (schema_version_ < 3) return sweep_id;
  Stmt st(&db_, "SELECT links_from FROM sweeps WHERE id = ?");
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, sweep_id);
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  return row && !st.IsNull(0) ? st.Int(0) : sweep_id;
}

Status Ledger::LinkLocked(int64_t sweep_id, const std::vector<std::string_view>& ids, const std::string& job_set) {
  bool first = true;  // the sweep has no links yet, its own or shared
  if (schema_version_ >= 3) {
    int64_t shares = 0;
    std::string own_set;
    {
      Stmt st(&db_,
              "SELECT links_from, EXISTS (SELECT 1 FROM sweep_jobs WHERE sweep_id = ?1), job_set "
              "FROM sweeps WHERE id = ?1");
      ES_RETURN_IF_ERROR(st.status());
      st.Bind(1, sweep_id);
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (row) {
        shares = st.IsNull(0) ? 0 : st.Int(0);
        first = shares == 0 && st.Int(1) == 0;
        own_set = st.Text(2);
      }
    }
    if (shares == 0 && !first && !own_set.empty() && own_set == job_set) return Status::Ok();  // linked already
    if (shares != 0) {
      // More links for a sweep that shares another's: it takes a copy of them first.
      ES_RETURN_IF_ERROR(RunWith(&db_,
                                 "INSERT OR IGNORE INTO sweep_jobs(sweep_id, job_id, ord) "
                                 "SELECT ?1, job_id, ord FROM sweep_jobs WHERE sweep_id = ?2",
                                 {sweep_id, shares}));
      ES_RETURN_IF_ERROR(RunWith(&db_, "UPDATE sweeps SET links_from = NULL, job_set = NULL WHERE id = ?1", {sweep_id}));
    } else if (!first) {
      // More links for a sweep whose links others share: each of them takes a copy of
      // the links it shared first (and their job set: it is exactly that list).
      std::vector<int64_t> sharers;
      {
        Stmt st(&db_, "SELECT id FROM sweeps WHERE links_from = ?");
        ES_RETURN_IF_ERROR(st.status());
        st.Bind(1, sweep_id);
        for (;;) {
          ES_ASSIGN_OR_RETURN(bool row, st.Step());
          if (!row) break;
          sharers.push_back(st.Int(0));
        }
      }
      for (int64_t s : sharers) {
        ES_RETURN_IF_ERROR(RunWith(&db_,
                                   "INSERT OR IGNORE INTO sweep_jobs(sweep_id, job_id, ord) "
                                   "SELECT ?1, job_id, ord FROM sweep_jobs WHERE sweep_id = ?2",
                                   {s, sweep_id}));
        ES_RETURN_IF_ERROR(RunWith(&db_,
                                   "UPDATE sweeps SET links_from = NULL, "
                                   "job_set = (SELECT job_set FROM sweeps WHERE id = ?2) WHERE id = ?1",
                                   {s, sweep_id}));
      }
      ES_RETURN_IF_ERROR(RunWith(&db_, "UPDATE sweeps SET job_set = NULL WHERE id = ?1", {sweep_id}));
    } else if (!ids.empty()) {
      // First links: share those of a sweep that holds the same job set (O(1)).
      ES_ASSIGN_OR_RETURN(std::optional<int64_t> holder, FindJobSetLocked(job_set, ids.size(), sweep_id));
      if (holder) {
        Stmt up(&db_, "UPDATE sweeps SET links_from = ?, job_set = NULL, jobs = ? WHERE id = ?");
        ES_RETURN_IF_ERROR(up.status());
        up.Bind(1, *holder).Bind(2, static_cast<int64_t>(ids.size())).Bind(3, sweep_id);
        return up.Run();
      }
    }
  }
  Stmt link(&db_, "INSERT OR IGNORE INTO sweep_jobs(sweep_id, job_id, ord) VALUES (?,?,?)");
  ES_RETURN_IF_ERROR(link.status());
  int64_t ord = 0;
  for (const auto& id : ids) {
    link.Reset();
    link.Bind(1, sweep_id).BindText(2, id).Bind(3, ord++);
    ES_RETURN_IF_ERROR(link.Run());
  }
  if (schema_version_ >= 3 && first && !ids.empty()) {
    // Its first links, exactly this list: others with the same list may share them.
    Stmt up(&db_, "UPDATE sweeps SET job_set = ? WHERE id = ?");
    ES_RETURN_IF_ERROR(up.status());
    up.Bind(1, job_set).Bind(2, sweep_id);
    ES_RETURN_IF_ERROR(up.Run());
  }
  return RecountSweepJobs(&db_, schema_version_, sweep_id);
}

Status Ledger::ResetFailed(const std::vector<std::string>& ids) { return ResetFailed(Views(ids)); }

Status Ledger::ResetFailed(const std::vector<std::string_view>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  ES_RETURN_IF_ERROR(ForChunks(&db_, ids,
                               "UPDATE jobs SET status = 'pending', attempts = 0, owner = NULL "
                               "WHERE status IN ('failed','blocked') AND id",
                               "", [](Stmt&) { return Status::Ok(); }));
  return tx.Commit();
}

Result<size_t> Ledger::CountDone(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  // Two index-only reads: a job row keeps its status after its config (kilobytes of
  // utterance ids), so reading the status column row by row walks each row's overflow
  // pages. jobs_by_status holds every done job's rowid, the primary-key index every
  // id's rowid; one read transaction so both see the same ledger.
  ES_RETURN_IF_ERROR(db_.Exec("BEGIN DEFERRED"));
  auto count = [&]() -> Result<size_t> {
    std::vector<int64_t> done_rows;
    Stmt st(&db_, "SELECT rowid FROM jobs WHERE status = 'done'");
    ES_RETURN_IF_ERROR(st.status());
    for (;;) {
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      done_rows.push_back(st.Int(0));
    }
    std::sort(done_rows.begin(), done_rows.end());
    size_t done = 0;
    ES_RETURN_IF_ERROR(ForChunks(&db_, ids, "SELECT rowid FROM jobs WHERE id", "", [&](Stmt& q) {
      done += std::binary_search(done_rows.begin(), done_rows.end(), q.Int(0)) ? 1 : 0;
    }));
    return done;
  }();
  (void)db_.Exec("COMMIT");
  return count;
}

Status Ledger::LinkJobs(int64_t sweep_id, const std::vector<std::string>& ids, const std::string& job_set) {
  const std::string hash = job_set.empty() ? JobSetHash(ids) : job_set;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  ES_RETURN_IF_ERROR(LinkLocked(sweep_id, Views(ids), hash));
  return tx.Commit();
}

Result<std::unordered_map<std::string, JobState>> Ledger::SweepStates(int64_t sweep_id) {
  std::unordered_map<std::string, JobState> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (schema_version_ >= 2) {  // sweeps.jobs: its size, so the map never rehashes
      Stmt n(&db_, "SELECT jobs FROM sweeps WHERE id = ?");
      ES_RETURN_IF_ERROR(n.status());
      n.Bind(1, sweep_id);
      ES_ASSIGN_OR_RETURN(bool row, n.Step());
      if (row && !n.IsNull(0)) out.reserve(static_cast<size_t>(std::max<int64_t>(0, n.Int(0))));
    }
  }
  ES_RETURN_IF_ERROR(ForEachSweepState(
      sweep_id, [&out](std::string_view id, JobState&& s) { out[std::string(id)] = std::move(s); }));
  return out;
}

Status Ledger::ForEachSweepState(int64_t sweep_id, const std::function<void(std::string_view, JobState&&)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  // The scheduler's refresh: the links may be another sweep's (schema v3, links_from).
  ES_ASSIGN_OR_RETURN(const int64_t holder, LinkHolderLocked(sweep_id));
  auto read_rows = [&](Stmt& st) -> Status {
    JobState s;
    ES_ASSIGN_OR_RETURN(s.status, ParseJobStatus(st.Text(1)));
    s.attempts = static_cast<int>(st.Int(2));
    s.owner = st.Text(3);
    s.heartbeat_at = st.Double(4);
    s.error = st.Text(5);
    fn(st.Text(0), std::move(s));
    return Status::Ok();
  };
  if (schema_version_ < 2) {
    Stmt st(&db_,
            "SELECT j.id, j.status, j.attempts, j.owner, j.heartbeat_at, j.error FROM sweep_jobs s "
            "JOIN jobs j ON j.id = s.job_id WHERE s.sweep_id = ?");
    ES_RETURN_IF_ERROR(st.status());
    st.Bind(1, holder);
    for (;;) {
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      ES_RETURN_IF_ERROR(read_rows(st));
    }
    return Status::Ok();
  }
  // A job row keeps status, attempts, owner, heartbeat and error after its config JSON
  // (kilobytes, in overflow pages): reading them row by row walked every row's overflow
  // chain (10^5 jobs: ~0.7 s a read, twice when a sweep starts). Statuses come from the
  // covering index jobs_by_id_state; only jobs not done (the ones the scheduler may
  // claim, wait for or block on) are read in full. One snapshot for both reads.
  ES_RETURN_IF_ERROR(db_.Exec("BEGIN DEFERRED"));
  Status read = [&]() -> Status {
    std::vector<std::string> open;
    Stmt st(&db_, SweepStatusSql());
    ES_RETURN_IF_ERROR(st.status());
    st.Bind(1, holder);
    for (;;) {
      ES_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      ES_ASSIGN_OR_RETURN(JobStatus status, ParseJobStatus(st.Text(1)));
      if (status == JobStatus::kDone) {
        JobState done;
        done.status = status;
        fn(st.Text(0), std::move(done));
      } else {
        open.push_back(st.Text(0));
      }
    }
    return ForChunks(&db_, open, "SELECT id, status, attempts, owner, heartbeat_at, error FROM jobs WHERE id", "",
                     read_rows);
  }();
  (void)db_.Exec("COMMIT");
  return read;
}

std::string Ledger::SweepStatusSql() {
  return "SELECT j.id, j.status FROM sweep_jobs s JOIN jobs j INDEXED BY jobs_by_id_state ON j.id = s.job_id "
         "WHERE s.sweep_id = ?";
}

Result<ClaimResult> Ledger::Claim(const std::string& id, const std::string& owner, const ClaimOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  Stmt q(&db_, "SELECT status, owner, heartbeat_at, attempts FROM jobs WHERE id = ?", Stmt::kKeep);
  ES_RETURN_IF_ERROR(q.status());
  q.Bind(1, id);
  ES_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return ClaimResult{ClaimOutcome::kNotClaimable, 0};
  std::string status = q.Text(0), prev_owner = q.Text(1);
  double heartbeat = q.Double(2), now = NowSeconds();
  int attempts = static_cast<int>(q.Int(3));
  ClaimOutcome outcome = ClaimOutcome::kClaimed;
  if (status == "running") {
    bool dead = prev_owner != owner &&
                (OwnerIsDeadHere(prev_owner) || now - heartbeat > options.stale_after_s);
    if (!dead) return ClaimResult{ClaimOutcome::kNotClaimable, attempts};
    // The dead owner's attempt is given back: a kill -9 (or a lost node) says nothing
    // about the job, so it must not use up max_attempts.
    attempts = std::max(0, attempts - 1);
    outcome = ClaimOutcome::kTaken;
  } else if (status != "pending") {
    return ClaimResult{ClaimOutcome::kNotClaimable, attempts};
  }
  Stmt up(&db_,
          "UPDATE jobs SET status = 'running', owner = ?, worker = ?, attempts = ?, "
          "claimed_at = ?, started_at = ?, heartbeat_at = ? WHERE id = ?", Stmt::kKeep);
  ES_RETURN_IF_ERROR(up.status());
  up.Bind(1, owner).Bind(2, options.worker).Bind(3, attempts + 1).Bind(4, now).Bind(5, now).Bind(6, now);
  up.Bind(7, id);
  ES_RETURN_IF_ERROR(up.Run());
  ES_RETURN_IF_ERROR(tx.Commit());
  return ClaimResult{outcome, attempts + 1};
}

Status Ledger::Heartbeat(const std::vector<std::string>& ids, const std::string& owner) {
  if (ids.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  Stmt st(&db_, "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND owner = ? AND status = 'running'", Stmt::kKeep);
  ES_RETURN_IF_ERROR(st.status());
  double now = NowSeconds();
  for (const auto& id : ids) {
    st.Reset();
    st.Bind(1, now).Bind(2, id).Bind(3, owner);
    ES_RETURN_IF_ERROR(st.Run());
  }
  return tx.Commit();
}

Status Ledger::Fail(const std::string& id, const std::string& owner, const std::string& error, bool retry) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "UPDATE jobs SET status = ?, error = ?, owner = NULL, finished_at = ? "
          "WHERE id = ? AND owner = ? AND status = 'running'", Stmt::kKeep);
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, retry ? "pending" : "failed").Bind(2, error).Bind(3, NowSeconds()).Bind(4, id).Bind(5, owner);
  return st.Run();
}

Status Ledger::Release(const std::string& id, const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "UPDATE jobs SET status = 'pending', owner = NULL, attempts = max(attempts - 1, 0) "
          "WHERE id = ? AND owner = ? AND status = 'running'", Stmt::kKeep);
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, id).Bind(2, owner);
  return st.Run();
}

Status Ledger::Supersede(const std::string& id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_,
          "UPDATE jobs SET status = 'pending', attempts = 0, owner = NULL, checkpoint = NULL, error = ? "
          "WHERE id = ? AND status = 'done'", Stmt::kKeep);
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, reason).Bind(2, id);
  return st.Run();
}

Result<int> Ledger::MarkDeadSweeps(double stale_after_s) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  Stmt q(&db_, "SELECT id, host, pid, started_at FROM sweeps WHERE status = 'running'");
  ES_RETURN_IF_ERROR(q.status());
  const std::string here = HostName();
  const double now = NowSeconds();
  std::vector<int64_t> dead;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    const int64_t id = q.Int(0), pid = q.Int(2);
    const std::string host = q.Text(1);
    if (host == here && pid == ::getpid()) continue;  // ours (or an earlier sweep of this process)
    if (host == here) {
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) dead.push_back(id);
      continue;
    }
    if (now - q.Double(3) <= stale_after_s) continue;
    Stmt beat(&db_, "SELECT count(*) FROM jobs WHERE status = 'running' AND owner LIKE ? AND heartbeat_at > ?");
    ES_RETURN_IF_ERROR(beat.status());
    beat.Bind(1, host + ":" + std::to_string(pid) + ":%").Bind(2, now - stale_after_s);
    ES_ASSIGN_OR_RETURN(bool brow, beat.Step());
    if (brow && beat.Int(0) == 0) dead.push_back(id);
  }
  Stmt up(&db_,
          "UPDATE sweeps SET status = 'interrupted', summary_json = ? WHERE id = ? AND status = 'running'");
  ES_RETURN_IF_ERROR(up.status());
  for (int64_t id : dead) {
    up.Reset();
    up.Bind(1, nlohmann::json{{"interrupted", "its process died or went silent (found by a later run)"}}.dump());
    up.Bind(2, id);
    ES_RETURN_IF_ERROR(up.Run());
  }
  ES_RETURN_IF_ERROR(tx.Commit());
  return static_cast<int>(dead.size());
}

Result<int> Ledger::ReleaseDeadJobs(double stale_after_s) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  std::vector<std::pair<std::string, std::string>> dead;  // id, owner
  {
    Stmt q(&db_, "SELECT id, owner, heartbeat_at FROM jobs WHERE status = 'running'");
    ES_RETURN_IF_ERROR(q.status());
    const double now = NowSeconds();
    for (;;) {
      ES_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      const std::string owner = q.Text(1);
      const double beat = q.IsNull(2) ? 0.0 : q.Double(2);
      if (OwnerIsDeadHere(owner) || now - beat > stale_after_s) dead.emplace_back(q.Text(0), owner);
    }
  }
  Stmt up(&db_,
          "UPDATE jobs SET status = 'pending', owner = NULL, attempts = max(attempts - 1, 0) "
          "WHERE id = ? AND owner = ? AND status = 'running'");
  ES_RETURN_IF_ERROR(up.status());
  for (const auto& [id, owner] : dead) {
    up.Reset();
    up.Bind(1, id).Bind(2, owner);
    ES_RETURN_IF_ERROR(up.Run());
  }
  ES_RETURN_IF_ERROR(tx.Commit());
  return static_cast<int>(dead.size());
}

Status Ledger::Block(const std::string& id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(&db_, "UPDATE jobs SET status = 'blocked', error = ? WHERE id = ? AND status = 'pending'", Stmt::kKeep);
  ES_RETURN_IF_ERROR(st.status());
  st.Bind(1, reason).Bind(2, id);
  return st.Run();
}

}  // namespace emosweep::orchestrator
