// Decoding real and synthetic files; every bad input gives a Status naming the file.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sndfile.h>

#include "data/audio/decode.h"
#include "audio_test_util.h"

namespace emosweep::data::audio {
namespace {

using testing::Sine;
using testing::WriteWav;

class DecodeTest : public testing::TempDirTest {};

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void ExpectBad(const Result<Waveform>& r, const std::string& path, StatusCode code, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << path << " decoded but should not";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << "message must name the file: " << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  EXPECT_TRUE(r.status().IsBadInput());
}

TEST_F(DecodeTest, RealEmodbFileHasItsDuration) {
  const std::string path = testing::EmodbWavDir() + "/03a01Fa.wav";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "EmoDB not found at " << path << " (needs ../shared)";
  auto w = DecodeAudio(path);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->source_rate, 16000);
  EXPECT_EQ(w->source_channels, 1);
  EXPECT_EQ(w->samples.size(), 30372u);  // metadata.csv: 1.898 s
  EXPECT_NEAR(w->duration_s(), 1.898, 0.001);
  float peak = 0;
  for (float v : w->samples) peak = std::max(peak, std::fabs(v));
  EXPECT_GT(peak, 0.5f);  // EmoDB is peak-normalised near full scale
}

TEST_F(DecodeTest, Stereo44kIsMixedAndResampled) {
  const auto mono = Sine(300, 1.0, 44100, 0.4);
  std::vector<float> stereo;
  for (float v : mono) stereo.push_back(v), stereo.push_back(v);
  WriteWav(Path("s.wav"), stereo, 44100, 2);
  auto w = DecodeAudio(Path("s.wav"));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->source_rate, 44100);
  EXPECT_EQ(w->source_channels, 2);
  EXPECT_EQ(w->sample_rate, 16000);
  EXPECT_NEAR(double(w->samples.size()), 16000.0, 2.0);
  float peak = 0;
  for (size_t i = 4000; i < 12000; ++i) peak = std::max(peak, std::fabs(w->samples[i]));
  EXPECT_NEAR(peak, 0.4, 0.01);
}

TEST_F(DecodeTest, FlacDecodes) {
  WriteWav(Path("a.flac"), Sine(200, 0.5, 16000), 16000, 1, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  auto w = DecodeAudio(Path("a.flac"));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->samples.size(), 8000u);
}

TEST_F(DecodeTest, MissingFile) {
  ExpectBad(DecodeAudio(Path("nope.wav")), Path("nope.wav"), StatusCode::kNotFound, "no such");
}

TEST_F(DecodeTest, EmptyFile) {
  WriteBytes(Path("empty.wav"), "");
  ExpectBad(DecodeAudio(Path("empty.wav")), Path("empty.wav"), StatusCode::kCorruption, "empty");
}

TEST_F(DecodeTest, CorruptHeader) {
  WriteBytes(Path("corrupt.wav"), std::string("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", 20) + std::string(40, '\x7f'));
  ExpectBad(DecodeAudio(Path("corrupt.wav")), Path("corrupt.wav"), StatusCode::kCorruption, "cannot decode");
}

TEST_F(DecodeTest, UnsupportedFormat) {
  WriteBytes(Path("text.wav"), "this is a text file pretending to be audio\n");
  ExpectBad(DecodeAudio(Path("text.wav")), Path("text.wav"), StatusCode::kCorruption, "unsupported format");
}

TEST_F(DecodeTest, TruncatedWav) {
  WriteWav(Path("t.wav"), Sine(200, 1.0, 16000), 16000);
  const auto size = std::filesystem::file_size(Path("t.wav"));
  std::filesystem::resize_file(Path("t.wav"), size / 2);
  ExpectBad(DecodeAudio(Path("t.wav")), Path("t.wav"), StatusCode::kCorruption, "truncated");
}

