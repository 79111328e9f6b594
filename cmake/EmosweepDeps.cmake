# Third-party dependencies. Everything here comes from Debian 12 packages
# (scripts/install-deps.sh installs them) except CUDA/NCCL, which come with
# the GPU machine image and stay optional.

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)              # SHA-256
find_package(SQLite3 REQUIRED)              # ledger
find_package(HDF5 REQUIRED COMPONENTS C)    # feature store
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3.10 REQUIRED)

# toml++ is header-only; Debian ships a CMake config, but fall back to the header.
find_package(tomlplusplus QUIET)
if(NOT TARGET tomlplusplus::tomlplusplus)
  find_path(TOMLPP_INCLUDE_DIR toml++/toml.h REQUIRED)
  add_library(tomlplusplus::tomlplusplus INTERFACE IMPORTED)
  set_target_properties(tomlplusplus::tomlplusplus PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${TOMLPP_INCLUDE_DIR}")
endif()

pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET sndfile)
pkg_check_modules(SOXR REQUIRED IMPORTED_TARGET soxr)

add_library(emosweep_hdf5 INTERFACE)
target_include_directories(emosweep_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(emosweep_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
target_compile_definitions(emosweep_hdf5 INTERFACE ${HDF5_DEFINITIONS} H5_USE_110_API)

# The fuzz build (fuzz/CMakeLists.txt) needs none of what follows; it looks
# for libtorch itself, for the one harness that needs it.
if(EMOSWEEP_FUZZ)
  return()
endif()

# --- libtorch -------------------------------------------------------------
# A CUDA libtorch 2.x is found through CMAKE_PREFIX_PATH (see scripts/gpu-check.sh).
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "$ENV{TORCH_CUDA_ARCH_LIST}")
endif()
find_package(Torch REQUIRED)
add_library(emosweep_torch INTERFACE)
target_link_libraries(emosweep_torch INTERFACE ${TORCH_LIBRARIES})
# Torch's config adds its flags to TORCH_CXX_FLAGS (ABI define); apply them only to torch targets.
separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(emosweep_torch INTERFACE ${_torch_flags})

# CUDA through libtorch: present when torch was built with CUDA and the user did not turn it off.
set(_torch_has_cuda OFF)
if(TORCH_CUDA_LIBRARIES OR CUDA_FOUND OR TARGET torch_cuda)
  set(_torch_has_cuda ON)
endif()
emosweep_resolve_option(EMOSWEEP_WITH_CUDA ${_torch_has_cuda} "a CUDA-enabled libtorch")
if(EMOSWEEP_WITH_CUDA_ENABLED)
  target_compile_definitions(emosweep_torch INTERFACE EMOSWEEP_HAVE_CUDA=1)
endif()

# --- MPI ------------------------------------------------------------------
if(NOT EMOSWEEP_WITH_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS C)
endif()
emosweep_resolve_option(EMOSWEEP_WITH_MPI "${MPI_C_FOUND}" "MPI (libopenmpi-dev)")
if(EMOSWEEP_WITH_MPI_ENABLED)
  find_program(EMOSWEEP_MPIEXEC NAMES mpirun mpiexec)
endif()

# --- NCCL -----------------------------------------------------------------
if(NOT EMOSWEEP_WITH_NCCL STREQUAL "OFF")
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS /usr/local/cuda/include $ENV{NCCL_HOME}/include)
  find_library(NCCL_LIBRARY nccl HINTS /usr/local/cuda/lib64 $ENV{NCCL_HOME}/lib)
  find_path(CUDART_INCLUDE_DIR cuda_runtime_api.h HINTS /usr/local/cuda/include)
  find_library(CUDART_LIBRARY cudart HINTS /usr/local/cuda/lib64)
endif()
set(_nccl_found OFF)
if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY AND CUDART_LIBRARY AND EMOSWEEP_WITH_MPI_ENABLED)
  set(_nccl_found ON)
endif()
emosweep_resolve_option(EMOSWEEP_WITH_NCCL ${_nccl_found} "NCCL + CUDA runtime (+ MPI for bootstrap)")

message(STATUS "emosweep: MPI=${EMOSWEEP_WITH_MPI_ENABLED} NCCL=${EMOSWEEP_WITH_NCCL_ENABLED} CUDA=${EMOSWEEP_WITH_CUDA_ENABLED} torch=${Torch_VERSION}")

# --- Torch precompiled header, shared by every torch translation unit --------
add_library(emosweep_torch_pch OBJECT "${CMAKE_SOURCE_DIR}/cmake/torch_pch.cc")
target_link_libraries(emosweep_torch_pch PUBLIC emosweep_torch)
target_precompile_headers(emosweep_torch_pch PRIVATE <torch/torch.h>)

# emosweep_use_torch(<target>): links libtorch and reuses the shared PCH.
# Executables compile with -fPIE, which GCC refuses to combine with a PCH built
# with -fPIC (it warns and parses torch/torch.h again); a trailing -fPIC makes
# their flags match the PCH's (PIC objects link into PIE executables).
function(emosweep_use_torch target)
  target_link_libraries(${target} PUBLIC emosweep_torch)
  target_precompile_headers(${target} REUSE_FROM emosweep_torch_pch)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "EXECUTABLE")
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()
