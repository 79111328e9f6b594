// PlaceRank: the placement policy of orchestrator/placement.h, case by case.
#include "orchestrator/placement.h"

#include <gtest/gtest.h>

namespace emosweep::orchestrator {
namespace {

// A host with the coordinator and 4 worker ranks (world ranks 0..4), 2 cores, 2 GPUs.
PlacementInput Host(int world_rank, const std::string& device = "cpu") {
  PlacementInput in;
  in.device = device;
  in.host = "node1";
  in.world_rank = world_rank;
  in.local_rank = world_rank;
  in.local_size = 5;
  in.host_has_coordinator = true;
  in.threads = 1;
  in.cores = 4;
  in.gpus = 2;
  return in;
}

TEST(Placement, CoordinatorComputesOnTheCpu) {
  auto p = PlaceRank(Host(0, "cuda"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->device, "cpu");
  EXPECT_EQ(p->worker_index, -1);
  EXPECT_EQ(p->workers_on_host, 4);
}

TEST(Placement, CpuThreadsMustFitTheCores) {
  auto in = Host(1);
  EXPECT_TRUE(PlaceRank(in).ok());  // 4 workers x 1 thread on 4 cores
  in.threads = 2;
  auto p = PlaceRank(in);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  for (const char* s : {"node1", "4 worker ranks", "--threads 2", "8 threads", "4 cores", "--oversubscribe"})
    EXPECT_NE(p.status().message().find(s), std::string::npos) << s << ": " << p.status().message();
  in.allow_oversubscribe = true;
  EXPECT_TRUE(PlaceRank(in).ok());
  // A host without the coordinator: all its ranks are workers.
  PlacementInput other = Host(5);
  other.local_rank = 0;
  other.local_size = 4;
  other.host_has_coordinator = false;
  auto q = PlaceRank(other);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->worker_index, 0);
  EXPECT_EQ(q->workers_on_host, 4);
}

TEST(Placement, CudaIsRoundRobinWithinJobsPerGpu) {
  // 4 workers on 2 GPUs need 2 jobs per GPU.
  auto one = Host(1, "cuda");
  auto p = PlaceRank(one);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("need 4 GPUs, the host has 2"), std::string::npos) << p.status().message();
  std::vector<std::string> devices;
  for (int r = 1; r <= 4; ++r) {
    auto in = Host(r, "cuda");
    in.jobs_per_gpu = 2;
    auto q = PlaceRank(in);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    devices.push_back(q->device);
  }
  EXPECT_EQ(devices, (std::vector<std::string>{"cuda:0", "cuda:1", "cuda:0", "cuda:1"}));
}

TEST(Placement, DataParallelGroupsNeedOneGpuPerRank) {
  auto in = Host(1, "cuda");
  in.jobs_per_gpu = 2;
  in.group_size = 2;  // groups (1,2) and (3,4): cuda:0 + cuda:1 each
  EXPECT_TRUE(PlaceRank(in).ok());
  in.group_size = 4;
  auto p = PlaceRank(in);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("one GPU per rank"), std::string::npos) << p.status().message();
  // A group spanning two hosts: world ranks 1..4 here (with the coordinator), 5..8 on node2, 4 GPUs each;
  // --group-size 6 puts ranks 1..6 in one group, 4 of them here and 2 on node2: fits.
  for (int r : {1, 4, 5, 6}) {
    PlacementInput h = Host(r, "cuda");
    h.gpus = 4;
    h.group_size = 6;
    if (r >= 5) {
      h.host = "node2";
      h.local_rank = r - 5;
      h.local_size = 4;
      h.host_has_coordinator = false;
    }
    auto q = PlaceRank(h);
    EXPECT_TRUE(q.ok()) << r << ": " << q.status().ToString();
  }
  PlacementInput two = Host(2, "cuda");  // the same group on hosts with 3 GPUs: 4 of its ranks on node1
  two.gpus = 3;
  two.jobs_per_gpu = 2;
  two.group_size = 6;
  auto t = PlaceRank(two);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("4 ranks of a --group-size 6 group"), std::string::npos)
      << t.status().message();
  auto fixed = Host(1, "cuda:1");
  fixed.jobs_per_gpu = 4;
  fixed.group_size = 2;
  auto f = PlaceRank(fixed);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("NCCL"), std::string::npos) << f.status().message();
}

TEST(Placement, FixedDeviceAndBadInput) {
  auto in = Host(2, "cuda:1");
  in.jobs_per_gpu = 4;
  auto p = PlaceRank(in);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->device, "cuda:1");
  in.jobs_per_gpu = 1;
  EXPECT_FALSE(PlaceRank(in).ok());  // 4 workers packed on one GPU need --jobs-per-gpu 4
  in.device = "cuda:2";
  in.jobs_per_gpu = 4;
  EXPECT_NE(PlaceRank(in).status().message().find("has 2 GPU"), std::string::npos);
  in.device = "gpu";
  EXPECT_FALSE(PlaceRank(in).ok());
  auto none = Host(1, "cuda");
  none.gpus = 0;
  EXPECT_EQ(PlaceRank(none).status().code(), StatusCode::kFailedPrecondition);
  none.device = "cuda:0";  // a fixed device with no GPU visible is refused as well (was let through)
  none.jobs_per_gpu = 4;
  EXPECT_EQ(PlaceRank(none).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace emosweep::orchestrator
