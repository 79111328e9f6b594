// The restricted unpickler. A stack machine over the opcode table in
// pickle_opcodes.h; objects are reference-counted so that memo hits share
// one object, as in Python (APPENDS on a memoized list must mutate it).
// The legacy torch.save stream inside torch.storage._load_from_bytes is a
// sequence of five protocol-2 pickles followed by raw storages; it is run
// by fresh machines over the byte range of that payload, so every offset
// in a message is an offset into the file itself.
#include "data/import/pickle.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/files.h"
#include "data/import/pickle_opcodes.h"

namespace emosweep::data {
namespace {

using pickle_internal::DecodeOp;
using pickle_internal::OpArg;
using pickle_internal::Opcode;
using pickle_internal::OpName;

enum class GlobalId { kRebuildTensorV2, kLoadFromBytes, kOrderedDict, kStorageType };

struct AllowedGlobal {
  const char* name;
  GlobalId id;
  PickleDType storage_dtype;  // for kStorageType
};

constexpr AllowedGlobal kAllowed[] = {
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

const char* KName(K k) {
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
};

ObjPtr Make(K k) { return std::make_shared<Obj>(k); }

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

Result<ObjPtr> Machine::Pop() {
  if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return Bad("stack underflow");
  ObjPtr o = std::move(stack_.back());
  stack_.pop_back();
  return o;
}

Result<std::vector<ObjPtr>> Machine::PopMark() {
  if (marks_.empty()) return Bad("no MARK on the stack");
  size_t m = marks_.back();
  marks_.pop_back();
  std::vector<ObjPtr> items(std::make_move_iterator(stack_.begin() + static_cast<long>(m)),
                            std::make_move_iterator(stack_.end()));
  stack_.resize(m);
  return items;
}

Result<ObjPtr> Machine::Run() {
  while (true) {
    uint8_t code;
    OpArg arg;
    size_t next;
    op_pos_ = pos_;
    ES_RETURN_IF_ERROR(DecodeOp(view_, pos_, where_, &code, &arg, &next));
    if (!Opcode(code).supported)
      return Status::InvalidArgument(At(op_pos_) + "opcode " + OpName(code) +
                                     " is not supported by the restricted unpickler");
    pos_ = next;
    bool stop = false;
    ES_RETURN_IF_ERROR(Step(code, arg, &stop));
    if (stop) {
      if (stack_.size() != 1 || !marks_.empty()) return Bad("STOP with " + std::to_string(stack_.size()) + " objects on the stack");
      return stack_.back();
    }
  }
}

Status Machine::Step(uint8_t code, const OpArg& arg, bool* stop) {
  auto push_int = [&](int64_t v) {
    ObjPtr o = Make(K::kInt);
    o->i = v;
    stack_.push_back(std::move(o));
  };
  auto tuple_of = [&](size_t n) -> Status {
    if (stack_.size() < n + (marks_.empty() ? 0 : marks_.back())) return Bad("stack underflow");
    ObjPtr t = Make(K::kTuple);
    t->items.assign(std::make_move_iterator(stack_.end() - static_cast<long>(n)), std::make_move_iterator(stack_.end()));
    stack_.resize(stack_.size() - n);
    stack_.push_back(std::move(t));
    return Status::Ok();
  };
  auto put = [&](uint64_t idx) -> Status {
    if (stack_.empty()) return Bad("memo store with an empty stack");
    if (idx > view_.size()) return Bad("memo index " + std::to_string(idx) + " out of range");
    if (idx >= memo_.size()) memo_.resize(idx + 1);
    memo_[idx] = stack_.back();
    return Status::Ok();
  };
  auto get = [&](uint64_t idx) -> Status {
    if (idx >= memo_.size() || !memo_[idx]) return Bad("memo index " + std::to_string(idx) + " was never stored");
    stack_.push_back(memo_[idx]);
    return Status::Ok();
  };
  switch (code) {
    case 0x80:  // PROTO
      if (arg.u < 2 || arg.u > 5) return Bad("pickle protocol " + std::to_string(arg.u) + " (expected 2 to 5)");
      return Status::Ok();
    case 0x95:  // FRAME: the whole file is in memory, frames only need to stay inside it
      if (arg.u > view_.size() - pos_) return Bad("truncated pickle: FRAME of " + std::to_string(arg.u) +
                                                  " bytes, only " + std::to_string(view_.size() - pos_) + " left");
      return Status::Ok();
    case '.': *stop = true; return Status::Ok();
    case '(': marks_.push_back(stack_.size()); return Status::Ok();
    case 'N': stack_.push_back(Make(K::kNone)); return Status::Ok();
    case 0x88: case 0x89: {
      ObjPtr o = Make(K::kBool);
      o->b = code == 0x88;
      stack_.push_back(std::move(o));
      return Status::Ok();
    }
    case 'J': push_int(arg.i); return Status::Ok();
    case 'K': case 'M': push_int(static_cast<int64_t>(arg.u)); return Status::Ok();
    case 0x8a: {  // LONG1
      if (arg.fits_int64) {
        push_int(arg.i);
      } else {
        ObjPtr o = Make(K::kBigInt);
        o->view = arg.bytes;
        stack_.push_back(std::move(o));
      }
      return Status::Ok();
    }
    case 'G': {
      ObjPtr o = Make(K::kFloat);
      o->f = arg.f;
      stack_.push_back(std::move(o));
      return Status::Ok();
    }
    case 'X': case 0x8c: case 0x8d: {
      ObjPtr o = Make(K::kStr);
      o->s.assign(arg.bytes.data(), arg.bytes.size());
      stack_.push_back(std::move(o));
      return Status::Ok();
    }
    case 'B': case 'C': case 0x8e: {
      ObjPtr o = Make(K::kBytes);
      o->view = arg.bytes;
      stack_.push_back(std::move(o));
      return Status::Ok();
    }
    case ']': stack_.push_back(Make(K::kList)); return Status::Ok();
    case '}': stack_.push_back(Make(K::kDict)); return Status::Ok();
    case ')': stack_.push_back(Make(K::kTuple)); return Status::Ok();
    case 0x85: return tuple_of(1);
    case 0x86: return tuple_of(2);
    case 0x87: return tuple_of(3);
    case 't': {
      ES_ASSIGN_OR_RETURN(auto items, PopMark());
      ObjPtr t = Make(K::kTuple);
      t->items = std::move(items);
      stack_.push_back(std::move(t));
      return Status::Ok();
    }
    case 'a': case 'e': {
      std::vector<ObjPtr> items;
      if (code == 'a') {
        ES_ASSIGN_OR_RETURN(ObjPtr v, Pop());
        items.push_back(std::move(v));
      } else {
        ES_ASSIGN_OR_RETURN(items, PopMark());
      }
      if (stack_.empty() || stack_.back()->k != K::kList) return Bad(std::string(OpName(code)) + " target is not a list");
      auto& dst = stack_.back()->items;
      dst.insert(dst.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
      return Status::Ok();
    }
    case 's': case 'u': {
      std::vector<ObjPtr> kv;
      if (code == 's') {
        ES_ASSIGN_OR_RETURN(ObjPtr v, Pop());
        ES_ASSIGN_OR_RETURN(ObjPtr k, Pop());
        kv = {std::move(k), std::move(v)};
      } else {
        ES_ASSIGN_OR_RETURN(kv, PopMark());
      }
      if (kv.size() % 2) return Bad("SETITEMS with an odd number of items");
      if (stack_.empty() || stack_.back()->k != K::kDict) return Bad(std::string(OpName(code)) + " target is not a dict");
      auto& dst = stack_.back()->entries;
      for (size_t k = 0; k < kv.size(); k += 2) dst.emplace_back(std::move(kv[k]), std::move(kv[k + 1]));
      return Status::Ok();
    }
    case 'h': case 'j': return get(arg.u);
    case 'q': case 'r': return put(arg.u);
    case 0x94: return put(memo_.size());
    case 'c': return Global(std::string(arg.bytes), std::string(arg.second));
    case 0x93: {  // STACK_GLOBAL
      ES_ASSIGN_OR_RETURN(ObjPtr name, Pop());
      ES_ASSIGN_OR_RETURN(ObjPtr module, Pop());
      if (name->k != K::kStr || module->k != K::kStr) return Bad("STACK_GLOBAL needs two strings");
      return Global(module->s, name->s);
    }
    case 'R': {
      ES_ASSIGN_OR_RETURN(ObjPtr args, Pop());
      ES_ASSIGN_OR_RETURN(ObjPtr callable, Pop());
      ES_ASSIGN_OR_RETURN(ObjPtr out, Reduce(callable, args));
      stack_.push_back(std::move(out));
      return Status::Ok();
    }
    case 'Q': {
      ES_ASSIGN_OR_RETURN(ObjPtr pid, Pop());
      ES_ASSIGN_OR_RETURN(ObjPtr out, PersistentLoad(pid));
      stack_.push_back(std::move(out));
      return Status::Ok();
    }
    default:
      return Status::InvalidArgument(At(op_pos_) + "opcode " + OpName(code) + " is not supported");
  }
}

Status Machine::Global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  for (const auto& g : kAllowed) {
    if (full == g.name) {
      ObjPtr o = Make(K::kGlobal);
      o->s = full;
      o->global = &g;
      stack_.push_back(std::move(o));
      return Status::Ok();
    }
  }
  return Status::InvalidArgument(At(op_pos_) + OpName(static_cast<uint8_t>(view_[op_pos_])) + " '" + full +
                                 "' is not on the allow-list of the restricted unpickler (see docs/formats/import.md)");
}

Result<ObjPtr> Machine::Reduce(const ObjPtr& callable, const ObjPtr& args) {
  if (callable->k != K::kGlobal) return Bad(std::string("REDUCE on a ") + KName(callable->k) + ", not a callable");
  if (args->k != K::kTuple) return Bad("REDUCE arguments are not a tuple");
  const auto& a = args->items;
  switch (callable->global->id) {
    case GlobalId::kOrderedDict:
      if (!a.empty()) return Bad("collections.OrderedDict called with arguments");
      return Make(K::kDict);
    case GlobalId::kLoadFromBytes:
      if (a.size() != 1 || a[0]->k != K::kBytes) return Bad("torch.storage._load_from_bytes expects one bytes argument");
      return LoadFromBytes(a[0]->view);
    case GlobalId::kRebuildTensorV2:
      return RebuildTensor(a);
    case GlobalId::kStorageType:
      break;
  }
  return Status::InvalidArgument(At(op_pos_) + "'" + callable->s + "' may only appear in a storage persistent id");
}

Result<ObjPtr> Machine::RebuildTensor(const std::vector<ObjPtr>& a) {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (a.size() < 6 || a.size() > 7 || a[0]->k != K::kStorage || a[1]->k != K::kInt || a[2]->k != K::kTuple ||
      a[3]->k != K::kTuple)
    return Bad("torch._utils._rebuild_tensor_v2 called with unexpected arguments");
  const Storage& st = *a[0]->storage;
  PickledTensor t;
  t.dtype = st.dtype;
  int64_t expect_stride = 1, numel = 1;
  if (a[2]->items.size() != a[3]->items.size()) return Bad("tensor size and stride differ in length");
  for (const auto& d : a[2]->items) {
    if (d->k != K::kInt || d->i < 0) return Bad("tensor size is not a tuple of non-negative ints");
    t.shape.push_back(d->i);
    numel *= d->i;
  }
  for (size_t k = t.shape.size(); k-- > 0;) {
    const ObjPtr& s = a[3]->items[k];
    if (s->k != K::kInt) return Bad("tensor stride is not a tuple of ints");
    if (t.shape[k] > 1 && s->i != expect_stride)
      return Status::InvalidArgument(At(op_pos_) + "non-contiguous tensor (stride does not match C order)");
    expect_stride *= t.shape[k];
  }
  if (a[1]->i < 0 || a[1]->i + numel > st.numel)
    return Bad("tensor of " + std::to_string(numel) + " elements at offset " + std::to_string(a[1]->i) +
               " exceeds its storage of " + std::to_string(st.numel));
  t.storage = st.bytes;
  t.byte_offset = static_cast<size_t>(a[1]->i) * PickleDTypeSize(st.dtype);
  ObjPtr o = Make(K::kTensor);
  o->tensor = std::move(t);
  return o;
}

Result<ObjPtr> Machine::PersistentLoad(const ObjPtr& pid) {
  if (!persistent_) return Status::InvalidArgument(At(op_pos_) + "persistent id outside a torch storage stream");
  // ('storage', <StorageType>, key, location, numel[, view_metadata])
  const auto& t = pid->items;
  if (pid->k != K::kTuple || t.size() < 5 || t[0]->k != K::kStr || t[0]->s != "storage" || t[1]->k != K::kGlobal ||
      t[1]->global->id != GlobalId::kStorageType || t[2]->k != K::kStr || t[4]->k != K::kInt || t[4]->i < 0)
    return Bad("persistent id is not ('storage', <torch storage type>, key, location, numel)");
  if (t.size() > 5 && t[5]->k != K::kNone) return Status::InvalidArgument(At(op_pos_) + "storage views are not supported");
  auto& slot = (*persistent_)[t[2]->s];
  if (!slot) {
    slot = std::make_shared<Storage>();
    slot->dtype = t[1]->global->storage_dtype;
    slot->numel = t[4]->i;
  }
  ObjPtr o = Make(K::kStorage);
  o->storage = slot;
  return o;
}

// Legacy (non-zip) torch.save: magic, protocol 1001, sys info, the object,
// the storage keys, then per key an int64 element count and the raw data.
Result<ObjPtr> Machine::LoadFromBytes(std::string_view payload) {
  const size_t begin = static_cast<size_t>(payload.data() - file_.data());
  const size_t end = begin + payload.size();
  static constexpr unsigned char kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  std::unordered_map<std::string, std::shared_ptr<Storage>> storages;
  size_t p = begin;
  ObjPtr parts[5];
  for (int k = 0; k < 5; ++k) {
    Machine m(file_, p, end, where_, k == 3 ? &storages : nullptr);
    ES_ASSIGN_OR_RETURN(parts[k], m.Run());
    p = m.pos();
  }
  const std::string at = At(begin) + "torch storage bytes: ";
  if (parts[0]->k != K::kBigInt || parts[0]->view.size() != sizeof kMagic ||
      std::memcmp(parts[0]->view.data(), kMagic, sizeof kMagic) != 0)
    return Status::Corruption(at + "bad magic number (not a legacy torch.save stream)");
  if (parts[1]->k != K::kInt || parts[1]->i != 1001)
    return Status::Corruption(at + "torch.save protocol is not 1001");
  if (parts[2]->k != K::kDict) return Status::Corruption(at + "sys info is not a dict");
  for (const auto& [key, value] : parts[2]->entries)
    if (key->k == K::kStr && key->s == "little_endian" && !(value->k == K::kBool && value->b))
      return Status::InvalidArgument(at + "big-endian torch storages are not supported");
  if (parts[3]->k != K::kStorage) return Status::InvalidArgument(at + "the saved object is not a storage");
  if (parts[4]->k != K::kList) return Status::Corruption(at + "storage key list is not a list");
  for (const auto& key : parts[4]->items) {
    if (key->k != K::kStr || !storages.count(key->s)) return Status::Corruption(at + "unknown storage key");
    Storage& st = *storages[key->s];
    if (end - p < 8) return Status::Corruption(At(p) + "truncated storage: no element count");
    int64_t count;
    std::memcpy(&count, file_.data() + p, 8);
    p += 8;
    if (count != st.numel)
      return Status::Corruption(At(p - 8) + "storage holds " + std::to_string(count) + " elements, its id says " +
                                std::to_string(st.numel));
    const size_t nbytes = static_cast<size_t>(count) * PickleDTypeSize(st.dtype);
    if (end - p < nbytes)
      return Status::Corruption(At(p) + "truncated storage: " + std::to_string(nbytes) + " bytes of data expected, " +
                                std::to_string(end - p) + " left");
    st.bytes->assign(file_.data() + p, nbytes);
    p += nbytes;
  }
  if (p != end) return Status::Corruption(At(p) + std::to_string(end - p) + " unexpected bytes after the storages");
  return parts[3];
}

Result<PickledValue> ToValue(const Obj& o) {
  PickledValue v;
  switch (o.k) {
    case K::kNone: v.kind = PickledValue::Kind::kNone; break;
    case K::kBool: v.kind = PickledValue::Kind::kBool; v.b = o.b; break;
    case K::kInt: v.kind = PickledValue::Kind::kInt; v.i = o.i; break;
    case K::kFloat: v.kind = PickledValue::Kind::kFloat; v.f = o.f; break;
    case K::kStr: v.kind = PickledValue::Kind::kString; v.s = o.s; break;
    case K::kTensor: v.kind = PickledValue::Kind::kTensor; v.tensor = o.tensor; break;
    default: return Status::InvalidArgument(std::string("unsupported value type ") + KName(o.k));
  }
  return v;
}

}  // namespace

Result<std::vector<PickledRecord>> ParseSeedPickle(std::string_view data, const std::string& where) {
  Machine m(data, 0, data.size(), where, nullptr);
  ES_ASSIGN_OR_RETURN(ObjPtr top, m.Run());
  if (top->k != K::kList)
    return Status::InvalidArgument(where + ": the pickle holds a " + KName(top->k) + ", expected a list of dicts");
  std::vector<PickledRecord> out;
  out.reserve(top->items.size());
  for (size_t r = 0; r < top->items.size(); ++r) {
    const Obj& d = *top->items[r];
    const std::string rw = where + ": record " + std::to_string(r);
    if (d.k != K::kDict) return Status::InvalidArgument(rw + " is a " + KName(d.k) + ", expected a dict");
    PickledRecord rec;
    rec.fields.reserve(d.entries.size());
    for (const auto& [key, value] : d.entries) {
      if (key->k != K::kStr) return Status::InvalidArgument(rw + " has a non-string key");
      auto v = ToValue(*value);
      if (!v.ok()) return v.status().WithContext(rw + ", key '" + key->s + "'");
      rec.fields.emplace_back(key->s, std::move(v).value());
    }
    out.push_back(std::move(rec));
  }
  return out;
}

Result<std::vector<PickledRecord>> ReadSeedPickle(const std::string& path) {
  ES_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseSeedPickle(bytes, path);
}

const std::vector<std::string>& PickleGlobalAllowList() {
  static const std::vector<std::string> kList = [] {
    std::vector<std::string> v;
    for (const auto& g : kAllowed) v.push_back(g.name);
    return v;
  }();
  return kList;
}

}  // namespace emosweep::data
