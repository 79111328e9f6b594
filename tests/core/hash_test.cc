#include "core/hash.h"

#include <gtest/gtest.h>

namespace emosweep {
namespace {

TEST(Hash, Sha256KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.HexDigest(), Sha256Hex("abc"));
}

TEST(Hash, CanonicalJsonIgnoresKeyOrder) {
  auto a = nlohmann::json::parse(R"({"b":1,"a":{"y":2,"x":[1,2]}})");
  auto b = nlohmann::json::parse(R"({"a":{"x":[1,2],"y":2},"b":1})");
  EXPECT_EQ(CanonicalJson(a), R"({"a":{"x":[1,2],"y":2},"b":1})");
  EXPECT_EQ(HashJson(a), HashJson(b));
  b["b"] = 2;
  EXPECT_NE(HashJson(a), HashJson(b));
}

TEST(Hash, FieldsAreLengthPrefixed) {
  Sha256 a, b;
  a.UpdateField("ab");
  a.UpdateField("c");
  b.UpdateField("a");
  b.UpdateField("bc");
  EXPECT_NE(a.HexDigest(), b.HexDigest());
}

}  // namespace
}  // namespace emosweep
