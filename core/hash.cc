#include "core/hash.h"

#include <openssl/evp.h>

#include <cstdio>

#include "core/log.h"

namespace emosweep {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  ES_CHECK(impl_->ctx != nullptr);
  ES_CHECK(EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::Update(const void* data, size_t n) {
  if (n) ES_CHECK(EVP_DigestUpdate(impl_->ctx, data, n) == 1);
}

void Sha256::UpdateField(std::string_view s) {
  uint64_t n = s.size();
  Update(&n, sizeof n);
  Update(s);
}

std::string Sha256::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ES_CHECK(EVP_DigestFinal_ex(impl_->ctx, md, &len) == 1);
  std::string hex(len * 2, '0');
  static const char* kDigits = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    hex[2 * i] = kDigits[md[i] >> 4];
    hex[2 * i + 1] = kDigits[md[i] & 15];
  }
  return hex;
}

void Sha256::CopyStateFrom(const Sha256& other) {
  ES_CHECK(EVP_MD_CTX_copy_ex(impl_->ctx, other.impl_->ctx) == 1);
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

std::string CanonicalJson(const nlohmann::json& j) { return j.dump(); }

std::string HashJson(const nlohmann::json& j) { return Sha256Hex(CanonicalJson(j)); }

}  // namespace emosweep
