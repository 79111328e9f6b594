#include "data/text/tfidf.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace emosweep::data::text {
namespace {

// Decodes one UTF-8 code point; invalid sequences yield U+FFFD and advance one byte.
uint32_t NextCodePoint(const std::string& s, size_t* i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(*i);
  int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || *i + len > s.size()) {
    ++*i;
    return 0xFFFD;
  }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    if ((b(*i + k) & 0xC0) != 0x80) {
      ++*i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b(*i + k) & 0x3F);
  }
  *i += size_t(len);
  return cp;
}

// Letters and digits of the scripts our corpora use (Latin incl. Latin-1,
// Extended-A/B, Greek, Cyrillic); everything from U+3040 on (CJK, kana, ...)
// also counts as a letter so those scripts are not silently dropped.
// Tokenizer version 1 (stores written before session 20; kept so that their provenance transforms as fitted).
bool IsWordCharV1(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  if (cp == 0xD7 || cp == 0xF7) return false;  // × ÷
  if (cp >= 0xC0 && cp <= 0x24F) return true;
  if (cp >= 0x370 && cp <= 0x3FF && cp != 0x37E && cp != 0x387) return true;
  if (cp >= 0x400 && cp <= 0x4FF) return true;
  return cp >= 0x3040 && cp != 0xFFFD && !(cp >= 0x3000 && cp <= 0x303F) && !(cp >= 0xFF00 && cp <= 0xFF0F);
}

// Version 2 (helper-60): what a code point is to the tokenizer.
enum class CharClass { kSeparator, kWord, kAlone };  // kAlone: a token by itself (CJK ideographs, kana)

// Fullwidth ASCII (U+FF01..FF5E) folds to ASCII, so "ＡＢＣ：ｄｅｆ" reads as "ABC:def".
uint32_t FoldWidth(uint32_t cp) { return cp >= 0xFF01 && cp <= 0xFF5E ? cp - 0xFEE0 : cp; }

CharClass ClassOf(uint32_t cp) {
  auto in = [cp](uint32_t a, uint32_t b) { return cp >= a && cp <= b; };
  if (cp < 0x80)
    return (in('0', '9') || in('a', 'z') || in('A', 'Z')) ? CharClass::kWord : CharClass::kSeparator;
  if (cp == 0xAA || cp == 0xB5 || cp == 0xBA) return CharClass::kWord;  // ª µ º
  if (cp == 0xD7 || cp == 0xF7) return CharClass::kSeparator;           // × ÷
  if (in(0xC0, 0x24F) || in(0x250, 0x2AF)) return CharClass::kWord;     // Latin-1 letters, Extended-A/B, IPA
  if (in(0x300, 0x36F)) return CharClass::kWord;  // combining diacritics (decomposed accents stay in their word)
  if (in(0x370, 0x3FF)) return cp == 0x37E || cp == 0x387 || cp == 0x3F6 ? CharClass::kSeparator : CharClass::kWord;
  if (in(0x400, 0x52F)) return cp == 0x482 ? CharClass::kSeparator : CharClass::kWord;  // Cyrillic (not ҂)
  if (in(0x531, 0x556) || in(0x561, 0x587)) return CharClass::kWord;                          // Armenian
  if (in(0x591, 0x5C7))  // Hebrew points, except the punctuation among them
    return cp == 0x5BE || cp == 0x5C0 || cp == 0x5C3 || cp == 0x5C6 ? CharClass::kSeparator : CharClass::kWord;
  if (in(0x5D0, 0x5EA) || in(0x5EF, 0x5F2)) return CharClass::kWord;  // Hebrew letters
  if (in(0x610, 0x61A) || in(0x620, 0x669) || in(0x66E, 0x6D3) || in(0x6D5, 0x6DC) || in(0x6DF, 0x6E8) ||
      in(0x6EA, 0x6FC) || in(0x6FF, 0x6FF))
    return CharClass::kWord;  // Arabic letters, marks and digits (not ، ؛ ؟ ٪ ٫ ٬ ٭ ۔)
  if (in(0x900, 0x963) || in(0x966, 0x97F)) return CharClass::kWord;  // Devanagari (not the dandas)
  if (in(0x980, 0xDFF)) return CharClass::kWord;  // Bengali .. Sinhala (letters, signs and digits)
  if (in(0xE01, 0xE3A) || in(0xE40, 0xE4E) || in(0xE50, 0xE59)) return CharClass::kWord;  // Thai
  if (in(0x10A0, 0x10FF) || in(0x1100, 0x11FF) || in(0x1E00, 0x1FFF)) return CharClass::kWord;  // Georgian, jamo, Latin/Greek ext.
  if (in(0x3041, 0x3096) || in(0x3099, 0x309F) || in(0x30A1, 0x30FA) || in(0x30FC, 0x30FF) || in(0x31F0, 0x31FF))
    return CharClass::kAlone;  // kana
  if (in(0x3400, 0x4DBF) || in(0x4E00, 0x9FFF) || in(0xF900, 0xFAFF) || in(0x20000, 0x2FA1F))
    return CharClass::kAlone;  // CJK ideographs: no spaces between words, so one token each (as BERT's tokenizer)
  if (in(0x3131, 0x318E) || in(0xAC00, 0xD7A3)) return CharClass::kWord;  // Hangul (spaced between words)
  if (in(0xFF66, 0xFF9F)) return CharClass::kAlone;                      // halfwidth katakana
  return CharClass::kSeparator;  // punctuation, symbols, emoji, other scripts
}

