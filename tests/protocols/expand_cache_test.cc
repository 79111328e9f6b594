// tests/protocols/expand_cache_test.cc: the expansion cache of `table` (issue 15):
// a hit gives the same table-facing jobs as a fresh expansion, and the key
// changes with everything the expansion depends on.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "protocols/expand_cache.h"
#include "tests/protocols/protocol_test_util.h"

namespace emosweep::protocols {
namespace {

using testing::MakeCorpus;
using testing::TestDir;
using testing::WriteStore;

const char* kProtocol = R"(version = 1
name = "x"
[corpora.a]
store = "a.h5"
[corpora.b]
store = "b.h5"
[defaults]
labels = "core4"
features = {audio = "feat"}
seeds = [1, 2]
selection = "source_val"
split = {method = "speaker_kfold", k = 3}
[[experiment]]
name = "xc"
kind = "cross_corpus"
corpora = ["a", "b"]
models = ["concat_mlp"]
[[experiment]]
name = "ft"
kind = "finetune"
source = "a"
target = "b"
models = ["concat_mlp"]
selection = "oracle"
oracle_eval = "test"
[[table]]
name = "t"
experiment = "xc"
rows = "source"
columns = "target"
metrics = ["ua"]
spread = "std"
)";

class ExpandCache : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : {"a", "b"}) WriteStore(dir_, MakeCorpus(n));
    cache_ = dir_.File("cache");
    ::setenv("EMOSWEEP_CACHE_DIR", cache_.c_str(), 1);
  }
  void TearDown() override { ::unsetenv("EMOSWEEP_CACHE_DIR"); }
  TestDir dir_;
  std::string cache_;
};

TEST_F(ExpandCache, HitEqualsFreshExpansionInEveryFieldTablesRead) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto fresh = LoadProtocol(path, {});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  ASSERT_FALSE(fresh->expansion_key.empty());
  auto miss = LoadProtocolForTables(path, {});
  ASSERT_TRUE(miss.ok()) << miss.status().ToString();
  const std::string file = ExpansionCachePath(fresh->expansion_key);
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  auto hit = LoadProtocolForTables(path, {});
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  ASSERT_EQ(hit->jobs.size(), fresh->jobs.size());
  // A hit carries no data references: it really came from the file.
  bool any_data = false;
  for (const auto& j : hit->jobs) any_data |= !j.spec.train.empty();
  EXPECT_FALSE(any_data);
  int oracle = 0, helpers = 0;
  for (size_t i = 0; i < fresh->jobs.size(); ++i) {
    const auto &a = fresh->jobs[i], &b = hit->jobs[i];
    EXPECT_EQ(a.spec.id, b.spec.id);
    EXPECT_EQ(a.reportable, b.reportable);
    EXPECT_EQ(a.attrs, b.attrs);
    EXPECT_EQ(a.spec.seed, b.spec.seed);
    EXPECT_EQ(a.spec.selection, b.spec.selection);
    EXPECT_EQ(a.spec.oracle_eval, b.spec.oracle_eval);
    EXPECT_EQ(a.spec.labels, b.spec.labels);
    oracle += a.spec.selection == "oracle";
    helpers += !a.reportable;
  }
  EXPECT_GT(oracle, 0);
  EXPECT_GT(helpers, 0);  // the shared pre-training job
  EXPECT_EQ(hit->tables.size(), 1u);
}

// Issue 15: jobs read from the cache share one labels list (jobs::IdList), as expanded
// jobs do: the address of the first label's characters is the same in every job.
TEST_F(ExpandCache, HitJobsShareOneLabelsList) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto miss = LoadProtocolForTables(path, {});
  ASSERT_TRUE(miss.ok()) << miss.status().ToString();
  auto hit = LoadProtocolForTables(path, {});
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  ASSERT_TRUE(std::filesystem::exists(ExpansionCachePath(hit->expansion_key)));
  ASSERT_GT(hit->jobs.size(), 4u);
  std::set<const void*> where;
  for (const auto& j : hit->jobs) {
    ASSERT_EQ(j.spec.labels, hit->jobs[0].spec.labels);
    where.insert(j.spec.labels[0].data());
  }
  EXPECT_EQ(where.size(), 1u);
}

