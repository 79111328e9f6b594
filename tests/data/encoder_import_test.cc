// `emosweep data import --adapter ... --audio-encoder/--text-encoder` through the
// real binary: the encoder sets equal a direct EncodeAudioFiles/EncodeTexts,
// re-runs reuse them, a changed .pt re-encodes, bad .pt files exit 2 leaving
// nothing, and an interrupted import (SIGTERM) keeps its finished rows.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/script.h>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/encoder/torchscript_encoder.h"
#include "data/feature_store.h"
#include "tests/data/adapters_fixture.h"

namespace emosweep::data::encoder {
namespace {

using emosweep::testing::AdapterTree;
using emosweep::testing::RunImport;
namespace fs = std::filesystem;

// The JSON document at the end of `output` (log lines may precede it).
nlohmann::json Json(const std::string& output) {
  const size_t b = output.find("{\n");
  return nlohmann::json::parse(b == std::string::npos ? output : output.substr(b));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Audio: frames of 160 samples -> tanh(frame @ w) iterated `rounds` times
// through v -> [1, T/160, D]. `rounds` makes it slow for the interrupt test.
void SaveAudioModule(const std::string& path, int64_t dim, uint64_t seed, int rounds = 0) {
  torch::manual_seed(seed);
  torch::jit::Module m("AudioEnc");
  m.register_parameter("w", torch::randn({160, dim}) * 0.1, false);
  m.register_parameter("v", torch::randn({dim, dim}) / std::sqrt(double(dim)), false);
  m.define(R"JIT(
def forward(self, x):
    t = x.size(1) // 160
    h = torch.tanh(torch.matmul(x[:, : t * 160].reshape(1, t, 160), self.w))
    for _ in range()JIT" + std::to_string(rounds) + R"JIT():
        h = torch.tanh(torch.matmul(h, self.v))
    return h
)JIT");
  m.save(path);
}

// Text: byte b -> [b/255, (b/255)^2, sin(b/255) * scale] -> [1, L, 3].
void SaveTextModule(const std::string& path, double scale = 1.0) {
  torch::jit::Module m("TextEnc");
  m.define(R"JIT(
def forward(self, x):
    e = x.float() / 255.0
    return torch.stack([e, e * e, torch.sin(e) * )JIT" + std::to_string(scale) + R"JIT(], dim=2)
)JIT");
  m.save(path);
}

const char* const kLabels[] = {"anger", "happiness", "sadness", "neutral"};

class EncoderImport : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(EMOSWEEP_BINARY)) GTEST_SKIP() << "build the emosweep target first: " << EMOSWEEP_BINARY << " missing";
    fs::create_directories(t_.Path("out"));
    fs::create_directories(t_.Path("models"));
    SaveAudioModule(t_.Path("models/audio_enc.pt"), 8, 1);
    SaveTextModule(t_.Path("models/text_enc.pt"));
  }
  // A generic_csv tree of n wavs with transcripts (one empty).
  void Tree(int n, double seconds = 0.3) {
    std::string csv = "file,speaker,label,transcript\n";
    for (int i = 0; i < n; ++i) {
      const std::string f = "wav/u" + std::to_string(100 + i) + ".wav";
      t_.Wav(f, i, i % 3 ? 16000 : 22050, seconds);
      csv += f + ",s" + std::to_string(i % 2) + "," + kLabels[i % 4] + "," +
             (i == 1 ? "" : "utterance number " + std::to_string(i) + " sagt Grüße") + "\n";
    }
    t_.Text("metadata.csv", csv);
  }
  std::string Base(const std::string& out = "out/c.h5") const {
    return "--adapter generic_csv --root " + t_.root() + " --out " + t_.Path(out) +
           " --threads 2 --features logmel64_stats --json --log-level warn";
  }
  std::string Encoders() const {
    return " --audio-encoder " + t_.Path("models/audio_enc.pt") + " --text-encoder " + t_.Path("models/text_enc.pt");
  }
  bool OutEmpty() const { return fs::is_empty(t_.Path("out")); }

