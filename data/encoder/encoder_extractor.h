// data/encoder/encoder_extractor.h: a TorchScript encoder as an extra feature
// set of `data import --adapter` (an ImportExtractor, data/adapters/import_corpus.h).
//
// Set names default to enc_audio_<stem> / enc_text_<stem> (<stem> = the .pt
// file name without extension, characters outside [A-Za-z0-9_.-] replaced by
// '_'). The set's provenance (encoder file name, its sha256, input contract,
// pooling, audio normalisation) decides reuse on a re-run: a different .pt
// (other bytes) never reuses the old vectors. The header is torch-free.
// Thread-safety: an extractor is used from one thread (it starts its own workers).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "data/adapters/import_corpus.h"
#include "data/audio/decode.h"
#include "data/encoder/torchscript_encoder.h"

namespace emosweep::data::encoder {

std::string DefaultEncoderSetName(const std::string& pt_path, EncoderModality modality);

// Loads the module now (NotFound / Corruption name the file), so a bad .pt
// fails before any extraction. `set_name` "" = the default name. Extract
// runs `threads` inputs at a time, each on one thread with single-threaded
// torch kernels (torch's intra-op pool is set to 1, process-wide), so the
// vectors do not depend on the thread count.
Result<std::unique_ptr<ImportExtractor>> LoadEncoderExtractor(const std::string& pt_path, EncoderModality modality,
                                                              const std::string& set_name,
                                                              const audio::DecodeOptions& decode, int threads);

}  // namespace emosweep::data::encoder
