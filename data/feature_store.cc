// data/feature_store.cc: HDF5 feature store v1 (layout in docs/formats/feature-store.md).
#include "data/feature_store.h"
#include "data/store_verify.h"

#include <filesystem>

#include <algorithm>
#include <array>

#include "core/build_info.h"
#include "core/files.h"
#include "core/hash.h"
#include "data/h5_util.h"

namespace emosweep::data {
namespace {

using h5::Handle;

constexpr char kFormat[] = "emosweep-feature-store";
constexpr std::array<const char*, 9> kColumns = {"id",    "speaker",        "gender",     "session", "group",
                                                 "label", "original_label", "transcript", "source"};

std::string& Column(Utterance& u, size_t c) {
  std::string* cols[] = {&u.id,    &u.speaker,        &u.gender,     &u.session, &u.group,
                         &u.label, &u.original_label, &u.transcript, &u.source};
  return *cols[c];
}
const std::string& Column(const Utterance& u, size_t c) { return Column(const_cast<Utterance&>(u), c); }

Status WriteError(const std::string& where, const std::string& what) {
  std::string detail = h5::LastError();
  return Status::IoError(where + ": cannot write " + what + (detail.empty() ? "" : " (" + detail + ")"));
}

// [rows, cols] matrix of float32 or int64 (cols == 0 means 1-D). Chunked and
// filtered only when non-empty: HDF5 rejects chunks larger than a fixed extent.
Status WriteMatrix(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, const void* data,
                   hsize_t rows, hsize_t cols, const StoreWriteOptions& o, const std::string& where) {
  const int rank = cols ? 2 : 1;
  hsize_t dims[2] = {rows, cols};
  Handle space = h5::Space(H5Screate_simple(rank, dims, nullptr));
  Handle dcpl = h5::Plist(H5Pcreate(H5P_DATASET_CREATE));
  if (rows > 0) {
    hsize_t chunk[2] = {std::min<hsize_t>(rows, static_cast<hsize_t>(std::max<int64_t>(1, o.chunk_rows))),
                        cols};
    H5Pset_chunk(dcpl.get(), rank, chunk);
    if (o.gzip_level > 0) {
      if (o.shuffle) H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), static_cast<unsigned>(std::min(o.gzip_level, 9)));
    }
  }
  Handle d = h5::Dataset(H5Dcreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!d.valid() || (rows && H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
    return WriteError(where, "dataset '" + name + "'");
  return Status::Ok();
}

Status WriteFeatureSet(hid_t features, const FeatureSet& f, size_t n, const StoreWriteOptions& o,
                       const std::string& where) {
  if (f.name.find('/') != std::string::npos || f.name == "." || f.name == "..")
    return Status::InvalidArgument(where + ": feature set name '" + f.name + "' may not contain '/'");
  Handle g = h5::Group(H5Gcreate2(features, f.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!g.valid()) return WriteError(where, "group /features/" + f.name);
  const std::string fw = where + ": /features/" + f.name;
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(g.get(), "modality", f.modality, fw));
  ES_RETURN_IF_ERROR(h5::WriteInt64Attr(g.get(), "dim", f.dim, fw));
  ES_RETURN_IF_ERROR(h5::WriteInt64Attr(g.get(), "frame_dim", f.frame_dim, fw));
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(g.get(), "provenance", CanonicalJson(f.provenance), fw));
  ES_RETURN_IF_ERROR(WriteMatrix(g.get(), "values", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, f.values.data(), n,
                                 static_cast<hsize_t>(f.dim), o, fw));
  if (f.has_frames()) {
    hsize_t t = static_cast<hsize_t>(f.offsets.back());
    StoreWriteOptions fo = o;
    fo.gzip_level = o.frames_gzip_level;
    ES_RETURN_IF_ERROR(WriteMatrix(g.get(), "frames", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, f.frames.data(), t,
                                   static_cast<hsize_t>(f.frame_dim), fo, fw));
    ES_RETURN_IF_ERROR(WriteMatrix(g.get(), "offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, f.offsets.data(),
                                   f.offsets.size(), 0, o, fw));
  }
  return Status::Ok();
}

Status WriteAll(hid_t file, const Corpus& c, const StoreWriteOptions& o, const std::string& where) {
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(file, "format", kFormat, where));
  ES_RETURN_IF_ERROR(h5::WriteInt64Attr(file, "schema_version", kFeatureStoreVersion, where));
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(file, "writer_version", BuildInfo().value("version", "unknown"), where));
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(file, "name", c.name, where));
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(file, "language", c.language, where));
  ES_RETURN_IF_ERROR(h5::WriteStringArrayAttr(file, "label_set", c.label_set, where));
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(file, "content_hash", c.ContentHash(), where));
  ES_RETURN_IF_ERROR(h5::WriteStringAttr(file, "metadata", CanonicalJson(c.metadata), where));

  Handle utt = h5::Group(H5Gcreate2(file, "utterances", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!utt.valid()) return WriteError(where, "group /utterances");
  std::vector<const std::string*> col(c.size());
  for (size_t k = 0; k < kColumns.size(); ++k) {
    for (size_t i = 0; i < c.size(); ++i) col[i] = &Column(c.utterances[i], k);
    ES_RETURN_IF_ERROR(h5::WriteStrings(utt.get(), kColumns[k], col, where));
  }
  std::vector<double> durations(c.size());
  for (size_t i = 0; i < c.size(); ++i) durations[i] = c.utterances[i].duration_s;
  StoreWriteOptions plain;
  plain.gzip_level = 0;
  ES_RETURN_IF_ERROR(WriteMatrix(utt.get(), "duration_s", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, durations.data(),
                                 c.size(), 0, plain, where));

  // Creation order is tracked so that feature sets read back in the order written.
  Handle gcpl = h5::Plist(H5Pcreate(H5P_GROUP_CREATE));
  H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  Handle feats = h5::Group(H5Gcreate2(file, "features", H5P_DEFAULT, gcpl.get(), H5P_DEFAULT));
  if (!feats.valid()) return WriteError(where, "group /features");
  for (const auto& f : c.features) ES_RETURN_IF_ERROR(WriteFeatureSet(feats.get(), f, c.size(), o, where));
  return Status::Ok();
}