TEST_F(ExpandCache, KeyFollowsProtocolAndStoreContent) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto p1 = LoadProtocol(path, {});
  ASSERT_TRUE(p1.ok());
  std::string text = kProtocol;
  text.replace(text.find("seeds = [1, 2]"), 14, "seeds = [1, 3]");
  auto p2 = LoadProtocol(dir_.Write("p.toml", text), {});
  ASSERT_TRUE(p2.ok());
  EXPECT_NE(p1->expansion_key, p2->expansion_key);
  WriteStore(dir_, MakeCorpus("b", 7));  // same name, other content
  auto p3 = LoadProtocol(dir_.Write("p.toml", kProtocol), {});
  ASSERT_TRUE(p3.ok()) << p3.status().ToString();
  EXPECT_NE(p1->expansion_key, p3->expansion_key);
}

// Issue 15: keep_data = false gives the same jobs (ids, attrs, deps) with the
// utterance ids dropped; plan, table and gc expand that way.
TEST_F(ExpandCache, LeanExpansionHasTheSameJobsWithoutUtteranceIds) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto full = LoadProtocol(path, {});
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  LoadOptions o;
  o.keep_data = false;
  auto lean = LoadProtocol(path, o);
  ASSERT_TRUE(lean.ok()) << lean.status().ToString();
  ASSERT_EQ(lean->jobs.size(), full->jobs.size());
  EXPECT_EQ(lean->expansion_key, full->expansion_key);
  size_t full_ids = 0, lean_ids = 0;
  for (size_t i = 0; i < full->jobs.size(); ++i) {
    const auto &a = full->jobs[i], &b = lean->jobs[i];
    EXPECT_EQ(a.spec.id, b.spec.id);
    EXPECT_EQ(a.spec.kind, b.spec.kind);
    EXPECT_EQ(a.deps, b.deps);
    EXPECT_EQ(a.attrs, b.attrs);
    EXPECT_EQ(a.reportable, b.reportable);
    ASSERT_EQ(a.spec.train.size(), b.spec.train.size());
    for (size_t k = 0; k < a.spec.train.size(); ++k) EXPECT_EQ(a.spec.train[k].store, b.spec.train[k].store);
    // ... nor its model, train and adapt configs (JSON trees: most of a lean job's memory).
    EXPECT_TRUE(b.spec.model.is_null() && b.spec.train_config.is_null() && b.spec.adapt.is_null());
    EXPECT_TRUE(a.spec.model.is_object() && a.spec.train_config.is_object());
    // ... nor its feature sets and the job it starts from (deps name it).
    EXPECT_TRUE(b.spec.features.empty() && b.spec.init_from.empty());
    EXPECT_FALSE(a.spec.features.empty());
    EXPECT_EQ(a.spec.init_from.empty(), a.deps.empty());
    for (const auto& r : a.spec.train) full_ids += r.ids.size();
    for (const auto& r : b.spec.train) lean_ids += r.ids.size();
    for (const auto& [name, refs] : b.spec.eval)
      for (const auto& r : refs) lean_ids += r.ids.size();
  }
  EXPECT_GT(full_ids, 0u);
  EXPECT_EQ(lean_ids, 0u);
}

TEST_F(ExpandCache, CorruptOrTruncatedFileIsIgnored) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto fresh = LoadProtocolForTables(path, {});
  ASSERT_TRUE(fresh.ok());
  const std::string file = ExpansionCachePath(fresh->expansion_key);
  std::string text;
  {
    std::ifstream f(file);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::ofstream(file, std::ios::trunc) << text.substr(0, text.size() / 2);
  auto again = LoadProtocolForTables(path, {});
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->jobs.size(), fresh->jobs.size());
  // Expanded afresh, not half a cache: the expansion rewrote the file whole. (A fresh
  // expansion for tables keeps data references without utterance ids, issue 15, so
  // spec.train no longer tells a fresh job from a cached one.)
  std::string rewritten;
  {
    std::ifstream f(file);
    rewritten.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  EXPECT_EQ(rewritten, text);
}

