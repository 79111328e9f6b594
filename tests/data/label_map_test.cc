// Label maps: every built-in map loads and maps only to canonical labels;
// unmapped labels are errors naming the label and the file; drop works.
#include "data/label_map.h"

#include <fstream>

#include "store_test_util.h"

namespace emosweep::data {
namespace {

TEST(Taxonomy, CanonicalLabelsAndNamedSets) {
  const auto& l = CanonicalLabels();
  ASSERT_GE(l.size(), 15u);
  EXPECT_EQ(l[0], "anger");
  EXPECT_TRUE(IsCanonicalLabel("boredom"));
  EXPECT_FALSE(IsCanonicalLabel("joy"));
  auto core4 = NamedLabelSet("core4");
  ASSERT_TRUE(core4.ok());
  EXPECT_EQ(*core4, (std::vector<std::string>{"anger", "happiness", "neutral", "sadness"}));
  auto ekman7 = NamedLabelSet("ekman7");
  ASSERT_TRUE(ekman7.ok());
  EXPECT_EQ(*ekman7,
            (std::vector<std::string>{"anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"}));
  auto bad = NamedLabelSet("core5");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("core5"), std::string::npos);
}

TEST(LabelMap, EveryBuiltinLoadsAndMapsToCanonicalLabels) {
  auto names = LabelMap::BuiltinNames();
  for (const char* required :
       {"emodb", "ravdess", "emovo", "tess", "iemocap4", "iemocap4_exc_as_happiness", "iemocap6", "cremad", "esd",
        "meld", "emorynlp", "isear", "glomer_iemocap4", "cemobam_iemocap4", "msr_iemocap4", "msr_cremad4"})
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
  EXPECT_EQ(std::find(names.begin(), names.end(), "taxonomy"), names.end());
  for (const auto& n : names) {
    auto m = LabelMap::Load(n);
    ASSERT_TRUE(m.ok()) << n << ": " << m.status().ToString();
    EXPECT_EQ(m->name(), n);
    EXPECT_FALSE(m->targets().empty()) << n;
    for (const auto& t : m->targets()) EXPECT_TRUE(IsCanonicalLabel(t)) << n << " -> " << t;
    for (const auto& orig : m->OriginalLabels()) {
      auto r = m->Map(orig, "test");
      ASSERT_TRUE(r.ok()) << n << ": " << orig;
      if (r->has_value()) {
        EXPECT_TRUE(IsCanonicalLabel(**r)) << n << ": " << orig << " -> " << **r;
        EXPECT_NE(std::find(m->targets().begin(), m->targets().end(), **r), m->targets().end());
      }
    }
  }
}

TEST(LabelMap, SeedClassOrdersMatchTheSpec) {
  auto glomer = LabelMap::Load("glomer_iemocap4");
  auto cemobam = LabelMap::Load("cemobam_iemocap4");
  auto msr = LabelMap::Load("msr_iemocap4");
  ASSERT_TRUE(glomer.ok() && cemobam.ok() && msr.ok());
  EXPECT_EQ(glomer->targets(), (std::vector<std::string>{"anger", "happiness", "sadness", "neutral"}));
  EXPECT_EQ(cemobam->targets(), (std::vector<std::string>{"anger", "happiness", "neutral", "sadness"}));
  EXPECT_EQ(msr->targets(), (std::vector<std::string>{"anger", "happiness", "sadness", "neutral"}));
  EXPECT_EQ(**cemobam->Map("2", "x"), "neutral");
  EXPECT_EQ(**glomer->Map("2", "x"), "sadness");
  EXPECT_EQ(**LabelMap::Load("emodb")->Map("W", "x"), "anger");
  EXPECT_EQ(**LabelMap::Load("emodb")->Map("L", "x"), "boredom");
  EXPECT_EQ(**LabelMap::Load("ravdess")->Map("02", "x"), "calm");
  EXPECT_EQ(**LabelMap::Load("meld")->Map("joy", "x"), "happiness");
  EXPECT_NE(glomer->Hash(), cemobam->Hash());
}

TEST(LabelMap, ExcitementDroppedOrMergedByChoice) {
  auto strict = LabelMap::Load("iemocap4");
  auto merged = LabelMap::Load("iemocap4_exc_as_happiness");
  ASSERT_TRUE(strict.ok() && merged.ok());
  auto a = strict->Map("exc", "x");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());  // dropped explicitly
  auto b = merged->Map("exc", "x");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(**b, "happiness");
}

TEST(LabelMap, UnmappedLabelNamesLabelAndFile) {
  auto m = LabelMap::Load("emodb");
  ASSERT_TRUE(m.ok());
  auto r = m->Map("X", "corpora/emodb/metadata.csv line 7");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'X'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("metadata.csv line 7"), std::string::npos);
  EXPECT_NE(r.status().message().find("builtin:emodb.toml"), std::string::npos);
}

TEST(LabelMap, LoadsUserFileByPath) {
  testing::TestDir dir;
  std::string p = dir.File("mine.toml");
  std::ofstream(p) << "name = \"mine\"\ndrop = [\"x\"]\n[map]\nangry = \"anger\"\ncalm = \"neutral\"\n";
  auto m = LabelMap::Load(p);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->source(), p);
  EXPECT_EQ(m->targets(), (std::vector<std::string>{"anger", "neutral"}));  // canonical order when not given
  EXPECT_FALSE(m->Map("x", "w")->has_value());
  auto bad = m->Map("sad", "data.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(p), std::string::npos);
}

TEST(LabelMapBadInput, NonCanonicalTarget) {
  auto m = LabelMap::Parse("name = \"m\"\n[map]\njoy = \"joy\"\n", "m.toml");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("m.toml"), std::string::npos);
  EXPECT_NE(m.status().message().find("not a canonical label"), std::string::npos);
}

TEST(LabelMapBadInput, UnknownKeyMappedAndDroppedAndMissingFile) {
  EXPECT_FALSE(LabelMap::Parse("name = \"m\"\nmapp = 1\n[map]\na = \"anger\"\n", "m.toml").ok());
  EXPECT_FALSE(LabelMap::Parse("name = \"m\"\ndrop = [\"a\"]\n[map]\na = \"anger\"\n", "m.toml").ok());
  EXPECT_FALSE(LabelMap::Parse("name = \"m\"\ntargets = [\"sadness\"]\n[map]\na = \"anger\"\n", "m.toml").ok());
  EXPECT_FALSE(LabelMap::Parse("name = [\n", "m.toml").ok());
  auto desc = LabelMap::Parse("name = \"m\"\ndescription = 3\n[map]\na = \"anger\"\n", "m.toml");  // was accepted
  ASSERT_FALSE(desc.ok());
  EXPECT_NE(desc.status().message().find("m.toml line 2: 'description' must be a string"), std::string::npos)
      << desc.status().message();
  auto nf = LabelMap::Load("no_such_map");
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.status().code(), StatusCode::kNotFound);
  EXPECT_NE(nf.status().message().find("emodb"), std::string::npos);  // lists the built-ins
  EXPECT_EQ(LabelMap::Load("/no/such/file.toml").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace emosweep::data
