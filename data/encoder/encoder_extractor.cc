#include "data/encoder/encoder_extractor.h"

#include <torch/torch.h>

#include <filesystem>

namespace emosweep::data::encoder {
namespace {

class EncoderExtractor : public ImportExtractor {
 public:
  EncoderExtractor(std::unique_ptr<TorchScriptEncoder> encoder, std::string set_name, audio::DecodeOptions decode)
      : encoder_(std::move(encoder)), set_name_(std::move(set_name)), decode_(decode) {}

  FeatureSet EmptySet() const override {
    return EmptyEncoderSet(*encoder_, set_name_, audio_input() ? &decode_ : nullptr);
  }
  bool audio_input() const override { return encoder_->modality() == EncoderModality::kAudio; }
  Result<FeatureSet> Extract(const std::vector<std::string>& inputs, Progress* progress) override {
    if (audio_input()) return EncodeAudioFiles(*encoder_, inputs, decode_, set_name_, progress);
    return EncodeTexts(*encoder_, inputs, set_name_, progress);
  }

 private:
  std::unique_ptr<TorchScriptEncoder> encoder_;
  std::string set_name_;
  audio::DecodeOptions decode_;
};

}  // namespace

std::string DefaultEncoderSetName(const std::string& pt_path, EncoderModality modality) {
  std::string stem = std::filesystem::path(pt_path).stem().string();
  for (char& c : stem) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) c = '_';
  }
  if (stem.empty()) stem = "encoder";
  return std::string(modality == EncoderModality::kAudio ? "enc_audio_" : "enc_text_") + stem;
}

Result<std::unique_ptr<ImportExtractor>> LoadEncoderExtractor(const std::string& pt_path, EncoderModality modality,
                                                              const std::string& set_name,
                                                              const audio::DecodeOptions& decode, int threads) {
  if (set_name.find('/') != std::string::npos)
    return Status::InvalidArgument("encoder feature set name '" + set_name + "' must not contain '/'");
  ES_ASSIGN_OR_RETURN(std::unique_ptr<TorchScriptEncoder> enc, TorchScriptEncoder::Load(pt_path, modality));
  if (threads > 0) torch::set_num_threads(threads);
  const std::string name = set_name.empty() ? DefaultEncoderSetName(pt_path, modality) : set_name;
  return std::unique_ptr<ImportExtractor>(new EncoderExtractor(std::move(enc), name, decode));
}

}  // namespace emosweep::data::encoder
