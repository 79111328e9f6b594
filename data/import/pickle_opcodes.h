// data/import/pickle_opcodes.h: the pickle opcode table (internal to data/import).
//
// Shared by the restricted unpickler (pickle.cc) and the opcode histogram used
// to find out which opcodes real files contain. Knows every opcode of
// protocols 0-5 so that a file using one we do not execute gets a message
// naming it, not "unknown byte".
// Thread-safety: immutable tables; functions are reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace emosweep::data::pickle_internal {

enum class ArgKind : uint8_t { kNone, kU1, kU2, kI4, kU4, kU8, kF8, kLong1, kLong4, kStr1, kStr4, kStr8, kLine, kLine2 };

struct OpcodeInfo {
  const char* name = nullptr;  // nullptr: not a pickle opcode
  ArgKind arg = ArgKind::kNone;
  bool supported = false;      // executed by the restricted unpickler
};

const OpcodeInfo& Opcode(uint8_t code);

struct OpArg {
  uint64_t u = 0;           // kU1, kU2, kU4, kU8
  int64_t i = 0;            // kI4, and kLong1/kLong4 when it fits (fits_int64)
  bool fits_int64 = true;
  double f = 0;             // kF8
  std::string_view bytes;   // kStr*, kLong*, first line of kLine/kLine2
  std::string_view second;  // second line of kLine2
};

// Decodes the opcode at data[pos] and its argument; *next is the position after
// it. Errors (unknown opcode, truncated argument) name `where` and the offset.
Status DecodeOp(std::string_view data, size_t pos, const std::string& where, uint8_t* code, OpArg* arg,
                size_t* next);

std::string OpName(uint8_t code);  // "STACK_GLOBAL" or "0x9f"

}  // namespace emosweep::data::pickle_internal
