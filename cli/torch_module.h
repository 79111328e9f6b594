// cli/torch_module.h: libtorch on demand for the `emosweep` executable.
//
// The executable links no torch, so state commands (plan, table, ledger,
// report, submit, data inspect, version) start in milliseconds. What trains
// (train, run, worker) or extracts with a TorchScript encoder (data import
// --audio-encoder/--text-encoder) calls these functions, which dlopen()
// libemosweep_torch.so on first use (worker/module_api.h) and forward to it.
// The module is looked for, in order, at $EMOSWEEP_TORCH_MODULE (a file),
// beside the executable (its /proc/self/exe directory), and in ../lib of
// that directory (an installed prefix/bin + prefix/lib layout). Missing: a
// NotFound status (exit 2) naming every path tried; present but unusable (a
// loader error, another build's module): FailedPrecondition naming the file.
// Each call first hands the module this process's log level and rank.
// Thread-safety: every function may be called from any thread; the module
// loads once and is never unloaded.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/adapters/import_corpus.h"
#include "data/audio/decode.h"
#include "data/encoder/torchscript_encoder.h"
#include "jobs/job.h"

namespace emosweep::cli {

// Where the module is (stat only; loads nothing): its path, or NotFound naming the paths tried.
Result<std::string> FindTorchModule();

// Loads the module (once) and checks that it belongs to this build.
Status LoadTorchModule();

Result<jobs::JobSpec> TorchJobSpecFromTomlFile(const std::string& path);
Result<jobs::JobResult> TorchRunJob(const jobs::JobSpec& spec, const jobs::JobContext& context);
// worker::RunPack (worker/pack.h): one outcome per member, in order (all the module's load error if it fails).
std::vector<Result<jobs::JobResult>> TorchRunPack(const std::vector<jobs::JobSpec>& members,
                                                  const std::vector<jobs::JobContext>& contexts);
Result<int> TorchCudaDeviceCount();
Status TorchVerifyCheckpointFile(const std::string& path);
// worker::CheckModelFiles; loads the module only when a job has a model file (`torchscript`).
Status TorchCheckModelFiles(const std::vector<jobs::JobSpec>& jobs);
Result<std::unique_ptr<data::ImportExtractor>> TorchLoadEncoderExtractor(const std::string& pt_path,
                                                                         data::encoder::EncoderModality modality,
                                                                         const std::string& set_name,
                                                                         const data::audio::DecodeOptions& decode,
                                                                         int threads);

}  // namespace emosweep::cli
