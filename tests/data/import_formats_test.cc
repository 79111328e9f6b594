// CSV, NPY and NPZ readers of data/import on files written by the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "data/import/csv.h"
#include "data/import/npy.h"
#include "tests/data/import_test_util.h"

namespace emosweep::data {
namespace {

using testing::NpyBytes;
using testing::NpyF32;
using testing::TestDir;
using testing::WriteBytes;
using testing::ZipBytes;

std::vector<std::vector<std::string>> AllRows(CsvReader& r) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> f;
  while (true) {
    auto more = r.Next(&f);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    rows.push_back(f);
  }
  return rows;
}

TEST(ImportCsv, QuotesEmbeddedSeparatorsNewlinesBomAndCrlf) {
  std::string text = "\xEF\xBB\xBFid,transcript,label\r\n"
                     "a,\"hello, world\",anger\r\n"
                     "\r\n"
                     "b,\"two\r\nlines \"\"quoted\"\"\",neutral\r\n"
                     "c,,sadness";
  auto r = CsvReader::FromString(text, "m.csv");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->header(), (std::vector<std::string>{"id", "transcript", "label"}));
  auto rows = AllRows(*r);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][1], "hello, world");
  EXPECT_EQ(rows[1][1], "two\r\nlines \"quoted\"");
  EXPECT_EQ(rows[2][1], "");
  EXPECT_EQ(r->line(), 6) << "record c starts on line 6 (the quoted newline counts)";
}

TEST(ImportCsv, OpenSmileSemicolonsDetected) {
  auto r = CsvReader::FromString("name;frameTime;F0_mean\n'utt1';0.000000;1.5e+02\n", "smile.csv");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->separator(), ';');
  auto rows = AllRows(*r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "'utt1'");
}

// helper-63: the separator was detected on the first physical line, so a blank line before a ';' header made the
// file comma-separated ("no id column").
TEST(ImportCsv, TheSeparatorIsDetectedOnTheHeaderAfterBlankLines) {
  auto r = CsvReader::FromString("\n\nname;F0_mean\nutt1;1.5\n", "blank.csv");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->separator(), ';');
  EXPECT_EQ(r->header(), (std::vector<std::string>{"name", "F0_mean"}));
}

TEST(ImportCsv, RaggedRowNamesFileAndLine) {
  auto r = CsvReader::FromString("id,speaker,label\na,s1,anger\nb,s2\n", "meta.csv");
  ASSERT_TRUE(r.ok());
  std::vector<std::string> f;
  ASSERT_TRUE(r->Next(&f).ok());
  auto bad = r->Next(&f);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("meta.csv: line 3: 2 fields, but the header has 3"), std::string::npos)
      << bad.status().message();
}

TEST(ImportCsv, UnclosedQuoteNamesTheLineItOpened) {
  auto r = CsvReader::FromString("id,text\na,ok\nb,\"never closed\nc,x\n", "t.csv");
  ASSERT_TRUE(r.ok());
  std::vector<std::string> f;
  ASSERT_TRUE(r->Next(&f).ok());
  auto bad = r->Next(&f);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("t.csv: line 3: quoted field is never closed"), std::string::npos)
      << bad.status().message();
}

TEST(ImportNpy, VersionsDtypesAndFortranOrder) {
  // float64 [2, 3] in Fortran order: columns stored first.
  const double f8[] = {1, 4, 2, 5, 3, 6};
  std::string payload(reinterpret_cast<const char*>(f8), sizeof f8);
  auto a = ParseNpy(NpyBytes("<f8", {2, 3}, payload, 2, /*fortran=*/true), "x.npy");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->values, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  const int64_t i8[] = {-3, 7};
  auto b = ParseNpy(NpyBytes("<i8", {2}, std::string(reinterpret_cast<const char*>(i8), 16), 3), "y.npy");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->values, (std::vector<float>{-3, 7}));
  const int32_t i4[] = {5, -6, 7};
  auto c = ParseNpy(NpyBytes("<i4", {3, 1}, std::string(reinterpret_cast<const char*>(i4), 12)), "z.npy");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->values, (std::vector<float>{5, -6, 7}));
  const float nan_bits = std::nanf("");
  auto d = ParseNpy(NpyF32({1, 2}, {nan_bits, 1.25f}), "n.npy");
  ASSERT_TRUE(d.ok());
  uint32_t got, want;
  std::memcpy(&got, &d->values[0], 4);
  std::memcpy(&want, &nan_bits, 4);
  EXPECT_EQ(got, want) << "float32 is copied bit for bit";
}

