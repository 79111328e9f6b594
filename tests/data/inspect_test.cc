// inspect: counts, feature listing, NaN/Inf counts and hash verification.
#include "data/inspect.h"

#include <hdf5.h>

#include <cmath>
#include <limits>

#include "data/synth.h"
#include "store_test_util.h"

namespace emosweep::data {
namespace {

using testing::SmallCorpus;
using testing::TestDir;

void OverwriteValues(const std::string& path, const std::vector<float>& v) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t d = H5Dopen2(f, "features/a/values", H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d);
  H5Fclose(f);
}

TEST(Inspect, SyntheticStoreIsCleanAndCounted) {
  TestDir dir;
  SynthSpec s;
  s.num_corpora = 1;
  s.speakers_per_corpus = 3;
  s.utterances_per_speaker = 8;
  s.frames = true;
  auto corpora = MakeSynthCorpora(s);
  ASSERT_TRUE(corpora.ok());
  ASSERT_TRUE(WriteFeatureStore(dir.File("a.h5"), (*corpora)[0]).ok());
  auto r = InspectStore(dir.File("a.h5"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ok());
  EXPECT_TRUE(r->hash_matches);
  EXPECT_EQ(r->speakers.size(), 3u);
  EXPECT_EQ(r->labels, s.classes);
  for (const auto& row : r->counts) EXPECT_EQ(row, (std::vector<int64_t>{2, 2, 2, 2}));
  ASSERT_EQ(r->features.size(), 2u);
  EXPECT_EQ(r->features[0].info.dim, 64);
  EXPECT_GT(r->features[0].frames, 0);
  EXPECT_EQ(r->features[0].frames, (*corpora)[0].features[0].offsets.back());
  auto j = r->ToJson();
  EXPECT_EQ(j["utterances_per_label"]["anger"], 6);
  EXPECT_EQ(j["utterances_per_speaker_label"]["synth_a_s01"]["sadness"], 2);
  EXPECT_EQ(j["content_hash"]["matches"], true);
  EXPECT_EQ(j["ok"], true);
  std::string text = r->ToText();
  EXPECT_NE(text.find("(verified)"), std::string::npos);
  EXPECT_NE(text.find("synth_audio"), std::string::npos);
  // A long list in the provenance (an imported set's 256 column names) is shown by its length in the text;
  // the JSON keeps it whole.
  r->features[0].info.provenance["columns"] = std::vector<std::string>(256, "logmel_mean_00");
  text = r->ToText();
  EXPECT_NE(text.find("\"columns\":\"[256 items]\""), std::string::npos) << text;
  EXPECT_EQ(text.find("logmel_mean_00"), std::string::npos);
  EXPECT_EQ(r->ToJson().dump().find("[256 items]"), std::string::npos);
}

TEST(Inspect, CountsNanAndInfAndFlagsHashMismatch) {
  TestDir dir;
  std::string p = dir.File("bad.h5");
  Corpus c = SmallCorpus(4);
  ASSERT_TRUE(WriteFeatureStore(p, c).ok());
  std::vector<float> v = c.features[0].values;
  v[1] = std::numeric_limits<float>::quiet_NaN();
  v[4] = std::numeric_limits<float>::quiet_NaN();
  v[7] = std::numeric_limits<float>::infinity();
  OverwriteValues(p, v);
  auto r = InspectStore(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->features[0].nan, 2);
  EXPECT_EQ(r->features[0].inf, 1);
  EXPECT_FALSE(r->hash_matches);
  EXPECT_NE(r->validation.find("non-finite"), std::string::npos) << r->validation;
  EXPECT_NE(r->ToText().find("MISMATCH"), std::string::npos);
}

TEST(Inspect, FiniteTamperingIsAHashMismatchOnly) {
  TestDir dir;
  std::string p = dir.File("t.h5");
  Corpus c = SmallCorpus(4);
  ASSERT_TRUE(WriteFeatureStore(p, c).ok());
  std::vector<float> v = c.features[0].values;
  v[0] += 1.0f;
  OverwriteValues(p, v);
  auto r = InspectStore(p);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->hash_matches);
  EXPECT_EQ(r->features[0].nan + r->features[0].inf, 0);
  EXPECT_TRUE(r->validation.empty());
  EXPECT_FALSE(r->ok());
}

TEST(Inspect, UnreadableStoreIsAnError) {
  TestDir dir;
  auto r = InspectStore(dir.File("none.h5"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace emosweep::data
