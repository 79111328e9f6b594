// worker/checkpoint.cc: checkpoint file format v1 (see checkpoint.h).
#include "worker/checkpoint.h"
#include "worker/job.h"

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/build_info.h"
#include "core/files.h"
#include "core/hash.h"

namespace emosweep::worker {
namespace {

constexpr char kMagic[8] = {'E', 'S', 'C', 'K', 'P', 'T', '0', '1'};

Result<std::string> DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return std::string("float32");
    case torch::kLong: return std::string("int64");
    case torch::kByte: return std::string("uint8");
    default: return Status::InvalidArgument(std::string("checkpoint: unsupported dtype ") + c10::toString(t));
  }
}

Result<torch::ScalarType> DtypeFrom(const std::string& s) {
  if (s == "float32") return torch::kFloat;
  if (s == "int64") return torch::kLong;
  if (s == "uint8") return torch::kByte;
  return Status::Corruption("unknown dtype '" + s + "'");
}

}  // namespace

const torch::Tensor* Checkpoint::Find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

Status WriteCheckpoint(const std::string& path, const Checkpoint& c) {
  nlohmann::json table = nlohmann::json::array();
  std::vector<torch::Tensor> contiguous;
  Sha256 sha;
  uint64_t offset = 0;
  for (const auto& [name, t] : c.tensors) {
    ES_ASSIGN_OR_RETURN(std::string dtype, DtypeName(t.scalar_type()));
    torch::Tensor ct = t.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(ct.numel()) * ct.element_size();
    table.push_back({{"name", name}, {"dtype", dtype}, {"shape", ct.sizes().vec()}, {"offset", offset},
                     {"nbytes", nbytes}});
    sha.Update(ct.data_ptr(), nbytes);
    offset += nbytes;
    contiguous.push_back(std::move(ct));
  }
  nlohmann::json header = {{"format_version", kCheckpointVersion}, {"meta", c.meta}, {"tensors", table},
                           {"payload_bytes", offset}, {"payload_sha256", sha.HexDigest()}};
  const std::string h = header.dump();
  TempPath tmp(path);
  {
    std::ofstream out(tmp.path(), std::ios::binary);
    if (!out) return Status::IoError(path + ": cannot open for writing: " + std::strerror(errno));
    out.write(kMagic, sizeof kMagic);
    uint64_t len = h.size();
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(len >> (8 * i));
    out.write(reinterpret_cast<const char*>(le), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& t : contiguous)
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.flush();
    if (!out) return Status::IoError(path + ": write failed: " + std::strerror(errno));
  }
  return tmp.Commit();
}

