// data/encoder/torchscript_encoder.h: a user's TorchScript encoder as a feature set.
//
// `--audio-encoder FILE.pt` / `--text-encoder FILE.pt` load a module saved with
// torch.jit.save (torch::jit::load) and call its forward():
//   audio: input float32 [1, T] waveform (mono, 16 kHz, as data/audio/decode.h
//          produces it), output float [1, T', D] (or [1, D] / [T', D]);
//   text:  input int64 [1, L] holding the UTF-8 bytes of the transcript
//          (values 0..255; an empty transcript becomes the single byte 0x20),
//          output float [1, L', D] (or [1, D] / [L', D]).
// The output is mean-pooled over its time axis into one D-vector per
// utterance. D is learnt from the first call; later outputs must agree.
// This header is torch-free (pimpl) so non-torch code (the CLI) may include
// it; only data/encoder/torchscript_encoder.cc (target emosweep_data_torch)
// includes torch.
// Thread-safety: an encoder object is NOT safe for concurrent Encode* calls
// (it learns D); give each thread its own handle from Share(), which shares
// the loaded module (TorchScript inference on one module from several threads
// is safe). Inference runs under NoGradGuard, on CPU, in eval mode.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/status.h"
#include "data/audio/decode.h"
#include "data/corpus.h"

namespace emosweep::data::encoder {

enum class EncoderModality { kAudio, kText };

class TorchScriptEncoder {
 public:
  // NotFound when the file is missing, Corruption when torch cannot load it.
  static Result<std::unique_ptr<TorchScriptEncoder>> Load(const std::string& path, EncoderModality modality);
  ~TorchScriptEncoder();

  EncoderModality modality() const { return modality_; }
  const std::string& path() const { return path_; }
  const std::string& sha256() const { return sha256_; }  // of the .pt file (provenance)
  int64_t dim() const { return dim_; }                    // 0 until the first Encode

  // Another handle on the same loaded module (parameters shared, not copied)
  // for another thread; it starts with this handle's D.
  std::unique_ptr<TorchScriptEncoder> Share() const;

  Result<std::vector<float>> EncodeWaveform(const float* samples, int64_t num_samples);
  Result<std::vector<float>> EncodeText(const std::string& utf8);

 private:
  struct Impl;
  TorchScriptEncoder();
  EncoderModality modality_ = EncoderModality::kAudio;
  std::string path_;
  std::string sha256_;
  int64_t dim_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Batch helpers building a FeatureSet named `set_name` (row i = input i),
// provenance {extractor, encoder path, sha256, contract}. Errors name the
// input file (audio) or the transcript (text).
// The set EncodeAudioFiles (decode != null) / EncodeTexts (decode == null)
// builds, without rows: name, modality and provenance ("dim" not yet known).
FeatureSet EmptyEncoderSet(const TorchScriptEncoder& encoder, const std::string& set_name,
                           const audio::DecodeOptions* decode);

Result<FeatureSet> EncodeAudioFiles(TorchScriptEncoder& encoder, const std::vector<std::string>& wav_paths,
                                    const audio::DecodeOptions& decode, const std::string& set_name,
                                    Progress* progress);
Result<FeatureSet> EncodeTexts(TorchScriptEncoder& encoder, const std::vector<std::string>& texts,
                               const std::string& set_name, Progress* progress);

}  // namespace emosweep::data::encoder
