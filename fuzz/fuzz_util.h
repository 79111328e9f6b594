// fuzz/fuzz_util.h: helpers shared by the libFuzzer harnesses.
//
// Readers that take a path (libsndfile, HDF5, the .npz archive, the table
// importer, JOB.toml) get the input through a file in a per-process scratch
// directory (under /dev/shm when it exists, so no disk I/O per execution).
// Thread-safety: none needed (libFuzzer runs one input at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace emosweep::fuzz {

// The process's scratch directory (created on first use, removed at exit).
const std::string& ScratchDir();

// Writes `size` bytes to ScratchDir()/name and returns the path.
std::string WriteScratch(const std::string& name, const uint8_t* data, size_t size);
std::string WriteScratch(const std::string& name, const std::string& text);

// Silences LOG_* output (the readers log progress; a fuzzer prints millions of inputs).
void QuietLogs();

}  // namespace emosweep::fuzz
