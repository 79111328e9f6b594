#include "data/import/npy.h"

#include <zlib.h>

#include <cstring>

#include "core/files.h"

namespace emosweep::data {
namespace {

uint64_t Le(const char* p, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
  return v;
}

// Value of `key` in numpy's header dict literal, as raw text up to the next
// top-level ',' or '}' (tuples keep their parentheses).
bool DictValue(std::string_view dict, const std::string& key, std::string_view* out) {
  for (const char q : {'\'', '"'}) {
    const std::string k = std::string(1, q) + key + q;
    size_t p = dict.find(k);
    if (p == std::string_view::npos) continue;
    p = dict.find(':', p + k.size());
    if (p == std::string_view::npos) return false;
    ++p;
    while (p < dict.size() && dict[p] == ' ') ++p;
    size_t e = p;
    int depth = 0;
    char quote = 0;
    for (; e < dict.size(); ++e) {
      char c = dict[e];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '(' || c == '[') {
        ++depth;
      } else if (c == ')' || c == ']') {
        --depth;
      } else if ((c == ',' || c == '}') && depth == 0) {
        break;
      }
    }
    *out = dict.substr(p, e - p);
    while (!out->empty() && out->back() == ' ') out->remove_suffix(1);
    return true;
  }
  return false;
}

}  // namespace

int64_t NpyArray::cols() const {
  int64_t c = 1;
  for (size_t k = 1; k < shape.size(); ++k) c *= shape[k];
  return c;
}

Result<NpyArray> ParseNpy(std::string_view b, const std::string& where) {
  auto bad = [&](const std::string& m) { return Status::Corruption(where + ": " + m); };
  if (b.size() < 10 || b.substr(0, 6) != std::string_view("\x93NUMPY", 6))
    return bad(b.size() < 10 ? "truncated .npy file (no complete header)" : "not a .npy file (bad magic)");
  const int major = static_cast<uint8_t>(b[6]);
  if (major < 1 || major > 3) return bad(".npy format version " + std::to_string(major) + " is not supported (1 to 3)");
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (b.size() < 8 + len_bytes) return bad("truncated .npy header");
  const uint64_t hlen = Le(b.data() + 8, static_cast<int>(len_bytes));
  const size_t data_at = 8 + len_bytes + hlen;
  if (b.size() < data_at) return bad("truncated .npy header (" + std::to_string(hlen) + " header bytes announced)");
  std::string_view dict = b.substr(8 + len_bytes, hlen);
  std::string_view descr, fortran, shape_text;
  if (!DictValue(dict, "descr", &descr) || !DictValue(dict, "fortran_order", &fortran) ||
      !DictValue(dict, "shape", &shape_text))
    return bad(".npy header lacks descr, fortran_order or shape: " + std::string(dict));
  NpyArray a;
  if (descr.size() < 3 || (descr.front() != '\'' && descr.front() != '"'))
    return Status::InvalidArgument(where + ": structured dtype " + std::string(descr) + " is not supported");
  a.source_dtype = std::string(descr.substr(1, descr.size() - 2));
  const std::string& d = a.source_dtype;
  size_t item = 0;
  if (d == "<f4" || d == "<i4") item = 4;
  else if (d == "<f8" || d == "<i8") item = 8;
  else
    return Status::InvalidArgument(where + ": dtype '" + d +
                                   "' is not supported (little-endian float32, float64, int64 or int32 only)");
  if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')')
    return bad("malformed shape " + std::string(shape_text));
  int64_t numel = 1;
  std::string_view inner = shape_text.substr(1, shape_text.size() - 2);
  while (!inner.empty()) {
    size_t comma = inner.find(',');
    std::string_view tok = inner.substr(0, comma);
    while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == 'L')) tok.remove_suffix(1);
    if (!tok.empty()) {
      int64_t v = 0;
      for (char c : tok) {
        if (c < '0' || c > '9' || v > (int64_t{1} << 40)) return bad("malformed shape " + std::string(shape_text));
        v = v * 10 + (c - '0');
      }
      a.shape.push_back(v);
      if (v > 0 && numel > (int64_t{1} << 40) / v) return bad("shape too large");  // before it overflows
      numel *= v;
    }
    if (comma == std::string_view::npos) break;
    inner.remove_prefix(comma + 1);
  }
  const size_t need = static_cast<size_t>(numel) * item;
  if (b.size() - data_at < need)
    return bad("truncated .npy data: shape needs " + std::to_string(need) + " bytes, the file has " +
               std::to_string(b.size() - data_at));
  if (b.size() - data_at > need)
    return bad(std::to_string(b.size() - data_at - need) + " unexpected bytes after the .npy data");
  const char* p = b.data() + data_at;
  std::vector<float> v(static_cast<size_t>(numel));
  if (d == "<f4") {
    if (need) std::memcpy(v.data(), p, need);  // v.data() may be null for an empty array
  } else {
    for (int64_t k = 0; k < numel; ++k) {
      const char* q = p + k * static_cast<int64_t>(item);
      if (d == "<f8") { double x; std::memcpy(&x, q, 8); v[k] = static_cast<float>(x); }
      else if (d == "<i8") { int64_t x; std::memcpy(&x, q, 8); v[k] = static_cast<float>(x); }
      else { int32_t x; std::memcpy(&x, q, 4); v[k] = static_cast<float>(x); }
    }
  }
  if (fortran == "True" && a.shape.size() > 1) {  // column-major -> row-major
    const size_t nd = a.shape.size();
    std::vector<int64_t> fstride(nd, 1), idx(nd);
    for (size_t k = 1; k < nd; ++k) fstride[k] = fstride[k - 1] * a.shape[k - 1];
    std::vector<float> c(v.size());
    for (int64_t lin = 0; lin < numel; ++lin) {
      int64_t rem = lin, off = 0;
      for (size_t k = nd; k-- > 0;) {
        off += (rem % a.shape[k]) * fstride[k];
        rem /= a.shape[k];
      }
      c[lin] = v[off];
    }
    v.swap(c);
  } else if (fortran != "True" && fortran != "False") {
    return bad("malformed fortran_order " + std::string(fortran));
  }
  a.values = std::move(v);
  return a;
}