// helper-60: libsndfile reports a cut-off AIFF, RF64, W64 or big-endian (RIFX) WAV as a shorter file; each
// container's sample chunk is checked like RIFF's.
TEST_F(DecodeTest, TruncatedFilesOfEveryChunkedContainerAreCorruption) {
  const std::vector<std::pair<std::string, int>> formats = {
      {"w.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16},
      {"x.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16 | SF_ENDIAN_BIG},
      {"r.wav", SF_FORMAT_RF64 | SF_FORMAT_PCM_16},
      {"a.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16},
      {"c.aifc", SF_FORMAT_AIFF | SF_FORMAT_FLOAT},
      {"s.w64", SF_FORMAT_W64 | SF_FORMAT_PCM_24},
  };
  for (const auto& [name, format] : formats) {
    const std::string path = Path(name);
    WriteWav(path, Sine(200, 1.0, 16000, 0.5), 16000, 1, format);
    auto whole = DecodeAudio(path);
    ASSERT_TRUE(whole.ok()) << name << ": " << whole.status().ToString();
    EXPECT_EQ(whole->samples.size(), 16000u) << name;
    for (double keep : {0.4, 0.999}) {
      WriteWav(path, Sine(200, 1.0, 16000, 0.5), 16000, 1, format);
      const auto size = std::filesystem::file_size(path);
      std::filesystem::resize_file(path, static_cast<uintmax_t>(double(size) * keep));
      ExpectBad(DecodeAudio(path), path, StatusCode::kCorruption, "truncated");
    }
  }
}

// helper-65: a W64 chunk size near 2^64 wrapped the chunk walk to the same offset forever.
TEST_F(DecodeTest, AW64ChunkSizeNearTwoToTheSixtyFourEndsTheWalk) {
  const unsigned char riff[16] = {0x72, 0x69, 0x66, 0x66, 0x2E, 0x91, 0xCF, 0x11,
                                  0xA5, 0xD6, 0x28, 0xDB, 0x04, 0xC1, 0x00, 0x00};
  const unsigned char wave[16] = {0x77, 0x61, 0x76, 0x65, 0xF3, 0xAC, 0xD3, 0x11,
                                  0x8C, 0xD1, 0x00, 0xC0, 0x4F, 0x8E, 0xDB, 0x8A};
  std::string bytes(reinterpret_cast<const char*>(riff), 16);
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(i == 0 ? 72 : 0));
  bytes.append(reinterpret_cast<const char*>(wave), 16);
  bytes.append(16, 'x');                                    // some chunk's GUID
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(i == 0 ? 0xF9 : 0xFF));  // size 2^64 - 7
  WriteBytes(Path("huge.w64"), bytes);
  auto r = DecodeAudio(Path("huge.w64"));  // returns (before: never)
  EXPECT_FALSE(r.ok());
}

// A WAV whose recorder never patched the data chunk's size (0) reads as empty in libsndfile: say so.
TEST_F(DecodeTest, StreamedWavWithAnUnpatchedDataSizeIsNamed) {
  WriteWav(Path("st.wav"), Sine(200, 0.3, 16000), 16000);
  std::string bytes;
  {
    std::ifstream in(Path("st.wav"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t data = bytes.find("data");
  ASSERT_NE(data, std::string::npos);
  bytes.replace(data + 4, 4, std::string(4, '\0'));
  WriteBytes(Path("st.wav"), bytes);
  ExpectBad(DecodeAudio(Path("st.wav")), Path("st.wav"), StatusCode::kCorruption, "header was never finalised");
}

TEST_F(DecodeTest, HeaderOnlyWavHasNoSamples) {
  WriteWav(Path("zero.wav"), {}, 16000);
  ExpectBad(DecodeAudio(Path("zero.wav")), Path("zero.wav"), StatusCode::kCorruption, "no audio samples");
}

TEST_F(DecodeTest, NanSamplesAreRejected) {
  std::vector<float> x = Sine(200, 0.1, 16000);
  x[100] = std::nanf("");
  WriteWav(Path("nan.wav"), x, 16000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  ExpectBad(DecodeAudio(Path("nan.wav")), Path("nan.wav"), StatusCode::kCorruption, "NaN");
}

TEST_F(DecodeTest, DirectoryIsNotAudio) {
  std::filesystem::create_directories(Path("d.wav"));
  ExpectBad(DecodeAudio(Path("d.wav")), Path("d.wav"), StatusCode::kInvalidArgument, "not a regular file");
}

}  // namespace
// Found by fuzz_wav (fuzz/regressions/wav/): a header claiming 9 Hz made
// resampling to 16 kHz take minutes (1778 output samples per input sample).
TEST(AudioDecode, AbsurdSampleRateIsCorruptionNamingTheFile) {
  for (int rate : {9, 999, 1000000}) {
    const std::string path = ::testing::TempDir() + "/rate_" + std::to_string(rate) + ".wav";
    WriteWav(path, std::vector<float>(200, 0.1f), rate);
    auto w = DecodeAudio(path);
    ASSERT_FALSE(w.ok()) << rate << " Hz decoded to " << w->samples.size() << " samples";
    EXPECT_EQ(w.status().code(), StatusCode::kCorruption);
    EXPECT_NE(w.status().message().find(path + ": sample rate " + std::to_string(rate) + " Hz is outside 1000..768000"),
              std::string::npos)
        << w.status().message();
  }
  EXPECT_TRUE(DecodeAudio(::testing::TempDir() + "/rate_ok.wav").status().code() == StatusCode::kNotFound);
}

// Found by fuzz_wav (fuzz/regressions/wav/): audio shorter than one output
// sample decoded to an empty waveform with an OK status.
TEST(AudioDecode, TooShortToResampleIsCorruptionNamingTheFile) {
  const std::string path = ::testing::TempDir() + "/one_frame_48k.wav";
  WriteWav(path, {0.25f}, 48000);
  auto w = DecodeAudio(path);
  ASSERT_FALSE(w.ok()) << "decoded " << w->samples.size() << " samples";
  EXPECT_EQ(w.status().code(), StatusCode::kCorruption);
  EXPECT_NE(w.status().message().find(path + ": too short"), std::string::npos) << w.status().message();
}

}  // namespace emosweep::data::audio
