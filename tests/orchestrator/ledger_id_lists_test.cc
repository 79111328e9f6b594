// Ledger schema v5 (helper-67's scale audit): utterance-id lists are stored once each in id_lists and a job
// row's config_json names them ("ids_list", "n_ids"); rows of a v4 file keep their inline lists after the
// migration; `ledger gc` drops lists no job left names.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/hash.h"
#include "core/build_info.h"
#include "orchestrator/ledger.h"
#include "orchestrator/runner.h"
#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::OpenOk;
using testing::RawExec;
using testing::TestDir;

// n jobs that share one training list of `utts` ids and one test list (seeds differ), plus one job on a list
// of its own.
std::vector<protocols::PlannedJob> SharedListJobs(int n, int utts) {
  std::vector<std::string> train, test;
  for (int i = 0; i < utts; ++i) train.push_back("spk" + std::to_string(i % 7) + "/utt_" + std::to_string(i));
  for (int i = 0; i < utts / 4; ++i) test.push_back("test/utt_" + std::to_string(i));
  const jobs::IdList train_list = jobs::IdList::Intern(train), test_list = jobs::IdList::Intern(test);
  std::vector<protocols::PlannedJob> out;
  for (int s = 0; s <= n; ++s) {
    protocols::PlannedJob j = testing::MakeJob("e", "mlp", "c", static_cast<uint64_t>(s));
    j.spec.train = {{"/stores/a.h5", "hash-a", s < n ? train_list : jobs::IdList({"own/1", "own/2"})}};
    j.spec.eval["test"] = {{"/stores/a.h5", "hash-a", test_list}};
    j.spec.id = j.spec.ComputeId();
    out.push_back(std::move(j));
  }
  return out;
}

std::string Sha256Hex(const std::string& s) {
  Sha256 h;
  h.Update(s);
  return h.HexDigest();
}

// Raw SQL through a read-only open (Ledger::Query's rule).
nlohmann::json Rows(const std::string& path, const std::string& sql) {
  auto l = OpenOk(path, {true});
  if (!l) return nlohmann::json::array();
  auto q = l->Query(sql);
  EXPECT_TRUE(q.ok()) << q.status().ToString() << "\n  in: " << sql;
  return q.ok() ? (*q)["rows"] : nlohmann::json::array();
}

TEST(LedgerIdLists, EachListIsStoredOnceAndJobRowsNameIt) {
  const std::string path = TestDir() + "/l.db";
  auto jobs = SharedListJobs(20, 3000);
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->schema_version(), 5);
  testing::RegisterOne(l.get(), jobs[0]);
  auto sweep = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(sweep.ok());
  ASSERT_TRUE(l->RegisterJobs(*sweep, jobs).ok());

  // Three lists (the shared training list, the test list, the one job's own), each its compact JSON, keyed
  // by that JSON's SHA-256.
  const nlohmann::json lists = Rows(path, "SELECT hash, n, ids_json FROM id_lists ORDER BY n");
  ASSERT_EQ(lists.size(), 3u) << lists.dump();
  EXPECT_EQ(lists[0][1].get<int64_t>(), 2);
  EXPECT_EQ(lists[1][1].get<int64_t>(), 750);
  EXPECT_EQ(lists[2][1].get<int64_t>(), 3000);
  EXPECT_EQ(lists[2][2].get<std::string>(), nlohmann::json(jobs[0].spec.train[0].ids.vec()).dump());
  for (const auto& row : lists) EXPECT_EQ(row[0].get<std::string>(), Sha256Hex(row[2].get<std::string>()));

  // Every row names its lists instead of holding them, and the row with its lists put back is ToJson().
  std::map<std::string, nlohmann::json> by_hash;
  for (const auto& row : lists) by_hash[row[0].get<std::string>()] = nlohmann::json::parse(row[2].get<std::string>());
  for (const auto& j : jobs) {
    const nlohmann::json r = Rows(path, "SELECT config_json, length(config_json) FROM jobs WHERE id = '" + j.spec.id + "'");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_LT(r[0][1].get<int64_t>(), 4000) << "a row with its 3000 ids inline is ~50 KB";
    nlohmann::json config = nlohmann::json::parse(r[0][0].get<std::string>());
    for (auto* refs : {&config["train"], &config["eval"]["test"]}) {
      for (auto& ref : *refs) {
        ASSERT_FALSE(ref.contains("ids")) << ref.dump();
        ASSERT_TRUE(by_hash.count(ref["ids_list"].get<std::string>())) << ref.dump();
        const nlohmann::json& ids = by_hash[ref["ids_list"].get<std::string>()];
        EXPECT_EQ(ref["n_ids"].get<size_t>(), ids.size());
        ref.erase("ids_list");
        ref.erase("n_ids");
        ref["ids"] = ids;
      }
    }
    EXPECT_EQ(config, j.spec.ToJson()) << j.spec.id;
  }
}

