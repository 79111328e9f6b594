#include "tests/data/import_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace emosweep::data::testing {
namespace {

template <typename T>
void PutLe(std::string* out, T v, int n = sizeof(T)) {
  for (int k = 0; k < n; ++k) out->push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff));
}

void Unicode1(std::string* o, const std::string& s) {  // SHORT_BINUNICODE
  o->push_back('\x8c');
  o->push_back(static_cast<char>(s.size()));
  *o += s;
}
void Unicode4(std::string* o, const std::string& s) {  // BINUNICODE
  o->push_back('X');
  PutLe<uint32_t>(o, static_cast<uint32_t>(s.size()));
  *o += s;
}
void Int(std::string* o, int64_t v) {
  if (v >= 0 && v < 256) {
    o->push_back('K');
    o->push_back(static_cast<char>(v));
  } else if (v >= 0 && v < 65536) {
    o->push_back('M');
    PutLe<uint16_t>(o, static_cast<uint16_t>(v));
  } else {
    o->push_back('J');
    PutLe<int32_t>(o, static_cast<int32_t>(v));
  }
}

// Legacy torch.save stream of one storage, as torch.storage._load_from_bytes reads it.
std::string LegacyStorage(const char* type, int64_t numel, const std::string& data, bool empty_key_list = false) {
  static int next_key = 1000;
  const std::string key = std::to_string(next_key++);
  std::string o;
  o += "\x80\x02\x8a\x0a";
  o += std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
  o += ".";
  o += "\x80\x02M\xe9\x03.";
  o += "\x80\x02}(";
  Unicode4(&o, "protocol_version");
  o += "M\xe9\x03";
  Unicode4(&o, "little_endian");
  o += "\x88";
  Unicode4(&o, "type_sizes");
  o += "}(";
  Unicode4(&o, "short");
  Int(&o, 2);
  Unicode4(&o, "int");
  Int(&o, 4);
  Unicode4(&o, "long");
  Int(&o, 4);
  o += "uu.";
  o += "\x80\x02(";
  Unicode4(&o, "storage");
  o += std::string("ctorch\n") + type + "\n";
  Unicode4(&o, key);
  Unicode4(&o, "cpu");
  Int(&o, numel);
  o += "NtQ.";
  if (empty_key_list) return o + "\x80\x02].";
  o += "\x80\x02]";
  Unicode4(&o, key);
  o += "a.";
  PutLe<int64_t>(&o, numel);
  o += data;
  return o;
}

void Tensor(std::string* o, const char* storage_type, const std::vector<int64_t>& shape, const std::string& data,
            int64_t numel, const PickleWriterOptions& opt) {
  Unicode1(o, "torch._utils");
  Unicode1(o, "_rebuild_tensor_v2");
  *o += "\x93(";
  Unicode1(o, "torch.storage");
  Unicode1(o, "_load_from_bytes");
  *o += "\x93";
  std::string payload = LegacyStorage(storage_type, numel, data, opt.empty_storage_key_list);
  o->push_back('B');
  PutLe<uint32_t>(o, static_cast<uint32_t>(payload.size()));
  *o += payload;
  *o += "\x85R";
  Int(o, 0);
  *o += "(";
  for (int64_t d : shape) Int(o, d);
  *o += "t(";
  int64_t stride = 1;
  std::vector<int64_t> strides(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    strides[k] = stride;
    stride *= shape[k];
  }
  for (int64_t s : strides) Int(o, s);
  *o += "t\x89";
  Unicode1(o, opt.backward_hooks_global.first);
  Unicode1(o, opt.backward_hooks_global.second);
  *o += "\x93)R";
  *o += "tR";
}

uint32_t Crc(const std::string& s) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

