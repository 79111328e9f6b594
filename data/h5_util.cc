#include "data/h5_util.h"

#include <cstring>

namespace emosweep::data::h5 {

std::mutex& Hdf5Mutex() {
  static std::mutex mu;
  return mu;
}

void SilenceErrors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {
// libhdf5 closes what is still open when the process exits (H5_term_library). A file whose close failed (a full
// disk, EFBIG: helper-66) stays half-open in the library, and closing it again at exit crashed (exit 139 after
// the error had been reported). Every handle here is closed explicitly (Handle), so the exit-time pass is not
// needed: it is turned off before the library starts.
const bool kNoExitClose = [] {
  (void)H5dont_atexit();
  return true;
}();
}  // namespace

namespace {
herr_t WalkInnermost(unsigned n, const H5E_error2_t* err, void* data) {
  // The stack is walked from the innermost frame outward; the first message
  // is the most specific one ("truncated file: eof = ...").
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && err->desc) *out = err->desc;
  return 0;
}
}  // namespace

std::string LastError() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, WalkInnermost, &msg);
  H5Eclear2(H5E_DEFAULT);
  // A failed write reads "file write failed: time = <ctime with its newline>, filename = ..., errno = 27, error
  // message = 'File too large', buf = 0x..., ...": keep what it failed at and why, on one line.
  const size_t em = msg.find("error message = '");
  if (em != std::string::npos) {
    const size_t from = em + 17, to = msg.find('\'', from);
    const size_t colon = msg.find(':');
    msg = (colon != std::string::npos && colon < em ? msg.substr(0, colon) + ": " : std::string()) +
          msg.substr(from, to == std::string::npos ? std::string::npos : to - from);
  }
  for (char& ch : msg)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return msg;
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    Reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

herr_t Handle::Close() {
  herr_t rc = 0;
  if (id_ >= 0 && closer_) rc = closer_(id_);
  id_ = -1;
  return rc;
}

Handle File(hid_t id) { return Handle(id, H5Fclose); }
Handle Group(hid_t id) { return Handle(id, H5Gclose); }
Handle Dataset(hid_t id) { return Handle(id, H5Dclose); }
Handle Space(hid_t id) { return Handle(id, H5Sclose); }
Handle Type(hid_t id) { return Handle(id, H5Tclose); }
Handle Plist(hid_t id) { return Handle(id, H5Pclose); }
Handle Attr(hid_t id) { return Handle(id, H5Aclose); }

