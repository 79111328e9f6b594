// JobSpec::ComputeId writes the identity's canonical JSON directly (issue 15);
// it must hash exactly the bytes of the JSON-tree definition it replaced, or
// every job of every existing ledger would be orphaned.
#include <gtest/gtest.h>

#include "core/hash.h"
#include "jobs/job.h"

namespace emosweep::jobs {
namespace {

// The definition: HashJson of ToJson() without the stores, under the identity version.
std::string ReferenceId(const JobSpec& s) {
  nlohmann::json j = s.ToJson();
  for (const char* part : {"train", "val", "target_unlabeled"})
    for (auto& r : j[part]) r.erase("store");
  for (auto& [name, refs] : j["eval"].items())
    for (auto& r : refs) r.erase("store");
  return HashJson({{"identity_version", 1}, {"job", j}});
}

JobSpec Rich() {
  JobSpec s;
  s.kind = "finetune";
  s.features = {{"audio", "logmel64_stats"}, {"text", "bert"}};
  s.labels = {"neutral", "happy", "sad", "angry"};
  s.train = {{"/a.h5", "h1", {"a_0001", "a_0002"}}, {"/b.h5", "h2", {"b_1"}}};
  s.val = {{"/a.h5", "h1", {"a_0003"}}};
  s.eval["test"] = {{"/c.h5", "h3", {"c_1", "c_2", "c_3"}}};
  s.eval["test:emodb"] = {{"/d.h5", "h4", {}}};
  s.target_unlabeled = {{"/e.h5", "h5", {"e_9"}}};
  s.model = {{"name", "mer_gfl"}, {"hidden", 128}, {"dropout", 0.25}, {"nested", {{"z", 1}, {"a", {1, 2.5}}}}};
  s.train_config = {{"lr", 0.001}, {"epochs", 8}, {"optimizer", "adamw"}, {"flag", true}, {"none", nullptr}};
  s.adapt = {{"variant", "dann_ganin"}, {"weight", 0.3}};
  s.selection = "oracle";
  s.oracle_eval = "test";
  s.seed = 18446744073709551615ull;
  s.init_from = "abc123";
  s.keep_checkpoint = true;
  return s;
}

TEST(JobIdentity, DirectCanonicalBytesEqualTheJsonDefinition) {
  JobSpec empty;
  EXPECT_EQ(empty.ComputeId(), ReferenceId(empty));
  JobSpec rich = Rich();
  EXPECT_EQ(rich.ComputeId(), ReferenceId(rich));
  rich.keep_checkpoint = false;
  rich.seed = 0;
  EXPECT_EQ(rich.ComputeId(), ReferenceId(rich));
}

TEST(JobIdentity, IdsThatNeedEscapingHashLikeTheirJson) {
  JobSpec s = Rich();
  s.train[0].ids = {"quote\"d", "back\\slash", "tab\there", "ünïcode", "\x7f" "del", "ctl\x01"};
  s.eval["naïve \"set\""] = {{"/x.h5", "h\n", {"x"}}};
  s.kind = "eval\u00e9";
  EXPECT_EQ(s.ComputeId(), ReferenceId(s));
}

TEST(JobIdentity, StorePathIsNotPartOfTheIdentityButIdsAre) {
  JobSpec a = Rich(), b = Rich();
  b.train[0].store = "/elsewhere/a.h5";
  EXPECT_EQ(a.ComputeId(), b.ComputeId());
  b.train[0].ids.push_back("a_0004");
  EXPECT_NE(a.ComputeId(), b.ComputeId());
}

}  // namespace
}  // namespace emosweep::jobs
