// jobs/pack.h: which jobs may train together as one pack (issue 16).
//
// A pack is K ready jobs trained as one batched model (worker/pack.h): its
// parameters carry a leading K dimension, and every member keeps its own data
// order, RNG streams, optimizer state, schedule, early stopping and epoch
// selection, so that each member's result is the one it would have alone.
// Jobs pack together only when their PackKey()s are equal and non-empty.
// The rule (what may differ inside a pack, what never packs) is in
// docs/design/packing.md. Torch-free: the scheduler forms packs.
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "jobs/job.h"

namespace emosweep::jobs {

// "" = this job never packs (it runs alone); otherwise jobs with equal keys may
// form one pack.
std::string PackKey(const JobSpec& spec);

// The `adapt` variants the batched trainer packs (mmd_rbf, mk_mmd_linear, mk_mmd_quadratic, coral_deep,
// coral_mean_cov, dann_ganin, dann_tllib); a job with another variant never packs.
bool PackableAdaptVariant(const std::string& variant);

}  // namespace emosweep::jobs