TEST(ImportNpy, TruncatedDataIsCorruptionNamingTheFile) {
  std::string bytes = NpyF32({4, 3}, std::vector<float>(12, 1.f));
  bytes.resize(bytes.size() - 5);
  auto a = ParseNpy(bytes, "feat.npy");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kCorruption);
  EXPECT_NE(a.status().message().find("feat.npy: truncated .npy data"), std::string::npos) << a.status().message();
  auto h = ParseNpy(bytes.substr(0, 30), "feat.npy");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("truncated .npy header"), std::string::npos) << h.status().message();
}

TEST(ImportNpy, UnsupportedDtypesAreRefusedByName) {
  for (const char* descr : {"<i2", ">f4", "<c8", "|b1", "<f2"}) {
    auto a = ParseNpy(NpyBytes(descr, {2}, std::string(16, '\0')), "w.npy");
    ASSERT_FALSE(a.ok()) << descr;
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(a.status().message().find(std::string("dtype '") + descr + "' is not supported"), std::string::npos)
        << a.status().message();
  }
}

TEST(ImportNpz, StoredDeflatedAndZip64Members) {
  const std::string dir = TestDir();
  std::vector<float> m = {1, 2, 3, 4, 5, 6};
  for (int variant = 0; variant < 3; ++variant) {
    const std::string path = dir + "/a" + std::to_string(variant) + ".npz";
    WriteBytes(path, ZipBytes({{"audio.npy", NpyF32({2, 3}, m)}, {"utt1.npy", NpyF32({3}, {7, 8, 9})}},
                              /*deflate=*/variant >= 1, /*zip64=*/variant == 2));
    auto z = NpzArchive::Open(path);
    ASSERT_TRUE(z.ok()) << z.status().ToString();
    EXPECT_EQ(z->Keys(), (std::vector<std::string>{"audio", "utt1"}));
    auto a = z->Read("audio");
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ(a->values, m);
    auto u = z->Read("utt1");
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->values, (std::vector<float>{7, 8, 9}));
    auto missing = z->Read("nope");
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  }
}

TEST(ImportNpz, CorruptMemberNamesFileAndMember) {
  const std::string dir = TestDir();
  std::string zip = ZipBytes({{"x.npy", NpyF32({2, 2}, {1, 2, 3, 4})}}, /*deflate=*/false);
  const size_t p = zip.find("\x93NUMPY");
  zip[p + 130] ^= 0x40;  // a payload byte: CRC no longer matches
  WriteBytes(dir + "/c.npz", zip);
  auto z = NpzArchive::Open(dir + "/c.npz");
  ASSERT_TRUE(z.ok());
  auto a = z->Read("x");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find(dir + "/c.npz, member 'x.npy': CRC-32 mismatch"), std::string::npos)
      << a.status().message();
  WriteBytes(dir + "/t.npz", zip.substr(0, zip.size() / 2));
  auto t = NpzArchive::Open(dir + "/t.npz");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kCorruption);
  EXPECT_NE(t.status().message().find("t.npz"), std::string::npos);
}

// Found by fuzz_npy (fuzz/regressions/npy/): a central directory entry whose
// zip64 extra field declares a huge uncompressed size made Read allocate it
// (2^62 bytes threw std::length_error out of the reader).
TEST(ImportNpz, ImpossibleUncompressedSizeIsCorruptionNotAnAllocation) {
  const std::string dir = TestDir();
  std::string zip = ZipBytes({{"x.npy", NpyF32({2, 2}, {1, 2, 3, 4})}}, /*deflate=*/true);
  const size_t cd = zip.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(cd, std::string::npos);
  const size_t nlen = static_cast<unsigned char>(zip[cd + 28]);
  for (int k = 0; k < 4; ++k) zip[cd + 24 + k] = '\xff';  // uncompressed size: see the zip64 extra
  zip[cd + 30] = 12;                                      // extra field length
  std::string extra("\x01\x00\x08\x00", 4);
  const uint64_t huge = uint64_t{1} << 62;
  for (int k = 0; k < 8; ++k) extra += static_cast<char>((huge >> (8 * k)) & 0xff);
  zip.insert(cd + 46 + nlen, extra);
  const size_t eocd = zip.find(std::string("PK\x05\x06", 4));
  ASSERT_NE(eocd, std::string::npos);
  zip[eocd + 12] = static_cast<char>(static_cast<unsigned char>(zip[eocd + 12]) + 12);  // central directory size
  WriteBytes(dir + "/huge.npz", zip);
  auto z = NpzArchive::Open(dir + "/huge.npz");
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  auto a = z->Read("x");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kCorruption);
  EXPECT_NE(a.status().message().find(dir + "/huge.npz, member 'x.npy': declares 4611686018427387904 bytes"),
            std::string::npos)
      << a.status().message();
}

}  // namespace
}  // namespace emosweep::data
