// Feature store v1: round trips, content hash, and one test per bad-input case.
#include "data/feature_store.h"

#include "core/files.h"
#include "core/log.h"
#include "data/store_verify.h"

#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "store_test_util.h"

namespace emosweep::data {
namespace {

using testing::SmallCorpus;
using testing::TestDir;

Corpus RichCorpus() {
  Corpus c = SmallCorpus(5);
  c.name = "rich";
  c.language = "de";
  c.metadata = {{"adapter", "unit-test"}, {"label_map", "emodb"}};
  c.utterances[0].gender = "f";
  c.utterances[0].session = "Ses01";
  c.utterances[0].group = "impro";
  c.utterances[0].transcript = "Grüße, 世界! \"quoted\"\nnew line";
  c.utterances[0].source = "wav/03a01Fa.wav";
  c.utterances[0].duration_s = 1.898;
  c.utterances[1].duration_s = 0.25;
  FeatureSet t;
  t.name = "text_bert";
  t.modality = "text";
  t.dim = 4;
  t.provenance = {{"extractor", "bert-base"}, {"layer", "pooler"}, {"max_len", 512}};
  for (int i = 0; i < 5 * 4; ++i) t.values.push_back(std::sin(static_cast<float>(i)));
  t.frame_dim = 2;
  t.offsets = {0, 2, 2, 5, 6, 7};  // utterance 1 has no frames
  for (int i = 0; i < 7 * 2; ++i) t.frames.push_back(static_cast<float>(i) / 7.0f);
  c.features.push_back(t);
  return c;
}

void ExpectSameCorpus(const Corpus& a, const Corpus& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.language, b.language);
  EXPECT_EQ(a.label_set, b.label_set);
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const auto &x = a.utterances[i], &y = b.utterances[i];
    EXPECT_EQ(x.id, y.id);
    EXPECT_EQ(x.speaker, y.speaker);
    EXPECT_EQ(x.gender, y.gender);
    EXPECT_EQ(x.session, y.session);
    EXPECT_EQ(x.group, y.group);
    EXPECT_EQ(x.label, y.label);
    EXPECT_EQ(x.original_label, y.original_label);
    EXPECT_EQ(x.transcript, y.transcript);
    EXPECT_EQ(x.source, y.source);
    EXPECT_EQ(std::isnan(x.duration_s), std::isnan(y.duration_s));
    if (!std::isnan(x.duration_s)) EXPECT_EQ(x.duration_s, y.duration_s);
  }
  ASSERT_EQ(a.features.size(), b.features.size());
  for (size_t k = 0; k < a.features.size(); ++k) {
    const auto &f = a.features[k], &g = b.features[k];
    EXPECT_EQ(f.name, g.name);
    EXPECT_EQ(f.modality, g.modality);
    EXPECT_EQ(f.dim, g.dim);
    EXPECT_EQ(f.values, g.values);
    EXPECT_EQ(f.frame_dim, g.frame_dim);
    EXPECT_EQ(f.frames, g.frames);
    EXPECT_EQ(f.offsets, g.offsets);
    EXPECT_EQ(f.provenance, g.provenance);
  }
}

