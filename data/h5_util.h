// data/h5_util.h: the small slice of the HDF5 1.10 C API the feature store uses,
// wrapped in RAII handles and Status-returning helpers (internal to data/).
//
// Why the C API: the C++ API throws, and this library never lets exceptions
// cross a module boundary. Automatic error printing is switched off; helpers
// return messages that name the file and the object, plus the innermost HDF5
// error text (e.g. "truncated file: eof = ...").
// Thread-safety: serial HDF5 is not thread-safe. Every helper here must be
// called with Hdf5Mutex() held (the public feature-store functions take it).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::data::h5 {

// The process-wide lock around every HDF5 call.
std::mutex& Hdf5Mutex();

// Turns off HDF5's stderr error printing (call once per locked section).
void SilenceErrors();

// Innermost message of the current HDF5 error stack ("" when empty).
std::string LastError();

// Owning hid_t; closes with the matching H5?close on destruction.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { Reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports failure (file close flushes; its error matters).
  herr_t Close();
  void Reset() { (void)Close(); }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

Handle File(hid_t id);
Handle Group(hid_t id);
Handle Dataset(hid_t id);
Handle Space(hid_t id);
Handle Type(hid_t id);
Handle Plist(hid_t id);
Handle Attr(hid_t id);

// A variable-length UTF-8 string type.
Handle VlenStringType();

bool Exists(hid_t loc, const std::string& path);

// Attributes. `where` names the file (and object) for messages.
Status WriteStringAttr(hid_t obj, const std::string& name, const std::string& value, const std::string& where);
Status WriteStringArrayAttr(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                            const std::string& where);
Status WriteInt64Attr(hid_t obj, const std::string& name, int64_t value, const std::string& where);
Result<std::string> ReadStringAttr(hid_t obj, const std::string& name, const std::string& where);
Result<std::vector<std::string>> ReadStringArrayAttr(hid_t obj, const std::string& name, const std::string& where);
Result<int64_t> ReadInt64Attr(hid_t obj, const std::string& name, const std::string& where);

// 1-D datasets of variable-length strings / float64 / int64.
Status WriteStrings(hid_t loc, const std::string& name, const std::vector<const std::string*>& values,
                    const std::string& where);
Result<std::vector<std::string>> ReadStrings(hid_t loc, const std::string& name, const std::string& where);

// Shape of a dataset; error naming it when it is missing.
Result<std::vector<hsize_t>> DatasetShape(hid_t loc, const std::string& name, const std::string& where);

}  // namespace emosweep::data::h5