  // The store's encoder sets equal the hook called directly on the same inputs.
  void ExpectEqualsDirect(const Corpus& c, const std::string& audio_pt, const std::string& text_pt) {
    std::vector<std::string> wavs, texts;
    for (const auto& u : c.utterances) wavs.push_back(u.source), texts.push_back(u.transcript);
    auto a = TorchScriptEncoder::Load(audio_pt, EncoderModality::kAudio);
    auto t = TorchScriptEncoder::Load(text_pt, EncoderModality::kText);
    ASSERT_TRUE(a.ok() && t.ok());
    auto da = EncodeAudioFiles(**a, wavs, audio::DecodeOptions{}, "x", nullptr);
    auto dt = EncodeTexts(**t, texts, "y", nullptr);
    ASSERT_TRUE(da.ok() && dt.ok()) << da.status().ToString() << dt.status().ToString();
    for (const auto& [name, direct] : {std::pair{"enc_audio_audio_enc", &*da}, std::pair{"enc_text_text_enc", &*dt}}) {
      const FeatureSet* s = c.FindFeature(name);
      ASSERT_NE(s, nullptr) << name;
      ASSERT_EQ(s->dim, direct->dim) << name;
      ASSERT_EQ(s->values.size(), direct->values.size()) << name;
      for (size_t k = 0; k < s->values.size(); ++k) ASSERT_NEAR(s->values[k], direct->values[k], 1e-5) << name << " " << k;
      EXPECT_EQ(s->provenance["encoder_sha256"], (name[4] == 'a' ? **a : **t).sha256()) << name;
      EXPECT_EQ(s->provenance["dim"], s->dim) << name;
    }
  }

  AdapterTree t_;
};

TEST_F(EncoderImport, EncoderSetsEqualDirectCallsAndAreReused) {
  Tree(6);
  auto r = RunImport(Base() + Encoders());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Json(r.output)["extracted"], 6);
  auto c = ReadFeatureStore(t_.Path("out/c.h5"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->size(), 6u);
  EXPECT_EQ(c->FindFeature("enc_audio_audio_enc")->dim, 8);
  EXPECT_EQ(c->FindFeature("enc_text_text_enc")->dim, 3);
  EXPECT_EQ(c->FindFeature("enc_text_text_enc")->modality, "text");
  ASSERT_NE(c->FindFeature("logmel64_stats"), nullptr);
  ExpectEqualsDirect(*c, t_.Path("models/audio_enc.pt"), t_.Path("models/text_enc.pt"));

  // Same command: everything reused, same content.
  auto again = RunImport(Base() + Encoders());
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(Json(again.output)["reused"], 6);
  EXPECT_EQ(Json(again.output)["content_hash"], Json(r.output)["content_hash"]);

  // One thread gives bitwise the same store as two.
  std::string one = Base("out/one.h5") + Encoders();
  one.replace(one.find("--threads 2"), 11, "--threads 1");
  auto r1 = RunImport(one);
  ASSERT_EQ(r1.code, 0) << r1.output;
  EXPECT_EQ(Json(r1.output)["content_hash"], Json(r.output)["content_hash"]);

  // Custom set names are a different set: nothing to reuse for them.
  auto named = RunImport(Base("out/d.h5") + Encoders() + " --audio-encoder-name w2v --text-encoder-name bert");
  ASSERT_EQ(named.code, 0) << named.output;
  auto d = ReadFeatureStore(t_.Path("out/d.h5"));
  ASSERT_TRUE(d.ok());
  ASSERT_NE(d->FindFeature("w2v"), nullptr);
  ASSERT_NE(d->FindFeature("bert"), nullptr);
  EXPECT_EQ(d->FindFeature("w2v")->values, c->FindFeature("enc_audio_audio_enc")->values);
}

TEST_F(EncoderImport, ChangedModuleIsReencoded) {
  Tree(5);
  ASSERT_EQ(RunImport(Base() + Encoders()).code, 0);
  auto before = ReadFeatureStore(t_.Path("out/c.h5"));
  ASSERT_TRUE(before.ok());
  // Same file name, other weights: the vectors must change.
  SaveAudioModule(t_.Path("models/audio_enc.pt"), 8, 2);
  auto r = RunImport(Base() + Encoders());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Json(r.output)["extracted"], 5);
  EXPECT_EQ(Json(r.output)["reused"], 0);
  auto after = ReadFeatureStore(t_.Path("out/c.h5"));
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->FindFeature("enc_audio_audio_enc")->values, before->FindFeature("enc_audio_audio_enc")->values);
  EXPECT_NE(after->FindFeature("enc_audio_audio_enc")->provenance["encoder_sha256"],
            before->FindFeature("enc_audio_audio_enc")->provenance["encoder_sha256"]);
  // The untouched text encoder and front end rows are copied bitwise.
  EXPECT_EQ(after->FindFeature("enc_text_text_enc")->values, before->FindFeature("enc_text_text_enc")->values);
  EXPECT_EQ(after->FindFeature("logmel64_stats")->values, before->FindFeature("logmel64_stats")->values);
  ExpectEqualsDirect(*after, t_.Path("models/audio_enc.pt"), t_.Path("models/text_enc.pt"));
}

