// data/import/npy.h: NumPy .npy and .npz readers (feature matrices).
//
// .npy format versions 1.0, 2.0 and 3.0; little-endian float32, float64,
// int64 and int32 arrays (any other dtype is refused by name), converted to
// float32 (float32 bit for bit). C order is read as is; Fortran order is
// transposed into C order. .npz is a zip archive of .npy members, stored or
// deflate-compressed (zip64 extra fields as numpy.savez writes them), CRC-32
// checked. Errors name the file, and the member for .npz.
// Thread-safety: functions are reentrant; NpzArchive is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace emosweep::data {

struct NpyArray {
  std::vector<int64_t> shape;  // C order
  std::vector<float> values;   // product(shape) values, row-major
  std::string source_dtype;    // the file's descr, e.g. "<f8"
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const;  // product of shape[1:] (1 for 1-D)
};

// `where` names the file (and member) in messages.
Result<NpyArray> ParseNpy(std::string_view bytes, const std::string& where);
Result<NpyArray> ReadNpy(const std::string& path);

class NpzArchive {
 public:
  static Result<NpzArchive> Open(const std::string& path);
  // Member names without the ".npy" suffix (numpy.savez keys), in archive order.
  std::vector<std::string> Keys() const;
  bool Has(const std::string& key) const;
  Result<NpyArray> Read(const std::string& key) const;
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    std::string key;       // name without ".npy"
    std::string name;      // name in the archive
    uint16_t method = 0;   // 0 stored, 8 deflate
    uint32_t crc = 0;
    uint64_t compressed = 0, size = 0, local_offset = 0;
  };
  const Entry* Find(const std::string& key) const;

  std::string path_;
  std::string bytes_;
  std::vector<Entry> entries_;
};

}  // namespace emosweep::data
