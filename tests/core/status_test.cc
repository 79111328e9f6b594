#include "core/status.h"

#include <gtest/gtest.h>

namespace emosweep {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ES_ASSIGN_OR_RETURN(int h, Half(x));
  ES_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, ExitCodesFollowTheCliContract) {
  EXPECT_EQ(ExitCodeFor(Status::Ok()), 0);
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x")), 2);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("x")), 2);
  EXPECT_EQ(ExitCodeFor(Status::Corruption("x")), 2);
  EXPECT_EQ(ExitCodeFor(Status::IoError("x")), 1);
  EXPECT_EQ(ExitCodeFor(Status::Internal("x")), 1);
  EXPECT_EQ(ExitCodeFor(Status::Aborted("x")), 3);  // stopped on request with work left
}

TEST(Status, ResultPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_EQ(Status::NotFound("a").WithContext("f.h5").ToString(), "Not found: f.h5: a");
}

}  // namespace
}  // namespace emosweep
