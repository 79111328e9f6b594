// fuzz/fuzz_wav.cc: audio decoding and resampling (data/audio/decode.cc).
//
// Input: an audio file (WAV, or anything libsndfile recognises). The bytes
// go through DecodeAudio (libsndfile -> mono -> libsoxr to 16 kHz) with no
// normalisation and with RMS normalisation, then the decoded samples are
// resampled again to a rate taken from the input's size.
// Checks: no crash, leak, hang or out-of-bounds access; a decoded waveform is
// non-empty and at the requested rate.
#include <cstdint>
#include <cstdlib>

#include "data/audio/decode.h"
#include "fuzz/fuzz_util.h"

using namespace emosweep;
namespace audio = emosweep::data::audio;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::WriteScratch("fuzz.wav", data, size);
  audio::DecodeOptions plain;
  auto w = audio::DecodeAudio(path, plain);
  if (!w.ok()) return 0;
  if (w.value().samples.empty() || w.value().sample_rate != plain.sample_rate) std::abort();
  audio::DecodeOptions rms;
  rms.normalisation = audio::Normalisation::kRms;
  (void)audio::DecodeAudio(path, rms);
  static const int kRates[] = {8000, 11025, 16000, 22050, 44100, 48000};
  const int out_rate = kRates[size % 6];
  (void)audio::Resample(w.value().samples, w.value().sample_rate, out_rate);
  return 0;
}
