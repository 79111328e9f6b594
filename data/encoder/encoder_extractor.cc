#include "data/encoder/encoder_extractor.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <thread>

namespace emosweep::data::encoder {
namespace {

class EncoderExtractor : public ImportExtractor {
 public:
  EncoderExtractor(std::unique_ptr<TorchScriptEncoder> encoder, std::string set_name, audio::DecodeOptions decode,
                   int threads)
      : encoder_(std::move(encoder)), set_name_(std::move(set_name)), decode_(decode), threads_(threads) {}

  FeatureSet EmptySet() const override {
    return EmptyEncoderSet(*encoder_, set_name_, audio_input() ? &decode_ : nullptr);
  }
  bool audio_input() const override { return encoder_->modality() == EncoderModality::kAudio; }
  // Contiguous slices of `inputs` on `threads_` threads, each with its own
  // handle and single-threaded kernels: row i is computed the same way
  // whatever the thread count, so the result is bitwise reproducible.
  Result<FeatureSet> Extract(const std::vector<std::string>& inputs, Progress* progress) override {
    const int64_t n = static_cast<int64_t>(inputs.size());
    const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads_, n));
    if (workers == 1) return Run(*encoder_, inputs, progress);
    std::vector<Result<FeatureSet>> parts(size_t(workers), Status::Internal("not run"));
    std::vector<std::unique_ptr<TorchScriptEncoder>> handles;
    std::vector<std::thread> pool;
    for (int64_t w = 0; w < workers; ++w) handles.push_back(encoder_->Share());
    for (int64_t w = 0; w < workers; ++w) {
      pool.emplace_back([&, w] {
        // A new thread starts with OpenMP's default thread count, which BLAS
        // calls would use; take torch's setting (1) as every torch thread must.
        at::init_num_threads();
        const std::vector<std::string> slice(inputs.begin() + n * w / workers, inputs.begin() + n * (w + 1) / workers);
        parts[size_t(w)] = Run(*handles[size_t(w)], slice, progress);
      });
    }
    for (auto& t : pool) t.join();
    // The first failing slice holds the first bad input in order.
    for (auto& p : parts)
      if (!p.ok()) return p.status();
    FeatureSet out = std::move(parts[0]).value();
    for (size_t w = 1; w < parts.size(); ++w) {
      const FeatureSet& p = *parts[w];
      if (p.dim != out.dim)
        return Status::InvalidArgument(encoder_->path() + ": encoder output dimension changed from " +
                                       std::to_string(out.dim) + " to " + std::to_string(p.dim));
      out.values.insert(out.values.end(), p.values.begin(), p.values.end());
    }
    return out;
  }

 private:
  Result<FeatureSet> Run(TorchScriptEncoder& enc, const std::vector<std::string>& inputs, Progress* progress) const {
    if (audio_input()) return EncodeAudioFiles(enc, inputs, decode_, set_name_, progress);
    return EncodeTexts(enc, inputs, set_name_, progress);
  }

  std::unique_ptr<TorchScriptEncoder> encoder_;
  std::string set_name_;
  audio::DecodeOptions decode_;
  int threads_;
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
  // Parallel over inputs, not inside kernels (see Extract).
  torch::set_num_threads(1);
  const std::string name = set_name.empty() ? DefaultEncoderSetName(pt_path, modality) : set_name;
  return std::unique_ptr<ImportExtractor>(new EncoderExtractor(std::move(enc), name, decode, std::max(1, threads)));
}

}  // namespace emosweep::data::encoder
