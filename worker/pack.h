// worker/pack.h: RunPack, K jobs trained as one batched model (issue 16).
//
// The members share a non-empty jobs::PackKey (jobs/pack.h). Each member's
// result is the one worker::RunJob would give it alone (the reference path;
// docs/design/packing.md says where this holds bitwise and where within a
// stated tolerance); a member that fails or diverges fails alone, the others
// go on. contexts[i] belongs to members[i] (work dir, checkpoints, stop flag,
// progress callback); the pack runs with contexts[0]'s threads and device.
// Thread-safety: one RunPack per thread; libtorch is process-wide (see job.h).
#pragma once

#include <vector>

#include "core/status.h"
#include "worker/job.h"

namespace emosweep::worker {

std::vector<Result<JobResult>> RunPack(const std::vector<JobSpec>& members, const std::vector<JobContext>& contexts);

}  // namespace emosweep::worker
