// fuzz/fuzz_protocol.cc: protocol files (core/toml_json.cc, protocols/grammar*.cc).
//
// Input: a protocol TOML document. It is parsed into JSON with source lines
// (ParseTomlString) and checked by the grammar (ParseProtocol: keys, types,
// models and their config tables, grids, budgets, splits, tables), with
// environment variables ignored so runs are reproducible.
// Checks: no crash, leak, hang or out-of-bounds access; a bad document is an
// error, never an exception escaping the parser.
#include <cstdint>
#include <string>

#include "core/toml_json.h"
#include "fuzz/fuzz_util.h"
#include "protocols/grammar.h"

using namespace emosweep;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto doc = ParseTomlString(text, fuzz::ScratchDir() + "/fuzz.toml");
  if (!doc.ok()) return 0;
  protocols::LoadOptions opt;
  opt.use_environment = false;
  opt.store_dir = fuzz::ScratchDir();
  (void)protocols::ParseProtocol(doc.value(), opt);
  return 0;
}
