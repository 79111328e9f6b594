// core/files.h: file helpers that never leave half-written output behind.
//
// Every command that writes a file writes "<path>.tmp-<host>-<pid>-<n>" first
// and renames it over <path> only when the content is complete (rename is
// atomic on POSIX within one file system). A TempPath that is destroyed
// without Commit() removes its temporary, so an error path leaves nothing
// behind; one left by a killed process (SIGKILL, a crash) is removed by the
// next TempPath for the same <path> on the same host once that process is gone.
// Thread-safety: TempPath objects are not shared; names are unique per process.
#pragma once

#include <string>

#include "core/status.h"

namespace emosweep {

class TempPath {
 public:
  explicit TempPath(std::string final_path);
  ~TempPath();
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;

  const std::string& path() const { return tmp_; }          // write here
  const std::string& final_path() const { return final_; }
  Status Commit();                                          // fsync + rename onto final_path

 private:
  std::string final_;
  std::string tmp_;
  bool committed_ = false;
};

// Whole-file helpers (errors name the file).
Result<std::string> ReadFile(const std::string& path);
Status WriteFileAtomic(const std::string& path, const std::string& contents);
bool FileExists(const std::string& path);
// Whether both paths name one existing file (same device and inode: links and relative spellings too).
bool SameFile(const std::string& a, const std::string& b);
Status MakeDirs(const std::string& dir);
// An output file the user named (--out, --status-file): InvalidArgument (exit 2) naming it when it is a
// directory or its directory is missing (unless `creates_dir`: the command makes it) or not writable, so the
// command fails before any work, not after.
Status CheckOutputFile(const std::string& path, bool creates_dir = false);
// Removes "<final_path>.tmp-<this host>-<pid>-<n>" files whose process no longer exists (TempPath calls it).
void RemoveStaleTemporaries(const std::string& final_path);
// The same for every file's temporaries in `dir` (a cache directory whose file names change from run to run).
void RemoveStaleTemporariesIn(const std::string& dir);

}  // namespace emosweep
