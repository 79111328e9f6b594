// worker/module_entry.cc: the one exported symbol of libemosweep_torch.so,
// the torch module the `emosweep` executable loads on demand
// (worker/module_api.h, cli/torch_module.h, docs/design/torch_module.md).
#include "core/log.h"
#include "data/encoder/encoder_extractor.h"
#include "worker/job.h"
#include "worker/job_config.h"
#include "worker/module_api.h"
#include "worker/pack.h"

namespace emosweep::worker {
namespace {

void SetLog(int level, int rank) {
  if (level >= static_cast<int>(LogLevel::kDebug) && level <= static_cast<int>(LogLevel::kQuiet))
    SetLogLevel(static_cast<LogLevel>(level));
  SetLogRank(rank);
}

TorchModuleApi MakeApi() {
  TorchModuleApi api;
  api.set_log = SetLog;
  api.job_spec_from_toml_file = JobSpecFromTomlFile;
  api.run_job = RunJob;
  api.run_pack = RunPack;
  api.cuda_device_count = CudaDeviceCount;
  api.verify_checkpoint_file = VerifyCheckpointFile;
  api.check_model_files = CheckModelFiles;
  api.load_encoder_extractor = data::encoder::LoadEncoderExtractor;
  return api;
}

}  // namespace
}  // namespace emosweep::worker

extern "C" __attribute__((visibility("default"))) const emosweep::worker::TorchModuleApi* emosweep_torch_module_api(
    int version) {
  static const emosweep::worker::TorchModuleApi api = emosweep::worker::MakeApi();
  return version == api.version ? &api : nullptr;
}
