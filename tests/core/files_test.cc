#include "core/files.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace emosweep {
namespace {

std::string TmpDir() {
  auto d = std::filesystem::temp_directory_path() / ("es_files_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

TEST(Files, TempPathRemovedWithoutCommit) {
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

TEST(Files, WriteAtomicThenRead) {
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
