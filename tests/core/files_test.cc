#include "core/files.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace emosweep {
namespace {

// A per-test folder, removed afterwards.
class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("es_files_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string TmpDir() const { return dir_.string(); }
  std::filesystem::path dir_;
};

TEST_F(Files, TempPathRemovedWithoutCommit) {
  std::string dir = TmpDir();
  std::string tmp_name;
  {
    TempPath t(dir + "/out.txt");
    tmp_name = t.path();
    std::ofstream(t.path()) << "partial";
    EXPECT_TRUE(FileExists(tmp_name));
  }
  EXPECT_FALSE(FileExists(tmp_name));
  EXPECT_FALSE(FileExists(dir + "/out.txt"));
}

TEST_F(Files, WriteAtomicThenRead) {
  std::string p = TmpDir() + "/a.txt";
  ASSERT_TRUE(WriteFileAtomic(p, "hello").ok());
  EXPECT_EQ(*ReadFile(p), "hello");
  auto missing = ReadFile(p + ".nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("a.txt.nope"), std::string::npos);
}

// A temporary left by a killed process (here: a child that exits without cleaning up) is removed by the next
// write of the same file on this host; one of a live process, another file's, and a name that only looks
// similar are kept.
TEST_F(Files, StaleTemporaryOfAGoneProcessIsRemovedByTheNextWrite) {
  const std::string p = TmpDir() + "/t.md";
  std::string own;
  {
    TempPath probe(p);
    own = probe.path();  // "<p>.tmp-<host>-<pid>-<n>"
  }
  const std::string host_part = own.substr(0, own.rfind('-', own.rfind('-') - 1) + 1);  // "<p>.tmp-<host>-"
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::string dead = host_part + std::to_string(child) + "-3";
  const std::string live = host_part + "1-0";  // pid 1 exists
  const std::string other_file = TmpDir() + "/u.md.tmp-" + host_part.substr(p.size() + 5) + std::to_string(child) + "-0";
  const std::string lookalike = host_part + std::to_string(child) + "-x";
  for (const auto& f : {dead, live, other_file, lookalike}) std::ofstream(f) << "partial";
  ASSERT_TRUE(WriteFileAtomic(p, "done").ok());
  EXPECT_FALSE(FileExists(dead));
  EXPECT_TRUE(FileExists(live));
  EXPECT_TRUE(FileExists(other_file));
  EXPECT_TRUE(FileExists(lookalike));
  EXPECT_EQ(*ReadFile(p), "done");
  // A cache directory, whose file names change from run to run, is swept whole.
  RemoveStaleTemporariesIn(TmpDir());
  EXPECT_FALSE(FileExists(other_file));
  EXPECT_TRUE(FileExists(live));
  EXPECT_TRUE(FileExists(lookalike));
}

TEST_F(Files, OutputFileInAMissingDirectoryIsBadInput) {
  EXPECT_TRUE(CheckOutputFile(TmpDir() + "/new.csv").ok());
  EXPECT_TRUE(CheckOutputFile("relative.csv").ok());
  const Status missing = CheckOutputFile(TmpDir() + "/nodir/x.csv");
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("directory " + TmpDir() + "/nodir does not exist"), std::string::npos)
      << missing.message();
  EXPECT_EQ(CheckOutputFile(TmpDir()).code(), StatusCode::kInvalidArgument);
  std::ofstream(TmpDir() + "/f") << "x";
  const Status not_dir = CheckOutputFile(TmpDir() + "/f/x.csv");
  EXPECT_EQ(not_dir.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_dir.message().find("is not a directory"), std::string::npos) << not_dir.message();
}

// helper-66/69: an --out that is a symbolic link was replaced by a regular file (its target untouched); one that
// is a device or a FIFO (/dev/stdout, a named pipe) too; a 249-byte name failed with "File name too long".
TEST_F(Files, ALinkIsWrittenThroughAndKept) {
  const std::string target = TmpDir() + "/real.csv", link = TmpDir() + "/link.csv";
  std::ofstream(target) << "old";
  std::filesystem::create_symlink(target, link);
  ASSERT_TRUE(WriteFileAtomic(link, "new").ok());
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(*ReadFile(target), "new");
}

TEST_F(Files, ALongButLegalNameIsWritten) {
  const std::string name = TmpDir() + "/" + std::string(249, 'n') + ".csv";  // 253 bytes
  ASSERT_TRUE(WriteFileAtomic(name, "x").ok());
  EXPECT_EQ(*ReadFile(name), "x");
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(TmpDir())) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1u);  // no temporary left
}

TEST_F(Files, AnOutputThatIsNotARegularFileIsBadInput) {
  const std::string fifo = TmpDir() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& p : {fifo, std::string("/dev/null")}) {
    const Status st = CheckOutputFile(p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << p;
    EXPECT_NE(st.message().find("is not a regular file"), std::string::npos) << st.message();
  }
  const Status dash = CheckOutputFile("-");
  EXPECT_EQ(dash.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dash.message().find("standard output"), std::string::npos) << dash.message();
  EXPECT_TRUE(CheckOutputFile("./-").ok());
}

}  // namespace
}  // namespace emosweep
