// TorchScript encoder hook: the test defines small modules, saves them, loads
// them through the hook and checks the pooled output against a direct computation.
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "data/encoder/torchscript_encoder.h"
#include "audio_test_util.h"

namespace emosweep::data::encoder {
namespace {

class EncoderTest : public audio::testing::TempDirTest {
 protected:
  // Audio: frames of 4 samples projected by w [4, 3] -> [1, T/4, 3].
  std::string SaveAudioModule(torch::Tensor w) {
    torch::jit::Module m("AudioEnc");
    m.register_parameter("w", w, /*is_buffer=*/false);
    m.define(R"JIT(
def forward(self, x):
    t = x.size(1) // 4
    y = x[:, : t * 4].reshape(1, t, 4)
    return torch.matmul(y, self.w)
)JIT");
    const std::string path = Path("audio_enc.pt");
    m.save(path);
    return path;
  }
  // Text: byte values b -> [b/255, (b/255)^2, sin(b/255)] per byte -> [1, L, 3].
  std::string SaveTextModule() {
    torch::jit::Module m("TextEnc");
    m.define(R"JIT(
def forward(self, x):
    e = x.float() / 255.0
    return torch.stack([e, e * e, torch.sin(e)], dim=2)
)JIT");
    const std::string path = Path("text_enc.pt");
    m.save(path);
    return path;
  }
};

TEST_F(EncoderTest, AudioModuleIsMeanPooled) {
  torch::manual_seed(3);
  const torch::Tensor w = torch::randn({4, 3});
  const std::string path = SaveAudioModule(w);
  auto enc = TorchScriptEncoder::Load(path, EncoderModality::kAudio);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  std::vector<float> x(1003);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(0.01 * double(i * i)));
  auto v = (*enc)->EncodeWaveform(x.data(), int64_t(x.size()));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*enc)->dim(), 3);
  const auto wa = w.accessor<float, 2>();
  const int64_t frames = int64_t(x.size()) / 4;
  for (int d = 0; d < 3; ++d) {
    double ref = 0;
    for (int64_t t = 0; t < frames; ++t) {
      for (int k = 0; k < 4; ++k) ref += double(x[size_t(t * 4 + k)]) * wa[k][d];
    }
    EXPECT_NEAR((*v)[d], ref / double(frames), 1e-5) << "dim " << d;
  }
  EXPECT_EQ((*enc)->sha256().size(), 64u);
}

TEST_F(EncoderTest, TextModuleSeesUtf8Bytes) {
  auto enc = TorchScriptEncoder::Load(SaveTextModule(), EncoderModality::kText);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  const std::string text = "Grüße!";  // 8 UTF-8 bytes
  auto v = (*enc)->EncodeText(text);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  double m[3] = {0, 0, 0};
  for (unsigned char c : text) {
    const double e = c / 255.0;
    m[0] += e, m[1] += e * e, m[2] += std::sin(e);
  }
  for (int d = 0; d < 3; ++d) EXPECT_NEAR((*v)[d], m[d] / double(text.size()), 1e-6);
  // Empty transcript -> a single space byte.
  auto empty = (*enc)->EncodeText("");
  ASSERT_TRUE(empty.ok());
  EXPECT_NEAR((*empty)[0], 32.0 / 255.0, 1e-6);
  auto set = EncodeTexts(**enc, {"a", "bb", ""}, "text_enc", nullptr);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->rows(), 3);
  EXPECT_EQ(set->dim, 3);
  EXPECT_EQ(set->modality, "text");
  EXPECT_EQ(set->provenance["encoder_sha256"], (*enc)->sha256());
}

TEST_F(EncoderTest, AudioFilesBecomeAFeatureSet) {
  torch::manual_seed(5);
  auto enc = TorchScriptEncoder::Load(SaveAudioModule(torch::randn({4, 3})), EncoderModality::kAudio);
  ASSERT_TRUE(enc.ok());
  audio::testing::WriteWav(Path("a.wav"), audio::testing::Sine(200, 0.5, 16000), 16000);
  audio::testing::WriteWav(Path("b.wav"), audio::testing::Sine(300, 0.3, 22050), 22050);
  auto fs = EncodeAudioFiles(**enc, {Path("a.wav"), Path("b.wav")}, audio::DecodeOptions{}, "w2v", nullptr);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  EXPECT_EQ(fs->rows(), 2);
  EXPECT_EQ(fs->dim, 3);
  for (float v : fs->values) EXPECT_TRUE(std::isfinite(v));
  // A missing file is reported with its path.
  auto bad = EncodeAudioFiles(**enc, {Path("a.wav"), Path("missing.wav")}, audio::DecodeOptions{}, "w2v", nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("missing.wav"), std::string::npos);
}

TEST_F(EncoderTest, MissingAndCorruptModuleFiles) {
  auto missing = TorchScriptEncoder::Load(Path("none.pt"), EncoderModality::kAudio);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("none.pt"), std::string::npos);
  std::ofstream(Path("junk.pt")) << "definitely not a zip archive";
  auto junk = TorchScriptEncoder::Load(Path("junk.pt"), EncoderModality::kAudio);
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), StatusCode::kCorruption);
  EXPECT_NE(junk.status().message().find("junk.pt"), std::string::npos);
  std::ofstream(Path("empty.pt")) << "";
  EXPECT_EQ(TorchScriptEncoder::Load(Path("empty.pt"), EncoderModality::kText).status().code(), StatusCode::kCorruption);
}

TEST_F(EncoderTest, WrongOutputShapeOrModalityIsAnError) {
  torch::jit::Module m("Bad");
  m.define(R"JIT(
def forward(self, x):
    return x.float().reshape(1, 1, 1, -1)
)JIT");
  m.save(Path("bad.pt"));
  auto enc = TorchScriptEncoder::Load(Path("bad.pt"), EncoderModality::kText);
  ASSERT_TRUE(enc.ok());
  auto r = (*enc)->EncodeText("abc");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[1, T, D]"), std::string::npos) << r.status().ToString();
  float x[4] = {0, 0, 0, 0};
  EXPECT_EQ((*enc)->EncodeWaveform(x, 4).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace emosweep::data::encoder
