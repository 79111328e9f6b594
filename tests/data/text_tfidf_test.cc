// Hashed n-gram TF-IDF against a hand computation.
#include <cmath>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "data/text/tfidf.h"

namespace emosweep::data::text {
namespace {

TEST(Tokenize, LowerCasesAndSplitsOnNonLetters) {
  EXPECT_EQ(Tokenize("Hello, WORLD! it's 2x"), (std::vector<std::string>{"hello", "world", "it", "s", "2x"}));
  EXPECT_EQ(Tokenize("Ärger—ÜBER Straße"), (std::vector<std::string>{"ärger", "über", "straße"}));
  EXPECT_EQ(Tokenize("Привет МИР"), (std::vector<std::string>{"привет", "мир"}));
  EXPECT_EQ(Tokenize("perché È così"), (std::vector<std::string>{"perché", "è", "così"}));
  // Irregular simple case mappings: Ÿ (U+0178) -> ÿ, İ -> i, accented Greek capitals, Ukrainian Ґ.
  EXPECT_EQ(Tokenize("ŸVES İSTANBUL ŹLE"), (std::vector<std::string>{"ÿves", "istanbul", "źle"}));
  EXPECT_EQ(Tokenize("Άλφα ΈΝΑ Όμως Ώρα"), (std::vector<std::string>{"άλφα", "ένα", "όμως", "ώρα"}));
  EXPECT_EQ(Tokenize("ҐАНОК Ґанок"), (std::vector<std::string>{"ґанок", "ґанок"}));
  // Invalid UTF-8 is a separator, never an error or a crash.
  EXPECT_EQ(Tokenize(std::string("ab\xff\xfe" "cd\xc3")), (std::vector<std::string>{"ab", "cd"}));
  EXPECT_TRUE(Tokenize("  ...  ").empty());
}

// helper-60: punctuation, symbols and emoji from U+3040 on were letters (a Chinese clause was one token, an emoji a
// word), µ ª º were separators, decomposed accents split words, and Arabic, Hebrew and Devanagari vanished.
TEST(Tokenize, ScriptsPunctuationAndWidthsAsDocumented) {
  EXPECT_EQ(Tokenize("你好？世界"), (std::vector<std::string>{"你", "好", "世", "界"}));
  EXPECT_EQ(Tokenize("ＡＢＣ：ｄｅｆ１２"), (std::vector<std::string>{"abc", "def12"}));
  EXPECT_EQ(Tokenize("emoji 😀 test 😀"), (std::vector<std::string>{"emoji", "test"}));
  EXPECT_EQ(Tokenize("5µm ªº"), (std::vector<std::string>{"5µm", "ªº"}));
  EXPECT_EQ(Tokenize("re\u0301sume\u0301 ok"), (std::vector<std::string>{"re\u0301sume\u0301", "ok"}));
  EXPECT_EQ(Tokenize("مرحبا، عالم؟"), (std::vector<std::string>{"مرحبا", "عالم"}));
  EXPECT_EQ(Tokenize("שָׁלוֹם עולם"), (std::vector<std::string>{"שָׁלוֹם", "עולם"}));
  EXPECT_EQ(Tokenize("नमस्ते। दुनिया"), (std::vector<std::string>{"नमस्ते", "दुनिया"}));
  EXPECT_EQ(Tokenize("カタカナ・ひらがな"), (std::vector<std::string>{"カ", "タ", "カ", "ナ", "ひ", "ら", "が", "な"}));
  EXPECT_EQ(Tokenize("안녕하세요 세계"), (std::vector<std::string>{"안녕하세요", "세계"}));
  EXPECT_EQ(Tokenize("ϴϏϘ"), (std::vector<std::string>{"θϗϙ"}));
  // Version 1 (old stores' provenance) keeps its rules, so their IDF transforms text as it was fitted.
  EXPECT_EQ(Tokenize("你好？世界", 1), (std::vector<std::string>{"你好？世界"}));
  EXPECT_EQ(Tokenize("5µm", 1), (std::vector<std::string>{"5", "m"}));
  EXPECT_EQ(Tokenize("ϴϏϘ", 1), (std::vector<std::string>{"ϴϏϘ"})) << "version 1 lower-cased none of these";
}

TEST(Tfidf, ProvenanceOfVersionOneKeepsItsTokenizer) {
  TfidfOptions o;
  o.dim = 64;
  auto v2 = TfidfVectorizer::Fit({"你好？世界"}, o);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->Provenance()["extractor_version"], 2);
  nlohmann::json old = v2->Provenance();
  old["extractor_version"] = 1;
  auto v1 = TfidfVectorizer::FromProvenance(old);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->options().tokenizer, 1);
  std::vector<float> a(64), b(64);
  v1->TransformOne("你好？世界", a.data());
  v2->TransformOne("你好？世界", b.data());
  EXPECT_NE(a, b) << "one token under version 1, four under version 2";
  old["extractor_version"] = 3;
  EXPECT_FALSE(TfidfVectorizer::FromProvenance(old).ok());
}