TEST_F(EncoderImport, MissingModuleExits2) {
  Tree(2);
  auto r = RunImport(Base() + " --audio-encoder " + t_.Path("models/none.pt"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(t_.Path("models/none.pt")), std::string::npos) << r.output;
  EXPECT_TRUE(OutEmpty());
}

TEST_F(EncoderImport, NotTorchScriptExits2) {
  Tree(2);
  t_.Text("models/junk.pt", "PK\x03\x04 this is not a TorchScript archive");
  auto r = RunImport(Base() + " --text-encoder " + t_.Path("models/junk.pt"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(t_.Path("models/junk.pt")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cannot load TorchScript module"), std::string::npos) << r.output;
  EXPECT_TRUE(OutEmpty());
}

TEST_F(EncoderImport, WrongOutputRankExits2) {
  Tree(3);
  torch::jit::Module m("Bad");
  m.define(R"JIT(
def forward(self, x):
    return x.reshape(1, 1, 1, -1)
)JIT");
  m.save(t_.Path("models/rank4.pt"));
  auto r = RunImport(Base() + " --audio-encoder " + t_.Path("models/rank4.pt"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(t_.Path("models/rank4.pt")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[1, T, D]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("u100.wav"), std::string::npos) << r.output;  // the first input
  EXPECT_TRUE(OutEmpty());
  // As a text encoder: the error quotes the transcript.
  auto t = RunImport(Base() + " --text-encoder " + t_.Path("models/rank4.pt"));
  EXPECT_EQ(t.code, 2) << t.output;
  EXPECT_NE(t.output.find(t_.Path("models/rank4.pt")), std::string::npos) << t.output;
  EXPECT_NE(t.output.find("transcript 'utterance number 0 sagt"), std::string::npos) << t.output;
  EXPECT_TRUE(OutEmpty());
}

TEST_F(EncoderImport, NameClashAndTextEncoderWithoutTranscriptsExit2) {
  Tree(2);
  auto clash = RunImport(Base() + Encoders() + " --text-encoder-name logmel64_stats");
  EXPECT_EQ(clash.code, 2) << clash.output;
  EXPECT_NE(clash.output.find("'logmel64_stats' is already taken"), std::string::npos) << clash.output;
  t_.Text("metadata.csv", "file,speaker,label\nwav/u100.wav,s0,anger\n");
  auto none = RunImport(Base() + Encoders());
  EXPECT_EQ(none.code, 2) << none.output;
  EXPECT_NE(none.output.find("no transcripts"), std::string::npos) << none.output;
  EXPECT_TRUE(OutEmpty());
}

// Starts the import in the background with its output in `log`; returns its pid.
pid_t Spawn(const std::string& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string cmd = "exec " + std::string(EMOSWEEP_BINARY) + " data import " + args + " > " + log + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

TEST_F(EncoderImport, InterruptedImportKeepsFinishedRows) {
  const int n = 60;
  Tree(n, 1.0);
  SaveAudioModule(t_.Path("models/audio_enc.pt"), 192, 3, /*rounds=*/80);  // ~50 ms per file
  const std::string args = "--adapter generic_csv --root " + t_.root() + " --out " + t_.Path("out/c.h5") +
                           " --threads 1 --features logmel64_stats --checkpoint-every 0 --json --log-level debug" +
                           Encoders();
  const std::string log = t_.Path("import.log");
  const pid_t pid = Spawn(args, log);
  ASSERT_GT(pid, 0);
  // Wait until a chunk has finished (the debug line), then SIGTERM.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool started = false;
  while (!started && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    started = Slurp(log).find("utterances done") != std::string::npos;
  }
  ASSERT_TRUE(started) << Slurp(log);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string out = Slurp(log);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  ASSERT_EQ(WEXITSTATUS(status), 3) << out;  // stopped with work left: re-run to resume
  EXPECT_NE(out.find("interrupted after"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(t_.Path("out/c.h5"))) << "an interrupted import must not leave a store";
  auto partial = ReadStoreInfo(t_.Path("out/c.h5.partial"));
  ASSERT_TRUE(partial.ok()) << partial.status().ToString() << "\n" << out;
  EXPECT_GT(partial->num_utterances, 0);
  EXPECT_LT(partial->num_utterances, n);

  // The re-run resumes from the checkpoint and removes it.
  auto resumed = RunImport(args.substr(0, args.find(" --log-level")) + " --log-level warn" + Encoders());
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const auto rj = Json(resumed.output);
  EXPECT_EQ(rj["reused"], partial->num_utterances);
  EXPECT_EQ(rj["extracted"], n - partial->num_utterances);
  EXPECT_FALSE(fs::exists(t_.Path("out/c.h5.partial")));

  // Same content as an uninterrupted import, even one with another --threads
  // (encoder rows do not depend on the thread count).
  auto full = RunImport(Base("out/full.h5") + Encoders());
  ASSERT_EQ(full.code, 0) << full.output;
  EXPECT_EQ(Json(full.output)["extracted"], n);
  EXPECT_EQ(rj["content_hash"], Json(full.output)["content_hash"]);
  auto info = ReadStoreInfo(t_.Path("out/c.h5"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->content_hash, rj["content_hash"]);
}

TEST_F(EncoderImport, PeriodicCheckpointSurvivesSigkill) {
  const int n = 40;
  Tree(n, 1.0);
  SaveAudioModule(t_.Path("models/audio_enc.pt"), 192, 3, /*rounds=*/80);
  const std::string args = "--adapter generic_csv --root " + t_.root() + " --out " + t_.Path("out/c.h5") +
                           " --threads 1 --features logmel64_stats --checkpoint-every 0.05 --json --log-level warn" +
                           Encoders();
  const pid_t pid = Spawn(args, t_.Path("import.log"));
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(t_.Path("out/c.h5.partial")) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  auto partial = ReadStoreInfo(t_.Path("out/c.h5.partial"));
  ASSERT_TRUE(partial.ok()) << partial.status().ToString() << "\n" << Slurp(t_.Path("import.log"));
  ASSERT_GT(partial->num_utterances, 0);
  auto resumed = RunImport(args);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_GE(Json(resumed.output)["reused"].get<int64_t>(), partial->num_utterances);
  auto c = ReadFeatureStore(t_.Path("out/c.h5"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->size(), size_t(n));
}

TEST(EncoderImportReal, EmodbWithSmallEncoder) {
  const std::string root = std::string(EMOSWEEP_SHARED_DIR) + "/corpora/emodb";
  if (!fs::exists(root + "/wav")) GTEST_SKIP() << root << " not present (real-corpus test)";
  if (!fs::exists(EMOSWEEP_BINARY)) GTEST_SKIP() << EMOSWEEP_BINARY << " missing";
  AdapterTree t;
  SaveAudioModule(t.Path("small.pt"), 16, 7);
  SaveTextModule(t.Path("bytes.pt"));
  auto r = RunImport("--adapter emodb --root " + root + " --out " + t.Path("emodb.h5") +
                     " --threads 2 --features logmel64_stats --json --log-level warn --audio-encoder " + t.Path("small.pt") +
                     " --text-encoder " + t.Path("bytes.pt"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto c = ReadFeatureStore(t.Path("emodb.h5"));  // validates: every value finite
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const FeatureSet* s = c->FindFeature("enc_audio_small");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->rows(), 535);
  EXPECT_EQ(s->dim, 16);
  for (float v : s->values) ASSERT_TRUE(std::isfinite(v));
  // Not a constant vector: the encoder saw different audio per file.
  EXPECT_NE(std::vector<float>(s->row(0), s->row(0) + 16), std::vector<float>(s->row(1), s->row(1) + 16));
  // EmoDB's ten sentences as transcripts: 535 rows, ten distinct vectors.
  const FeatureSet* tx = c->FindFeature("enc_text_bytes");
  ASSERT_NE(tx, nullptr);
  EXPECT_EQ(tx->rows(), 535);
  EXPECT_EQ(tx->dim, 3);
  std::set<std::vector<float>> distinct;
  for (int64_t i = 0; i < tx->rows(); ++i) distinct.insert(std::vector<float>(tx->row(i), tx->row(i) + 3));
  EXPECT_EQ(distinct.size(), 10u);
}

}  // namespace
}  // namespace emosweep::data::encoder
