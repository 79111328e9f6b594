// worker/job.h: the trainer's entry points for one job (libtorch behind them).
//
// The job contract itself (JobSpec, JobResult, JobContext, the training
// config table, metrics, schedules) lives in jobs/, which is torch-free; this
// header declares what the worker does with it. The worker's own code names
// the contract's types unqualified through the using-directive below.
// Thread-safety: RunJob does not crash when called concurrently from several
// threads on different JobSpecs (each job owns its model and data), but the
// results are then not reproducible: torch's default generator and
// at::set_num_threads are process-wide. Reproducible runs use one job at a time
// per process (`emosweep run` starts one process per concurrent job).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "jobs/job.h"
#include "jobs/metrics.h"
#include "jobs/schedule.h"
#include "jobs/train_config.h"

namespace emosweep::worker {

using namespace emosweep::jobs;  // NOLINT: the worker implements the jobs contract

// Runs one job end to end: load data, build model, train, select, evaluate.
Result<JobResult> RunJob(const JobSpec& spec, const JobContext& context);

// CUDA devices this process can use (0 in a build without CUDA or without a visible GPU).
int CudaDeviceCount();

// Pre-flight check of the model files among `jobs` (`torchscript`, docs/models.md): each distinct
// file is loaded and run once on 2 rows of its job's feature dims, as the trainer will. Ok, or
// InvalidArgument naming the file and what was expected (not TorchScript, wrong forward signature,
// no parameters, wrong logits shape, NaN). Jobs without a model file cost nothing. Defined in
// worker/model_check.cc.
Status CheckModelFiles(const std::vector<JobSpec>& jobs);

// Reads a job's checkpoint file back (magic, size, checksum, tensor table): Ok, or why it
// cannot be used (missing, truncated, corrupt). Defined in worker/checkpoint.cc.
Status VerifyCheckpointFile(const std::string& path);

}  // namespace emosweep::worker
