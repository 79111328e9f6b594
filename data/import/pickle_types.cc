// Value types of data/import/pickle.h and the opcode histogram.
#include <cstring>

#include "data/import/pickle.h"
#include "data/import/pickle_opcodes.h"

namespace emosweep::data {
namespace {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: renormalize
    exp = 113;
    while (!(man & 0x400)) {
      man <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

const char* PickleDTypeName(PickleDType d) {
  switch (d) {
    case PickleDType::kFloat32: return "float32";
    case PickleDType::kFloat64: return "float64";
    case PickleDType::kFloat16: return "float16";
    case PickleDType::kInt64: return "int64";
    case PickleDType::kInt32: return "int32";
    case PickleDType::kInt16: return "int16";
    case PickleDType::kInt8: return "int8";
    case PickleDType::kUInt8: return "uint8";
    case PickleDType::kBool: return "bool";
  }
  return "?";
}

size_t PickleDTypeSize(PickleDType d) {
  switch (d) {
    case PickleDType::kFloat64: case PickleDType::kInt64: return 8;
    case PickleDType::kFloat32: case PickleDType::kInt32: return 4;
    case PickleDType::kFloat16: case PickleDType::kInt16: return 2;
    default: return 1;
  }
}

int64_t PickledTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The tensor's bytes lie inside its storage (a second guard behind the storage checks of pickle_torch.cc).
Status InStorage(const PickledTensor& t, const std::string& where) {
  if (!t.storage || t.byte_offset + t.nbytes() > t.storage->size())
    return Status::Corruption(where + ": tensor data (" + std::to_string(t.nbytes()) + " bytes at " +
                              std::to_string(t.byte_offset) + ") lies outside its storage of " +
                              std::to_string(t.storage ? t.storage->size() : 0) + " bytes");
  return Status::Ok();
}

Result<int64_t> PickledTensor::ScalarInt(const std::string& where) const {
  if (numel() != 1)
    return Status::InvalidArgument(where + ": expected a one-element tensor, got " + std::to_string(numel()) + " elements");
  ES_RETURN_IF_ERROR(InStorage(*this, where));
  const char* p = data();
  switch (dtype) {
    case PickleDType::kInt64: { int64_t v; std::memcpy(&v, p, 8); return v; }
    case PickleDType::kInt32: { int32_t v; std::memcpy(&v, p, 4); return int64_t{v}; }
    case PickleDType::kInt16: { int16_t v; std::memcpy(&v, p, 2); return int64_t{v}; }
    case PickleDType::kInt8: return int64_t{static_cast<int8_t>(*p)};
    case PickleDType::kUInt8: case PickleDType::kBool: return int64_t{static_cast<uint8_t>(*p)};
    default: break;
  }
  return Status::InvalidArgument(where + ": expected an integer tensor, got " + PickleDTypeName(dtype));
}

Result<std::vector<float>> PickledTensor::ToFloat32(const std::string& where) const {
  ES_RETURN_IF_ERROR(InStorage(*this, where));
  const int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  const char* p = data();
  switch (dtype) {
    case PickleDType::kFloat32:
      if (n > 0) std::memcpy(out.data(), p, static_cast<size_t>(n) * 4);  // bit for bit (an empty tensor: no copy)
      return out;
    case PickleDType::kFloat64:
      for (int64_t k = 0; k < n; ++k) {
        double v;
        std::memcpy(&v, p + 8 * k, 8);
        out[k] = static_cast<float>(v);
      }
      return out;
    case PickleDType::kFloat16:
      for (int64_t k = 0; k < n; ++k) {
        uint16_t v;
        std::memcpy(&v, p + 2 * k, 2);
        out[k] = HalfToFloat(v);
      }
      return out;
    default: break;
  }
  return Status::InvalidArgument(where + ": expected a floating-point tensor, got " + PickleDTypeName(dtype));
}

const char* PickledValue::KindName() const {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kTensor: return "tensor";
  }
  return "?";
}

const PickledValue* PickledRecord::Find(const std::string& key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}

Result<std::map<std::string, int64_t>> PickleOpcodeHistogram(std::string_view data, const std::string& where) {
  std::map<std::string, int64_t> hist;
  size_t pos = 0;
  while (true) {
    uint8_t code;
    pickle_internal::OpArg arg;
    size_t next;
    ES_RETURN_IF_ERROR(pickle_internal::DecodeOp(data, pos, where, &code, &arg, &next));
    ++hist[pickle_internal::OpName(code)];
    pos = next;
    if (code == '.') return hist;
  }
}

const std::vector<std::string>& SupportedPickleOpcodes() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> v;
    for (int c = 0; c < 256; ++c)
      if (pickle_internal::Opcode(static_cast<uint8_t>(c)).supported) v.push_back(pickle_internal::Opcode(static_cast<uint8_t>(c)).name);
    return v;
  }();
  return kNames;
}

}  // namespace emosweep::data
