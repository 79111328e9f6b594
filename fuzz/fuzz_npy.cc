// fuzz/fuzz_npy.cc: the .npy and .npz readers (data/import/npy.cc).
//
// Input: an .npy file, or an .npz (zip) archive when it starts with "PK".
// Checks: no crash, leak or out-of-bounds read; a parsed array holds exactly
// product(shape) values; every member an archive lists can be read or refused.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "data/import/npy.h"
#include "fuzz/fuzz_util.h"

using namespace emosweep;

namespace {

void CheckArray(const data::NpyArray& a) {
  int64_t n = 1;
  for (int64_t d : a.shape) {
    if (d < 0) std::abort();
    n *= d;
  }
  if (static_cast<int64_t>(a.values.size()) != n) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
    auto npz = data::NpzArchive::Open(fuzz::WriteScratch("fuzz.npz", data, size));
    if (!npz.ok()) return 0;
    for (const auto& key : npz.value().Keys()) {
      auto a = npz.value().Read(key);
      if (a.ok()) CheckArray(a.value());
    }
    return 0;
  }
  auto a = data::ParseNpy(bytes, "fuzz.npy");
  if (a.ok()) CheckArray(a.value());
  return 0;
}
