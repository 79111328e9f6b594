#include "core/utf8.h"

#include <iconv.h>

#include <cerrno>
#include <cstdint>
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

namespace {

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// GB18030 -> UTF-8 with glibc's iconv; false when the bytes are not GB18030.
bool FromGb18030(std::string_view in, std::string* out) {
  iconv_t cd = iconv_open("UTF-8", "GB18030");
  if (cd == reinterpret_cast<iconv_t>(-1)) return false;
  std::string buf(in.size() * 4 + 16, '\0');
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  char* dst = buf.data();
  size_t dst_left = buf.size();
  const size_t r = iconv(cd, &src, &src_left, &dst, &dst_left);
  iconv_close(cd);
  if (r == static_cast<size_t>(-1) || src_left != 0) return false;
  buf.resize(buf.size() - dst_left);
  *out = std::move(buf);
  return true;
}

}  // namespace

Result<std::string> DecodeCorpusText(std::string_view bytes, const std::string& where, std::string* encoding) {
  auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  if (bytes.size() >= 2 && ((at(0) == 0xFF && at(1) == 0xFE) || (at(0) == 0xFE && at(1) == 0xFF))) {
    const bool le = at(0) == 0xFF;
    if (encoding) *encoding = le ? "utf-16le" : "utf-16be";
    if (bytes.size() % 2) return Status::InvalidArgument(where + ": UTF-16 text of an odd number of bytes");
    std::string out;
    for (size_t i = 2; i + 1 < bytes.size(); i += 2) {
      uint32_t u = le ? (at(i) | at(i + 1) << 8) : (at(i) << 8 | at(i + 1));
      if (u >= 0xD800 && u < 0xDC00) {  // high surrogate: its low half follows
        if (i + 3 >= bytes.size()) return Status::InvalidArgument(where + ": UTF-16 text ends inside a character");
        const uint32_t lo = le ? (at(i + 2) | at(i + 3) << 8) : (at(i + 2) << 8 | at(i + 3));
        if (lo < 0xDC00 || lo >= 0xE000)
          return Status::InvalidArgument(where + ": malformed UTF-16 surrogate pair at byte " + std::to_string(i));
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        i += 2;
      } else if (u >= 0xDC00 && u < 0xE000) {
        return Status::InvalidArgument(where + ": malformed UTF-16 surrogate at byte " + std::to_string(i));
      }
      AppendUtf8(u, &out);
    }
    return out;
  }
  if (bytes.size() >= 3 && at(0) == 0xEF && at(1) == 0xBB && at(2) == 0xBF) bytes.remove_prefix(3);
  if (InvalidUtf8Offset(bytes) == std::string_view::npos) {
    if (encoding) *encoding = "utf-8";
    return std::string(bytes);
  }
  std::string out;
  if (FromGb18030(bytes, &out)) {
    if (encoding) *encoding = "gb18030";
    return out;
  }
  if (encoding) *encoding = "latin-1";
  out.clear();
  for (size_t i = 0; i < bytes.size(); ++i) AppendUtf8(at(i), &out);
  return out;
}

}  // namespace emosweep
