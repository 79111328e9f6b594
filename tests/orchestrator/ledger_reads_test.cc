// tests/orchestrator/ledger_reads_test.cc: the read API over many ids: chosen metrics, StatusOf and
// StatusList, ForEachMetric's scan, Infos with a minimum size: each agrees with the plain reads.
#include "orchestrator/ledger.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/orchestrator/fake_jobs.h"
#include "tests/orchestrator/ledger_test_util.h"

namespace emosweep::orchestrator {
namespace {

using testing::FakeResult;
using testing::MakeJob;
using testing::OpenOk;
using testing::RawExec;
using testing::RegisterOne;
using testing::TestDir;

// Issue 15: `table` reads only its metrics on its eval sets; names are user text
// (a quote in one is a literal, not SQL).
TEST(Ledger, MetricsOfChosenEvalsAndNamesOnly) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto job = MakeJob("e", "good", "c", 1);
  RegisterOne(l.get(), job);
  ASSERT_EQ(l->Claim(job.spec.id, ThisOwner(), {})->outcome, ClaimOutcome::kClaimed);
  jobs::JobResult r = FakeResult(job.spec);
  r.evals["val"].metrics = {{"ua", 0.5}, {"wa", 0.25}};
  r.evals["test"].metrics["it's"] = 0.75;
  ASSERT_TRUE(l->Complete(job.spec.id, ThisOwner(), r, {}).ok());
  auto all = l->Metrics({job.spec.id});
  ASSERT_TRUE(all.ok());
  auto some = l->Metrics({job.spec.id, "no-such-job"}, {"test", "val"}, {"ua", "it's"});
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  ASSERT_EQ(some->size(), 1u);
  const auto& m = some->at(job.spec.id);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at("test").size(), 2u);
  EXPECT_EQ(m.at("test").at("ua"), (*all)[job.spec.id]["test"]["ua"]);
  EXPECT_EQ(m.at("test").at("it's"), 0.75);
  EXPECT_EQ(m.at("val").size(), 1u);
  EXPECT_EQ(m.at("val").at("ua"), 0.5);
  EXPECT_GT((*all)[job.spec.id]["test"].size(), 2u);  // the rest is there, just not read
  auto none = l->Metrics({job.spec.id}, {"val"}, {"x') OR ('1'='1"});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  EXPECT_TRUE(l->Metrics({job.spec.id}, {}, {"ua"})->empty());
}

TEST(Ledger, StatusOfManyIdsCrossesChunkBoundaries) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);  // 1200 jobs > 500 per chunk
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  ids.push_back("no-such-job");
  auto st = l->StatusOf(ids);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size(), 1200u);
  EXPECT_EQ(st->count("no-such-job"), 0u);
}

// Issue 15: from 1000 ids on StatusOf reads indices only; it must agree with the row reads.
TEST(Ledger, StatusOfManyIdsAgreesWithFewIdsForEveryStatus) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  ClaimOptions co;
  ASSERT_TRUE(l->Claim(jobs[3].spec.id, "h:1:x", co).ok());              // running
  ASSERT_TRUE(l->Claim(jobs[700].spec.id, ThisOwner(), co).ok());
  ASSERT_TRUE(l->Fail(jobs[700].spec.id, ThisOwner(), "boom", false).ok());  // failed
  ASSERT_TRUE(l->Block(jobs[1100].spec.id, "dep failed").ok());            // blocked
  ASSERT_TRUE(l->Claim(jobs[5].spec.id, ThisOwner(), co).ok());
  ASSERT_TRUE(l->Complete(jobs[5].spec.id, ThisOwner(), testing::FakeResult(jobs[5].spec), {}).ok());  // done
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  auto many = l->StatusOf(ids);
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(many->size(), ids.size());
  for (size_t i = 0; i < ids.size(); i += 100) {
    std::vector<std::string> few(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 100));
    auto f = l->StatusOf(few);
    ASSERT_TRUE(f.ok());
    for (const auto& [id, st] : *f) EXPECT_EQ(many->at(id), st) << id;
  }
  EXPECT_EQ(many->at(jobs[3].spec.id), JobStatus::kRunning);
  EXPECT_EQ(many->at(jobs[700].spec.id), JobStatus::kFailed);
  EXPECT_EQ(many->at(jobs[1100].spec.id), JobStatus::kBlocked);
  EXPECT_EQ(many->at(jobs[5].spec.id), JobStatus::kDone);
  EXPECT_EQ(many->at(jobs[6].spec.id), JobStatus::kPending);
}

