// Provenance integrity (issue 13, item 2), end to end: a store whose feature
// values were altered in place (stored content hash and mtime left as they
// were) must not be planned, trained or run: `plan`, `train` and `run` exit 2
// naming the store and nothing is recorded; the intact store's verification is
// remembered across processes (verified-stores.tsv in EMOSWEEP_CACHE_DIR).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Ran {
  int code = -1;
  std::string err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class StoreIntegrity : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("emosweep_store_integrity_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cache");
    ::setenv("EMOSWEEP_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    ASSERT_EQ(Run("data synth --out " + P("s") + " --corpora 2 --speakers 4 --per-speaker 12 --seed 3").code, 0);
    std::ofstream(dir_ / "p.toml") << "version = 1\nname = \"integrity\"\n"
                                      "[corpora.a]\nstore = \"s/synth_a.h5\"\n[corpora.b]\nstore = \"s/synth_b.h5\"\n"
                                      "[defaults]\nlabels = \"core4\"\nfeatures = {audio = \"synth_audio\"}\n"
                                      "seeds = [1]\nselection = \"source_val\"\n"
                                      "split = {method = \"speaker_kfold\", k = 2, val_fraction = 0.25}\n"
                                      "train = {batch_size = 16, epochs = 1}\n"
                                      "[[experiment]]\nname = \"x\"\nkind = \"cross_corpus\"\ncorpora = [\"a\", \"b\"]\n"
                                      "models = [{name = \"unimodal_mlp\", modality = \"audio\"}]\n";
    std::ofstream(dir_ / "job.toml") << "seed = 1\nlabel_set = \"core4\"\n[features]\naudio = \"synth_audio\"\n"
                                        "[data]\ntrain = [\"s/synth_a.h5\"]\nval = \"s/synth_b.h5\"\n"
                                        "[model]\nname = \"unimodal_mlp\"\nmodality = \"audio\"\n[train]\nepochs = 1\nbatch_size = 16\n";
  }
  void TearDown() override {
    ::unsetenv("EMOSWEEP_CACHE_DIR");
    fs::remove_all(dir_);
  }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  // `env`: variables for the command; every command is killed after 120 s
  // (a hang fails the test instead of hanging it).
  Ran Run(const std::string& args, const std::string& env = "") const {
    const std::string err = P("stderr.txt");
    const std::string cmd = "cd " + dir_.string() + " && " + env + " timeout -s KILL 120 " +
                            std::string(EMOSWEEP_BINARY) + " " + args + " --log-level warn >/dev/null 2>" + err;
    int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, Slurp(err)};
  }

  // Rewrites one value of synth_a's audio features in place, keeping the
  // file's size, inode and mtime (what a careless script or a flipped bit does).
  void TamperInPlace() {
    const std::string path = P("s/synth_a.h5");
    struct stat before {};
    ASSERT_EQ(::stat(path.c_str(), &before), 0);
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t d = H5Dopen2(f, "features/synth_audio/values", H5P_DEFAULT);
    ASSERT_GE(d, 0);
    hid_t space = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    std::vector<float> v(dims[0] * dims[1]);
    ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
    v[0] += 0.5f;
    ASSERT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
    struct stat after {};
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    ASSERT_EQ(after.st_size, before.st_size);
    ASSERT_EQ(after.st_ino, before.st_ino);
  }

  fs::path dir_;
};

void ExpectNamesTamperedStore(const Ran& r, const std::string& what) {
  EXPECT_EQ(r.code, 2) << what << ": " << r.err;
  EXPECT_NE(r.err.find("synth_a.h5"), std::string::npos) << what << ": " << r.err;
  EXPECT_NE(r.err.find("content hash mismatch"), std::string::npos) << what << ": " << r.err;
}

TEST_F(StoreIntegrity, AlteredStoreIsRefusedByPlanTrainAndRun) {
  ASSERT_EQ(Run("plan p.toml").code, 0);
  // The intact stores' verification was remembered for later processes.
  const std::string cache = Slurp(dir_ / "cache" / "verified-stores.tsv");
  EXPECT_NE(cache.find("synth_a.h5"), std::string::npos) << cache;
  EXPECT_NE(cache.find("synth_b.h5"), std::string::npos) << cache;

  TamperInPlace();
  ExpectNamesTamperedStore(Run("plan p.toml"), "plan");
  ExpectNamesTamperedStore(Run("train --config job.toml"), "train");
  ExpectNamesTamperedStore(Run("run p.toml --ledger l.db"), "run");
  // Nothing recorded: the run refused before any job reached the ledger.
  if (fs::exists(dir_ / "l.db")) {
    std::FILE* q = ::popen(("sqlite3 " + P("l.db") + " 'SELECT count(*) FROM jobs' 2>/dev/null").c_str(), "r");
    ASSERT_NE(q, nullptr);
    char buf[64] = {0};
    std::string n = std::fgets(buf, sizeof buf, q) ? buf : "0\n";
    ::pclose(q);
    EXPECT_TRUE(n == "0\n" || n.empty()) << n;
  }
  // `data inspect` still reports the mismatch itself (exit 2).
  Ran inspect = Run("data inspect s/synth_a.h5");
  EXPECT_EQ(inspect.code, 2) << inspect.err;
}

