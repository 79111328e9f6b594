// fuzz/make_seeds.cc: writes generated seed inputs for the harnesses.
//
//   fuzz_make_seeds OUTDIR
//
// Small valid files made by emosweep's own writers and the importer tests'
// byte-exact writers (tests/data/import_test_util.h): seed-format pickles,
// .npy/.npz arrays, feature stores (plain, gzip, with frame sequences) and
// feature CSVs, under OUTDIR/<target>/. scripts/fuzz.sh and the fuzz ctests
// add the real files from ../shared and the committed seeds in fuzz/seeds/.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/feature_store.h"
#include "data/synth.h"
#include "tests/data/import_test_util.h"

using namespace emosweep;
namespace fs = std::filesystem;
namespace t = emosweep::data::testing;

namespace {

bool Put(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) std::fprintf(stderr, "fuzz_make_seeds: cannot write %s\n", path.c_str());
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUTDIR\n");
    return 2;
  }
  const fs::path out(argv[1]);
  bool ok = true;

  // Pickles in the seed repositories' layout.
  std::vector<t::SeedRecord> recs = {{{0.5f, -1.f, 2.f}, {1.f, 2.f}, 0, "Ses01F_impro01_F000"},
                                     {{0.f, 0.f, 1.f}, {3.f, 4.f}, 3, "Ses01F_impro01_M001"}};
  ok &= Put(out / "pickle" / "two_records.pkl", t::SeedPickleBytes(recs));
  ok &= Put(out / "pickle" / "audio_only.pkl", t::SeedPickleBytes({{{}, {1.f, 2.f, 3.f, 4.f}, 1, ""}}));
  ok &= Put(out / "pickle" / "empty.pkl", t::SeedPickleBytes({}));

  // .npy in each supported dtype and layout; .npz stored, deflated and zip64.
  const std::vector<float> v6 = {1, 2, 3, 4, 5, 6};
  const std::vector<double> d6 = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> i6 = {1, 2, 3, 4, 5, 6};
  const std::vector<int32_t> j6 = {1, 2, 3, 4, 5, 6};
  const std::string f8(reinterpret_cast<const char*>(d6.data()), 48), i8(reinterpret_cast<const char*>(i6.data()), 48),
      i4(reinterpret_cast<const char*>(j6.data()), 24);
  ok &= Put(out / "npy" / "f4.npy", t::NpyF32({2, 3}, v6));
  ok &= Put(out / "npy" / "f8_fortran.npy", t::NpyBytes("<f8", {2, 3}, f8, 1, true));
  ok &= Put(out / "npy" / "i8_v2.npy", t::NpyBytes("<i8", {6}, i8, 2));
  ok &= Put(out / "npy" / "i4_3d.npy", t::NpyBytes("<i4", {1, 2, 3}, i4));
  ok &= Put(out / "npy" / "stored.npz", t::ZipBytes({{"a.npy", t::NpyF32({2, 3}, v6)}, {"b.npy", t::NpyF32({3}, {1, 2, 3})}}, false));
  ok &= Put(out / "npy" / "deflate.npz", t::ZipBytes({{"utt1.npy", t::NpyF32({3}, {1, 2, 3})}}, true));
  ok &= Put(out / "npy" / "zip64.npz", t::ZipBytes({{"x.npy", t::NpyBytes("<f8", {2, 3}, f8)}}, true, true));

  // Feature CSVs as openSMILE and the table importer's docs write them.
  ok &= Put(out / "csv" / "opensmile.csv",
            "name;frameTime;F0_mean;loudness_sma3;class\n'u0';0.0;1.5;-2e-3;?\n'u1';0.0;2.5;3.25;?\n");
  ok &= Put(out / "csv" / "quoted.csv",
            "id,speaker,label,transcript\nu0,s1,anger,\"Hello, \"\"world\"\"\"\r\nu1,s2,neutral,\"two\nlines\"\r\n");
  ok &= Put(out / "csv" / "features_tab.csv", "id\tf0\tf1\nu0\t1\t2\nu1\t3\t4\nu2\t5\t6\n");

  // Feature stores: small synthetic corpora through the real writer.
  data::SynthSpec spec;
  spec.num_corpora = 1;
  spec.speakers_per_corpus = 2;
  spec.utterances_per_speaker = 3;
  spec.modalities = {{"a", "audio", 4, 1.0}, {"t", "text", 3, 0.8}};
  auto plain = data::MakeSynthCorpora(spec);
  spec.frames = true;
  spec.frame_dim = 2;
  spec.min_frames = 2;
  spec.max_frames = 4;
  auto framed = data::MakeSynthCorpora(spec);
  if (!plain.ok() || !framed.ok()) {
    std::fprintf(stderr, "fuzz_make_seeds: synth: %s\n", (plain.ok() ? framed.status() : plain.status()).ToString().c_str());
    return 1;
  }
  fs::create_directories(out / "store");
  data::StoreWriteOptions gz;
  gz.gzip_level = 1;
  gz.chunk_rows = 2;
  for (const auto& [name, corpus, opt] :
       {std::make_tuple("plain.h5", plain.value()[0], data::StoreWriteOptions{}),
        std::make_tuple("gzip_frames.h5", framed.value()[0], gz)}) {
    Status s = data::WriteFeatureStore((out / "store" / name).string(), corpus, opt);
    if (!s.ok()) {
      std::fprintf(stderr, "fuzz_make_seeds: %s\n", s.ToString().c_str());
      ok = false;
    }
  }
  return ok ? 0 : 1;
}