std::string ReadAll(const std::string& file) {
  std::ifstream f(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

// Format 2 (binary) keeps each distinct string once: a changed byte inside a string
// would silently rename a table cell; the checksum rejects it instead. Every other
// damage (a count, a grown file, a string index out of range) is rejected too, and
// the next expansion rewrites the file whole.
TEST_F(ExpandCache, DamagedBinaryFileIsNeverReadAsWrongJobs) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto fresh = LoadProtocolForTables(path, {});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  const std::string file = ExpansionCachePath(fresh->expansion_key);
  ASSERT_EQ(file.substr(file.size() - 4), ".bin");
  const std::string good = ReadAll(file);
  const size_t body = good.find('\n') + 1;
  ASSERT_GT(good.size(), body + 8);
  std::vector<std::pair<std::string, std::string>> damaged;
  {
    std::string b = good;
    const size_t at = b.find("cross_corpus", body);  // an attribute value in the string table
    ASSERT_NE(at, std::string::npos);
    b[at + 3] = 'X';
    damaged.emplace_back("a changed byte in a string", b);
  }
  {
    std::string b = good;
    b[b.size() - 20] ^= 0x01;  // inside the last job's record
    damaged.emplace_back("a changed byte in a record", b);
  }
  damaged.emplace_back("bytes appended", good + "extra");
  damaged.emplace_back("the checksum cut", good.substr(0, good.size() - 3));
  {
    std::string b = good;
    const size_t tab = b.find('\t', b.find('\t', b.find('\t', b.find('\t') + 1) + 1) + 1);  // after the key
    b.insert(tab + 1, "1");  // the job count, ten times larger
    damaged.emplace_back("a wrong job count", b);
  }
  damaged.emplace_back("empty", "");
  for (const auto& [what, bytes] : damaged) {
    WriteAll(file, bytes);
    auto again = LoadProtocolForTables(path, {});
    ASSERT_TRUE(again.ok()) << what << ": " << again.status().ToString();
    ASSERT_EQ(again->jobs.size(), fresh->jobs.size()) << what;
    for (size_t i = 0; i < again->jobs.size(); ++i) {
      EXPECT_EQ(again->jobs[i].spec.id, fresh->jobs[i].spec.id) << what;
      EXPECT_EQ(again->jobs[i].attrs, fresh->jobs[i].attrs) << what;
      EXPECT_EQ(again->jobs[i].reportable, fresh->jobs[i].reportable) << what;
      EXPECT_EQ(again->jobs[i].spec.labels, fresh->jobs[i].spec.labels) << what;
    }
    // Expanded afresh and the file rewritten whole (the jobs above are read back from it).
    EXPECT_EQ(ReadAll(file), good) << what;
  }
}

// Issue 15 (seventh pass): the expansion of a cold `table` keeps only what tables read
// (LoadOptions::table_only): the same ids, kinds, attributes and table fields as a full
// expansion, no data references and no deps.
TEST_F(ExpandCache, TableOnlyExpansionKeepsWhatTablesReadAndNoDataOrDeps) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto full = LoadProtocol(path, {});
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  LoadOptions o;
  o.keep_data = false;
  o.table_only = true;
  auto lean = LoadProtocol(path, o);
  ASSERT_TRUE(lean.ok()) << lean.status().ToString();
  ASSERT_EQ(lean->jobs.size(), full->jobs.size());
  EXPECT_EQ(lean->expansion_key, full->expansion_key);
  size_t full_deps = 0, full_refs = 0;
  for (size_t i = 0; i < full->jobs.size(); ++i) {
    const auto &a = full->jobs[i], &b = lean->jobs[i];
    EXPECT_EQ(a.spec.id, b.spec.id);
    EXPECT_EQ(a.spec.kind, b.spec.kind);
    EXPECT_EQ(a.attrs, b.attrs);
    EXPECT_EQ(a.reportable, b.reportable);
    EXPECT_EQ(a.spec.seed, b.spec.seed);
    EXPECT_EQ(a.spec.selection, b.spec.selection);
    EXPECT_EQ(a.spec.oracle_eval, b.spec.oracle_eval);
    EXPECT_EQ(a.spec.labels, b.spec.labels);
    EXPECT_TRUE(b.deps.empty());
    EXPECT_TRUE(b.spec.train.empty() && b.spec.val.empty() && b.spec.eval.empty() && b.spec.target_unlabeled.empty());
    full_deps += a.deps.size();
    full_refs += a.spec.train.size() + a.spec.eval.size();
  }
  EXPECT_GT(full_deps, 0u);  // the fine-tuning jobs start from the shared pre-training job
  EXPECT_GT(full_refs, 0u);
}

