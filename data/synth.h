// data/synth.h: synthetic multi-corpus data with a known domain-adaptation answer.
//
// The quick start and the tests need corpora without external data, and DA
// methods need a shift whose cure is known. Generative model, per modality m:
//   class mean   mu[c]      shared by every corpus (the task is the same),
//   speaker      o[s]       per-speaker offset (why speaker-independent splits matter),
//   utterance    z = mu[c] + o[s] + noise * eps,
//   corpus k     x = R_k (scale_k * z) + offset_k   (the domain shift),
// where offset_k = shift * (a random direction of norm 2 * separation
// + 1.5 * (mu[i] - mu[j]) for a random class pair i != j, which pushes class j
// past class i), scale_k = exp(0.25 * shift * N(0,1)) per dimension, and R_k is
// a product of Givens rotations on disjoint coordinate pairs with angles of
// size `rotation`. With rotation = 0 the shift is a
// per-dimension affine map, so per-corpus standardisation recovers in-domain
// accuracy up to class-imbalance effects; a rotation needs a real alignment
// (CORAL, adversarial). Class proportions per corpus follow
// p[c] ~ exp(-imbalance * rank_k(c)) with a corpus-specific rank, so corpora
// also differ in label shift. Everything is drawn from PortableRng streams
// derived from `seed`, so the output is identical for a seed on every machine
// (up to the last ulp of libm's log/sin/cos in the Gaussian draws).
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/corpus.h"

namespace emosweep::data {

struct SynthModality {
  std::string name;          // feature set name, e.g. "synth_audio"
  std::string modality;      // audio | text | video
  int64_t dim = 32;
  double separation = 1.0;   // multiplies SynthSpec::separation for this modality
};

struct SynthSpec {
  int num_corpora = 3;
  int speakers_per_corpus = 8;
  int utterances_per_speaker = 40;
  std::vector<std::string> classes = {"anger", "happiness", "neutral", "sadness"};
  std::vector<SynthModality> modalities = {{"synth_audio", "audio", 64, 1.0}, {"synth_text", "text", 32, 0.8}};
  double shift = 1.0;        // 0 = all corpora share one distribution
  double rotation = 0.0;     // Givens angle (radians) of the per-corpus rotation
  double imbalance = 0.0;    // 0 = balanced classes
  double separation = 4.0;   // distance between class means (within-class noise std is `noise`)
  double noise = 1.0;        // within-class noise std per dimension
  double speaker_std = 0.5;  // per-speaker offset std per dimension
  bool frames = false;       // also write frame-level sequences for audio feature sets
  int64_t frame_dim = 16;    // frame features (first frame_dim dims of the utterance vector + jitter)
  int min_frames = 8, max_frames = 24;
  std::string name_prefix = "synth";
  uint64_t seed = 0;

  Status Validate() const;
};

// Corpora named "<prefix>_a", "<prefix>_b", ...; each carries the spec and its
// own shift parameters in metadata["synthetic"].
Result<std::vector<Corpus>> MakeSynthCorpora(const SynthSpec& spec);

}  // namespace emosweep::data
