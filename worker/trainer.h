// worker/trainer.h: the training loop behind worker::RunJob (job.h).
//
// One Trainer runs one JobSpec: loads its splits, builds the model (and the
// domain adapter for `adapt` jobs), trains with the fused optimizer over the
// flat parameter buffer, validates, early-stops, selects the epoch by the
// job's policy (source_val / target_val / last / oracle), checkpoints for
// resume and preemption, and evaluates every named set. The algorithm, step
// by step, is in docs/trainer.md.
// Data parallel: every rank of JobContext::reducer runs the same loop on its
// shard of each global batch; gradients are averaged over the flat buffer
// weighted by per-rank sample counts. A world of one is the same code.
// Thread-safety: one Trainer per job; torch's global RNG is seeded per job, so
// concurrent jobs in one process are not bitwise reproducible (run one job
// per worker process, as the orchestrator does).
#pragma once

#include "core/status.h"
#include "worker/job.h"

namespace emosweep::worker {

// RunJob without the exception boundary (exceptions propagate). RunJob wraps it.
Result<JobResult> RunJobUnguarded(const JobSpec& spec, const JobContext& context);

// Where a job's resumable state and final model live under JobContext::work_dir.
std::string JobStatePath(const std::string& work_dir, const std::string& job_id);
// A finished job's resume state: the file, and its job directory when nothing else is in it (a kept model
// checkpoint stays), so a sweep's work directory does not fill with empty directories.
void RemoveJobState(const std::string& state_path);
std::string JobModelPath(const std::string& work_dir, const std::string& job_id);

}  // namespace emosweep::worker
