# Optional backends: AUTO (use if found), ON (required), OFF (never).
set(EMOSWEEP_WITH_MPI AUTO CACHE STRING "Build the MPI communicator (AUTO/ON/OFF)")
set(EMOSWEEP_WITH_NCCL AUTO CACHE STRING "Build the NCCL gradient reducer (AUTO/ON/OFF)")
set(EMOSWEEP_WITH_CUDA AUTO CACHE STRING "Use CUDA devices through libtorch (AUTO/ON/OFF)")
set_property(CACHE EMOSWEEP_WITH_MPI PROPERTY STRINGS AUTO ON OFF)
set_property(CACHE EMOSWEEP_WITH_NCCL PROPERTY STRINGS AUTO ON OFF)
set_property(CACHE EMOSWEEP_WITH_CUDA PROPERTY STRINGS AUTO ON OFF)
option(EMOSWEEP_BUILD_TESTS "Build the test suite" ON)
option(EMOSWEEP_BUILD_BENCH "Build the benchmarks" ON)
# A separate clang build of the libFuzzer harnesses (fuzz/README.md): only the
# torch-free libraries, instrumented with -fsanitize=fuzzer-no-link,address,undefined.
option(EMOSWEEP_FUZZ "Build only the libFuzzer harnesses (clang; see fuzz/README.md)" OFF)

# emosweep_resolve_option(<var> <found>): turns AUTO into ON/OFF, fails if ON but missing.
function(emosweep_resolve_option var found what)
  if(${var} STREQUAL "OFF")
    set(${var}_ENABLED OFF PARENT_SCOPE)
  elseif(found)
    set(${var}_ENABLED ON PARENT_SCOPE)
  elseif(${var} STREQUAL "ON")
    message(FATAL_ERROR "${var}=ON but ${what} was not found")
  else()
    set(${var}_ENABLED OFF PARENT_SCOPE)
  endif()
endfunction()
