// fuzz/fuzz_store.cc: the HDF5 feature-store reader (data/feature_store.cc).
//
// Input: an HDF5 file (a store as WriteFeatureStore writes it, damaged). It
// is written to a scratch file and read with ReadStoreInfo, then with
// ReadFeatureStore (frames loaded, content hash verified).
// Checks: no crash, leak, hang or out-of-bounds access in emosweep's reader;
// a store that reads back is self-consistent (one value row per utterance,
// frame offsets inside the frame array).
// Crashes inside libhdf5 itself are reported as such in docs/fuzzing.md.
#include <cstdint>
#include <cstdlib>

#include "data/feature_store.h"
#include "fuzz/fuzz_util.h"

using namespace emosweep;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::WriteScratch("fuzz.h5", data, size);
  (void)data::ReadStoreInfo(path);
  data::StoreReadOptions opt;
  opt.load_frames = true;
  opt.verify = true;
  auto c = data::ReadFeatureStore(path, opt);
  if (!c.ok()) return 0;
  const size_t n = c.value().utterances.size();
  for (const auto& f : c.value().features) {
    if (f.dim <= 0 || f.values.size() != n * static_cast<size_t>(f.dim)) std::abort();
    if (!f.has_frames()) continue;
    if (f.offsets.size() != n + 1 || f.offsets.front() != 0) std::abort();
    for (size_t i = 0; i < n; ++i)
      if (f.offsets[i] > f.offsets[i + 1]) std::abort();
    if (static_cast<size_t>(f.offsets.back()) * static_cast<size_t>(f.frame_dim) != f.frames.size()) std::abort();
  }
  return 0;
}
