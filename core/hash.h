// core/hash.h: SHA-256 and canonical JSON, the basis of every identity.
//
// Job identity, feature-store content hashes and split-file hashes are all
// SHA-256 (lower-case hex) of bytes produced here. Canonical JSON = nlohmann's
// compact dump: object keys sorted (std::map), no whitespace, numbers in the
// shortest round-trip form. Never change this encoding without bumping the
// identity version (docs/formats/ledger.md), or every ledger entry is orphaned.
// Thread-safety: Sha256 objects are not shared; free functions are reentrant.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace emosweep {

// Incremental hasher for large payloads (feature matrices).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Length-prefixed string: keeps ("ab","c") and ("a","bc") apart.
  void UpdateField(std::string_view s);
  std::string HexDigest();  // finalizes
  // This hasher continues from `other`'s state (a midstate: the bytes `other` has seen).
  void CopyStateFrom(const Sha256& other);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);
std::string CanonicalJson(const nlohmann::json& j);
std::string HashJson(const nlohmann::json& j);  // Sha256Hex(CanonicalJson(j))

}  // namespace emosweep