TEST(FeatureStore, RoundTripAllFields) {
  TestDir dir;
  Corpus c = RichCorpus();
  ASSERT_TRUE(WriteFeatureStore(dir.File("c.h5"), c).ok());
  StoreReadOptions o;
  o.load_frames = true;
  o.verify = true;
  auto r = ReadFeatureStore(dir.File("c.h5"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameCorpus(c, *r);
  EXPECT_EQ(r->ContentHash(), c.ContentHash());
  EXPECT_EQ(dir.Count(), 1u);  // no temporary left next to it
}

// helper-66: a store write that fails at the file system (here EFBIG: RLIMIT_FSIZE with SIGXFSZ ignored, as a full
// disk) reported the error and then crashed at exit (libhdf5 closing the half-closed file again: exit 139); its
// message spanned two lines (HDF5's ctime). In a child process, which exits normally afterwards.
TEST(FeatureStore, AWriteFailingAtTheFileSystemIsOneLineAndTheProcessExitsCleanly) {
  TestDir dir;
  const std::string path = dir.File("big.h5");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {64 * 1024, 64 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    Corpus c = SmallCorpus(2000);  // several hundred KB
    const Status st = WriteFeatureStore(path, c);
    int code = 0;
    if (st.ok()) code = 10;
    else if (st.message().find("File too large") == std::string::npos) code = 11;
    else if (st.message().find('\n') != std::string::npos) code = 12;
    std::exit(code);  // runs the exit-time handlers, where it crashed
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: the write succeeded; 11: no cause named; 12: a message of several lines";
  EXPECT_EQ(dir.Count(), 0u);  // nothing half-written, no temporary
}

TEST(FeatureStore, FramesOnlyWhenAskedAndFeatureSubset) {
  TestDir dir;
  Corpus c = RichCorpus();
  ASSERT_TRUE(WriteFeatureStore(dir.File("c.h5"), c).ok());
  auto all = ReadFeatureStore(dir.File("c.h5"));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->features.size(), 2u);
  EXPECT_FALSE(all->features[1].has_frames());
  EXPECT_TRUE(all->features[1].frames.empty());
  StoreReadOptions o;
  o.feature_sets = {"text_bert"};
  o.verify = true;  // verification reads everything, then drops what was not asked for
  auto sub = ReadFeatureStore(dir.File("c.h5"), o);
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ASSERT_EQ(sub->features.size(), 1u);
  EXPECT_EQ(sub->features[0].name, "text_bert");
  EXPECT_FALSE(sub->features[0].has_frames());
  o.feature_sets = {"nope"};
  auto missing = ReadFeatureStore(dir.File("c.h5"), o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'nope'"), std::string::npos);
}

TEST(FeatureStore, EmptyCorpusAndEmptyOptionalFields) {
  TestDir dir;
  Corpus c;
  c.name = "empty";
  c.label_set = {"anger"};
  FeatureSet f;
  f.name = "x";
  f.modality = "video";
  f.dim = 5;
  c.features.push_back(f);
  ASSERT_TRUE(WriteFeatureStore(dir.File("e.h5"), c).ok());
  auto r = ReadFeatureStore(dir.File("e.h5"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameCorpus(c, *r);
  auto info = ReadStoreInfo(dir.File("e.h5"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->num_utterances, 0);
  EXPECT_EQ(info->content_hash, c.ContentHash());
}

TEST(FeatureStore, StoreInfoReadsAttributesOnly) {
  TestDir dir;
  Corpus c = RichCorpus();
  ASSERT_TRUE(WriteFeatureStore(dir.File("c.h5"), c).ok());
  auto info = ReadStoreInfo(dir.File("c.h5"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->name, "rich");
  EXPECT_EQ(info->schema_version, kFeatureStoreVersion);
  EXPECT_FALSE(info->writer_version.empty());
  EXPECT_EQ(info->num_utterances, 5);
  EXPECT_EQ(info->content_hash, c.ContentHash());
  ASSERT_EQ(info->features.size(), 2u);
  EXPECT_EQ(info->features[0].name, "a");
  EXPECT_EQ(info->features[1].frame_dim, 2);
  EXPECT_EQ(info->features[1].provenance["max_len"], 512);
  EXPECT_EQ(info->metadata["adapter"], "unit-test");
}

TEST(FeatureStore, ContentHashIndependentOfCompression) {
  TestDir dir;
  Corpus c = SmallCorpus(3000);
  StoreWriteOptions raw;
  raw.gzip_level = 0;
  StoreWriteOptions packed;
  packed.gzip_level = 9;
  packed.shuffle = false;
  packed.chunk_rows = 100;
  ASSERT_TRUE(WriteFeatureStore(dir.File("raw.h5"), c, raw).ok());
  ASSERT_TRUE(WriteFeatureStore(dir.File("packed.h5"), c, packed).ok());
  EXPECT_NE(std::filesystem::file_size(dir.File("raw.h5")), std::filesystem::file_size(dir.File("packed.h5")));
  auto a = ReadStoreInfo(dir.File("raw.h5"));
  auto b = ReadStoreInfo(dir.File("packed.h5"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->content_hash, c.ContentHash());
  EXPECT_EQ(b->content_hash, c.ContentHash());
  StoreReadOptions v;
  v.verify = true;
  auto rb = ReadFeatureStore(dir.File("packed.h5"), v);
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(rb->features[0].values, c.features[0].values);
}

TEST(FeatureStore, ConcurrentReadersAreSerializedSafely) {
  TestDir dir;
  Corpus c = RichCorpus();
  ASSERT_TRUE(WriteFeatureStore(dir.File("c.h5"), c).ok());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = ReadFeatureStore(dir.File("c.h5"));
        if (r.ok() && r->features[1].values == c.features[1].values) ++good;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 40);
}

// The first open of each new store version forks a checking child
// (data/store_verify.h). fork() from a multithreaded process must not
// deadlock the child on a lock another thread held (malloc, the logging
// mutex, Hdf5Mutex): 4 threads open 32 new stores while 2 others allocate and
// log without pause. Every read must succeed with the right values, each new
// file must have been checked by a child, and nothing may hang (ctest timeout).
TEST(FeatureStoreCheck, FirstOpensForkSafelyWhileOtherThreadsAllocateAndLog) {
  TestDir dir;
  ::setenv("EMOSWEEP_CACHE_DIR", "off", 1);
  const LogLevel level0 = GetLogLevel();
  SetLogLevel(LogLevel::kInfo);
  const int64_t children0 = StoreCheckChildren();
  std::atomic<bool> stop{false};
  std::vector<std::thread> noise;
  for (int t = 0; t < 2; ++t)
    noise.emplace_back([&, t] {
      std::mt19937 rng(t);
      size_t n = 0;
      while (!stop.load()) {
        std::vector<std::string> v(1 + rng() % 64, std::string(1 + rng() % 4096, 'x'));
        n += v.size();
        if (n % 499 == 0) LOG_INFO << "noise " << t << " " << n;  // takes the logging mutex
      }
    });
  std::atomic<int> good{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        Corpus c = SmallCorpus(3 + i);
        const std::string p = dir.File("t" + std::to_string(t) + "_" + std::to_string(i) + ".h5");
        if (!WriteFeatureStore(p, c).ok()) continue;
        auto info = ReadStoreInfo(p);
        auto r = ReadFeatureStore(p);
        if (info.ok() && r.ok() && r->features[0].values == c.features[0].values) ++good;
      }
    });
  for (auto& t : readers) t.join();
  stop = true;
  for (auto& t : noise) t.join();
  ::unsetenv("EMOSWEEP_CACHE_DIR");
  SetLogLevel(level0);
  EXPECT_EQ(good.load(), 32);
  EXPECT_GE(StoreCheckChildren() - children0, 32) << "every new store version is read in a child first";
}

// ---- bad input: one test per case -------------------------------------------

template <typename T>
void ExpectBad(const Result<T>& r, StatusCode code, const std::string& path, const std::string& fragment) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  EXPECT_TRUE(r.status().IsBadInput());
}

// Opens a written store read-write for surgery with the raw HDF5 API.
template <typename Fn>
void Edit(const std::string& path, Fn fn) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  fn(f);
  H5Fclose(f);
}

void SetStringAttr(hid_t obj, const char* name, const char* value) {
  H5Adelete(obj, name);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, &value);
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

TEST(FeatureStoreBadInput, MissingFile) {
  TestDir dir;
  ExpectBad(ReadFeatureStore(dir.File("nope.h5")), StatusCode::kNotFound, dir.File("nope.h5"), "no such file");
  EXPECT_FALSE(ReadStoreInfo(dir.File("nope.h5")).ok());
}

TEST(FeatureStoreBadInput, TruncatedFile) {
  TestDir dir;
  std::string p = dir.File("t.h5");
  ASSERT_TRUE(WriteFeatureStore(p, SmallCorpus(2000)).ok());
  std::filesystem::resize_file(p, std::filesystem::file_size(p) / 2);
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "truncated");
}

TEST(FeatureStoreBadInput, RandomBytes) {
  TestDir dir;
  std::string p = dir.File("r.h5");
  std::mt19937 rng(7);
  std::ofstream out(p, std::ios::binary);
  for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(rng()));
  out.close();
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "not an HDF5 file");
}

