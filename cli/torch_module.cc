// cli/torch_module.cc: finds, loads and calls libemosweep_torch.so (cli/torch_module.h).
#include "cli/torch_module.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/log.h"
#include "worker/module_api.h"

namespace emosweep::cli {
namespace {

namespace fs = std::filesystem;

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("EMOSWEEP_TORCH_MODULE"); env && *env) out.push_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / worker::kTorchModuleFile).string());
    out.push_back((exe.parent_path().parent_path() / "lib" / worker::kTorchModuleFile).string());
  }
  return out;
}

struct Loaded {
  Status status = Status::Internal("torch module not loaded");
  const worker::TorchModuleApi* api = nullptr;
};

Loaded Load() {
  Loaded l;
  auto path = FindTorchModule();
  if (!path.ok()) {
    l.status = path.status();
    return l;
  }
  // RTLD_LOCAL: the module's (hidden) copies of our libraries never bind to the executable's.
  // RTLD_NOW: a libtorch that lacks a symbol fails here, with a message, not mid-sweep (lazy
  // binding would save ~10 ms of the ~350 ms load).
  void* handle = ::dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    l.status = Status::FailedPrecondition(*path + ": cannot load the torch module: " + (why ? why : "unknown error"));
    return l;
  }
  auto entry = reinterpret_cast<worker::TorchModuleEntryFn>(::dlsym(handle, worker::kTorchModuleEntry));
  const worker::TorchModuleApi* api = entry ? entry(worker::kTorchModuleApiVersion) : nullptr;
  const worker::TorchModuleApi mine;
  if (!entry || !api || api->job_spec_size != mine.job_spec_size || api->job_context_size != mine.job_context_size ||
      api->job_result_size != mine.job_result_size || !api->set_log || !api->job_spec_from_toml_file || !api->run_job || !api->run_pack || !api->cuda_device_count ||
      !api->verify_checkpoint_file || !api->load_encoder_extractor || !api->check_model_files) {
    l.status = Status::FailedPrecondition(*path + ": not the torch module of this emosweep build (" +
                                          (entry ? "interface version or layout differs" :
                                                   std::string("no symbol ") + worker::kTorchModuleEntry) +
                                          "); rebuild it with the executable");
    return l;  // the handle stays open: unloading a library whose constructors ran is not worth the risk
  }
  LOG_DEBUG << "torch module: " << *path;
  l.status = Status::Ok();
  l.api = api;
  return l;
}

Result<const worker::TorchModuleApi*> Api() {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [] { loaded = Load(); });
  if (!loaded.status.ok()) return loaded.status;
  loaded.api->set_log(static_cast<int>(GetLogLevel()), GetLogRank());
  return loaded.api;
}

}  // namespace

Result<std::string> FindTorchModule() {
  std::string tried;
  for (const auto& c : Candidates()) {
    if (IsFile(c)) return c;
    tried += (tried.empty() ? "" : ", ") + c;
  }
  return Status::NotFound(std::string("the torch module ") + worker::kTorchModuleFile +
                          " (training and encoders need it) is missing; looked at " +
                          (tried.empty() ? std::string("nothing (/proc/self/exe unreadable)") : tried) +
                          " (set EMOSWEEP_TORCH_MODULE to its path)");
}

Status LoadTorchModule() { return Api().status(); }

Result<jobs::JobSpec> TorchJobSpecFromTomlFile(const std::string& path) {
  ES_ASSIGN_OR_RETURN(const worker::TorchModuleApi* api, Api());
  return api->job_spec_from_toml_file(path);
}

Result<jobs::JobResult> TorchRunJob(const jobs::JobSpec& spec, const jobs::JobContext& context) {
  ES_ASSIGN_OR_RETURN(const worker::TorchModuleApi* api, Api());
  return api->run_job(spec, context);
}

std::vector<Result<jobs::JobResult>> TorchRunPack(const std::vector<jobs::JobSpec>& members,
                                                  const std::vector<jobs::JobContext>& contexts) {
  Result<const worker::TorchModuleApi*> api = Api();
  if (!api.ok()) return std::vector<Result<jobs::JobResult>>(members.size(), api.status());
  return (*api)->run_pack(members, contexts);
}

Result<int> TorchCudaDeviceCount() {
  ES_ASSIGN_OR_RETURN(const worker::TorchModuleApi* api, Api());
  return api->cuda_device_count();
}

Status TorchCheckModelFiles(const std::vector<jobs::JobSpec>& jobs) {
  bool any = false;
  for (const auto& j : jobs) any = any || (j.model.is_object() && j.model.contains("file"));  // as CheckModelFiles
  if (!any) return Status::Ok();
  ES_ASSIGN_OR_RETURN(const worker::TorchModuleApi* api, Api());
  return api->check_model_files(jobs);
}

Status TorchVerifyCheckpointFile(const std::string& path) {
  ES_ASSIGN_OR_RETURN(const worker::TorchModuleApi* api, Api());
  return api->verify_checkpoint_file(path);
}

Result<std::unique_ptr<data::ImportExtractor>> TorchLoadEncoderExtractor(const std::string& pt_path,
                                                                         data::encoder::EncoderModality modality,
                                                                         const std::string& set_name,
                                                                         const data::audio::DecodeOptions& decode,
                                                                         int threads) {
  ES_ASSIGN_OR_RETURN(const worker::TorchModuleApi* api, Api());
  return api->load_encoder_extractor(pt_path, modality, set_name, decode, threads);
}

}  // namespace emosweep::cli
