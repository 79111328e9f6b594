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

// A text file of a corpus release whose encoding varies from file to file (ESD's transcripts: UTF-8,
// UTF-16 with a byte-order mark, GB2312 and latin-1 side by side), as UTF-8: a UTF-8 BOM is dropped,
// UTF-16 LE/BE with a BOM is converted, valid UTF-8 is kept, anything else is read as GB18030 (a superset
// of GB2312) when it decodes as that, else as latin-1. *encoding names what was found ("utf-8",
// "utf-16le", "utf-16be", "gb18030", "latin-1"). InvalidArgument for malformed UTF-16.
Result<std::string> DecodeCorpusText(std::string_view bytes, const std::string& where, std::string* encoding);

}  // namespace emosweep
