// fuzz/fuzz_job_toml.cc: JOB.toml, the single-job config of `emosweep train`
// (worker/job_config.cc).
//
// Input: a JOB.toml document, written as job.toml into a scratch directory
// that also holds a small synthetic store (store.h5: feature sets synth_audio
// and synth_text, classes anger/happiness/neutral/sadness) and a split file
// over it (store.splits.json), so configs that name them reach the data
// checks. This harness links libtorch: job_config.cc reads stores through
// worker/dataset.h's StoreCache, which lives with the torch data loader.
// Checks: no crash, leak, hang or out-of-bounds access; a bad config is an
// error, never an exception escaping JobSpecFromTomlFile.
#include <cstdint>
#include <cstdlib>

#include "data/feature_store.h"
#include "data/splits.h"
#include "data/synth.h"
#include "fuzz/fuzz_util.h"
#include "worker/job_config.h"

using namespace emosweep;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  data::SynthSpec spec;
  spec.num_corpora = 1;
  spec.speakers_per_corpus = 4;
  spec.utterances_per_speaker = 8;
  auto corpora = data::MakeSynthCorpora(spec);
  if (!corpora.ok()) std::abort();
  const std::string store = fuzz::ScratchDir() + "/store.h5";
  if (!data::WriteFeatureStore(store, corpora.value()[0]).ok()) std::abort();
  auto stored = data::ReadFeatureStore(store);
  if (!stored.ok()) std::abort();
  data::SplitSpec split;
  split.k = 2;
  auto splits = data::MakeSplits(stored.value(), split);
  if (!splits.ok() || !data::WriteSplitFile(fuzz::ScratchDir() + "/store.splits.json", splits.value()).ok())
    std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)worker::JobSpecFromTomlFile(fuzz::WriteScratch("job.toml", data, size));
  return 0;
}