Result<NpyArray> ReadNpy(const std::string& path) {
  ES_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseNpy(bytes, path);
}

Result<NpzArchive> NpzArchive::Open(const std::string& path) {
  NpzArchive z;
  z.path_ = path;
  ES_ASSIGN_OR_RETURN(z.bytes_, ReadFile(path));
  const std::string& b = z.bytes_;
  auto bad = [&](const std::string& m) { return Status::Corruption(path + ": " + m); };
  // End of central directory: last "PK\5\6" within the final 64 KiB + 22 bytes.
  if (b.size() < 22) return bad("not a zip/.npz archive (too short)");
  size_t eocd = std::string::npos;
  for (size_t p = b.size() - 22 + 1; p-- > 0 && b.size() - p <= 65557;)
    if (Le(b.data() + p, 4) == 0x06054b50) { eocd = p; break; }
  if (eocd == std::string::npos) return bad("not a zip/.npz archive (no end of central directory; truncated?)");
  uint64_t count = Le(b.data() + eocd + 10, 2), cd_size = Le(b.data() + eocd + 12, 4),
           cd_off = Le(b.data() + eocd + 16, 4);
  if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {  // zip64
    if (eocd < 20 || Le(b.data() + eocd - 20, 4) != 0x07064b50) return bad("zip64 locator missing");
    uint64_t z64 = Le(b.data() + eocd - 20 + 8, 8);
    if (z64 + 56 > b.size() || Le(b.data() + z64, 4) != 0x06064b50) return bad("zip64 end record missing");
    count = Le(b.data() + z64 + 32, 8);
    cd_size = Le(b.data() + z64 + 40, 8);
    cd_off = Le(b.data() + z64 + 48, 8);
  }
  if (cd_off > b.size() || cd_size > b.size() - cd_off) return bad("central directory outside the file (truncated?)");
  size_t p = cd_off;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > b.size() || Le(b.data() + p, 4) != 0x02014b50) return bad("corrupt central directory");
    Entry e;
    const uint16_t flags = static_cast<uint16_t>(Le(b.data() + p + 8, 2));
    e.method = static_cast<uint16_t>(Le(b.data() + p + 10, 2));
    e.crc = static_cast<uint32_t>(Le(b.data() + p + 16, 4));
    e.compressed = Le(b.data() + p + 20, 4);
    e.size = Le(b.data() + p + 24, 4);
    const size_t nlen = Le(b.data() + p + 28, 2), xlen = Le(b.data() + p + 30, 2), clen = Le(b.data() + p + 32, 2);
    e.local_offset = Le(b.data() + p + 42, 4);
    if (p + 46 + nlen + xlen + clen > b.size()) return bad("corrupt central directory");
    e.name = b.substr(p + 46, nlen);
    const size_t xend = p + 46 + nlen + xlen;
    for (size_t x = p + 46 + nlen; x + 4 <= xend;) {
      const uint16_t id = static_cast<uint16_t>(Le(b.data() + x, 2)), sz = static_cast<uint16_t>(Le(b.data() + x + 2, 2));
      // An extra field may not run past its entry's extra area (found by fuzz_npy: read past the buffer).
      if (x + 4 + sz > xend) return bad("corrupt extra field in the central directory");
      size_t q = x + 4;
      if (id == 1) {
        for (uint64_t* f : {&e.size, &e.compressed, &e.local_offset})
          if (*f == 0xffffffffu && q + 8 <= x + 4 + sz) { *f = Le(b.data() + q, 8); q += 8; }
      }
      x += 4 + sz;
    }
    if (flags & 1) return Status::InvalidArgument(path + ": member '" + e.name + "' is encrypted");
    if (e.method != 0 && e.method != 8)
      return Status::InvalidArgument(path + ": member '" + e.name + "' uses zip compression method " +
                                     std::to_string(e.method) + " (only stored and deflate are supported)");
    e.key = e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".npy") == 0 ? e.name.substr(0, e.name.size() - 4)
                                                                                 : e.name;
    for (const auto& other : z.entries_)  // numpy would load the last of two, this reader the first: neither
      if (other.key == e.key)
        return Status::InvalidArgument(path + ": two members are named '" + e.key + "' (an ambiguous archive)");
    z.entries_.push_back(std::move(e));
    p += 46 + nlen + xlen + clen;
  }
  return z;
}

