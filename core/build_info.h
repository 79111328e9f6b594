// core/build_info.h: what this binary is, for provenance and `emosweep version`.
// Thread-safety: returns a fresh value; reentrant.
#pragma once

#include <nlohmann/json.hpp>

namespace emosweep {

// {"version", "git_revision", "compiler", "build_type", "with_mpi", "with_nccl",
//  "with_cuda", "torch_version", "hdf5_version", "sqlite_version"}.
nlohmann::json BuildInfo();

}  // namespace emosweep