TEST(Tfidf, MatchesHandComputation) {
  TfidfOptions o;
  o.dim = 1 << 20;  // large enough that the six n-grams below do not collide (checked)
  const std::vector<std::string> docs = {"A b", "a C"};
  auto v = TfidfVectorizer::Fit(docs, o);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const std::vector<std::string> grams = {"a", "b", "c", "a b", "a c", "b a"};
  std::map<std::string, uint64_t> bucket;
  std::map<std::string, float> sign;
  std::set<uint64_t> distinct;
  for (const auto& g : grams) {
    const uint64_t h = HashNgram(g);
    bucket[g] = h % uint64_t(o.dim);
    sign[g] = (h >> 63) ? -1.f : 1.f;
    distinct.insert(bucket[g]);
  }
  ASSERT_EQ(distinct.size(), grams.size()) << "hash collision in the test corpus";
  // idf = ln((1 + 2) / (1 + df)) + 1: "a" in both docs, the rest in one.
  const double idf_a = 1.0, idf_1 = std::log(1.5) + 1.0;
  EXPECT_NEAR(v->idf()[bucket["a"]], idf_a, 1e-6);
  EXPECT_NEAR(v->idf()[bucket["b"]], idf_1, 1e-6);
  EXPECT_NEAR(v->idf()[bucket["a b"]], idf_1, 1e-6);
  EXPECT_NEAR(v->idf()[bucket["b a"]], std::log(3.0) + 1.0, 1e-6);  // not in the fitting corpus
  const FeatureSet fs = v->Transform({"a b a"}, "tfidf");
  ASSERT_EQ(fs.rows(), 1);
  // "a b a": a x2, b x1, "a b" x1, "b a" x1.
  const double xa = 2 * idf_a, xb = idf_1, xab = idf_1, xba = std::log(3.0) + 1.0;
  const double norm = std::sqrt(xa * xa + xb * xb + xab * xab + xba * xba);
  const float* row = fs.row(0);
  EXPECT_NEAR(row[bucket["a"]], sign["a"] * xa / norm, 1e-6);
  EXPECT_NEAR(row[bucket["b"]], sign["b"] * xb / norm, 1e-6);
  EXPECT_NEAR(row[bucket["a b"]], sign["a b"] * xab / norm, 1e-6);
  double sq = 0;
  int nonzero = 0;
  for (int64_t d = 0; d < fs.dim; ++d) sq += double(row[d]) * row[d], nonzero += row[d] != 0.f;
  EXPECT_NEAR(sq, 1.0, 1e-5);
  EXPECT_EQ(nonzero, 4);
}

TEST(Tfidf, EmptyDocumentStaysZero) {
  auto v = TfidfVectorizer::Fit({"x y"}, TfidfOptions{});
  ASSERT_TRUE(v.ok());
  const FeatureSet fs = v->Transform({"", "!!!"});
  for (float x : fs.values) EXPECT_EQ(x, 0.f);
}

TEST(Tfidf, ProvenanceRoundTripTransformsAnotherCorpusWithTheSameIdf) {
  TfidfOptions o;
  o.dim = 256;
  o.sublinear_tf = true;
  auto fit = TfidfVectorizer::Fit({"i am so happy today", "this makes me angry", "so sad and tired"}, o);
  ASSERT_TRUE(fit.ok());
  const FeatureSet stored = fit->Transform({"happy happy day"});
  auto back = TfidfVectorizer::FromProvenance(stored.provenance);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const std::vector<std::string> other = {"angry and sad", "what a happy surprise"};
  EXPECT_EQ(back->Transform(other).values, fit->Transform(other).values);
  EXPECT_EQ(back->idf(), fit->idf());
}

TEST(Tfidf, BadProvenanceIsCorruption) {
  auto fit = TfidfVectorizer::Fit({"a b"}, TfidfOptions{});
  ASSERT_TRUE(fit.ok());
  nlohmann::json p = fit->Provenance();
  p["idf"] = std::vector<float>(3, 1.f);
  auto r = TfidfVectorizer::FromProvenance(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("idf"), std::string::npos);
  p = fit->Provenance();
  p.erase("min_n");
  EXPECT_EQ(TfidfVectorizer::FromProvenance(p).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(TfidfVectorizer::FromProvenance(nlohmann::json{{"extractor", "x"}}).status().code(), StatusCode::kCorruption);
}

TEST(Tfidf, BadOptionsAreInvalidArgument) {
  TfidfOptions o;
  o.dim = 0;
  EXPECT_EQ(TfidfVectorizer::Fit({"a"}, o).status().code(), StatusCode::kInvalidArgument);
  o.dim = 8;
  o.min_n = 2;
  o.max_n = 1;
  EXPECT_EQ(TfidfVectorizer::Fit({"a"}, o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace emosweep::data::text