std::string Deflate(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

std::string SeedPickleBytes(const std::vector<SeedRecord>& records, const PickleWriterOptions& options) {
  std::string o = "\x80\x04]";
  o += "(";
  for (const auto& r : records) {
    o += "}(";
    using KeyVec = std::pair<const char*, const std::vector<float>*>;
    for (const auto& [key, vec] : {KeyVec{"text_embed", &r.text}, KeyVec{"audio_embed", &r.audio}}) {
      if (vec->empty()) continue;
      Unicode1(&o, key);
      std::string bytes(vec->size() * 4, '\0');
      std::memcpy(bytes.data(), vec->data(), bytes.size());
      Tensor(&o, "FloatStorage", {static_cast<int64_t>(vec->size())}, bytes, static_cast<int64_t>(vec->size()), options);
    }
    Unicode1(&o, "label");
    std::string lb;
    PutLe<int64_t>(&lb, r.label);
    Tensor(&o, "LongStorage", {}, lb, 1, options);
    if (!r.sample_id.empty()) {
      Unicode1(&o, "is_augmented");
      o += "\x89";
      Unicode1(&o, "sample_id");
      Unicode1(&o, r.sample_id);
    }
    o += "u";
  }
  o += "e.";
  return o;
}

std::string NpyBytes(const std::string& descr, const std::vector<int64_t>& shape, const std::string& payload,
                     int version, bool fortran) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (";
  for (size_t k = 0; k < shape.size(); ++k) dict += std::to_string(shape[k]) + (shape.size() == 1 || k + 1 < shape.size() ? ", " : "");
  dict += "), }";
  const size_t prefix = version == 1 ? 10 : 12;
  size_t total = prefix + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string o = "\x93NUMPY";
  o.push_back(static_cast<char>(version));
  o.push_back('\0');
  if (version == 1) PutLe<uint16_t>(&o, static_cast<uint16_t>(dict.size()));
  else PutLe<uint32_t>(&o, static_cast<uint32_t>(dict.size()));
  return o + dict + payload;
}

std::string NpyF32(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  std::string payload(values.size() * 4, '\0');
  if (!values.empty()) std::memcpy(payload.data(), values.data(), payload.size());  // no null source (UBSan)
  return NpyBytes("<f4", shape, payload);
}

std::string ZipBytes(const std::vector<std::pair<std::string, std::string>>& members, bool deflate, bool zip64) {
  std::string out, central;
  for (const auto& [name, data] : members) {
    const std::string body = deflate ? Deflate(data) : data;
    const uint32_t crc = Crc(data);
    const uint32_t offset = static_cast<uint32_t>(out.size());
    std::string extra;
    if (zip64) {
      PutLe<uint16_t>(&extra, 1);
      PutLe<uint16_t>(&extra, 16);
      PutLe<uint64_t>(&extra, data.size());
      PutLe<uint64_t>(&extra, body.size());
    }
    PutLe<uint32_t>(&out, 0x04034b50);
    PutLe<uint16_t>(&out, zip64 ? 45 : 20);
    PutLe<uint16_t>(&out, 0);
    PutLe<uint16_t>(&out, deflate ? 8 : 0);
    PutLe<uint16_t>(&out, 0);
    PutLe<uint16_t>(&out, 0x21);
    PutLe<uint32_t>(&out, crc);
    PutLe<uint32_t>(&out, zip64 ? 0xffffffffu : static_cast<uint32_t>(body.size()));
    PutLe<uint32_t>(&out, zip64 ? 0xffffffffu : static_cast<uint32_t>(data.size()));
    PutLe<uint16_t>(&out, static_cast<uint16_t>(name.size()));
    PutLe<uint16_t>(&out, static_cast<uint16_t>(extra.size()));
    out += name + extra + body;
    PutLe<uint32_t>(&central, 0x02014b50);
    PutLe<uint16_t>(&central, 20);
    PutLe<uint16_t>(&central, 20);
    PutLe<uint16_t>(&central, 0);
    PutLe<uint16_t>(&central, deflate ? 8 : 0);
    PutLe<uint16_t>(&central, 0);
    PutLe<uint16_t>(&central, 0x21);
    PutLe<uint32_t>(&central, crc);
    PutLe<uint32_t>(&central, static_cast<uint32_t>(body.size()));
    PutLe<uint32_t>(&central, static_cast<uint32_t>(data.size()));
    PutLe<uint16_t>(&central, static_cast<uint16_t>(name.size()));
    PutLe<uint16_t>(&central, 0);
    PutLe<uint16_t>(&central, 0);
    PutLe<uint16_t>(&central, 0);
    PutLe<uint16_t>(&central, 0);
    PutLe<uint32_t>(&central, 0);
    PutLe<uint32_t>(&central, offset);
    central += name;
  }
  const uint32_t cd_offset = static_cast<uint32_t>(out.size());
  out += central;
  PutLe<uint32_t>(&out, 0x06054b50);
  PutLe<uint16_t>(&out, 0);
  PutLe<uint16_t>(&out, 0);
  PutLe<uint16_t>(&out, static_cast<uint16_t>(members.size()));
  PutLe<uint16_t>(&out, static_cast<uint16_t>(members.size()));
  PutLe<uint32_t>(&out, static_cast<uint32_t>(central.size()));
  PutLe<uint32_t>(&out, cd_offset);
  PutLe<uint16_t>(&out, 0);
  return out;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

namespace {
// Removes this process's test directories when it exits (not in forked children).
struct RemoveAtExit {
  pid_t owner = ::getpid();
  std::vector<std::string> dirs;
  ~RemoveAtExit() {
    std::error_code ec;
    if (::getpid() == owner)
      for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};
}  // namespace

std::string TestDir() {
  static RemoveAtExit cleanup;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = ::testing::TempDir() + "emosweep_import_" + std::to_string(::getpid()) + "_" +
                    info->test_suite_name() + "_" + info->name();
  cleanup.dirs.push_back(dir);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace emosweep::data::testing
