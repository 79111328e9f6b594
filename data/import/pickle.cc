// The restricted unpickler: opcode execution, generic objects and the
// allow-list (the torch half is pickle_torch.cc). A stack machine over the
// opcode table in pickle_opcodes.h; objects are reference-counted so that
// memo hits share one object, as in Python (APPENDS on a memoized list must
// mutate it).
#include "data/import/pickle.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/files.h"
#include "data/import/pickle_machine.h"
#include "data/import/pickle_opcodes.h"

namespace emosweep::data {
namespace pickle_internal {

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

Status Machine::Adopt(Obj* parent, Obj* child) {
  if (child == parent) return Bad(std::string("a ") + KName(parent->k) + " cannot contain itself");
  if (parent->contained)
    return Bad(std::string("a ") + KName(parent->k) + " is changed after it was put into another container "
               "(recursive structures are not supported)");
  child->contained = true;
  parent->depth = std::max(parent->depth, child->depth + 1);
  if (parent->depth > kMaxNesting) return Bad("containers nested deeper than " + std::to_string(kMaxNesting));
  return Status::Ok();
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
    for (const auto& item : t->items) ES_RETURN_IF_ERROR(Adopt(t.get(), item.get()));
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
      for (const auto& item : t->items) ES_RETURN_IF_ERROR(Adopt(t.get(), item.get()));
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
      for (const auto& item : items) ES_RETURN_IF_ERROR(Adopt(stack_.back().get(), item.get()));
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
      for (const auto& item : kv) ES_RETURN_IF_ERROR(Adopt(stack_.back().get(), item.get()));
      auto& dst = stack_.back()->entries;
      // A key set twice keeps its last value, as Python's dict does (helper-63: the first won here).
      for (size_t k = 0; k < kv.size(); k += 2) {
        auto same = std::find_if(dst.begin(), dst.end(), [&](const auto& e) {
          return e.first->k == K::kStr && kv[k]->k == K::kStr && e.first->s == kv[k]->s;
        });
        if (same != dst.end()) same->second = std::move(kv[k + 1]);
        else dst.emplace_back(std::move(kv[k]), std::move(kv[k + 1]));
      }
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

}  // namespace pickle_internal

namespace {

using pickle_internal::K;
using pickle_internal::KName;
using pickle_internal::kAllowed;
using pickle_internal::Machine;
using pickle_internal::Obj;
using pickle_internal::ObjPtr;

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
  // torch.save writes a zip archive since PyTorch 1.6 (helper-63: "byte 0: opcode PERSID is not supported").
  if (data.substr(0, 4) == std::string_view("PK\x03\x04", 4))
    return Status::InvalidArgument(where + ": a zip archive (torch.save's format since PyTorch 1.6), not a plain "
                                           "pickle: the seed-pickle form reads the seeds' pickle.dump files; re-save "
                                           "with pickle.dump, or torch.save(obj, path, "
                                           "_use_new_zipfile_serialization=False)");
  Machine m(data, 0, data.size(), where, nullptr);
  ES_ASSIGN_OR_RETURN(ObjPtr top, m.Run());
  if (m.pos() != data.size())  // helper-63: a second pickle appended to the file was dropped without a word
    return Status::Corruption(where + ": byte " + std::to_string(m.pos()) + ": " +
                              std::to_string(data.size() - m.pos()) + " bytes after the pickle's STOP (a second "
                              "pickle appended? the seed files hold one list of records)");
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