Handle FileAccess() {
  Handle fapl = h5::Plist(H5Pcreate(H5P_FILE_ACCESS));
  // Object-header v2 (1.8+) is needed for creation-order tracking.
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  // Some network file systems refuse flock(); reading must still work there.
  H5Pset_file_locking(fapl.get(), true, true);
  return fapl;
}

Result<Handle> OpenStore(const std::string& path) {
  if (!FileExists(path)) return Status::NotFound(path + ": no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    std::string detail = h5::LastError();
    return Status::Corruption(path + ": not an HDF5 file, or truncated/corrupt" +
                              (detail.empty() ? "" : " (" + detail + ")"));
  }
  Handle fapl = FileAccess();
  Handle f = h5::File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!f.valid()) return Status::Corruption(path + ": cannot open HDF5 file, truncated or corrupt (" + h5::LastError() + ")");
  return f;
}

Status CheckHeader(hid_t file, const std::string& path) {
  if (H5Aexists(file, "format") <= 0)
    return Status::Corruption(path + ": not an emosweep feature store (root attribute 'format' is missing)");
  ES_ASSIGN_OR_RETURN(std::string format, h5::ReadStringAttr(file, "format", path));
  if (format != kFormat)
    return Status::Corruption(path + ": format is '" + format + "', expected '" + kFormat + "'");
  ES_ASSIGN_OR_RETURN(int64_t version, h5::ReadInt64Attr(file, "schema_version", path));
  if (version > kFeatureStoreVersion)
    return Status::FailedPrecondition(path + ": written by a newer emosweep (feature store schema version " +
                                      std::to_string(version) + "; this build reads up to version " +
                                      std::to_string(kFeatureStoreVersion) + "); upgrade emosweep");
  if (version < 1) return Status::Corruption(path + ": invalid schema version " + std::to_string(version));
  return Status::Ok();
}