// Issue 15 (seventh pass): a cold load (expands, writes the cache) hands on the jobs a
// cached load reads, read back from the file: the same fields, no data references or
// deps, and an exactly sized list (the expansion's grew by doubling).
TEST_F(ExpandCache, ColdLoadHandsOnTheJobsOfTheFileItWrote) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto cold = LoadProtocolForTables(path, {});
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  ASSERT_TRUE(std::filesystem::exists(ExpansionCachePath(cold->expansion_key)));
  auto hit = LoadProtocolForTables(path, {});
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  ASSERT_EQ(cold->jobs.size(), hit->jobs.size());
  ASSERT_GT(cold->jobs.size(), 4u);
  EXPECT_EQ(cold->jobs.capacity(), cold->jobs.size());
  for (size_t i = 0; i < cold->jobs.size(); ++i) {
    const auto &a = cold->jobs[i], &b = hit->jobs[i];
    EXPECT_EQ(a.spec.id, b.spec.id);
    EXPECT_EQ(a.spec.kind, b.spec.kind);
    EXPECT_EQ(a.attrs, b.attrs);
    EXPECT_EQ(a.reportable, b.reportable);
    EXPECT_EQ(a.spec.seed, b.spec.seed);
    EXPECT_EQ(a.spec.selection, b.spec.selection);
    EXPECT_EQ(a.spec.oracle_eval, b.spec.oracle_eval);
    EXPECT_EQ(a.spec.labels, b.spec.labels);
    EXPECT_TRUE(a.deps.empty()) << i;
    EXPECT_TRUE(a.spec.train.empty() && a.spec.eval.empty()) << i;
  }
}

// The table cache, encoded here the plain way (the one-pass writer before the seventh
// pass built the file in memory like this): format 2, described in expand_cache.cc.
std::string ReferenceCacheBytes(const std::string& key, const std::vector<PlannedJob>& jobs) {
  std::map<std::string, uint32_t> index;
  std::vector<std::string> strings;
  auto id = [&](const std::string& s) {
    auto [it, added] = index.emplace(s, static_cast<uint32_t>(strings.size()));
    if (added) strings.push_back(s);
    return it->second;
  };
  std::string records;
  auto put = [&records](auto v) { records.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (const auto& j : jobs) {
    put(id(j.spec.id));
    put(static_cast<uint8_t>(j.reportable ? 1 : 0));
    put(static_cast<uint64_t>(j.spec.seed));
    put(id(j.spec.selection));
    put(id(j.spec.oracle_eval));
    put(static_cast<uint32_t>(j.spec.labels.size()));
    for (const auto& l : j.spec.labels) put(id(l));
    put(static_cast<uint32_t>(j.attrs.size()));
    for (const auto& [k, v] : j.attrs) {
      put(id(k));
      put(id(v));
    }
  }
  std::string body;
  for (const auto& s : strings) {
    const auto len = static_cast<uint32_t>(s.size());
    body.append(reinterpret_cast<const char*>(&len), sizeof len).append(s);
  }
  body += records;
  uint64_t h = 1469598103934665603ull;  // FNV-1a over 8-byte words, then the tail bytes
  size_t i = 0;
  for (; i + 8 <= body.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, body.data() + i, 8);
    h = (h ^ w) * 1099511628211ull;
  }
  for (; i < body.size(); ++i) h = (h ^ static_cast<unsigned char>(body[i])) * 1099511628211ull;
  h ^= body.size();
  std::string out = "emosweep-expansion-cache\t2\t" + key + "\t" + std::to_string(jobs.size()) + "\t" +
                    std::to_string(strings.size()) + "\t" + std::to_string(body.size()) + "\n" + body;
  out.append(reinterpret_cast<const char*>(&h), sizeof h);
  return out;
}

