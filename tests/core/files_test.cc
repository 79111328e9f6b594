#include "core/files.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace emosweep