// Unicode simple lowercase mappings (UnicodeData.txt) for the ranges IsWordChar knows as
// cased: Basic Latin, Latin-1, Latin Extended-A, Greek (incl. accented capitals) and Cyrillic
// (incl. the extended block used by Ukrainian, Kazakh, ...). Latin Extended-B is left as is.
uint32_t ToLower(uint32_t cp, int version) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if ((cp >= 0xC0 && cp <= 0xDE) && cp != 0xD7) return cp + 32;
  if (cp >= 0x100 && cp <= 0x17F) {  // Latin Extended-A: mostly even upper / odd lower pairs
    if (cp == 0x130) return 'i';     // İ (Turkish dotted capital I)
    if (cp == 0x178) return 0xFF;    // Ÿ -> ÿ (its lowercase is in Latin-1)
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return (cp % 2 == 1) ? cp + 1 : cp;
    if (cp == 0x131 || cp == 0x138 || cp == 0x149 || cp == 0x17F) return cp;
    return (cp % 2 == 0) ? cp + 1 : cp;
  }
  if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 32;  // Greek capitals
  if (version >= 2) {  // mappings added with tokenizer version 2 (version 1 stores transform as they were fitted)
    if (cp >= 0x3D8 && cp <= 0x3EF) return (cp % 2 == 0) ? cp + 1 : cp;  // archaic letters, Coptic in Greek: pairs
    if (cp == 0x370 || cp == 0x372 || cp == 0x376) return cp + 1;
    if (cp == 0x37F) return 0x3F3;
    if (cp == 0x3CF) return 0x3D7;
    if (cp == 0x3F4) return 0x3B8;
    if (cp == 0x3F7 || cp == 0x3FA) return cp + 1;
    if (cp == 0x3F9) return 0x3F2;
    if (cp >= 0x3FD && cp <= 0x3FF) return cp - 130;
  }
  if (cp == 0x386) return 0x3AC;                                   // Ά
  if (cp >= 0x388 && cp <= 0x38A) return cp + 37;                  // Έ Ή Ί
  if (cp == 0x38C) return 0x3CC;                                   // Ό
  if (cp == 0x38E || cp == 0x38F) return cp + 63;                  // Ύ Ώ
  if (cp >= 0x410 && cp <= 0x42F) return cp + 32;                  // Cyrillic
  if (cp >= 0x400 && cp <= 0x40F) return cp + 80;
  if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF) || (cp >= 0x4D0 && cp <= 0x4FF))
    return (cp % 2 == 0) ? cp + 1 : cp;                            // Ѡ..., Ґ (U+0490), Ӑ...
  if (cp == 0x4C0) return 0x4CF;                                   // Ӏ
  if (cp >= 0x4C1 && cp <= 0x4CE) return (cp % 2 == 1) ? cp + 1 : cp;
  return cp;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else if (cp < 0x800) {
    out->push_back(char(0xC0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(char(0xE0 | (cp >> 12)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (cp >> 18)));
    out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  }
}

// Calls fn(hash) for every n-gram of the document.
template <typename Fn>
void ForEachNgramHash(const TfidfOptions& o, const std::string& doc, Fn fn) {
  const std::vector<std::string> tokens = Tokenize(doc, o.tokenizer);
  std::string gram;
  for (int n = o.min_n; n <= o.max_n; ++n) {
    for (size_t i = 0; i + size_t(n) <= tokens.size(); ++i) {
      gram = tokens[i];
      for (int k = 1; k < n; ++k) gram += ' ' + tokens[i + size_t(k)];
      fn(HashNgram(gram));
    }
  }
}

Status CheckOptions(const TfidfOptions& o) {
  if (o.dim < 1) return Status::InvalidArgument("tfidf: dim must be >= 1, got " + std::to_string(o.dim));
  if (o.tokenizer != 1 && o.tokenizer != 2)
    return Status::InvalidArgument("tfidf: tokenizer version must be 1 or 2, got " + std::to_string(o.tokenizer));
  if (o.min_n < 1 || o.max_n < o.min_n) {
    return Status::InvalidArgument("tfidf: need 1 <= min_n <= max_n, got " + std::to_string(o.min_n) + ".." +
                                   std::to_string(o.max_n));
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> Tokenize(const std::string& utf8, int version) {
  std::vector<std::string> tokens;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) tokens.push_back(std::move(cur));
    cur.clear();
  };
  size_t i = 0;
  while (i < utf8.size()) {
    uint32_t cp = NextCodePoint(utf8, &i);
    if (version == 1) {
      if (IsWordCharV1(cp)) AppendUtf8(ToLower(cp, 1), &cur);
      else flush();
      continue;
    }
    cp = FoldWidth(cp);
    switch (ClassOf(cp)) {
      case CharClass::kWord: AppendUtf8(ToLower(cp, 2), &cur); break;
      case CharClass::kAlone:
        flush();
        AppendUtf8(cp, &cur);
        flush();
        break;
      case CharClass::kSeparator: flush(); break;
    }
  }
  flush();
  return tokens;
}

uint64_t HashNgram(const std::string& ngram) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : ngram) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Result<TfidfVectorizer> TfidfVectorizer::Fit(const std::vector<std::string>& docs, const TfidfOptions& options) {
  ES_RETURN_IF_ERROR(CheckOptions(options));
  TfidfVectorizer v;
  v.options_ = options;
  v.num_fit_docs_ = int64_t(docs.size());
  std::vector<int64_t> df(size_t(options.dim), 0);
  std::unordered_set<int64_t> seen;
  for (const auto& doc : docs) {
    seen.clear();
    ForEachNgramHash(options, doc, [&](uint64_t h) { seen.insert(int64_t(h % uint64_t(options.dim))); });
    for (int64_t b : seen) ++df[size_t(b)];
  }
  v.idf_.resize(size_t(options.dim));
  for (int64_t b = 0; b < options.dim; ++b) {
    v.idf_[size_t(b)] = float(std::log((1.0 + double(v.num_fit_docs_)) / (1.0 + double(df[size_t(b)]))) + 1.0);
  }
  return v;
}