herr_t CollectName(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

Result<std::vector<std::string>> FeatureNames(hid_t file, const std::string& path) {
  if (!h5::Exists(file, "features")) return Status::Corruption(path + ": group /features is missing");
  Handle g = h5::Group(H5Gopen2(file, "features", H5P_DEFAULT));
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(g.get(), H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, CollectName, &names) < 0) {
    names.clear();
    idx = 0;
    h5::LastError();
    if (H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, CollectName, &names) < 0)
      return Status::Corruption(path + ": cannot list /features (" + h5::LastError() + ")");
  }
  return names;
}

Result<FeatureSetInfo> ReadFeatureInfo(hid_t file, const std::string& name, const std::string& path) {
  const std::string gpath = "features/" + name;
  const std::string fw = path + ": /" + gpath;
  Handle g = h5::Group(H5Gopen2(file, gpath.c_str(), H5P_DEFAULT));
  if (!g.valid()) return Status::Corruption(fw + " is not a group");
  FeatureSetInfo info;
  info.name = name;
  ES_ASSIGN_OR_RETURN(info.modality, h5::ReadStringAttr(g.get(), "modality", fw));
  ES_ASSIGN_OR_RETURN(info.dim, h5::ReadInt64Attr(g.get(), "dim", fw));
  ES_ASSIGN_OR_RETURN(info.frame_dim, h5::ReadInt64Attr(g.get(), "frame_dim", fw));
  ES_ASSIGN_OR_RETURN(std::string prov, h5::ReadStringAttr(g.get(), "provenance", fw));
  info.provenance = nlohmann::json::parse(prov, nullptr, false);
  if (info.provenance.is_discarded()) return Status::Corruption(fw + ": provenance is not valid JSON");
  return info;
}

Result<StoreInfo> ReadInfoLocked(hid_t file, const std::string& path) {
  ES_RETURN_IF_ERROR(CheckHeader(file, path));
  StoreInfo info;
  info.path = path;
  ES_ASSIGN_OR_RETURN(int64_t version, h5::ReadInt64Attr(file, "schema_version", path));
  info.schema_version = static_cast<int>(version);
  ES_ASSIGN_OR_RETURN(info.writer_version, h5::ReadStringAttr(file, "writer_version", path));
  ES_ASSIGN_OR_RETURN(info.name, h5::ReadStringAttr(file, "name", path));
  ES_ASSIGN_OR_RETURN(info.language, h5::ReadStringAttr(file, "language", path));
  ES_ASSIGN_OR_RETURN(info.label_set, h5::ReadStringArrayAttr(file, "label_set", path));
  ES_ASSIGN_OR_RETURN(info.content_hash, h5::ReadStringAttr(file, "content_hash", path));
  ES_ASSIGN_OR_RETURN(std::string meta, h5::ReadStringAttr(file, "metadata", path));
  info.metadata = nlohmann::json::parse(meta, nullptr, false);
  if (info.metadata.is_discarded()) return Status::Corruption(path + ": metadata attribute is not valid JSON");
  ES_ASSIGN_OR_RETURN(auto shape, h5::DatasetShape(file, "utterances/id", path));
  if (shape.size() != 1) return Status::Corruption(path + ": dataset 'utterances/id' is not 1-D");
  info.num_utterances = static_cast<int64_t>(shape[0]);
  ES_ASSIGN_OR_RETURN(auto names, FeatureNames(file, path));
  for (const auto& n : names) {
    ES_ASSIGN_OR_RETURN(FeatureSetInfo fi, ReadFeatureInfo(file, n, path));
    info.features.push_back(std::move(fi));
  }
  return info;
}

