// `torchscript` model files in protocols (torch-free): resolved relative to the
// protocol file, their SHA-256 in the job identity, a missing file a missing
// input (plan reports it, the experiment is not expanded), a grid over files.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "protocols/expand.h"
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
seeds = [1]
selection = "source_val"
split = {method = "speaker_kfold", k = 2}
[[experiment]]
name = "in"
kind = "in_domain"
corpora = ["a"]
models = ["concat_mlp", {name = "torchscript", label = "mine", file = "models/m.pt"}]
)";

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : {"a", "b"}) WriteStore(dir_, MakeCorpus(n));
    std::filesystem::create_directories(dir_.File("models"));
  }
  void WriteModel(const std::string& bytes) { std::ofstream(dir_.File("models/m.pt")) << bytes; }
  Result<Protocol> Load(const std::string& text = kProtocol) { return LoadProtocol(dir_.Write("p.toml", text)); }
  TestDir dir_;
};

TEST_F(ModelFile, ResolvedAgainstTheProtocolAndHashedIntoTheIdentity) {
  WriteModel("abc");
  auto p = Load();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->missing_inputs.empty());
  int mine = 0;
  std::string id;
  for (const auto& j : p->jobs) {
    if (j.spec.model["name"] != "torchscript") continue;
    ++mine;
    EXPECT_EQ(j.spec.model["file"], dir_.File("models/m.pt"));
    EXPECT_EQ(j.spec.model["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(j.attrs.at("model"), "mine");
    if (id.empty()) id = j.spec.id;
  }
  EXPECT_EQ(mine, 2);  // 2 folds x 1 seed
  // Same path, other bytes: other job identities.
  WriteModel("abd");
  auto q = Load();
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  for (const auto& j : q->jobs)
    if (j.spec.model["name"] == "torchscript") EXPECT_NE(j.spec.id, id);
}

TEST_F(ModelFile, MissingFileIsAMissingInputNotAParseError) {
  auto p = Load();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->missing_inputs.size(), 1u);
  EXPECT_EQ(p->missing_inputs[0], "model file " + dir_.File("models/m.pt"));
  ASSERT_EQ(p->experiments.size(), 1u);
  EXPECT_FALSE(p->experiments[0].expanded);
  EXPECT_NE(p->experiments[0].reason.find("missing model file"), std::string::npos) << p->experiments[0].reason;
  EXPECT_TRUE(p->jobs.empty());
}

TEST_F(ModelFile, PinnedHashMustMatchAndFileIsRequired) {
  WriteModel("abc");
  std::string pinned = kProtocol;
  pinned.replace(pinned.find("file = \"models/m.pt\""), 20, "file = \"models/m.pt\", sha256 = \"00\"");
  auto p = Load(pinned);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.status().IsBadInput());
  EXPECT_NE(p.status().message().find("p.toml"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("models/m.pt"), std::string::npos) << p.status().message();
  std::string nofile = kProtocol;
  nofile.replace(nofile.find(", file = \"models/m.pt\""), 22, "");
  auto q = Load(nofile);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("needs file"), std::string::npos) << q.status().message();
}

TEST_F(ModelFile, DefaultsTableSetsTheFile) {
  WriteModel("abc");
  std::string text = kProtocol;
  text.replace(text.find(", file = \"models/m.pt\""), 22, "");
  text.replace(text.find("[[experiment]]"), 0, "[defaults.model.torchscript]\nfile = \"models/m.pt\"\n");
  auto p = Load(text);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  int mine = 0;
  for (const auto& j : p->jobs)
    if (j.spec.model["name"] == "torchscript") {
      ++mine;
      EXPECT_EQ(j.spec.model["file"], dir_.File("models/m.pt"));
      EXPECT_EQ(j.spec.model["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
  EXPECT_EQ(mine, 2);
}

TEST_F(ModelFile, GridOverFilesHashesEach) {
  WriteModel("abc");
  std::ofstream(dir_.File("models/n.pt")) << "xyz";
  std::string grid = kProtocol;
  grid += "grid = {\"model.file\" = [\"models/m.pt\", \"models/n.pt\"]}\n";
  grid.replace(grid.find("models = [\"concat_mlp\", "), 24, "models = [");
  auto p = Load(grid);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::set<std::string> hashes;
  for (const auto& j : p->jobs) hashes.insert(j.spec.model["sha256"].get<std::string>());
  EXPECT_EQ(hashes.size(), 2u);
}

// Regression (found in review of this branch): the grid's model.file hook must not turn model.<key> grid
// values into adapt options (they were, for one commit, in every experiment kind).
TEST_F(ModelFile, ModelGridKeysStayOutOfTheAdaptConfig) {
  std::string text = kProtocol;
  text = text.substr(0, text.find("[[experiment]]"));
  text += R"([[experiment]]
name = "da"
kind = "adapt"
source = "a"
target = "b"
models = ["concat_mlp"]
variants = ["dann_ganin"]
grid = {"model.dropout" = [0.1, 0.2]}
)";
  auto p = Load(text);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_FALSE(p->jobs.empty());
  std::set<double> dropouts;
  for (const auto& j : p->jobs) {
    EXPECT_FALSE(j.spec.adapt.contains("dropout")) << j.spec.adapt.dump();
    dropouts.insert(j.spec.model["dropout"].get<double>());
  }
  EXPECT_EQ(dropouts.size(), 2u);
}

}  // namespace
}  // namespace emosweep::protocols
