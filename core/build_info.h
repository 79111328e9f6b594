// core/build_info.h: what this binary is, for provenance and `emosweep version`.
// Thread-safety: returns a fresh value; reentrant.
#pragma once

#include <nlohmann/json.hpp>

namespace emosweep {

// {"version", "git_revision", "compiler", "build_type", "with_mpi", "with_nccl",
//  "with_cuda", "torch_version", "hdf5_version", "sqlite_version"}.
nlohmann::json BuildInfo();
// The executable sets the revision it was built from (cmake/git_revision.cmake, read at build time); without
// it BuildInfo says the revision CMake saw when it last configured.
void SetGitRevision(const char* revision);

}  // namespace emosweep
