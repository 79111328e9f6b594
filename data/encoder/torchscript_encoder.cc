#include "data/encoder/torchscript_encoder.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/files.h"
#include "core/hash.h"

namespace emosweep::data::encoder {
namespace {
// libtorch's message without its C++ backtrace ("Exception raised from ... frame #0: ..."), at most 300 chars.
std::string TorchMessage(const std::exception& e) {
  const auto* c = dynamic_cast<const c10::Error*>(&e);
  std::string what = c ? c->what_without_backtrace() : e.what();
  const size_t cut = what.find("Exception raised from");
  if (cut != std::string::npos) what.resize(cut);
  while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
  return what.size() > 300 ? what.substr(0, 300) + "..." : what;
}
}  // namespace

struct TorchScriptEncoder::Impl {
  torch::jit::Module module;
};

TorchScriptEncoder::TorchScriptEncoder() : impl_(std::make_unique<Impl>()) {}
TorchScriptEncoder::~TorchScriptEncoder() = default;

Result<std::unique_ptr<TorchScriptEncoder>> TorchScriptEncoder::Load(const std::string& path,
                                                                     EncoderModality modality) {
  ES_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (bytes.empty()) return Status::Corruption(path + ": empty file, not a TorchScript module");
  std::unique_ptr<TorchScriptEncoder> enc(new TorchScriptEncoder());
  enc->path_ = path;
  enc->modality_ = modality;
  enc->sha256_ = Sha256Hex(bytes);
  try {
    enc->impl_->module = torch::jit::load(path, torch::kCPU);
    enc->impl_->module.eval();
  } catch (const std::exception& e) {
    return Status::Corruption(path + ": cannot load TorchScript module (save it with torch.jit.save): " +
                              TorchMessage(e));
  }
  return enc;
}

std::unique_ptr<TorchScriptEncoder> TorchScriptEncoder::Share() const {
  std::unique_ptr<TorchScriptEncoder> enc(new TorchScriptEncoder());
  enc->path_ = path_;
  enc->modality_ = modality_;
  enc->sha256_ = sha256_;
  enc->dim_ = dim_;
  enc->impl_->module = impl_->module;  // a handle: same object, same parameters
  return enc;
}

namespace {

// [1, T', D] / [T', D] / [1, D] → mean over the time axis → D floats.
Result<std::vector<float>> Pool(const torch::IValue& out, const std::string& where) {
  if (!out.isTensor()) return Status::InvalidArgument(where + ": encoder forward() must return a tensor");
  torch::Tensor t = out.toTensor().to(torch::kCPU, torch::kFloat32);
  if (t.dim() == 3) {
    if (t.size(0) != 1) return Status::InvalidArgument(where + ": encoder output batch must be 1, got " + std::to_string(t.size(0)));
    t = t.squeeze(0);
  }
  if (t.dim() != 2 || t.size(0) < 1 || t.size(1) < 1) {
    return Status::InvalidArgument(where + ": encoder output must be [1, T, D], [T, D] or [1, D], got " +
                                   std::to_string(t.dim()) + "-d tensor");
  }
  t = t.mean(0).contiguous();
  std::vector<float> v(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  for (float x : v) {
    if (!std::isfinite(x)) return Status::InvalidArgument(where + ": encoder produced a non-finite value");
  }
  return v;
}

}  // namespace

Result<std::vector<float>> TorchScriptEncoder::EncodeWaveform(const float* samples, int64_t num_samples) {
  if (modality_ != EncoderModality::kAudio) return Status::FailedPrecondition(path_ + ": a text encoder cannot encode audio");
  if (num_samples <= 0) return Status::InvalidArgument(path_ + ": empty waveform");
  Result<std::vector<float>> pooled = Status::Internal("unset");
  try {
    torch::NoGradGuard no_grad;
    // from_blob does not copy; the module only reads its input.
    torch::Tensor in = torch::from_blob(const_cast<float*>(samples), {1, num_samples}, torch::kFloat32);
    pooled = Pool(impl_->module.forward({in}), path_);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path_ + ": encoder forward() failed: " + TorchMessage(e));
  }
  if (!pooled.ok()) return pooled;
  if (dim_ == 0) dim_ = int64_t(pooled->size());
  if (int64_t(pooled->size()) != dim_) {
    return Status::InvalidArgument(path_ + ": encoder output dimension changed from " + std::to_string(dim_) + " to " +
                                   std::to_string(pooled->size()));
  }
  return pooled;
}

Result<std::vector<float>> TorchScriptEncoder::EncodeText(const std::string& utf8) {
  if (modality_ != EncoderModality::kText) return Status::FailedPrecondition(path_ + ": an audio encoder cannot encode text");
  const std::string text = utf8.empty() ? std::string(" ") : utf8;
  Result<std::vector<float>> pooled = Status::Internal("unset");
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor in = torch::empty({1, int64_t(text.size())}, torch::kInt64);
    int64_t* p = in.data_ptr<int64_t>();
    for (size_t i = 0; i < text.size(); ++i) p[i] = static_cast<unsigned char>(text[i]);
    pooled = Pool(impl_->module.forward({in}), path_);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path_ + ": encoder forward() failed: " + TorchMessage(e));
  }
  if (!pooled.ok()) return pooled;
  if (dim_ == 0) dim_ = int64_t(pooled->size());
  if (int64_t(pooled->size()) != dim_) {
    return Status::InvalidArgument(path_ + ": encoder output dimension changed from " + std::to_string(dim_) + " to " +
                                   std::to_string(pooled->size()));
  }
  return pooled;
}