// Issue 15 (seventh pass): the cache is streamed to disk through a 1 MB buffer instead of
// built in memory; its bytes are those of the plain encoding of a full expansion. ~12 000
// jobs: a file of several buffers, whose flushes cut the checksum's words.
TEST_F(ExpandCache, StreamedFileHasTheBytesOfThePlainEncoding) {
  std::string text = kProtocol;
  std::string seeds = "seeds = [1";
  for (int s = 2; s <= 2000; ++s) seeds += ", " + std::to_string(s);
  text.replace(text.find("seeds = [1, 2]"), 14, seeds + "]");
  std::string path = dir_.Write("p.toml", text);
  LoadOptions many;
  many.max_jobs = 0;
  auto full = LoadProtocol(path, many);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  auto cold = LoadProtocolForTables(path, many);
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  const std::string file = ReadAll(ExpansionCachePath(full->expansion_key));
  EXPECT_GT(file.size(), size_t{2} << 20);
  EXPECT_TRUE(file == ReferenceCacheBytes(full->expansion_key, full->jobs)) << file.size() << " bytes";
  ASSERT_EQ(cold->jobs.size(), full->jobs.size());
  std::vector<std::string> ids;
  ASSERT_TRUE(ReadExpansionIds(full->expansion_key, &ids));
  ASSERT_EQ(ids.size(), full->jobs.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], full->jobs[i].spec.id) << i;
}

// Issue 15: `run` keeps the job ids of an expansion by its key; a changed protocol
// has another key and finds none (so it expands afresh).
TEST_F(ExpandCache, JobIdsRoundTripByKeyAndAChangedProtocolMisses) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto fresh = LoadProtocol(path, {});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  std::vector<std::string> ids;
  EXPECT_FALSE(ReadExpansionIds(fresh->expansion_key, &ids));
  WriteExpansionIds(fresh->expansion_key, fresh->jobs);
  ASSERT_TRUE(ReadExpansionIds(fresh->expansion_key, &ids));
  ASSERT_EQ(ids.size(), fresh->jobs.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], fresh->jobs[i].spec.id);
  // The shallow parse `run` does first finds the same key.
  LoadOptions shallow;
  shallow.expand = false;
  auto parsed = LoadProtocol(path, shallow);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->jobs.empty());
  EXPECT_EQ(parsed->expansion_key, fresh->expansion_key);
  std::string text = kProtocol;
  text.replace(text.find("seeds = [1, 2]"), 14, "seeds = [1, 3]");
  auto changed = LoadProtocol(dir_.Write("p.toml", text), shallow);
  ASSERT_TRUE(changed.ok());
  std::vector<std::string> none;
  EXPECT_FALSE(ReadExpansionIds(changed->expansion_key, &none));
  EXPECT_TRUE(none.empty());
}

