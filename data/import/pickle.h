// data/import/pickle.h: a restricted unpickler for the seeds' feature pickles.
//
// The seed repositories (GloMER, CemoBAM, HemoGAT, multimodal-ser) store
// features as a Python pickle (protocol 4) of a list of dicts whose values are
// torch tensors, ints, bools and strings (layout: docs/formats/import.md and
// specs/seed-methods.md §0.3). This reader executes only the opcodes those
// files use and only an allow-list of globals (tensor/storage rebuilders and
// collections.OrderedDict); it never calls arbitrary Python callables. Any
// other global or opcode is an error naming the file, the byte offset and
// the opcode or global. Tensor bytes are shared with the decoded storage, so
// reading a file copies each payload once.
// Thread-safety: functions are reentrant; results are plain values.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace emosweep::data {

enum class PickleDType { kFloat32, kFloat64, kFloat16, kInt64, kInt32, kInt16, kInt8, kUInt8, kBool };
const char* PickleDTypeName(PickleDType dtype);
size_t PickleDTypeSize(PickleDType dtype);

// A dense, C-contiguous, little-endian tensor. Its bytes live in the decoded
// storage it was rebuilt from (shared, immutable).
struct PickledTensor {
  PickleDType dtype = PickleDType::kFloat32;
  std::vector<int64_t> shape;  // empty = 0-dim scalar
  std::shared_ptr<const std::string> storage;
  size_t byte_offset = 0;

  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * PickleDTypeSize(dtype); }
  const char* data() const { return storage->data() + byte_offset; }
  // The scalar value of a one-element integer/bool tensor (e.g. a label).
  Result<int64_t> ScalarInt(const std::string& where) const;
  // The values as float32 (float32 copied bit for bit, float64/float16 converted).
  Result<std::vector<float>> ToFloat32(const std::string& where) const;
};

struct PickledValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTensor };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  PickledTensor tensor;
  const char* KindName() const;
};

// One element of the top-level list: a dict with string keys, in file order.
struct PickledRecord {
  std::vector<std::pair<std::string, PickledValue>> fields;
  const PickledValue* Find(const std::string& key) const;
};

// Decodes a whole seed pickle. `where` names the file in messages.
Result<std::vector<PickledRecord>> ParseSeedPickle(std::string_view data, const std::string& where);
Result<std::vector<PickledRecord>> ReadSeedPickle(const std::string& path);

// Debugging aid (and how the supported opcode set was chosen): counts the
// opcodes of the top-level stream by name without executing anything.
Result<std::map<std::string, int64_t>> PickleOpcodeHistogram(std::string_view data, const std::string& where);
// Opcode names the restricted unpickler executes.
const std::vector<std::string>& SupportedPickleOpcodes();
// "module.name" globals the unpickler accepts.
const std::vector<std::string>& PickleGlobalAllowList();

}  // namespace emosweep::data