nlohmann::json TfidfVectorizer::Provenance() const {
  return {{"extractor", "emosweep.tfidf"},
          {"extractor_version", options_.tokenizer},  // 1: the tokenizer before session 20; 2: today's
          {"dim", options_.dim},
          {"min_n", options_.min_n},
          {"max_n", options_.max_n},
          {"sublinear_tf", options_.sublinear_tf},
          {"l2_normalise", options_.l2_normalise},
          {"hash", "fnv1a64; bucket = h mod dim; sign = bit 63"},
          {"idf_formula", "ln((1 + n_docs) / (1 + df)) + 1"},
          {"num_fit_docs", num_fit_docs_},
          {"idf", idf_},
          {"docs", "docs/features.md"}};
}

Result<TfidfVectorizer> TfidfVectorizer::FromProvenance(const nlohmann::json& p) {
  if (!p.is_object() || p.value("extractor", "") != "emosweep.tfidf") {
    return Status::Corruption("tfidf provenance: not an emosweep.tfidf provenance object");
  }
  const nlohmann::json version = p.value("extractor_version", nlohmann::json());
  if (version != 1 && version != 2) {
    return Status::Corruption("tfidf provenance: unsupported extractor_version " + version.dump());
  }
  TfidfVectorizer v;
  v.options_.tokenizer = version.get<int>();
  try {
    v.options_.dim = p.at("dim").get<int64_t>();
    v.options_.min_n = p.at("min_n").get<int>();
    v.options_.max_n = p.at("max_n").get<int>();
    v.options_.sublinear_tf = p.at("sublinear_tf").get<bool>();
    v.options_.l2_normalise = p.at("l2_normalise").get<bool>();
    v.num_fit_docs_ = p.at("num_fit_docs").get<int64_t>();
    v.idf_ = p.at("idf").get<std::vector<float>>();
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("tfidf provenance: missing or mistyped field: ") + e.what());
  }
  ES_RETURN_IF_ERROR(CheckOptions(v.options_));
  if (int64_t(v.idf_.size()) != v.options_.dim) {
    return Status::Corruption("tfidf provenance: idf has " + std::to_string(v.idf_.size()) + " entries, dim is " +
                              std::to_string(v.options_.dim));
  }
  for (float x : v.idf_) {
    if (!std::isfinite(x)) return Status::Corruption("tfidf provenance: idf contains a non-finite value");
  }
  return v;
}

void TfidfVectorizer::TransformOne(const std::string& doc, float* out) const {
  const uint64_t dim = uint64_t(options_.dim);
  std::fill(out, out + dim, 0.f);
  ForEachNgramHash(options_, doc, [&](uint64_t h) { out[h % dim] += (h >> 63) ? -1.f : 1.f; });
  double norm = 0.0;
  for (uint64_t b = 0; b < dim; ++b) {
    float tf = out[b];
    if (options_.sublinear_tf && tf != 0.f) tf = std::copysign(1.f + std::log(std::fabs(tf)), tf);
    out[b] = tf * idf_[b];
    norm += double(out[b]) * out[b];
  }
  if (options_.l2_normalise && norm > 0.0) {
    const float inv = float(1.0 / std::sqrt(norm));
    for (uint64_t b = 0; b < dim; ++b) out[b] *= inv;
  }
}

FeatureSet TfidfVectorizer::Transform(const std::vector<std::string>& docs, const std::string& name) const {
  FeatureSet fs;
  fs.name = name;
  fs.modality = "text";
  fs.dim = options_.dim;
  fs.values.resize(docs.size() * size_t(options_.dim));
  for (size_t i = 0; i < docs.size(); ++i) TransformOne(docs[i], fs.values.data() + i * size_t(options_.dim));
  fs.provenance = Provenance();
  return fs;
}

}  // namespace emosweep::data::text