// Every rebuild, upgrade or protocol change is a new key: the cache stays within its budget by removing the
// keys used longest ago (a read marks its files used), never the key just written nor files it does not own.
TEST_F(ExpandCache, PruningKeepsTheBudgetByRemovingTheLeastRecentlyUsedKeys) {
  namespace fs = std::filesystem;
  const std::string dir = cache_ + "/expansions";
  fs::create_directories(dir);
  auto key = [](char c) { return std::string(64, c); };
  const auto now = fs::file_time_type::clock::now();
  auto put = [&](const std::string& name, size_t bytes, int hours_ago) {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << std::string(bytes, 'x');
    fs::last_write_time(path, now - std::chrono::hours(hours_ago));
  };
  // Four keys of 300 + 100 bytes; key a used longest ago, but then read (its .ids) an hour ago.
  const int ages[] = {40, 30, 20, 10};
  for (int k = 0; k < 4; ++k) {
    put(key('a' + k) + ".bin", 300, ages[k]);
    put(key('a' + k) + ".ids", 100, ages[k] + 1);
  }
  put(key('a') + ".ids", 100, 1);
  put(key('b') + ".bin.tmp-host-123-0", 5000, 50);  // a writer's temporary: not ours to count or remove
  put("notes.txt", 5000, 50);
  put(key('f') + ".tsv", 50, 100);  // the table cache's format 1, never read now
  EXPECT_EQ(PruneExpansionCache(key('c'), 1650), 0u) << "4 x 400 + 50 bytes fit";
  // 1200 bytes: the format-1 file, then one key go, the one used longest ago (b; a's read an hour ago keeps it).
  EXPECT_EQ(PruneExpansionCache(key('c'), 1200), 2u);
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{key('a') + ".bin", key('a') + ".ids", key('c') + ".bin", key('c') + ".ids",
                                         key('d') + ".bin", key('d') + ".ids", key('b') + ".bin.tmp-host-123-0",
                                         "notes.txt"}));
  EXPECT_EQ(PruneExpansionCache(key('c'), 0), 2u) << "a budget of 0 keeps only the key just written, though older";
  EXPECT_TRUE(fs::exists(dir + "/" + key('c') + ".bin"));
  EXPECT_FALSE(fs::exists(dir + "/" + key('a') + ".bin"));
  EXPECT_FALSE(fs::exists(dir + "/" + key('d') + ".ids"));
  // A real key: reading its ids marks it used; writing another key prunes to EMOSWEEP_CACHE_MAX_MB.
  auto fresh = LoadProtocol(dir_.Write("p.toml", kProtocol), {});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  WriteExpansionIds(fresh->expansion_key, fresh->jobs);
  const std::string ids_file = ExpansionIdsPath(fresh->expansion_key);
  fs::last_write_time(ids_file, now - std::chrono::hours(100));
  std::vector<std::string> ids;
  ASSERT_TRUE(ReadExpansionIds(fresh->expansion_key, &ids));
  EXPECT_GT(fs::last_write_time(ids_file), now - std::chrono::hours(1)) << "a read marks the key used";
  ::setenv("EMOSWEEP_CACHE_MAX_MB", "0", 1);
  EXPECT_EQ(ExpansionCacheBudget(), 0u);
  std::vector<PlannedJob> other(fresh->jobs.begin(), fresh->jobs.begin() + 1);
  WriteExpansionIds(key('e'), other);
  ::setenv("EMOSWEEP_CACHE_MAX_MB", "lots", 1);
  EXPECT_EQ(ExpansionCacheBudget(), uint64_t{2048} << 20) << "not a number: the default (and a warning)";
  ::unsetenv("EMOSWEEP_CACHE_MAX_MB");
  EXPECT_EQ(ExpansionCacheBudget(), uint64_t{2048} << 20);
  EXPECT_FALSE(fs::exists(ids_file)) << "pruned by the write of another key";
  EXPECT_FALSE(fs::exists(dir + "/" + key('c') + ".bin"));
  EXPECT_TRUE(fs::exists(ExpansionIdsPath(key('e'))));
}

TEST_F(ExpandCache, DamagedJobIdsFileIsIgnored) {
  std::string path = dir_.Write("p.toml", kProtocol);
  auto fresh = LoadProtocol(path, {});
  ASSERT_TRUE(fresh.ok());
  WriteExpansionIds(fresh->expansion_key, fresh->jobs);
  const std::string file = ExpansionIdsPath(fresh->expansion_key);
  std::string text;
  {
    std::ifstream f(file);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::vector<std::string> ids;
  std::ofstream(file, std::ios::trunc) << text.substr(0, text.size() - 70);  // last id gone
  EXPECT_FALSE(ReadExpansionIds(fresh->expansion_key, &ids));
  std::string bad = text;
  bad[bad.find('\n') + 5] = 'X';  // not hex
  std::ofstream(file, std::ios::trunc) << bad;
  EXPECT_FALSE(ReadExpansionIds(fresh->expansion_key, &ids));
  std::ofstream(file, std::ios::trunc) << text;
  EXPECT_TRUE(ReadExpansionIds(fresh->expansion_key, &ids));
}

}  // namespace
}  // namespace emosweep::protocols
