// data/import/pickle_machine.h: the restricted unpickler's stack machine (internal).
//
// Split in two translation units: pickle.cc runs the opcodes and the generic
// objects (lists, dicts, tuples, memo, allow-listed globals); pickle_torch.cc
// rebuilds torch tensors and storages (rebuild_tensor_v2, persistent ids, the
// legacy torch.save stream inside _load_from_bytes). Objects are
// reference-counted so memo hits share one object, as in Python.
// Thread-safety: a Machine is used by one thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "data/import/pickle.h"
#include "data/import/pickle_opcodes.h"

namespace emosweep::data::pickle_internal {

enum class GlobalId { kRebuildTensorV2, kLoadFromBytes, kOrderedDict, kStorageType };

struct AllowedGlobal {
  const char* name;
  GlobalId id;
  PickleDType storage_dtype;  // for kStorageType
};

inline constexpr AllowedGlobal kAllowed[] = {
    {"torch._utils._rebuild_tensor_v2", GlobalId::kRebuildTensorV2, PickleDType::kFloat32},
    {"torch.storage._load_from_bytes", GlobalId::kLoadFromBytes, PickleDType::kFloat32},
    {"collections.OrderedDict", GlobalId::kOrderedDict, PickleDType::kFloat32},
    {"torch.FloatStorage", GlobalId::kStorageType, PickleDType::kFloat32},
    {"torch.DoubleStorage", GlobalId::kStorageType, PickleDType::kFloat64},
    {"torch.HalfStorage", GlobalId::kStorageType, PickleDType::kFloat16},
    {"torch.LongStorage", GlobalId::kStorageType, PickleDType::kInt64},
    {"torch.IntStorage", GlobalId::kStorageType, PickleDType::kInt32},
    {"torch.ShortStorage", GlobalId::kStorageType, PickleDType::kInt16},
    {"torch.CharStorage", GlobalId::kStorageType, PickleDType::kInt8},
    {"torch.ByteStorage", GlobalId::kStorageType, PickleDType::kUInt8},
    {"torch.BoolStorage", GlobalId::kStorageType, PickleDType::kBool},
};

enum class K : uint8_t { kNone, kBool, kInt, kBigInt, kFloat, kStr, kBytes, kTuple, kList, kDict, kGlobal, kStorage, kTensor };

inline const char* KName(K k) {
  static const char* kNames[] = {"None", "bool", "int", "int (big)", "float", "str", "bytes", "tuple",
                                 "list", "dict", "global", "storage", "tensor"};
  return kNames[static_cast<int>(k)];
}

struct Storage {
  PickleDType dtype = PickleDType::kFloat32;
  int64_t numel = 0;
  std::shared_ptr<std::string> bytes = std::make_shared<std::string>();
};

struct Obj;
using ObjPtr = std::shared_ptr<Obj>;
struct Obj {
  explicit Obj(K kind) : k(kind) {}
  K k;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;          // str; "module.name" of a global
  std::string_view view;  // bytes / big int: points into the file
  const AllowedGlobal* global = nullptr;
  std::vector<ObjPtr> items;                       // tuple, list
  std::vector<std::pair<ObjPtr, ObjPtr>> entries;  // dict
  std::shared_ptr<Storage> storage;
  PickledTensor tensor;
  int depth = 1;           // containers nested inside this one, plus one (Machine::Adopt)
  bool contained = false;  // put into a tuple/list/dict: never changed again
};

// Deepest container nesting accepted (the seed files nest 4 deep); deeper
// input is refused, as destroying it would recurse once per level.
inline constexpr int kMaxNesting = 100;

inline ObjPtr Make(K k) { return std::make_shared<Obj>(k); }

class Machine {
 public:
  // Runs over file[begin, end); offsets in messages are file offsets.
  Machine(std::string_view file, size_t begin, size_t end, const std::string& where,
          std::unordered_map<std::string, std::shared_ptr<Storage>>* persistent)
      : file_(file), view_(file.substr(0, end)), pos_(begin), where_(where), persistent_(persistent) {}

  Result<ObjPtr> Run();
  size_t pos() const { return pos_; }

 private:
  std::string At(size_t p) const { return where_ + ": byte " + std::to_string(p) + ": "; }
  Status Bad(const std::string& m) const { return Status::Corruption(At(op_pos_) + m); }
  Result<ObjPtr> Pop();
  // Records that `child` goes into `parent`: refuses self-containment, changing
  // a container already inside another (so no reference cycle can be built)
  // and nesting deeper than kMaxNesting.
  Status Adopt(Obj* parent, Obj* child);
  Result<std::vector<ObjPtr>> PopMark();
  Status Step(uint8_t code, const OpArg& arg, bool* stop);
  Status Global(const std::string& module, const std::string& name);
  Result<ObjPtr> Reduce(const ObjPtr& callable, const ObjPtr& args);
  Result<ObjPtr> PersistentLoad(const ObjPtr& pid);
  Result<ObjPtr> RebuildTensor(const std::vector<ObjPtr>& a);
  Result<ObjPtr> LoadFromBytes(std::string_view payload);

  std::string_view file_, view_;
  size_t pos_, op_pos_ = 0;
  const std::string& where_;
  std::unordered_map<std::string, std::shared_ptr<Storage>>* persistent_;  // null: BINPERSID refused
  std::vector<ObjPtr> stack_;
  std::vector<size_t> marks_;
  std::vector<ObjPtr> memo_;
};

}  // namespace emosweep::data::pickle_internal
