// Torch-specific half of the restricted unpickler: tensors rebuilt from
// storages, storage persistent ids, and the legacy (non-zip) torch.save stream
// that torch.storage._load_from_bytes receives. It is run by fresh machines
// over the byte range of that payload, so every offset in a message is an
// offset into the file itself.
#include <cstring>
#include <set>

#include "data/import/pickle_machine.h"

namespace emosweep::data::pickle_internal {

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
  bool little_endian = false;
  for (const auto& [key, value] : parts[2]->entries)
    if (key->k == K::kStr && key->s == "little_endian") {
      if (!(value->k == K::kBool && value->b))
        return Status::InvalidArgument(at + "big-endian torch storages are not supported");
      little_endian = true;
    }
  if (!little_endian) return Status::InvalidArgument(at + "sys info does not say little_endian = True");
  if (parts[3]->k != K::kStorage) return Status::InvalidArgument(at + "the saved object is not a storage");
  if (parts[4]->k != K::kList) return Status::Corruption(at + "storage key list is not a list");
  std::set<std::string> filled;
  for (const auto& key : parts[4]->items) {
    if (key->k != K::kStr || !storages.count(key->s)) return Status::Corruption(at + "unknown storage key");
    if (!filled.insert(key->s).second) return Status::Corruption(at + "storage key '" + key->s + "' listed twice");
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
  // Every storage a persistent id declared has its data (helper-63: an empty key list left a declared storage
  // empty, and its tensor was read from past the end of the buffer).
  for (const auto& [key, st] : storages)
    if (!filled.count(key))
      return Status::Corruption(at + "storage '" + key + "' (" + std::to_string(st->numel) +
                                " elements) is declared but its data is not in the stream (missing from the key list)");
  return parts[3];
}

}  // namespace emosweep::data::pickle_internal
