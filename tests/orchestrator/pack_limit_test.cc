// `run --pack auto|off|K`: parsing, a member's memory estimate, and K auto from memory and device.
#include "orchestrator/pack_limit.h"

#include <gtest/gtest.h>

namespace emosweep::orchestrator {
namespace {

TEST(PackLimit, ParsesAutoOffAndKAndNamesTheOptionOtherwise) {
  EXPECT_EQ(*ParsePack("off"), kPackOff);
  EXPECT_EQ(*ParsePack("auto"), kPackAuto);
  EXPECT_EQ(*ParsePack("1"), 1);
  EXPECT_EQ(*ParsePack("16"), 16);
  for (const char* bad : {"", "0", "-3", "4097", "8x", "on", "99999999999"}) {
    auto r = ParsePack(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("--pack"), std::string::npos);
  }
}

jobs::JobSpec Mlp(std::vector<int> hidden, int rows) {
  jobs::JobSpec s;
  s.kind = "supervised";
  s.labels = {"ang", "hap", "neu", "sad"};
  s.model = {{"name", "concat_mlp"}, {"hidden_dims", hidden}, {"dropout", 0.3}};
  s.train_config = {{"batch_size", 16}};
  jobs::DataRef r{"s.h5", "h", {}};
  for (int i = 0; i < rows; ++i) r.ids.push_back("u" + std::to_string(i));
  s.train = {r};
  return s;
}

TEST(PackLimit, MemberBytesGrowWithInputDimsHiddenSizesAndRows) {
  const int64_t base = PackMemberBytes(Mlp({64}, 100), 128);
  // (128+1)*64 + (64+1)*4 params x 16 B + 16 x (128+64+4) x 12 B activations + 100 x 128 x 4 B data, x 1.5
  const int64_t params = 129 * 64 + 65 * 4;
  EXPECT_EQ(base, (params * 16 + 16 * (128 + 64 + 4) * 12 + 100 * 128 * 4) * 3 / 2);
  EXPECT_GT(PackMemberBytes(Mlp({64}, 100), 1024), base);
  EXPECT_GT(PackMemberBytes(Mlp({256, 128}, 100), 128), base);
  EXPECT_GT(PackMemberBytes(Mlp({64}, 10000), 128), base);
  // An adapting member also holds its unlabeled target rows.
  jobs::JobSpec da = Mlp({64}, 100);
  da.target_unlabeled = da.train;
  EXPECT_EQ(PackMemberBytes(da, 128) - base, int64_t{100} * 128 * 4 * 3 / 2);
  // A model that names no widths counts two layers of 512.
  jobs::JobSpec bare = Mlp({64}, 100);
  bare.model = {{"name", "concat_mlp"}};
  EXPECT_EQ(PackMemberBytes(bare, 128), PackMemberBytes(Mlp({512, 512}, 100), 128));
}

TEST(PackLimit, CpuCapKeepsThePacksOptimizerStateWithinTheCacheBudget) {
  // The protocol's mlp_wide (128 -> 512 -> 256 -> 4): ~198 k parameters, 3.2 MB of state a member.
  const int64_t wide = PackMemberParams(Mlp({512, 256}, 100), 128);
  EXPECT_EQ(wide, 129 * 512 + 513 * 256 + 257 * 4);
  EXPECT_EQ(CpuPackCap(wide), static_cast<int>(kPackCacheBudgetCpu / (wide * 16)));
  EXPECT_EQ(CpuPackCap(wide, 32 << 20), 10);
  EXPECT_EQ(CpuPackCap(100000, 16 << 20), 10);  // 1.6 MB a member
  EXPECT_EQ(CpuPackCap(int64_t{1} << 24), 2);  // a member larger than the budget still packs in pairs
  EXPECT_EQ(CpuPackCap(1000), kPackMaxCpu);     // tiny members: the CPU width
  EXPECT_LT(CpuPackCap(wide), CpuPackCap(PackMemberParams(Mlp({64}, 100), 128)));
}

TEST(PackLimit, AutoIsTheDeviceWidthUnlessMemoryIsShort) {
  AutoPackInput in;
  in.member_bytes = 10 << 20;           // 10 MB a member
  in.mem_available = int64_t{8} << 30;  // 8 GB: room for hundreds
  EXPECT_EQ(AutoPackLimit(in), kPackMaxCpu);
  in.gpu = true;
  EXPECT_EQ(AutoPackLimit(in), kPackMaxGpu);
  in.gpu = false;
  in.mem_available = int64_t{200} << 20;  // 200 MB x 0.5 / 10 MB = 10
  EXPECT_EQ(AutoPackLimit(in), 10);
  in.parallel = 2;  // two workers share it: 5 each
  EXPECT_EQ(AutoPackLimit(in), 5);
  in.member_bytes = int64_t{1} << 30;  // a member larger than the budget still runs (alone)
  EXPECT_EQ(AutoPackLimit(in), 1);
  in.mem_available = 0;  // unknown memory: the device width
  EXPECT_EQ(AutoPackLimit(in), kPackMaxCpu);
  EXPECT_GT(MemAvailableBytes(), 0) << "/proc/meminfo";
}

}  // namespace
}  // namespace emosweep::orchestrator