// Issue 15: `table --all` asks for (nearly) every job of the ledger, in id order. Then
// StatusList reads one ordered scan of the covering index, merged with the ids, and
// ForEachMetric one pass over the metrics table, instead of an IN list of 500 ids a chunk
// (a statement each, and a seek a job); the answers must be those of the chunked reads
// (ids out of order).
TEST(Ledger, SortedManyIdsAreReadByOneScanWithTheChunkedAnswers) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 200);  // 1200 jobs
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  ClaimOptions co;
  ASSERT_TRUE(l->Claim(jobs[3].spec.id, "h:1:x", co).ok());  // running
  ASSERT_TRUE(l->Block(jobs[1100].spec.id, "dep failed").ok());
  for (size_t k = 0; k < jobs.size(); k += 7) {  // done, spread over the rowids
    if (k == 3 || k == 1100) continue;
    ASSERT_TRUE(l->Claim(jobs[k].spec.id, ThisOwner(), co).ok());
    ASSERT_TRUE(l->Complete(jobs[k].spec.id, ThisOwner(), testing::FakeResult(jobs[k].spec), {}).ok());
  }
  std::vector<std::string> sorted;
  for (const auto& j : jobs) sorted.push_back(j.spec.id);
  sorted.push_back(jobs[14].spec.id);  // repeated: both positions get the answers
  sorted.push_back("0-no-such-job");
  sorted.push_back("zz-no-such-job");
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> shuffled = sorted;  // not in id order: the chunked reads
  std::reverse(shuffled.begin(), shuffled.end());
  std::swap(shuffled[0], shuffled[shuffled.size() / 2]);
  const std::vector<std::string_view> fast(sorted.begin(), sorted.end()), slow(shuffled.begin(), shuffled.end());
  int64_t before = l->statements_prepared();
  auto merged = l->StatusList(fast);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_LE(l->statements_prepared() - before, 2) << "max(rowid), then one scan (3 chunks: 3 statements)";
  auto chunked = l->StatusList(slow);
  ASSERT_TRUE(chunked.ok());
  std::map<std::string, std::optional<JobStatus>> want;
  for (size_t i = 0; i < slow.size(); ++i) want[shuffled[i]] = (*chunked)[i];
  ASSERT_EQ(merged->size(), sorted.size());
  int done = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    EXPECT_EQ((*merged)[i], want.at(sorted[i])) << sorted[i];
    done += (*merged)[i] == JobStatus::kDone;
  }
  EXPECT_EQ(done, 172 + 1) << "every 7th job (172), the repeated one twice";
  EXPECT_FALSE(merged->front().has_value());
  EXPECT_FALSE(merged->back().has_value());
  EXPECT_EQ(want.at(jobs[3].spec.id), JobStatus::kRunning);
  EXPECT_EQ(want.at(jobs[1100].spec.id), JobStatus::kBlocked);
  // Metrics: a subset of evals and names, so the value read steps over and seeks past rows.
  for (const auto& [evals, names] : std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"test"}, {"ua"}}, {{"test", "val"}, {"wa", "ua", "macro_f1"}}, {{"nope"}, {"ua"}}}) {
    std::map<std::string, std::map<std::string, double>> got_fast, got_slow;
    std::map<std::string, int> seen_fast;
    before = l->statements_prepared();
    ASSERT_TRUE(l->ForEachMetric(fast, evals, names, [&](size_t i, size_t e, size_t m, double v) {
                   got_fast[sorted[i]][evals[e] + "/" + names[m]] = v;
                   seen_fast[sorted[i] + evals[e] + names[m]]++;
                 }).ok());
    EXPECT_LE(l->statements_prepared() - before, 2) << "max(rowid), the table scan";
    ASSERT_TRUE(l->ForEachMetric(slow, evals, names, [&](size_t i, size_t e, size_t m, double v) {
                   got_slow[shuffled[i]][evals[e] + "/" + names[m]] = v;
                 }).ok());
    EXPECT_EQ(got_fast, got_slow) << evals[0];
    EXPECT_EQ(seen_fast[jobs[14].spec.id + evals[0] + names[0]], evals[0] == "nope" ? 0 : 2) << "repeated id";
    if (evals[0] == "test") EXPECT_EQ(got_fast.size(), 172u) << evals.size();
  }
  // Every full chunk of an IN-list read reuses one prepared statement.
  before = l->statements_prepared();
  ASSERT_TRUE(l->Infos(shuffled).ok());
  EXPECT_EQ(l->statements_prepared() - before, 2) << "1203 ids: two full chunks share a statement, the rest has one";
}

