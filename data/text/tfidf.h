// data/text/tfidf.h: transcripts → hashed word 1–2-gram TF-IDF vectors.
//
// Pipeline (docs/features.md, "tfidf"):
//   1. Tokenize: UTF-8 decode, fold fullwidth ASCII, lower-case (ASCII and
//      Latin-1/Latin Extended-A, Greek, Cyrillic), split on every code point that
//      is not a letter, digit or combining mark of the scripts docs/features.md
//      lists; a CJK ideograph or kana is a token by itself; invalid UTF-8 bytes
//      are separators, never an error. (Version 1, read from old provenance:
//      every code point from U+3040 on was a letter.)
//   2. n-grams n = min_n..max_n joined by a single space; each is hashed with
//      64-bit FNV-1a: bucket = h mod dim, sign = +1 if bit 63 of h is 0 else -1
//      (signed hashing keeps collisions unbiased).
//   3. tf[b] = signed count; df[b] = number of fitting documents in which any
//      n-gram falls in bucket b; idf[b] = ln((1 + n_docs) / (1 + df[b])) + 1
//      (scikit-learn's smooth_idf); x = tf * idf, then L2-normalised (an
//      empty document stays all zero).
// The fitted IDF is stored in the provenance JSON, so a second corpus can be
// transformed with the first corpus's IDF (TfidfVectorizer::FromProvenance).
// Thread-safety: a fitted TfidfVectorizer is immutable; const methods may be
// called from many threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/corpus.h"

namespace emosweep::data::text {

struct TfidfOptions {
  int64_t dim = 4096;  // hash buckets = output dimension
  int min_n = 1;
  int max_n = 2;
  bool sublinear_tf = false;  // tf → 1 + ln|tf| (sign kept)
  bool l2_normalise = true;
  int tokenizer = 2;  // 2: today's; 1: before session 20 (a stored provenance with extractor_version 1)
};

std::vector<std::string> Tokenize(const std::string& utf8, int version = 2);
uint64_t HashNgram(const std::string& ngram);  // FNV-1a 64

class TfidfVectorizer {
 public:
  // Fits the IDF on `docs` (the training corpus's transcripts).
  static Result<TfidfVectorizer> Fit(const std::vector<std::string>& docs, const TfidfOptions& options);
  // Rebuilds a vectorizer from Provenance() (e.g. a stored FeatureSet's
  // provenance); Corruption if a field is missing or the IDF length is wrong.
  static Result<TfidfVectorizer> FromProvenance(const nlohmann::json& provenance);

  nlohmann::json Provenance() const;
  const TfidfOptions& options() const { return options_; }
  const std::vector<float>& idf() const { return idf_; }
  int64_t num_fit_docs() const { return num_fit_docs_; }

  // Writes options().dim floats to `out`.
  void TransformOne(const std::string& doc, float* out) const;
  // FeatureSet "name" (modality "text"), row i = docs[i].
  FeatureSet Transform(const std::vector<std::string>& docs, const std::string& name = "tfidf") const;

 private:
  TfidfOptions options_;
  std::vector<float> idf_;
  int64_t num_fit_docs_ = 0;
};

}  // namespace emosweep::data::text
