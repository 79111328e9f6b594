// tests/data/audio_test_util.h: synthetic signals and WAV writing for the audio tests.
// Thread-safety: test helpers, single-threaded use.
#pragma once

#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace emosweep::data::audio::testing {

inline std::vector<float> Sine(double hz, double seconds, int rate, double amp = 0.5) {
  std::vector<float> x(size_t(seconds * rate));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(amp * std::sin(2 * M_PI * hz * double(i) / rate));
  return x;
}

// Gaussian pulses (sigma samples) at the given integer positions with amplitudes.
inline std::vector<float> PulseTrain(const std::vector<int64_t>& positions, const std::vector<float>& amps,
                                     int64_t length, double sigma = 8.0) {
  std::vector<float> x(size_t(length), 0.f);
  for (size_t p = 0; p < positions.size(); ++p) {
    for (int64_t k = -40; k <= 40; ++k) {
      const int64_t i = positions[p] + k;
      if (i >= 0 && i < length) x[size_t(i)] += amps[p] * float(std::exp(-0.5 * k * k / (sigma * sigma)));
    }
  }
  return x;
}

// Writes interleaved float samples as 16-bit PCM WAV (or `format`).
inline void WriteWav(const std::string& path, const std::vector<float>& interleaved, int rate, int channels = 1,
                     int format = SF_FORMAT_WAV | SF_FORMAT_PCM_16) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  sf_writef_float(f, interleaved.data(), sf_count_t(interleaved.size() / size_t(channels)));
  sf_close(f);
}

// A fresh directory per test under the system temp dir, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           (std::string("emosweep_audio_") + info->test_suite_name() + "_" + info->name() + "_" +
            std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

inline std::string EmodbWavDir() { return std::string(EMOSWEEP_SHARED_DIR) + "/corpora/emodb/wav"; }

}  // namespace emosweep::data::audio::testing
