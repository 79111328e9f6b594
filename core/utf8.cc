#include "core/utf8.h"

#include <cstdio>

namespace emosweep {

size_t InvalidUtf8Offset(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;  // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;  // nothing above U+10FFFF
    else return i;                            // 0x80..0xC1, 0xF5..0xFF
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string EscapeBytes(std::string_view s, size_t max_chars) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_chars; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  if (s.size() > max_chars) out += "...";
  return out;
}

namespace {
std::string ByteHex(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}
}  // namespace

Status CheckUtf8Text(std::string_view text, const std::string& where) {
  const size_t bad = InvalidUtf8Offset(text);
  if (bad == std::string_view::npos) return Status::Ok();
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < bad; ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  return Status::InvalidArgument(where + " line " + std::to_string(line) + ": invalid UTF-8 (byte " +
                                 ByteHex(static_cast<unsigned char>(text[bad])) + " at column " +
                                 std::to_string(bad - line_start + 1) + "); text must be UTF-8");
}

Status CheckUtf8(std::string_view s, const std::string& where, const std::string& what) {
  const size_t bad = InvalidUtf8Offset(s);
  if (bad == std::string_view::npos) return Status::Ok();
  return Status::InvalidArgument(where + ": " + what + " \"" + EscapeBytes(s) + "\" is not valid UTF-8 (byte " +
                                 ByteHex(static_cast<unsigned char>(s[bad])) + " at offset " + std::to_string(bad) +
                                 ")");
}

}  // namespace emosweep