TEST(FeatureStoreBadInput, WrongFormatAttribute) {
  TestDir dir;
  std::string p = dir.File("w.h5");
  ASSERT_TRUE(WriteFeatureStore(p, SmallCorpus()).ok());
  Edit(p, [](hid_t f) { SetStringAttr(f, "format", "someone-elses-store"); });
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "format is 'someone-elses-store'");
}

TEST(FeatureStoreBadInput, PlainHdf5FileWithoutFormat) {
  TestDir dir;
  std::string p = dir.File("plain.h5");
  H5Fclose(H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "not an emosweep feature store");
}

TEST(FeatureStoreBadInput, NewerSchemaVersion) {
  TestDir dir;
  std::string p = dir.File("v.h5");
  ASSERT_TRUE(WriteFeatureStore(p, SmallCorpus()).ok());
  Edit(p, [](hid_t f) {
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    int64_t v = kFeatureStoreVersion + 1;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
  });
  ExpectBad(ReadFeatureStore(p), StatusCode::kFailedPrecondition, p, "written by a newer emosweep");
  EXPECT_FALSE(ReadStoreInfo(p).ok());
}

TEST(FeatureStoreBadInput, MissingDataset) {
  TestDir dir;
  std::string p = dir.File("m.h5");
  ASSERT_TRUE(WriteFeatureStore(p, SmallCorpus()).ok());
  Edit(p, [](hid_t f) { H5Ldelete(f, "utterances/speaker", H5P_DEFAULT); });
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "'speaker' is missing");
}

