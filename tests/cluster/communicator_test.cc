#include "cluster/communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "cluster/world.h"

namespace emosweep::cluster {
namespace {

TEST(InProcCommunicator, DeliversInOrderAndFiltersBySourceAndTag) {
  auto world = MakeInProcWorld(3);
  ASSERT_TRUE(world[1]->Send(0, 7, "a").ok());
  ASSERT_TRUE(world[2]->Send(0, 8, "b").ok());
  ASSERT_TRUE(world[1]->Send(0, 7, "c").ok());
  auto m = world[0]->Recv(2, kAnyTag, 0);
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->payload, "b");
  EXPECT_EQ((*m)->source, 2);
  m = world[0]->Recv(kAnySource, 7, 0);
  EXPECT_EQ((*m)->payload, "a");
  m = world[0]->Recv(kAnySource, 7, 0);
  EXPECT_EQ((*m)->payload, "c");
  EXPECT_FALSE(world[0]->Send(5, 1, "x").ok());
}

TEST(InProcCommunicator, RecvTimesOutInsteadOfHanging) {
  auto world = MakeInProcWorld(2);
  auto t0 = std::chrono::steady_clock::now();
  auto m = world[0]->Recv(kAnySource, kAnyTag, 0.2);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->has_value());
  EXPECT_GE(waited, 0.15);
  EXPECT_LT(waited, 2.0);
}

TEST(InProcCommunicator, WakesOnMessageFromAnotherThread) {
  auto world = MakeInProcWorld(2);
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (void)world[1]->Send(0, 3, "hello");
  });
  auto m = world[0]->Recv(kAnySource, 3, 5.0);
  sender.join();
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->payload, "hello");
}

TEST(World, SingleProcessWorldIsAWorldOfOne) {
  auto w = MakeSingleProcessWorld();
  EXPECT_EQ(w->comm().size(), 1);
  EXPECT_EQ(w->comm().rank(), 0);
  auto r = w->MakeGroupReducer(0, "cpu", {});
  ASSERT_TRUE(r.ok());
  float x[3] = {1, 2, 3};
  ASSERT_TRUE((*r)->AllreduceMean(x, 3).ok());
  EXPECT_EQ(x[2], 3.0f);
  EXPECT_EQ((*r)->size(), 1);
}

}  // namespace
}  // namespace emosweep::cluster
