// tests/protocols/library_test.cc: every protocol of protocols/library/
// parses and validates without data (its stores missing), and the quick-start
// protocol expands on synthetic stores.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/synth.h"
#include "protocols/expand.h"
#include "tests/protocols/protocol_test_util.h"

namespace emosweep::protocols {
namespace {

std::vector<std::string> LibraryFiles() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(std::string(EMOSWEEP_SOURCE_DIR) + "/protocols/library"))
    if (e.path().extension() == ".toml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Library, HasTheExpectedProtocols) {
  std::set<std::string> names;
  for (const auto& f : LibraryFiles()) names.insert(std::filesystem::path(f).filename().string());
  for (const char* want : {"quickstart.toml", "real-corpora.toml", "glomer.toml", "cemobam.toml", "mer.toml",
                           "multimodal-ser.toml"})
    EXPECT_TRUE(names.count(want)) << want;
}

TEST(Library, EveryProtocolValidatesWithoutData) {
  testing::TestDir empty;  // no stores here: every store is missing
  for (const auto& f : LibraryFiles()) {
    SCOPED_TRACE(f);
    LoadOptions o;
    o.store_dir = empty.path();
    o.use_environment = false;
    for (const char* v : {"IEMOCAP_STORE", "ESD_STORE", "MELD_STORE", "MOSEI_STORE", "AFEW_STORE", "CREMAD_STORE"})
      o.vars[v] = empty.File(std::string(v) + ".h5");
    auto p = LoadProtocol(f, o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_FALSE(p->experiments.empty());
    EXPECT_FALSE(p->tables.empty());
    EXPECT_FALSE(p->missing_inputs.empty()) << "stores should be missing in an empty directory";
    for (const auto& e : p->experiments) {
      EXPECT_FALSE(e.expanded) << e.name;
      EXPECT_FALSE(e.selection.empty()) << e.name;
    }
    for (const auto& t : p->tables) EXPECT_FALSE(t.spread.empty()) << t.name;
  }
}

TEST(Library, QuickstartExpandsOnSyntheticStores) {
  testing::TestDir dir;
  // The stores `emosweep data synth` writes with its defaults (smaller, same names).
  data::SynthSpec spec;
  spec.utterances_per_speaker = 12;
  auto corpora = data::MakeSynthCorpora(spec);
  ASSERT_TRUE(corpora.ok()) << corpora.status().ToString();
  for (const auto& c : *corpora) testing::WriteStore(dir, c);
  LoadOptions o;
  o.store_dir = dir.path();
  auto p = LoadProtocol(std::string(EMOSWEEP_SOURCE_DIR) + "/protocols/library/quickstart.toml", o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->missing_inputs.empty());
  for (const auto& e : p->experiments) EXPECT_TRUE(e.expanded) << e.name;
  EXPECT_GT(p->jobs.size(), 10u);
  EXPECT_LT(p->jobs.size(), 200u) << "the quick start must stay small";
}

}  // namespace
}  // namespace emosweep::protocols
