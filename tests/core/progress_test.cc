// core/progress.h: the progress line's text (stderr not a terminal here, so it is written as log lines).
#include "core/progress.h"

#include <gtest/gtest.h>

#include "core/log.h"

namespace emosweep {
namespace {

// helper-69: the last line of work stopped early read "ETA 24.7s done in 3.1s".
TEST(Progress, TheLastLineOfWorkThatEndedEarlySaysSoWithoutAnEta) {
  SetLogLevel(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  {
    Progress p("sweep", 10, /*interval_s=*/1e9);
    p.Add(3);
  }  // finished by its destructor
  std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("sweep: 3/10 (30%)"), std::string::npos) << said;
  EXPECT_NE(said.find(" ended after "), std::string::npos) << said;
  EXPECT_EQ(said.find("ETA"), std::string::npos) << said;
  EXPECT_EQ(said.find("done in"), std::string::npos) << said;
  ::testing::internal::CaptureStderr();
  {
    Progress p("sweep", 4, 1e9);
    p.Add(4);
  }
  said = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("sweep: 4/4 (100%)"), std::string::npos) << said;
  EXPECT_NE(said.find(" done in "), std::string::npos) << said;
}

}  // namespace
}  // namespace emosweep
