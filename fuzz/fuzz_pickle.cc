// fuzz/fuzz_pickle.cc: the restricted unpickler (data/import/pickle*.cc).
//
// Input: a pickle byte stream, as the seed repositories' feature files.
// Checks: ParseSeedPickle and PickleOpcodeHistogram never crash, leak or read
// out of bounds; every tensor they return lies inside its storage, and its
// values can be read (ToFloat32 / ScalarInt).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "data/import/pickle.h"
#include "fuzz/fuzz_util.h"

using namespace emosweep;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)data::PickleOpcodeHistogram(bytes, "fuzz.pkl");
  auto records = data::ParseSeedPickle(bytes, "fuzz.pkl");
  if (!records.ok()) return 0;
  for (const auto& r : records.value())
    for (const auto& [key, v] : r.fields) {
      if (v.kind != data::PickledValue::Kind::kTensor) continue;
      const data::PickledTensor& t = v.tensor;
      // A returned tensor must fit its storage (the reader's contract).
      if (!t.storage || t.numel() < 0 || t.byte_offset > t.storage->size() ||
          t.nbytes() > t.storage->size() - t.byte_offset)
        std::abort();
      auto f = t.ToFloat32(key);
      if (f.ok() && static_cast<int64_t>(f.value().size()) != t.numel()) std::abort();
      (void)t.ScalarInt(key);
    }
  return 0;
}