// Reads a [rows, cols] (cols == 0: 1-D) numeric dataset after checking its shape.
template <typename T>
Status ReadMatrix(hid_t loc, const std::string& name, hid_t mem_type, H5T_class_t cls, int64_t rows,
                  int64_t cols, std::vector<T>* out, const std::string& where) {
  ES_ASSIGN_OR_RETURN(auto shape, h5::DatasetShape(loc, name, where));
  const std::string dw = where + ": dataset '" + name + "'";
  const size_t rank = cols ? 2 : 1;
  if (shape.size() != rank) return Status::Corruption(dw + " has rank " + std::to_string(shape.size()));
  if (rows >= 0 && shape[0] != static_cast<hsize_t>(rows))
    return Status::Corruption(dw + " has " + std::to_string(shape[0]) + " rows, expected " + std::to_string(rows));
  if (cols && shape[1] != static_cast<hsize_t>(cols))
    return Status::Corruption(dw + " has " + std::to_string(shape[1]) + " columns, expected " +
                              std::to_string(cols));
  Handle d = h5::Dataset(H5Dopen2(loc, name.c_str(), H5P_DEFAULT));
  Handle ft = h5::Type(H5Dget_type(d.get()));
  if (H5Tget_class(ft.get()) != cls) return Status::Corruption(dw + " has the wrong element type");
  out->resize(static_cast<size_t>(shape[0]) * (cols ? static_cast<size_t>(cols) : 1));
  if (!out->empty() && H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data()) < 0)
    return Status::Corruption(dw + " cannot be read (" + h5::LastError() + ")");
  return Status::Ok();
}

Status ReadFeatureData(hid_t file, FeatureSet* f, int64_t n, bool frames, const std::string& path) {
  Handle g = h5::Group(H5Gopen2(file, ("features/" + f->name).c_str(), H5P_DEFAULT));
  const std::string fw = path + ": /features/" + f->name;
  if (f->dim <= 0) return Status::Corruption(fw + " has dimension " + std::to_string(f->dim));
  ES_RETURN_IF_ERROR(ReadMatrix(g.get(), "values", H5T_NATIVE_FLOAT, H5T_FLOAT, n, f->dim, &f->values, fw));
  if (!frames || f->frame_dim <= 0) {
    f->frame_dim = 0;
    return Status::Ok();
  }
  ES_RETURN_IF_ERROR(ReadMatrix(g.get(), "offsets", H5T_NATIVE_INT64, H5T_INTEGER, n + 1, 0, &f->offsets, fw));
  ES_RETURN_IF_ERROR(ReadMatrix(g.get(), "frames", H5T_NATIVE_FLOAT, H5T_FLOAT, -1, f->frame_dim, &f->frames, fw));
  return Status::Ok();
}

Result<Corpus> ReadLocked(hid_t file, const std::string& path, const StoreReadOptions& o) {
  ES_ASSIGN_OR_RETURN(StoreInfo info, ReadInfoLocked(file, path));
  Corpus c;
  c.name = info.name;
  c.language = info.language;
  c.label_set = info.label_set;
  c.metadata = info.metadata;
  const int64_t n = info.num_utterances;
  c.utterances.resize(static_cast<size_t>(n));
  Handle utt = h5::Group(H5Gopen2(file, "utterances", H5P_DEFAULT));
  for (size_t k = 0; k < kColumns.size(); ++k) {
    ES_ASSIGN_OR_RETURN(auto col, h5::ReadStrings(utt.get(), kColumns[k], path + ": /utterances"));
    if (static_cast<int64_t>(col.size()) != n)
      return Status::Corruption(path + ": /utterances/" + kColumns[k] + " has " + std::to_string(col.size()) +
                                " rows, expected " + std::to_string(n));
    for (size_t i = 0; i < col.size(); ++i) Column(c.utterances[i], k) = std::move(col[i]);
  }
  std::vector<double> dur;
  ES_RETURN_IF_ERROR(ReadMatrix(utt.get(), "duration_s", H5T_NATIVE_DOUBLE, H5T_FLOAT, n, 0, &dur, path + ": /utterances"));
  for (size_t i = 0; i < dur.size(); ++i) c.utterances[i].duration_s = dur[i];

  for (const auto& want : o.feature_sets) {
    auto it = std::find_if(info.features.begin(), info.features.end(), [&](auto& f) { return f.name == want; });
    if (it == info.features.end()) return Status::NotFound(path + ": no feature set '" + want + "'");
  }
  for (const auto& fi : info.features) {
    bool wanted = o.feature_sets.empty() ||
                  std::find(o.feature_sets.begin(), o.feature_sets.end(), fi.name) != o.feature_sets.end();
    if (!wanted && !o.verify) continue;
    FeatureSet f;
    f.name = fi.name;
    f.modality = fi.modality;
    f.dim = fi.dim;
    f.frame_dim = fi.frame_dim;
    f.provenance = fi.provenance;
    ES_RETURN_IF_ERROR(ReadFeatureData(file, &f, n, o.load_frames || o.verify, path));
    c.features.push_back(std::move(f));
  }
  if (o.validate) ES_RETURN_IF_ERROR(c.Validate(path));
  if (o.verify) {
    std::string actual = c.ContentHash();
    if (actual != info.content_hash)
      return Status::Corruption(path + ": content hash mismatch: stored " + info.content_hash + ", recomputed " +
                                actual + " (the file was modified or is corrupt)");
    // Verification needed everything; now drop what the caller did not ask for.
    auto& fs = c.features;
    fs.erase(std::remove_if(fs.begin(), fs.end(),
                            [&](const FeatureSet& f) {
                              return !o.feature_sets.empty() && std::find(o.feature_sets.begin(), o.feature_sets.end(),
                                                                          f.name) == o.feature_sets.end();
                            }),
             fs.end());
    if (!o.load_frames)
      for (auto& f : fs) f.frame_dim = 0, f.frames = {}, f.offsets = {};
  }
  return c;
}

}  // namespace

