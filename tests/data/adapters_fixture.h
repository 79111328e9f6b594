// tests/data/adapters_fixture.h: tiny corpus trees for the adapter tests,
// built in a per-test temporary folder with real WAVs written by libsndfile.
#pragma once

#include <sndfile.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace emosweep::testing {

class AdapterTree {
 public:
  AdapterTree() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = std::filesystem::temp_directory_path() /
            ("emosweep-adapters-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" + info->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  ~AdapterTree() { std::filesystem::remove_all(root_); }

  std::string root() const { return root_.string(); }
  std::string Path(const std::string& rel) const { return (root_ / rel).string(); }

  // A short tone (frequency, level and length vary with `seed` so features differ).
  void Wav(const std::string& rel, int seed = 0, int rate = 16000, double seconds = 0.3) const {
    const std::string p = Path(rel);
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(p.c_str(), SFM_WRITE, &info);
    ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
    const int n = static_cast<int>(rate * (seconds + 0.05 * (seed % 5)));
    std::vector<float> x(n);
    const double f0 = 120.0 + 37.0 * (seed % 11), amp = 0.2 + 0.05 * (seed % 7);
    for (int i = 0; i < n; ++i) {
      const double t = double(i) / rate;
      x[i] = static_cast<float>(amp * (std::sin(2 * M_PI * f0 * t) + 0.3 * std::sin(2 * M_PI * 3 * f0 * t)) +
                                0.01 * std::sin(12345.0 * i * i));
    }
    ASSERT_EQ(sf_writef_float(f, x.data(), n), n);
    sf_close(f);
  }

  void Text(const std::string& rel, const std::string& content) const {
    const std::string p = Path(rel);
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }

 private:
  std::filesystem::path root_;
};

#ifdef EMOSWEEP_BINARY
// `emosweep data import ARGS` through the real binary: exit code and stdout + stderr.
struct ImportRun {
  int code = -1;
  std::string output;
};

inline ImportRun RunImport(const std::string& args) {
  ImportRun r;
  const std::string cmd = std::string(EMOSWEEP_BINARY) + " data import " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}
#endif

}  // namespace emosweep::testing
