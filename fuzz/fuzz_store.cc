// fuzz/fuzz_store.cc: the HDF5 feature-store reader (data/feature_store.cc).
//
// Input: an HDF5 file (a store as WriteFeatureStore writes it, damaged). It
// is written to a scratch file and read with ReadStoreInfo, then with
// ReadFeatureStore (frames loaded, content hash verified).
// Checks: no crash, leak, hang or out-of-bounds access in emosweep's reader;
// a store that reads back is self-consistent (one value row per utterance,
// frame offsets inside the frame array).
// The readers are the guarded entry points every command uses: libhdf5 reads
// a new file in a child process first (data/store_verify.h), so a libhdf5
// crash or hang there is an error (Corruption), not a finding; the time limit
// is EMOSWEEP_STORE_CHECK_TIMEOUT (fuzz/run_target.sh sets 1 s). To fuzz
// libhdf5 and the reader in this process instead (how libhdf5's own bugs were
// found), run with FUZZ_STORE_UNGUARDED=1 (fuzz/README.md).
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdlib>

#include "data/feature_store.h"
#include "data/store_verify.h"
#include "fuzz/fuzz_util.h"

using namespace emosweep;

namespace {
// In the checking child: libFuzzer's death callback would write the input as
// a crash artifact of the whole fuzzer when ASan stops the child.
void NoDeathCallback() { __sanitizer_set_death_callback(nullptr); }
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  data::SetStoreCheckChildHook(&NoDeathCallback);
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
