// worker/job_config.h: one job described in user terms (JOB.toml) → JobSpec.
//
// `emosweep train --config JOB.toml` runs a single job without a protocol
// file. The TOML names stores, feature sets per modality, the classes (a list
// or a named label set), the data (a split file + fold over one store, or
// whole stores per role), the model, train and adapt tables, the selection
// policy and the seed. Relative paths are relative to the TOML file. Every
// section is validated (unknown keys are errors naming the line); the train
// section is replaced by its effective config so the job id covers defaults.
// Format: docs/trainer.md. Thread-safety: pure function (reads files).
#pragma once

#include <string>

#include "core/status.h"
#include "worker/job.h"

namespace emosweep::worker {

Result<JobSpec> JobSpecFromTomlFile(const std::string& path);

}  // namespace emosweep::worker