Handle VlenStringType() {
  Handle t = Type(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

bool Exists(hid_t loc, const std::string& path) {
  // H5Lexists fails (rather than returning 0) when an intermediate group is missing.
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (!prefix.empty() && prefix != "/" && H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

namespace {
Status AttrError(const std::string& where, const std::string& name, const char* what) {
  std::string detail = LastError();
  return Status::IoError(where + ": cannot " + what + " attribute '" + name + "'" +
                         (detail.empty() ? "" : " (" + detail + ")"));
}

Result<Handle> OpenAttr(hid_t obj, const std::string& name, const std::string& where) {
  if (H5Aexists(obj, name.c_str()) <= 0) return Status::Corruption(where + ": attribute '" + name + "' is missing");
  Handle a = Attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  if (!a.valid()) return Status::Corruption(where + ": attribute '" + name + "' cannot be opened");
  return a;
}

// Reads string-typed data (fixed or variable length) with `count` elements.
template <typename ReadFn>
Result<std::vector<std::string>> ReadStringData(hid_t file_type, hsize_t count, ReadFn read,
                                                const std::string& what) {
  if (H5Tget_class(file_type) != H5T_STRING) return Status::Corruption(what + " is not a string");
  std::vector<std::string> out;
  out.reserve(count);
  if (H5Tis_variable_str(file_type) > 0) {
    Handle mt = VlenStringType();
    // HDF5 has no ASCII <-> UTF-8 conversion path: read in the file's own
    // character set (files from other tools often use ASCII).
    H5Tset_cset(mt.get(), H5Tget_cset(file_type));
    std::vector<char*> raw(count, nullptr);
    if (count && read(mt.get(), raw.data()) < 0) return Status::Corruption(what + " cannot be read (" + LastError() + ")");
    for (char* s : raw) out.emplace_back(s ? s : "");
    if (count) {
      Handle space = Space(H5Screate_simple(1, &count, nullptr));
      H5Dvlen_reclaim(mt.get(), space.get(), H5P_DEFAULT, raw.data());
    }
    return out;
  }
  size_t size = H5Tget_size(file_type);
  Handle mt = Type(H5Tcopy(H5T_C_S1));
  H5Tset_size(mt.get(), size);
  H5Tset_cset(mt.get(), H5Tget_cset(file_type));
  std::vector<char> buf(size * count + 1, '\0');
  if (count && read(mt.get(), buf.data()) < 0) return Status::Corruption(what + " cannot be read (" + LastError() + ")");
  for (hsize_t i = 0; i < count; ++i) out.emplace_back(buf.data() + i * size, strnlen(buf.data() + i * size, size));
  return out;
}
}  // namespace

Status WriteStringAttr(hid_t obj, const std::string& name, const std::string& value, const std::string& where) {
  Handle t = VlenStringType();
  Handle s = Space(H5Screate(H5S_SCALAR));
  Handle a = Attr(H5Acreate2(obj, name.c_str(), t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  if (!a.valid() || H5Awrite(a.get(), t.get(), &p) < 0) return AttrError(where, name, "write");
  return Status::Ok();
}

Status WriteStringArrayAttr(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                            const std::string& where) {
  Handle t = VlenStringType();
  hsize_t n = values.size();
  Handle s = Space(H5Screate_simple(1, &n, nullptr));
  Handle a = Attr(H5Acreate2(obj, name.c_str(), t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT));
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (!a.valid() || (n && H5Awrite(a.get(), t.get(), ptrs.data()) < 0)) return AttrError(where, name, "write");
  return Status::Ok();
}

Status WriteInt64Attr(hid_t obj, const std::string& name, int64_t value, const std::string& where) {
  Handle s = Space(H5Screate(H5S_SCALAR));
  Handle a = Attr(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, s.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid() || H5Awrite(a.get(), H5T_NATIVE_INT64, &value) < 0) return AttrError(where, name, "write");
  return Status::Ok();
}

Result<std::vector<std::string>> ReadStringArrayAttr(hid_t obj, const std::string& name, const std::string& where) {
  ES_ASSIGN_OR_RETURN(Handle a, OpenAttr(obj, name, where));
  Handle ft = Type(H5Aget_type(a.get()));
  Handle space = Space(H5Aget_space(a.get()));
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) return Status::Corruption(where + ": attribute '" + name + "' has no valid shape");
  hid_t aid = a.get();
  return ReadStringData(ft.get(), static_cast<hsize_t>(n),
                        [aid](hid_t mt, void* buf) { return H5Aread(aid, mt, buf); },
                        where + ": attribute '" + name + "'");
}

Result<std::string> ReadStringAttr(hid_t obj, const std::string& name, const std::string& where) {
  ES_ASSIGN_OR_RETURN(auto v, ReadStringArrayAttr(obj, name, where));
  if (v.size() != 1) return Status::Corruption(where + ": attribute '" + name + "' is not a single string");
  return v[0];
}

Result<int64_t> ReadInt64Attr(hid_t obj, const std::string& name, const std::string& where) {
  ES_ASSIGN_OR_RETURN(Handle a, OpenAttr(obj, name, where));
  Handle ft = Type(H5Aget_type(a.get()));
  Handle space = Space(H5Aget_space(a.get()));
  if (H5Tget_class(ft.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1)
    return Status::Corruption(where + ": attribute '" + name + "' is not a single integer");
  int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) return AttrError(where, name, "read");
  return v;
}

Status WriteStrings(hid_t loc, const std::string& name, const std::vector<const std::string*>& values,
                    const std::string& where) {
  Handle t = VlenStringType();
  hsize_t n = values.size();
  Handle s = Space(H5Screate_simple(1, &n, nullptr));
  Handle d = Dataset(H5Dcreate2(loc, name.c_str(), t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  std::vector<const char*> ptrs;
  ptrs.reserve(n);
  for (const auto* v : values) ptrs.push_back(v->c_str());
  if (!d.valid() || (n && H5Dwrite(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0))
    return Status::IoError(where + ": cannot write dataset '" + name + "' (" + LastError() + ")");
  return Status::Ok();
}

Result<std::vector<std::string>> ReadStrings(hid_t loc, const std::string& name, const std::string& where) {
  ES_ASSIGN_OR_RETURN(auto shape, DatasetShape(loc, name, where));
  if (shape.size() != 1) return Status::Corruption(where + ": dataset '" + name + "' is not 1-D");
  Handle d = Dataset(H5Dopen2(loc, name.c_str(), H5P_DEFAULT));
  Handle ft = Type(H5Dget_type(d.get()));
  hid_t did = d.get();
  return ReadStringData(ft.get(), shape[0],
                        [did](hid_t mt, void* buf) { return H5Dread(did, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); },
                        where + ": dataset '" + name + "'");
}

Result<std::vector<hsize_t>> DatasetShape(hid_t loc, const std::string& name, const std::string& where) {
  if (!Exists(loc, name)) return Status::Corruption(where + ": dataset '" + name + "' is missing");
  Handle d = Dataset(H5Dopen2(loc, name.c_str(), H5P_DEFAULT));
  if (!d.valid()) return Status::Corruption(where + ": '" + name + "' is not a dataset (" + LastError() + ")");
  Handle s = Space(H5Dget_space(d.get()));
  int rank = H5Sget_simple_extent_ndims(s.get());
  if (rank < 0) return Status::Corruption(where + ": dataset '" + name + "' has no valid shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank) H5Sget_simple_extent_dims(s.get(), dims.data(), nullptr);
  return dims;
}

}  // namespace emosweep::data::h5
