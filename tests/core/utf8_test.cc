// tests/core/utf8_test.cc: the shared UTF-8 validator (RFC 3629) and its messages.
#include "core/utf8.h"

#include <gtest/gtest.h>

namespace emosweep {
namespace {

TEST(Utf8, AcceptsWellFormedText) {
  for (const char* s : {"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80", "\xEF\xBF\xBF",
                        "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"})
    EXPECT_EQ(InvalidUtf8Offset(s), std::string_view::npos) << EscapeBytes(s);
}

TEST(Utf8, RefusesEveryMalformedForm) {
  struct Case {
    std::string s;
    size_t at;
  };
  for (const Case& c : std::vector<Case>{
           {"ab\xFF", 2},              // never valid
           {"\x80x", 0},               // lone continuation
           {"a\xC3", 1},               // truncated
           {"a\xC3(", 1},              // bad continuation
           {"\xC0\xAF", 0},            // overlong '/'
           {"\xE0\x80\xAF", 0},        // overlong
           {"\xED\xA0\x80", 0},        // surrogate U+D800
           {"\xF4\x90\x80\x80", 0},    // above U+10FFFF
           {"ok\xF0\x9F\x98", 2},      // truncated 4-byte
           {"ab\xE2\x82\xACz\xFE", 6},
       })
    EXPECT_EQ(InvalidUtf8Offset(c.s), c.at) << EscapeBytes(c.s);
}

TEST(Utf8, TextErrorNamesLineAndColumn) {
  Status ok = CheckUtf8Text("a,b\nc,d\n", "m.csv");
  EXPECT_TRUE(ok.ok());
  Status s = CheckUtf8Text("file,label\nx.wav,ang\nsp\xC3\xA9,neu\ny\xFF.wav,sad\n", "m.csv");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("m.csv line 4: invalid UTF-8 (byte 0xFF at column 2)"), std::string::npos) << s.message();
}

TEST(Utf8, StringErrorEscapesTheBytes) {
  Status s = CheckUtf8("spk\xFE", "c.pkl", "speaker");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("c.pkl: speaker \"spk\\xFE\" is not valid UTF-8"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace emosweep
