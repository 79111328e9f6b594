// tests/core/strings_test.cc: JoinStrings.
#include "core/strings.h"

#include <gtest/gtest.h>

namespace emosweep {
namespace {

TEST(Strings, JoinPutsTheSeparatorBetweenEveryTwoElements) {
  EXPECT_EQ(JoinStrings({}, ", "), "");
  EXPECT_EQ(JoinStrings({"a"}, ", "), "a");
  EXPECT_EQ(JoinStrings({"a", "b", "c"}, "+"), "a+b+c");
  // An empty element keeps its separators (a join that tests the result for emptiness loses them).
  EXPECT_EQ(JoinStrings({"", "b"}, ", "), ", b");
  EXPECT_EQ(JoinStrings({"a", "", "b"}, ", "), "a, , b");
}

TEST(Strings, JoinTakesTheFirstNElements) {
  const std::vector<std::string> v = {"emosweep", "ledger", "status"};
  EXPECT_EQ(JoinStrings(v, " ", 2), "emosweep ledger");
  EXPECT_EQ(JoinStrings(v, " ", 0), "");
  EXPECT_EQ(JoinStrings(v, " ", 10), "emosweep ledger status");
}

}  // namespace
}  // namespace emosweep