TEST(LedgerIdLists, AV4FileKeepsItsInlineListsAndGcDropsOnlyListsNoJobNames) {
  const std::string path = TestDir() + "/l.db";
  auto jobs = SharedListJobs(4, 100);
  {
    auto l = OpenOk(path);
    ASSERT_NE(l, nullptr);
  }
  // A v4 file with one job row as v4 wrote it: its lists inline.
  RawExec(path, testing::kV5ToV4);
  const std::string inline_config = jobs[0].spec.ToJson().dump();
  std::string quoted;
  for (char c : inline_config) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  RawExec(path, "INSERT INTO jobs(id, kind, config_json, created_at) VALUES ('" + jobs[0].spec.id +
                    "', 'supervised', '" + quoted + "', 0)");
  {
    auto ro = OpenOk(path, {true});
    ASSERT_NE(ro, nullptr);
    EXPECT_EQ(ro->schema_version(), 4) << "a read-only open reads a v4 file as it is";
  }
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->schema_version(), 5);
  // The old row stays as it was; the others are registered with their lists apart.
  auto sweep = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(sweep.ok());
  ASSERT_TRUE(l->RegisterJobs(*sweep, jobs).ok());
  EXPECT_EQ(Rows(path, "SELECT config_json FROM jobs WHERE id = '" + jobs[0].spec.id + "'")[0][0], inline_config);
  EXPECT_EQ(Rows(path, "SELECT count(*) FROM id_lists")[0][0].get<int64_t>(), 3)
      << "the shared training and test lists, and the last job's own (the v4 row's lists are not copied)";

  // gc keeping every job but the one with its own list: that list goes, the shared ones stay.
  std::vector<std::string> keep;
  for (size_t i = 0; i + 1 < jobs.size(); ++i) keep.push_back(jobs[i].spec.id);
  auto dry = l->CollectGarbage(keep, /*apply=*/false);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->dropped_id_lists, 1);
  EXPECT_EQ(Rows(path, "SELECT count(*) FROM id_lists")[0][0].get<int64_t>(), 3) << "a dry run drops nothing";
  ASSERT_TRUE(l->FinishSweep(*sweep, "done", nlohmann::json::object()).ok());
  auto r = l->CollectGarbage(keep, /*apply=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dropped_jobs, 1);
  EXPECT_EQ(r->dropped_id_lists, 1);
  const nlohmann::json left = Rows(path, "SELECT n FROM id_lists ORDER BY n");
  EXPECT_EQ(left, nlohmann::json::parse("[[25], [100]]"));
  // Every list a kept row names is still there.
  const nlohmann::json dangling = Rows(path,
      "SELECT count(*) FROM jobs, json_tree(jobs.config_json) t WHERE t.key = 'ids_list' "
      "AND t.value NOT IN (SELECT hash FROM id_lists)");
  EXPECT_EQ(dangling[0][0].get<int64_t>(), 0);
  // Keeping nothing: every list goes (the v4 row names none).
  auto none = l->CollectGarbage({}, /*apply=*/true);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->dropped_id_lists, 2);
  EXPECT_EQ(Rows(path, "SELECT count(*) FROM id_lists")[0][0].get<int64_t>(), 0);
}

// The builds whose results a ledger holds (meta 'result_build:<rev>'): filled from provenance by the migration to
// v5, kept by every result, recounted by gc; `run` warns when it reuses done jobs of other builds (helper-73).
TEST(LedgerIdLists, TheLedgerKnowsWhichBuildsItsResultsComeFrom) {
  const std::string path = TestDir() + "/l.db";
  auto jobs = SharedListJobs(3, 20);
  const std::string here = BuildInfo().value("git_revision", std::string());
  {
    auto l = OpenOk(path);
    ASSERT_NE(l, nullptr);
  }
  // A v4 file with a result of build "0ld0ld0ld0ld".
  RawExec(path, testing::kV5ToV4);
  RawExec(path, "INSERT INTO jobs(id, kind, config_json, status, created_at) VALUES ('" + jobs[0].spec.id +
                    "', 'supervised', '{}', 'done', 0); INSERT INTO provenance(job_id, git_revision) VALUES ('" +
                    jobs[0].spec.id + "', '0ld0ld0ld0ld')");
  auto l = OpenOk(path);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(*l->ResultBuilds(), std::vector<std::string>{"0ld0ld0ld0ld"}) << "filled by the migration";
  const std::string w = OtherBuildsWarning(l.get(), 1);
  EXPECT_NE(w.find("holds results of other emosweep builds (0ld0ld0ld0ld; this one is " + here + ")"),
            std::string::npos) << w;
  EXPECT_EQ(OtherBuildsWarning(l.get(), 0), "") << "nothing reused";
  // A result of this build adds it.
  auto sweep = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(sweep.ok());
  ASSERT_TRUE(l->RegisterJobs(*sweep, jobs).ok());
  const std::string me = ThisOwner();
  ASSERT_TRUE(l->Claim(jobs[1].spec.id, me, {}).ok());
  ASSERT_TRUE(l->Complete(jobs[1].spec.id, me, testing::FakeResult(jobs[1].spec), {{"git_revision", here}}).ok());
  auto builds = *l->ResultBuilds();
  std::vector<std::string> want = {"0ld0ld0ld0ld", here};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(builds, want);
  // gc dropping the old build's only result forgets it; then nothing is said.
  ASSERT_TRUE(l->FinishSweep(*sweep, "done", nlohmann::json::object()).ok());
  RawExec(path, "DELETE FROM provenance WHERE git_revision = '0ld0ld0ld0ld'");
  ASSERT_TRUE(l->CollectGarbage({jobs[1].spec.id}, /*apply=*/true).ok());
  EXPECT_EQ(*l->ResultBuilds(), std::vector<std::string>{here});
  EXPECT_EQ(OtherBuildsWarning(l.get(), 5), "");
}

}  // namespace
}  // namespace emosweep::orchestrator