// A damaged store on which libhdf5 1.10.8 itself crashes (out-of-bounds
// memcpy in H5HG_read: fuzz/upstream/store/, fuzz/regressions/store/) or hangs
// (H5Aread of a vlen string on a corrupt global heap): `data inspect` and
// `plan` exit 2 naming the file instead of dying by SIGSEGV or never returning
// (libhdf5 reads a new file in a child process first; data/store_verify.h).
void UseDamagedStore(const fs::path& from, const fs::path& to) {
  fs::remove(to);
  fs::copy_file(from, to);
}

TEST_F(StoreIntegrity, StoreOnWhichLibhdf5CrashesExitsTwoNamingIt) {
  const fs::path src(EMOSWEEP_SOURCE_DIR);
  const std::vector<fs::path> crashing = {
      src / "fuzz/upstream/store/libhdf5_oob_memcpy_H5HG_read_corrupt_global_heap.h5",
      src / "fuzz/regressions/store/libhdf5_H5HG_read_0c80e2f2950efdfb2dd554b7514309cced3a09c2",
      src / "fuzz/regressions/store/libhdf5_H5HG_read_577fa1445f5e40381d51e5dd9aaaa206edb8e90b",
      src / "fuzz/regressions/store/libhdf5_H5HG_read_dc9ee6b8c87ab689d96bdc59e4b20ffc8b01154d"};
  for (const auto& f : crashing) {
    ASSERT_TRUE(fs::exists(f)) << f;
    UseDamagedStore(f, dir_ / "damaged.h5");
    Ran inspect = Run("data inspect damaged.h5");
    EXPECT_EQ(inspect.code, 2) << f << ": " << inspect.err;
    EXPECT_NE(inspect.err.find("damaged.h5: damaged HDF5 file: libhdf5 crashed (SIGSEGV)"), std::string::npos)
        << f << ": " << inspect.err;
    // The same damage in a store a protocol names.
    UseDamagedStore(f, dir_ / "s/synth_a.h5");
    Ran plan = Run("plan p.toml");
    EXPECT_EQ(plan.code, 2) << f << ": " << plan.err;
    EXPECT_NE(plan.err.find("synth_a.h5: damaged HDF5 file: libhdf5 crashed (SIGSEGV)"), std::string::npos)
        << f << ": " << plan.err;
  }
}

TEST_F(StoreIntegrity, StoreOnWhichLibhdf5HangsExitsTwoAfterTheTimeLimit) {
  const fs::path hang =
      fs::path(EMOSWEEP_SOURCE_DIR) / "fuzz/upstream/store/libhdf5_hang_vlen_attr_corrupt_global_heap.h5";
  ASSERT_TRUE(fs::exists(hang));
  UseDamagedStore(hang, dir_ / "damaged.h5");
  const auto t0 = std::chrono::steady_clock::now();
  Ran inspect = Run("data inspect damaged.h5", "EMOSWEEP_STORE_CHECK_TIMEOUT=2");
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(inspect.code, 2) << inspect.err;
  EXPECT_NE(inspect.err.find("damaged.h5: damaged HDF5 file: libhdf5 did not finish within 2 s"), std::string::npos)
      << inspect.err;
  EXPECT_LT(took, 60.0);
  UseDamagedStore(hang, dir_ / "s/synth_b.h5");
  Ran plan = Run("plan p.toml", "EMOSWEEP_STORE_CHECK_TIMEOUT=2");
  EXPECT_EQ(plan.code, 2) << plan.err;
  EXPECT_NE(plan.err.find("synth_b.h5: damaged HDF5 file: libhdf5 did not finish within 2 s"), std::string::npos)
      << plan.err;
}

// An intact store is read in a child once; a re-open (verified-stores.tsv)
// starts no child, and the child leaves no process behind.
TEST_F(StoreIntegrity, IntactStoreIsCheckedOnceAndReopenedWithoutAChild) {
  ASSERT_EQ(Run("plan p.toml").code, 0);
  const std::string cache = Slurp(dir_ / "cache" / "verified-stores.tsv");
  EXPECT_NE(cache.find("synth_a.h5"), std::string::npos) << cache;
  // With the cache in place, a store check that would fail at once (timeout
  // 1e-9 s) is never run: the re-open trusts the recorded verification.
  EXPECT_EQ(Run("plan p.toml", "EMOSWEEP_STORE_CHECK_TIMEOUT=0.000000001").code, 0);
  EXPECT_EQ(Run("data inspect s/synth_a.h5", "EMOSWEEP_STORE_CHECK_TIMEOUT=0.000000001").code, 0);
  // Without it, the same limit makes the check fail: the child did run.
  fs::remove(dir_ / "cache" / "verified-stores.tsv");
  Ran fresh = Run("plan p.toml", "EMOSWEEP_STORE_CHECK_TIMEOUT=0.000000001");
  EXPECT_EQ(fresh.code, 2) << fresh.err;
  EXPECT_NE(fresh.err.find("did not finish within"), std::string::npos) << fresh.err;
}

}  // namespace
