// orchestrator/slice.h: independent slices of a job DAG (Slurm job arrays).
//
// `emosweep run --slice i/N` runs only slice i: jobs are grouped into the
// connected components of the dependency graph (a pre-training job and its
// fine-tune/few-shot/DA dependents stay together), and components are dealt
// round-robin in protocol order. Slices never depend on each other, so the N
// array tasks can run in any order on one shared ledger.
// Thread-safety: pure function.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "protocols/expand.h"

namespace emosweep::orchestrator {

// Parses "i/N" (0 <= i < N).
Status ParseSlice(const std::string& text, int* index, int* count);
std::vector<protocols::PlannedJob> SliceJobs(const std::vector<protocols::PlannedJob>& jobs, int index, int count);

}  // namespace emosweep::orchestrator