// Issue 15: `table` reads adaptation jobs' infos for their warnings; most are "{}", behind
// kilobytes of config in overflow pages. Infos(ids, min_bytes) reads only infos of at
// least min_bytes bytes (sized from the row's header) and must give exactly those of the
// full read, whatever the info: NULL, short, exactly at the bound, long, or missing row.
TEST(Ledger, InfosOfAMinimumSizeAreTheLongEnoughInfosOfTheFullRead) {
  std::string path = TestDir() + "/l.db";
  auto l = OpenOk(path);
  auto jobs = testing::MakeGrid("e", {"a", "b"}, {"x", "y", "z"}, 100);  // 600 jobs: two IN chunks
  jobs.push_back(testing::MakeJob("e", "big", "x", 1, {}, /*train_utts=*/3000));  // config over several pages
  auto s = l->BeginSweep({"p", "p.toml", "h", nlohmann::json::object(), {}});
  ASSERT_TRUE(l->RegisterJobs(*s, jobs).ok());
  l.reset();
  const std::string big = jobs.back().spec.id;
  RawExec(path, "UPDATE jobs SET info_json = CASE rowid % 5 WHEN 0 THEN NULL WHEN 1 THEN '{}' "
                "WHEN 2 THEN '{\"warnings\":[1]}' WHEN 3 THEN '{\"warnings\":[]}' "
                "ELSE '{\"warnings\":[{\"code\":\"target_collapse\"}],\"x\":1}' END");
  RawExec(path, "UPDATE jobs SET info_json = '{\"warnings\":[{\"code\":\"short_schedule\"}]}' WHERE id = '" + big + "'");
  l = OpenOk(path, {true});
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.spec.id);
  ids.push_back("no-such-job");
  auto all = l->Infos(ids);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  for (size_t min : {size_t{1}, size_t{15}, size_t{16}, size_t{40}}) {
    auto some = l->Infos(ids, min);
    ASSERT_TRUE(some.ok()) << some.status().ToString();
    std::map<std::string, nlohmann::json> want;
    for (const auto& [id, info] : *all)
      if (info.dump().size() >= min) want.emplace(id, info);
    EXPECT_EQ(*some, want) << "min_bytes " << min;
    if (min <= 15) EXPECT_EQ(some->count(big), 1u);
  }
  EXPECT_GT(all->size(), 400u);
  EXPECT_EQ(l->Infos(ids, 15)->size(), all->size() - all->size() / 4) << "the '{}' rows are left out";
}

}  // namespace
}  // namespace emosweep::orchestrator