TEST(FeatureStoreBadInput, FeatureRowCountMismatch) {
  TestDir dir;
  std::string p = dir.File("rows.h5");
  ASSERT_TRUE(WriteFeatureStore(p, SmallCorpus(6)).ok());
  Edit(p, [](hid_t f) {
    H5Ldelete(f, "features/a/values", H5P_DEFAULT);
    hsize_t dims[2] = {5, 3};
    hid_t s = H5Screate_simple(2, dims, nullptr);
    hid_t d = H5Dcreate2(f, "features/a/values", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<float> zeros(15, 0.f);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
    H5Dclose(d);
    H5Sclose(s);
  });
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "has 5 rows, expected 6");
}

TEST(FeatureStoreBadInput, ModifiedValuesFailVerification) {
  TestDir dir;
  std::string p = dir.File("h.h5");
  ASSERT_TRUE(WriteFeatureStore(p, SmallCorpus(6)).ok());
  Edit(p, [](hid_t f) {
    hid_t d = H5Dopen2(f, "features/a/values", H5P_DEFAULT);
    std::vector<float> v(18, 1.0f);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
  });
  // Structurally fine; only the hash can tell, and every default read checks it.
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "content hash mismatch");
  ExpectBad(ReadStoreInfo(p), StatusCode::kCorruption, p, "content hash mismatch");
  StoreReadOptions o;
  o.verify = true;
  ExpectBad(ReadFeatureStore(p, o), StatusCode::kCorruption, p, "content hash mismatch");
  StoreReadOptions unchecked;
  unchecked.check_hash = false;  // what `data inspect` uses to report the problem itself
  EXPECT_TRUE(ReadFeatureStore(p, unchecked).ok());
  EXPECT_TRUE(ReadStoreInfo(p, /*check_hash=*/false).ok());
}