namespace {

constexpr const char* kAudioContract = "float32 [1, T] mono waveform at 16 kHz";
constexpr const char* kTextContract = "int64 [1, L] UTF-8 bytes (empty text -> one space)";

FeatureSet MakeSet(const TorchScriptEncoder& enc, const std::string& name, const char* modality, const char* contract) {
  FeatureSet fs;
  fs.name = name;
  fs.modality = modality;
  fs.provenance = {{"extractor", "emosweep.torchscript_encoder"},
                   {"extractor_version", 1},
                   {"encoder_file", std::filesystem::path(enc.path()).filename().string()},
                   {"encoder_sha256", enc.sha256()},
                   {"input", contract},
                   {"pooling", "mean over time"},
                   {"docs", "docs/features.md"}};
  return fs;
}

}  // namespace

FeatureSet EmptyEncoderSet(const TorchScriptEncoder& encoder, const std::string& set_name,
                           const audio::DecodeOptions* decode) {
  if (!decode) return MakeSet(encoder, set_name, "text", kTextContract);
  FeatureSet fs = MakeSet(encoder, set_name, "audio", kAudioContract);
  fs.provenance["normalisation"] = audio::NormalisationName(decode->normalisation);
  return fs;
}

Result<FeatureSet> EncodeAudioFiles(TorchScriptEncoder& encoder, const std::vector<std::string>& wav_paths,
                                    const audio::DecodeOptions& decode, const std::string& set_name,
                                    Progress* progress) {
  FeatureSet fs = EmptyEncoderSet(encoder, set_name, &decode);
  for (const auto& path : wav_paths) {
    ES_ASSIGN_OR_RETURN(audio::Waveform wave, audio::DecodeAudio(path, decode));
    auto v = encoder.EncodeWaveform(wave.samples.data(), int64_t(wave.samples.size()));
    if (!v.ok()) return v.status().WithContext(path);
    fs.values.insert(fs.values.end(), v->begin(), v->end());
    if (progress) progress->Add(1);
  }
  fs.dim = encoder.dim();
  fs.provenance["dim"] = fs.dim;
  return fs;
}

Result<FeatureSet> EncodeTexts(TorchScriptEncoder& encoder, const std::vector<std::string>& texts,
                               const std::string& set_name, Progress* progress) {
  FeatureSet fs = EmptyEncoderSet(encoder, set_name, nullptr);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto v = encoder.EncodeText(texts[i]);
    if (!v.ok()) {
      const std::string excerpt = texts[i].size() > 60 ? texts[i].substr(0, 60) + "..." : texts[i];
      return v.status().WithContext("transcript '" + excerpt + "'");
    }
    fs.values.insert(fs.values.end(), v->begin(), v->end());
    if (progress) progress->Add(1);
  }
  fs.dim = encoder.dim();
  fs.provenance["dim"] = fs.dim;
  return fs;
}

}  // namespace emosweep::data::encoder
