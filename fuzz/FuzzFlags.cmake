# fuzz/FuzzFlags.cmake: compiler flags of the libFuzzer build (EMOSWEEP_FUZZ=ON).
# Every translation unit is instrumented for coverage and checked by ASan and
# UBSan; the harness executables add the libFuzzer driver (-fsanitize=fuzzer).
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "EMOSWEEP_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++-14 "
                      "-DCMAKE_C_COMPILER=clang-14 (scripts/fuzz.sh does)")
endif()
# Assertions stay on; -O1 keeps ASan reports readable and the harnesses fast enough.
set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O1 -g")
set(CMAKE_C_FLAGS_RELWITHDEBINFO "-O1 -g")
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
set(EMOSWEEP_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(EMOSWEEP_BUILD_BENCH OFF CACHE BOOL "" FORCE)
