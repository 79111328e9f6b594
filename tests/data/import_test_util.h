// tests/data/import_test_util.h: writers for the importer tests.
//
// The tests build their own inputs (seed-format pickles, .npy/.npz files,
// CSVs) byte by byte, so that each bad-input case is one small edit of a
// valid file. The pickle writer emits the same layout as the real seed files
// (protocol 4 outer list of dicts, tensors rebuilt from legacy torch.save
// byte streams), which the real-file test checks opcode by opcode.
// Thread-safety: plain functions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace emosweep::data::testing {

struct SeedRecord {
  std::vector<float> text, audio;  // empty = key left out
  int64_t label = 0;
  std::string sample_id;           // empty = key left out
};

struct PickleWriterOptions {
  // Replaces collections.OrderedDict in every tensor, e.g. {"os", "system"}.
  std::pair<std::string, std::string> backward_hooks_global = {"collections", "OrderedDict"};
  // The legacy storage streams list no storage key, so no element count and no data follow (helper-63).
  bool empty_storage_key_list = false;
};

std::string SeedPickleBytes(const std::vector<SeedRecord>& records, const PickleWriterOptions& options = {});

// NPY v1 (or v2 when `version` is 2) of a C-order array; `descr` like "<f4".
std::string NpyBytes(const std::string& descr, const std::vector<int64_t>& shape, const std::string& payload,
                     int version = 1, bool fortran = false);
std::string NpyF32(const std::vector<int64_t>& shape, const std::vector<float>& values);

// A zip archive (stored or deflated members), with numpy's zip64 local extra
// fields when `zip64` is set, as numpy.savez writes them.
std::string ZipBytes(const std::vector<std::pair<std::string, std::string>>& members, bool deflate,
                     bool zip64 = false);

void WriteBytes(const std::string& path, const std::string& bytes);

// A fresh directory under the gtest temp dir, named after the running test.
std::string TestDir();
// Files in `dir` (names), sorted.
std::vector<std::string> ListDir(const std::string& dir);

}  // namespace emosweep::data::testing