// A NaN in a feature set the caller does not read, behind a recomputed hash (someone else's writer, an edit):
// `plan` reads only the smallest set, so it passed `plan` and failed every job of `run` (session 17's audit).
// Verification validates every value of every set, and does not remember a store that fails.
TEST(FeatureStoreVerify, NonFiniteValueInASetNotReadFailsVerification) {
  TestDir dir;
  std::string p = dir.File("nan.h5");
  Corpus c = SmallCorpus(6);
  FeatureSet b;
  b.name = "b";
  b.modality = "text";
  b.dim = 1;
  b.values.assign(6, 0.5f);
  c.features.push_back(b);
  ASSERT_TRUE(WriteFeatureStore(p, c).ok());
  Corpus bad = c;
  bad.features[0].values[4] = std::nanf("");
  const std::string hash = bad.ContentHash();
  Edit(p, [&](hid_t f) {
    hid_t d = H5Dopen2(f, "features/a/values", H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad.features[0].values.data());
    H5Dclose(d);
    SetStringAttr(f, "content_hash", hash.c_str());
  });
  StoreReadOptions only_b;
  only_b.feature_sets = {"b"};
  const int64_t n0 = StoreVerifyRecomputations();
  ExpectBad(ReadFeatureStore(p, only_b), StatusCode::kInvalidArgument, p, "feature set 'a' has a non-finite value");
  ExpectBad(ReadFeatureStore(p, only_b), StatusCode::kInvalidArgument, p, "feature set 'a' has a non-finite value");
  EXPECT_EQ(StoreVerifyRecomputations(), n0 + 2) << "a store that failed must not be remembered as verified";
}

TEST(FeatureStoreVerify, RememberedUntilTheFileChangesEvenWithItsMtimeRestored) {
  TestDir dir;
  std::string p = dir.File("v.h5");
  ASSERT_TRUE(WriteFeatureStore(p, SmallCorpus(6)).ok());
  const int64_t n0 = StoreVerifyRecomputations();
  ASSERT_TRUE(ReadStoreInfo(p).ok());
  EXPECT_EQ(StoreVerifyRecomputations(), n0 + 1);
  ASSERT_TRUE(ReadFeatureStore(p).ok());
  ASSERT_TRUE(ReadStoreInfo(p).ok());
  EXPECT_EQ(StoreVerifyRecomputations(), n0 + 1) << "a verified, unchanged store is not hashed again";
  struct stat before {};
  ASSERT_EQ(::stat(p.c_str(), &before), 0);
  Edit(p, [](hid_t f) {
    hid_t d = H5Dopen2(f, "features/a/values", H5P_DEFAULT);
    std::vector<float> v(18, 2.0f);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
  });
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
  ExpectBad(ReadFeatureStore(p), StatusCode::kCorruption, p, "content hash mismatch");
  EXPECT_EQ(StoreVerifyRecomputations(), n0 + 2);
}

TEST(FeatureStoreBadInput, NanRejectedAtWriteNamingUtterance) {
  TestDir dir;
  Corpus c = SmallCorpus(4);
  c.features[0].values[2 * 3 + 1] = std::nanf("");
  Status s = WriteFeatureStore(dir.File("nan.h5"), c);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsBadInput());
  EXPECT_NE(s.message().find("'u2'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(dir.File("nan.h5")), std::string::npos) << s.message();
  EXPECT_EQ(dir.Count(), 0u);
}

TEST(FeatureStoreBadInput, FailedWriteLeavesNoFileOrTemporary) {
  TestDir dir;
  Corpus c = SmallCorpus(4);
  FeatureSet bad = c.features[0];
  bad.name = "has/slash";  // passes Validate, fails inside the HDF5 write
  c.features.push_back(bad);
  Status s = WriteFeatureStore(dir.File("x.h5"), c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("has/slash"), std::string::npos) << s.message();
  EXPECT_EQ(dir.Count(), 0u);
}

TEST(FeatureStoreBadInput, UnwritableDirectory) {
  TestDir dir;
  // A regular file where a directory should be: the parent cannot be created.
  ASSERT_TRUE(WriteFileAtomic(dir.File("plain"), "x").ok());
  Status s = WriteFeatureStore(dir.File("plain/sub/x.h5"), SmallCorpus());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("plain/sub"), std::string::npos) << s.message();
}

TEST(FeatureStore, MissingParentDirectoriesAreCreated) {
  TestDir dir;
  ASSERT_TRUE(WriteFeatureStore(dir.File("new/dir/x.h5"), SmallCorpus()).ok());
  auto back = ReadFeatureStore(dir.File("new/dir/x.h5"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->size(), SmallCorpus().size());
}

}  // namespace
}  // namespace emosweep::data