Result<Checkpoint> ReadCheckpoint(const std::string& path) {
  ES_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (bytes.size() < 16 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    return Status::Corruption(path + ": not an emosweep checkpoint (bad magic)");
  if (std::memcmp(bytes.data(), kMagic, 8) != 0)
    return Status::Corruption(path + ": checkpoint format '" + bytes.substr(0, 8) + "' is not supported (this build reads " +
                              std::string(kMagic, 8) + ")");
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  if (len > bytes.size() - 16) return Status::Corruption(path + ": truncated checkpoint header");
  nlohmann::json header = nlohmann::json::parse(bytes.begin() + 16, bytes.begin() + 16 + static_cast<long>(len),
                                                nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return Status::Corruption(path + ": checkpoint header is not valid JSON");
  if (header.value("format_version", 0) != kCheckpointVersion)
    return Status::Corruption(path + ": checkpoint format version " + header.value("format_version", nlohmann::json(0)).dump() +
                              " is not supported (expected " + std::to_string(kCheckpointVersion) + ")");
  const size_t base = 16 + len;
  const uint64_t payload = header.value("payload_bytes", uint64_t{0});
  if (bytes.size() - base < payload)
    return Status::Corruption(path + ": truncated checkpoint (" + std::to_string(bytes.size() - base) + " of " +
                              std::to_string(payload) + " payload bytes)");
  if (bytes.size() - base > payload)
    return Status::Corruption(path + ": " + std::to_string(bytes.size() - base - payload) +
                              " bytes after the checkpoint's payload (" + std::to_string(payload) +
                              " bytes): not a file this build wrote");
  Sha256 sha;
  sha.Update(bytes.data() + base, payload);
  if (sha.HexDigest() != header.value("payload_sha256", ""))
    return Status::Corruption(path + ": checkpoint payload checksum mismatch");
  Checkpoint c;
  c.meta = header["meta"];
  try {
    for (const auto& e : header["tensors"]) {
      Result<torch::ScalarType> dt_or = DtypeFrom(e["dtype"].get<std::string>());
      if (!dt_or.ok()) return dt_or.status().WithContext(path);
      const torch::ScalarType dt = *dt_or;
      const uint64_t off = e["offset"], nbytes = e["nbytes"];
      if (off + nbytes > payload) return Status::Corruption(path + ": tensor '" + e["name"].get<std::string>() + "' out of range");
      torch::Tensor t = torch::empty(e["shape"].get<std::vector<int64_t>>(), torch::TensorOptions().dtype(dt));
      if (static_cast<uint64_t>(t.numel() * t.element_size()) != nbytes)
        return Status::Corruption(path + ": tensor '" + e["name"].get<std::string>() + "' size does not match its shape");
      std::memcpy(t.data_ptr(), bytes.data() + base + off, nbytes);
      c.tensors.emplace_back(e["name"].get<std::string>(), std::move(t));
    }
  } catch (const nlohmann::json::exception& ex) {
    return Status::Corruption(path + ": malformed checkpoint tensor table: " + ex.what());
  }
  return c;
}

Status VerifyCheckpointFile(const std::string& path) { return ReadCheckpoint(path).status(); }

void AddModuleState(Checkpoint& c, torch::nn::Module& module, const std::string& prefix) {
  for (const auto& p : module.named_parameters(true)) c.Add(prefix + "param." + p.key(), p.value().detach().clone());
  for (const auto& b : module.named_buffers(true)) c.Add(prefix + "buffer." + b.key(), b.value().detach().clone());
}

Status LoadModuleState(const Checkpoint& c, torch::nn::Module& module, const std::string& prefix, bool strict,
                       const std::string& where) {
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor dst) -> Status {
    const torch::Tensor* src = c.Find(name);
    if (!src) {
      if (strict) return Status::Corruption(where + ": checkpoint lacks '" + name + "'");
      return Status::Ok();
    }
    if (src->sizes() != dst.sizes())
      return Status::FailedPrecondition(where + ": '" + name + "' has shape " + c10::str(src->sizes()) +
                                        " in the checkpoint but " + c10::str(dst.sizes()) + " in the model");
    dst.copy_(*src);
    return Status::Ok();
  };
  for (auto& p : module.named_parameters(true)) ES_RETURN_IF_ERROR(load(prefix + "param." + p.key(), p.value()));
  for (auto& b : module.named_buffers(true)) ES_RETURN_IF_ERROR(load(prefix + "buffer." + b.key(), b.value()));
  return Status::Ok();
}

nlohmann::json StateConditions(int threads, int world_size) {
  return {{"threads", threads}, {"world_size", world_size},
          {"git_revision", BuildInfo().value("git_revision", std::string())}};
}

std::string StateConditionsDiffer(const nlohmann::json& meta, const nlohmann::json& now) {
  if (!meta.is_object() || !meta.contains("conditions") || !meta["conditions"].is_object()) return "";
  const nlohmann::json& then = meta["conditions"];
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  auto number = [](const nlohmann::json& j) { return j.is_number_integer() ? j.get<int64_t>() : int64_t{-1}; };
  const int64_t t0 = number(then.value("threads", nlohmann::json())), t1 = number(now["threads"]);
  if (t0 != t1)
    add(std::to_string(t0) + " intra-op thread" + (t0 == 1 ? "" : "s") + " (this run: " + std::to_string(t1) + ")");
  const int64_t w0 = number(then.value("world_size", nlohmann::json())), w1 = number(now["world_size"]);
  if (w0 != w1)
    add("a data-parallel group of " + std::to_string(w0) + " (this run: " + std::to_string(w1) + ")");
  const std::string r0 = then.value("git_revision", std::string()), r1 = now.value("git_revision", std::string());
  if (r0 != r1) add("emosweep " + (r0.empty() ? std::string("of an unknown revision") : r0) + " (this run: " + r1 + ")");
  return out;
}

Status CheckJobStateMeta(const nlohmann::json& meta, int epochs, const std::string& path) {
  auto bad = [&](const std::string& what) { return Status::Corruption(path + ": checkpoint header: " + what); };
  if (!meta.is_object()) return bad("no job state");
  using T = nlohmann::json::value_t;
  const std::vector<std::pair<const char*, std::vector<T>>> fields = {
      {"job_id", {T::string}},
      {"next_epoch", {T::number_integer, T::number_unsigned}},
      {"step", {T::number_integer, T::number_unsigned}},
      {"optimizer", {T::object}},
      {"schedule", {}},
      {"early_stop", {T::object}},
      {"shuffle_rng", {}},
      {"target_rng", {}},
      {"target_order", {T::array}},
      {"target_cursor", {T::number_integer, T::number_unsigned}},
      {"curve", {T::array}}};
  for (const auto& [key, types] : fields) {
    if (!meta.contains(key)) return bad("'" + std::string(key) + "' is missing");
    if (!types.empty() && std::find(types.begin(), types.end(), meta[key].type()) == types.end())
      return bad("'" + std::string(key) + "' has the wrong type (" + meta[key].dump().substr(0, 40) + ")");
  }
  const int64_t next = meta["next_epoch"].get<int64_t>();
  if (next < 0 || next > epochs)
    return bad("'next_epoch' = " + std::to_string(next) + " is outside 0.." + std::to_string(epochs));
  for (const char* key : {"step", "target_cursor"})
    if (meta[key].get<int64_t>() < 0) return bad("'" + std::string(key) + "' is negative");
  for (const auto& v : meta["target_order"])
    if (!v.is_number_integer()) return bad("'target_order' holds a non-integer");
  return Status::Ok();
}

}  // namespace emosweep::worker