std::vector<std::string> NpzArchive::Keys() const {
  std::vector<std::string> k;
  for (const auto& e : entries_) k.push_back(e.key);
  return k;
}

const NpzArchive::Entry* NpzArchive::Find(const std::string& key) const {
  for (const auto& e : entries_)
    if (e.key == key || e.name == key) return &e;
  return nullptr;
}

bool NpzArchive::Has(const std::string& key) const { return Find(key) != nullptr; }

Result<NpyArray> NpzArchive::Read(const std::string& key) const {
  const Entry* e = Find(key);
  if (!e) return Status::NotFound(path_ + ": no member '" + key + "'");
  const std::string where = path_ + ", member '" + e->name + "'";
  const std::string& b = bytes_;
  if (e->local_offset > b.size() || b.size() - e->local_offset < 30 || Le(b.data() + e->local_offset, 4) != 0x04034b50)
    return Status::Corruption(where + ": local header missing (truncated archive?)");
  const uint64_t data_at = e->local_offset + 30 + Le(b.data() + e->local_offset + 26, 2) +
                           Le(b.data() + e->local_offset + 28, 2);
  if (data_at > b.size() || e->compressed > b.size() - data_at)
    return Status::Corruption(where + ": data runs past the end of the archive (truncated?)");
  std::string_view raw(b.data() + data_at, e->compressed);
  std::string inflated;
  if (e->method == 8) {
    // Deflate expands at most 1032:1; a larger declared size is a corrupt (or
    // hostile) directory entry, refused before allocating for it.
    if (e->size > e->compressed * 1032 + 1024 || e->size > 0xffffffffu)
      return Status::Corruption(where + ": declares " + std::to_string(e->size) + " bytes uncompressed from " +
                                std::to_string(e->compressed) + " compressed bytes, more than deflate can produce "
                                "(corrupt archive)");
    inflated.resize(e->size);
    z_stream zs{};
    if (inflateInit2(&zs, -15) != Z_OK) return Status::Internal(where + ": zlib init failed");
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = reinterpret_cast<Bytef*>(inflated.data());
    zs.avail_out = static_cast<uInt>(inflated.size());
    const int rc = inflate(&zs, Z_FINISH);
    const uint64_t produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != e->size)
      return Status::Corruption(where + ": deflate data is corrupt or truncated");
    raw = inflated;
  } else if (e->compressed != e->size) {
    return Status::Corruption(where + ": stored member with differing sizes");
  }
  const uint32_t crc =
      static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uInt>(raw.size())));
  if (crc != e->crc) return Status::Corruption(where + ": CRC-32 mismatch (corrupt member)");
  return ParseNpy(raw, where);
}

}  // namespace emosweep::data