Status WriteFeatureStore(const std::string& path, const Corpus& corpus, const StoreWriteOptions& options) {
  ES_RETURN_IF_ERROR(corpus.Validate(path));
  // `--out stores/x.h5` creates stores/ as a user expects.
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) ES_RETURN_IF_ERROR(MakeDirs(parent));
  std::lock_guard<std::mutex> lock(h5::Hdf5Mutex());
  h5::SilenceErrors();
  TempPath tmp(path);
  {
    Handle fapl = FileAccess();
    Handle file = h5::File(H5Fcreate(tmp.path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
    if (!file.valid()) return Status::IoError(path + ": cannot create (" + h5::LastError() + ")");
    ES_RETURN_IF_ERROR(WriteAll(file.get(), corpus, options, path));
    if (file.Close() < 0) return Status::IoError(path + ": cannot finish writing (" + h5::LastError() + ")");
  }
  return tmp.Commit();
}

Result<Corpus> ReadFeatureStore(const std::string& path, const StoreReadOptions& options) {
  // A full `verify` read recomputes the hash itself.
  if (options.check_hash && !options.verify) ES_RETURN_IF_ERROR(VerifyStore(path));
  std::lock_guard<std::mutex> lock(h5::Hdf5Mutex());
  ES_RETURN_IF_ERROR(GuardStoreOpenLocked(path));  // libhdf5 reads a new file in a child first
  h5::SilenceErrors();
  ES_ASSIGN_OR_RETURN(Handle file, OpenStore(path));
  return ReadLocked(file.get(), path, options);
}

Result<StoreInfo> ReadStoreInfo(const std::string& path, bool check_hash) {
  if (check_hash) ES_RETURN_IF_ERROR(VerifyStore(path));
  std::lock_guard<std::mutex> lock(h5::Hdf5Mutex());
  ES_RETURN_IF_ERROR(GuardStoreOpenLocked(path));
  h5::SilenceErrors();
  ES_ASSIGN_OR_RETURN(Handle file, OpenStore(path));
  return ReadInfoLocked(file.get(), path);
}

namespace internal {

Result<std::string> ReadEverythingLocked(const std::string& path) {
  h5::SilenceErrors();
  ES_ASSIGN_OR_RETURN(Handle file, OpenStore(path));
  ES_ASSIGN_OR_RETURN(StoreInfo info, ReadInfoLocked(file.get(), path));
  StoreReadOptions o;
  o.verify = true;  // every feature set and its frames, and the content hash
  // Every value too (Corpus::Validate: finite, labels in the label set): a NaN in a feature set the
  // caller's own read skips (`plan` reads the smallest set) would otherwise pass `plan` and fail
  // every job of `run`. Only a store that passes is remembered as verified.
  o.validate = true;
  o.check_hash = false;
  o.load_frames = true;
  ES_RETURN_IF_ERROR(ReadLocked(file.get(), path, o).status());
  return info.content_hash;
}

}  // namespace internal

}  // namespace emosweep::data
