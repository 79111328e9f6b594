#include "data/import/pickle_opcodes.h"

#include <array>
#include <cstdio>
#include <cstring>

namespace emosweep::data::pickle_internal {
namespace {

struct Table {
  std::array<OpcodeInfo, 256> ops{};
  void Set(uint8_t code, const char* name, ArgKind arg, bool supported) { ops[code] = {name, arg, supported}; }
  Table() {
    using A = ArgKind;
    // Executed: what the seed pickles (protocol 4 outer, protocol 2 legacy torch.save inner) use, plus
    // their obvious siblings (TUPLE2/3, SETITEM, APPEND, the LONG_ memo forms, 8-byte strings).
    Set('(', "MARK", A::kNone, true);
    Set('.', "STOP", A::kNone, true);
    Set('J', "BININT", A::kI4, true);
    Set('K', "BININT1", A::kU1, true);
    Set('M', "BININT2", A::kU2, true);
    Set('N', "NONE", A::kNone, true);
    Set('Q', "BINPERSID", A::kNone, true);
    Set('R', "REDUCE", A::kNone, true);
    Set('X', "BINUNICODE", A::kStr4, true);
    Set('a', "APPEND", A::kNone, true);
    Set('c', "GLOBAL", A::kLine2, true);
    Set('}', "EMPTY_DICT", A::kNone, true);
    Set('e', "APPENDS", A::kNone, true);
    Set('h', "BINGET", A::kU1, true);
    Set('j', "LONG_BINGET", A::kU4, true);
    Set(']', "EMPTY_LIST", A::kNone, true);
    Set('q', "BINPUT", A::kU1, true);
    Set('r', "LONG_BINPUT", A::kU4, true);
    Set('s', "SETITEM", A::kNone, true);
    Set('t', "TUPLE", A::kNone, true);
    Set(')', "EMPTY_TUPLE", A::kNone, true);
    Set('u', "SETITEMS", A::kNone, true);
    Set('G', "BINFLOAT", A::kF8, true);
    Set(0x80, "PROTO", A::kU1, true);
    Set(0x85, "TUPLE1", A::kNone, true);
    Set(0x86, "TUPLE2", A::kNone, true);
    Set(0x87, "TUPLE3", A::kNone, true);
    Set(0x88, "NEWTRUE", A::kNone, true);
    Set(0x89, "NEWFALSE", A::kNone, true);
    Set(0x8a, "LONG1", A::kLong1, true);
    Set('B', "BINBYTES", A::kStr4, true);
    Set('C', "SHORT_BINBYTES", A::kStr1, true);
    Set(0x8c, "SHORT_BINUNICODE", A::kStr1, true);
    Set(0x8d, "BINUNICODE8", A::kStr8, true);
    Set(0x8e, "BINBYTES8", A::kStr8, true);
    Set(0x93, "STACK_GLOBAL", A::kNone, true);
    Set(0x94, "MEMOIZE", A::kNone, true);
    Set(0x95, "FRAME", A::kU8, true);
    // Known but refused: object construction, text protocol 0 forms, sets, extensions, buffers.
    Set('0', "POP", A::kNone, false);
    Set('1', "POP_MARK", A::kNone, false);
    Set('2', "DUP", A::kNone, false);
    Set('F', "FLOAT", A::kLine, false);
    Set('I', "INT", A::kLine, false);
    Set('L', "LONG", A::kLine, false);
    Set('P', "PERSID", A::kLine, false);
    Set('S', "STRING", A::kLine, false);
    Set('T', "BINSTRING", A::kStr4, false);
    Set('U', "SHORT_BINSTRING", A::kStr1, false);
    Set('V', "UNICODE", A::kLine, false);
    Set('b', "BUILD", A::kNone, false);
    Set('d', "DICT", A::kNone, false);
    Set('g', "GET", A::kLine, false);
    Set('i', "INST", A::kLine2, false);
    Set('l', "LIST", A::kNone, false);
    Set('o', "OBJ", A::kNone, false);
    Set('p', "PUT", A::kLine, false);
    Set(0x81, "NEWOBJ", A::kNone, false);
    Set(0x82, "EXT1", A::kU1, false);
    Set(0x83, "EXT2", A::kU2, false);
    Set(0x84, "EXT4", A::kI4, false);
    Set(0x8b, "LONG4", A::kLong4, false);
    Set(0x8f, "EMPTY_SET", A::kNone, false);
    Set(0x90, "ADDITEMS", A::kNone, false);
    Set(0x91, "FROZENSET", A::kNone, false);
    Set(0x92, "NEWOBJ_EX", A::kNone, false);
    Set(0x96, "BYTEARRAY8", A::kStr8, false);
    Set(0x97, "NEXT_BUFFER", A::kNone, false);
    Set(0x98, "READONLY_BUFFER", A::kNone, false);
  }
};

const Table& GetTable() {
  static const Table kTable;
  return kTable;
}

uint64_t LoadLe(const char* p, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
  return v;
}

// Python's LONG1/LONG4: little-endian two's complement of any length.
void DecodeLong(std::string_view b, OpArg* arg) {
  arg->fits_int64 = b.size() <= 8;
  if (b.empty() || !arg->fits_int64) return;
  uint64_t v = LoadLe(b.data(), static_cast<int>(b.size()));
  if (b.size() < 8 && (static_cast<uint8_t>(b.back()) & 0x80)) v |= ~uint64_t{0} << (8 * b.size());
  arg->i = static_cast<int64_t>(v);
}

}  // namespace

const OpcodeInfo& Opcode(uint8_t code) { return GetTable().ops[code]; }

std::string OpName(uint8_t code) {
  if (const char* n = Opcode(code).name) return n;
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", code);
  return buf;
}

Status DecodeOp(std::string_view data, size_t pos, const std::string& where, uint8_t* code, OpArg* arg,
                size_t* next) {
  auto at = [&](size_t p) { return where + ": byte " + std::to_string(p) + ": "; };
  if (pos >= data.size()) return Status::Corruption(at(pos) + "truncated pickle: the data ends before a STOP opcode");
  *code = static_cast<uint8_t>(data[pos]);
  const OpcodeInfo& info = Opcode(*code);
  if (!info.name) return Status::Corruption(at(pos) + "not a pickle opcode: " + OpName(*code));
  *arg = OpArg{};
  size_t p = pos + 1;
  const size_t left = data.size() - p;
  auto truncated = [&](size_t need) {
    return Status::Corruption(at(pos) + "truncated pickle: " + info.name + " needs " + std::to_string(need) +
                              " more bytes, only " + std::to_string(data.size() - p) + " left");
  };
  auto fixed = [&](size_t n) -> bool { return left >= n; };
  switch (info.arg) {
    case ArgKind::kNone: break;
    case ArgKind::kU1: case ArgKind::kU2: case ArgKind::kU4: case ArgKind::kU8: {
      const int n = info.arg == ArgKind::kU1 ? 1 : info.arg == ArgKind::kU2 ? 2 : info.arg == ArgKind::kU4 ? 4 : 8;
      if (!fixed(n)) return truncated(n);
      arg->u = LoadLe(data.data() + p, n);
      p += n;
      break;
    }
    case ArgKind::kI4:
      if (!fixed(4)) return truncated(4);
      arg->i = static_cast<int32_t>(static_cast<uint32_t>(LoadLe(data.data() + p, 4)));
      p += 4;
      break;
    case ArgKind::kF8: {
      if (!fixed(8)) return truncated(8);
      uint64_t be = 0;  // BINFLOAT is big-endian
      for (int k = 0; k < 8; ++k) be = (be << 8) | static_cast<uint8_t>(data[p + k]);
      std::memcpy(&arg->f, &be, 8);
      p += 8;
      break;
    }
    case ArgKind::kLong1: case ArgKind::kLong4: case ArgKind::kStr1: case ArgKind::kStr4: case ArgKind::kStr8: {
      const bool is1 = info.arg == ArgKind::kLong1 || info.arg == ArgKind::kStr1;
      const int n = is1 ? 1 : info.arg == ArgKind::kStr8 ? 8 : 4;
      if (!fixed(n)) return truncated(n);
      uint64_t len = LoadLe(data.data() + p, n);
      if (info.arg == ArgKind::kLong4 && (len & 0x80000000u))
        return Status::Corruption(at(pos) + "LONG4 with a negative length");
      p += n;
      if (len > data.size() - p) return truncated(len);
      arg->bytes = data.substr(p, len);
      p += len;
      if (info.arg == ArgKind::kLong1 || info.arg == ArgKind::kLong4) DecodeLong(arg->bytes, arg);
      break;
    }
    case ArgKind::kLine: case ArgKind::kLine2: {
      for (int line = 0; line < (info.arg == ArgKind::kLine2 ? 2 : 1); ++line) {
        size_t nl = data.find('\n', p);
        if (nl == std::string_view::npos) return Status::Corruption(at(pos) + "truncated pickle: " + info.name +
                                                                    " argument has no terminating newline");
        (line == 0 ? arg->bytes : arg->second) = data.substr(p, nl - p);
        p = nl + 1;
      }
      break;
    }
  }
  *next = p;
  return Status::Ok();
}

}  // namespace emosweep::data::pickle_internal
