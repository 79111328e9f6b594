// core/utf8.h: one UTF-8 validator for every string that enters a store.
//
// Ids, speakers, labels and transcripts end up in JSON (`data inspect --json`,
// the ledger), which cannot hold invalid UTF-8; importers check text where it
// enters so that the error names the file and the line. Well-formed means
// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace emosweep {

// Offset of the first byte that does not start a well-formed sequence
// (std::string_view::npos when `s` is valid UTF-8).
size_t InvalidUtf8Offset(std::string_view s);
// `s` with bytes outside printable ASCII written as \xNN (for messages).
std::string EscapeBytes(std::string_view s, size_t max_chars = 60);
// A whole text file: InvalidArgument "<where> line N: invalid UTF-8 (byte 0xNN
// at column C)" for the first bad byte.
Status CheckUtf8Text(std::string_view text, const std::string& where);
// One string: InvalidArgument "<where>: <what> \"esc\" is not valid UTF-8 ...".
Status CheckUtf8(std::string_view s, const std::string& where, const std::string& what);

}  // namespace emosweep
