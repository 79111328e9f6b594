// worker/module_api.h: the table of entry points of the torch module
// (libemosweep_torch.so), the only place libtorch lives for the `emosweep`
// executable (docs/design/torch_module.md).
//
// The executable links no torch: commands that train or extract with an
// encoder dlopen() the module on first use (cli/torch_module.h) and call
// through this table. The module is built from the same sources, by the same
// compiler, in the same build as the executable, so C++ types (JobSpec,
// Status, std::function) cross the boundary as they are; `version` and the
// sizes below catch a module left over from another build. Everything else
// in the module is hidden (a version script exports only the entry point),
// so its copies of core/, jobs/, data/ keep their own static state: what
// must agree (the log level and rank) is passed in with every call, and the
// stop flag and callbacks travel in JobContext.
// This header is torch-free. Thread-safety: the table is immutable; the
// functions are as thread-safe as the worker functions they forward to.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/adapters/import_corpus.h"
#include "data/audio/decode.h"
#include "data/encoder/torchscript_encoder.h"
#include "jobs/job.h"

namespace emosweep::worker {

// Bump when a member of TorchModuleApi or the meaning of one changes.
inline constexpr int kTorchModuleApiVersion = 3;

// The file name of the module and the name of its one exported symbol.
inline constexpr char kTorchModuleFile[] = "libemosweep_torch.so";
inline constexpr char kTorchModuleEntry[] = "emosweep_torch_module_api";

struct TorchModuleApi {
  int version = kTorchModuleApiVersion;
  // sizeof of the contract types as the module saw them (a stale module fails the check).
  size_t job_spec_size = sizeof(jobs::JobSpec);
  size_t job_context_size = sizeof(jobs::JobContext);
  size_t job_result_size = sizeof(jobs::JobResult);

  // Sets the module's copy of the log level and rank (core/log.h).
  void (*set_log)(int level, int rank) = nullptr;
  // worker::JobSpecFromTomlFile (worker/job_config.h): in the module because it checks the
  // stores through the trainer's process-wide store cache, which RunJob then reuses.
  Result<jobs::JobSpec> (*job_spec_from_toml_file)(const std::string& path) = nullptr;
  // worker::RunJob (worker/job.h).
  Result<jobs::JobResult> (*run_job)(const jobs::JobSpec& spec, const jobs::JobContext& context) = nullptr;
  // worker::RunPack (worker/pack.h): K jobs trained as one batched model.
  std::vector<Result<jobs::JobResult>> (*run_pack)(const std::vector<jobs::JobSpec>& members,
                                                   const std::vector<jobs::JobContext>& contexts) = nullptr;
  // worker::CudaDeviceCount.
  int (*cuda_device_count)() = nullptr;
  // worker::CheckModelFiles (worker/job.h): TorchScript model files, loaded and run on a tiny batch.
  Status (*check_model_files)(const std::vector<jobs::JobSpec>& jobs) = nullptr;
  // worker::VerifyCheckpointFile (reads the tensor table: needs torch).
  Status (*verify_checkpoint_file)(const std::string& path) = nullptr;
  // data::encoder::LoadEncoderExtractor (data/encoder/encoder_extractor.h).
  Result<std::unique_ptr<data::ImportExtractor>> (*load_encoder_extractor)(
      const std::string& pt_path, data::encoder::EncoderModality modality, const std::string& set_name,
      const data::audio::DecodeOptions& decode, int threads) = nullptr;
};

// The module's entry point: the table, or nullptr when `version` is not the module's.
using TorchModuleEntryFn = const TorchModuleApi* (*)(int version);

}  // namespace emosweep::worker
