#include "data/audio/decode.h"

#include <sndfile.h>
#include <soxr.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>

namespace emosweep::data::audio {
namespace {

uint32_t ReadLe32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// libsndfile silently shortens a RIFF/WAVE file whose data chunk is cut off;
// a truncated recording must be an error, so walk the chunks ourselves.
Status CheckRiffComplete(const std::string& path, int64_t file_size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  unsigned char head[12];
  Status status;
  if (std::fread(head, 1, 12, f) == 12 && std::memcmp(head, "RIFF", 4) == 0 && std::memcmp(head + 8, "WAVE", 4) == 0) {
    int64_t pos = 12;
    unsigned char chunk[8];
    while (pos + 8 <= file_size) {
      if (std::fseek(f, long(pos), SEEK_SET) != 0 || std::fread(chunk, 1, 8, f) != 8) break;
      const uint32_t size = ReadLe32(chunk + 4);
      if (std::memcmp(chunk, "data", 4) == 0) {
        const int64_t available = file_size - pos - 8;
        // 0 and 0xFFFFFFFF mark streamed files whose size was never patched.
        if (size != 0 && size != 0xFFFFFFFFu && int64_t(size) > available) {
          status = Status::Corruption(path + ": truncated WAV: data chunk declares " + std::to_string(size) +
                                      " bytes but only " + std::to_string(available) + " are present");
        }
        break;
      }
      pos += 8 + int64_t(size) + (size & 1);
    }
  }
  std::fclose(f);
  return status;
}

}  // namespace

Result<Normalisation> ParseNormalisation(const std::string& text) {
  if (text == "none") return Normalisation::kNone;
  if (text == "peak") return Normalisation::kPeak;
  if (text == "rms") return Normalisation::kRms;
  return Status::InvalidArgument("unknown normalisation '" + text + "' (expected none, peak or rms)");
}

const char* NormalisationName(Normalisation n) {
  switch (n) {
    case Normalisation::kNone: return "none";
    case Normalisation::kPeak: return "peak";
    case Normalisation::kRms: return "rms";
  }
  return "none";
}

void Normalise(const DecodeOptions& options, std::vector<float>* samples) {
  if (options.normalisation == Normalisation::kNone || samples->empty()) return;
  double gain = 1.0;
  if (options.normalisation == Normalisation::kPeak) {
    float peak = 0.f;
    for (float v : *samples) peak = std::max(peak, std::fabs(v));
    if (peak <= 0.f) return;
    gain = options.target_peak / peak;
  } else {
    double sq = 0.0;
    for (float v : *samples) sq += double(v) * v;
    const double rms = std::sqrt(sq / double(samples->size()));
    if (rms <= 0.0) return;
    gain = std::pow(10.0, options.target_rms_dbfs / 20.0) / rms;
  }
  const float g = float(gain);
  for (float& v : *samples) v *= g;
}

Result<std::vector<float>> Resample(const std::vector<float>& in, int in_rate, int out_rate) {
  if (in_rate <= 0 || out_rate <= 0) {
    return Status::InvalidArgument("resample: bad rates " + std::to_string(in_rate) + " -> " + std::to_string(out_rate));
  }
  if (in_rate == out_rate) return in;
  const size_t out_len = size_t(std::llround(double(in.size()) * out_rate / in_rate));
  std::vector<float> out(out_len);
  if (in.empty() || out_len == 0) return out;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  size_t done = 0;
  soxr_error_t err = soxr_oneshot(in_rate, out_rate, 1, in.data(), in.size(), nullptr, out.data(), out_len, &done,
                                  &io, &quality, nullptr);
  if (err) return Status::Internal(std::string("libsoxr: ") + err);
  out.resize(done);
  return out;
}

Result<Waveform> DecodeAudio(const std::string& path, const DecodeOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::NotFound(path + ": no such audio file");
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + ": not a regular file");
  if (st.st_size == 0) return Status::Corruption(path + ": empty file (0 bytes), not audio");
  ES_RETURN_IF_ERROR(CheckRiffComplete(path, int64_t(st.st_size)));

  SF_INFO info{};
  SNDFILE* sf = sf_open(path.c_str(), SFM_READ, &info);
  if (!sf) {
    return Status::Corruption(path + ": cannot decode audio (unsupported format or corrupt header): " +
                              sf_strerror(nullptr));
  }
  struct Closer {
    SNDFILE* f;
    ~Closer() { sf_close(f); }
  } closer{sf};
  if (info.channels <= 0 || info.samplerate <= 0) return Status::Corruption(path + ": invalid channel count or sample rate");
  // Real recordings are 8-384 kHz; a header claiming, e.g., 9 Hz would make
  // resampling to 16 kHz produce 1778 samples per input sample (slowly).
  if (info.samplerate < kMinSampleRate || info.samplerate > kMaxSampleRate)
    return Status::Corruption(path + ": sample rate " + std::to_string(info.samplerate) + " Hz is outside " +
                              std::to_string(kMinSampleRate) + ".." + std::to_string(kMaxSampleRate) +
                              " Hz (corrupt header?)");
  if (info.frames <= 0) return Status::Corruption(path + ": contains no audio samples");

  const int channels = info.channels;
  std::vector<float> interleaved(size_t(info.frames) * channels);
  const sf_count_t got = sf_readf_float(sf, interleaved.data(), info.frames);
  if (got <= 0) return Status::Corruption(path + ": no audio samples could be read: " + sf_strerror(sf));
  if (got < info.frames) {
    return Status::Corruption(path + ": truncated audio: header says " + std::to_string(info.frames) +
                              " frames, read " + std::to_string(got));
  }
  std::vector<float> mono;
  if (channels == 1) {
    mono = std::move(interleaved);
  } else {
    mono.resize(size_t(got));
    const float scale = 1.0f / float(channels);
    for (sf_count_t i = 0; i < got; ++i) {
      float s = 0.f;
      for (int c = 0; c < channels; ++c) s += interleaved[size_t(i) * channels + c];
      mono[size_t(i)] = s * scale;
    }
  }
  for (float v : mono) {
    if (!std::isfinite(v)) return Status::Corruption(path + ": audio contains NaN or infinite samples");
  }

  Waveform wave;
  wave.source_rate = info.samplerate;
  wave.source_channels = channels;
  wave.sample_rate = options.sample_rate;
  if (info.samplerate == options.sample_rate) {
    wave.samples = std::move(mono);
  } else {
    auto resampled = Resample(mono, info.samplerate, options.sample_rate);
    if (!resampled.ok()) return resampled.status().WithContext(path);
    wave.samples = std::move(resampled).value();
    if (wave.samples.empty())
      return Status::Corruption(path + ": too short: " + std::to_string(mono.size()) + " samples at " +
                                std::to_string(info.samplerate) + " Hz are less than one sample at " +
                                std::to_string(options.sample_rate) + " Hz");
  }
  Normalise(options, &wave.samples);
  return wave;
}

}  // namespace emosweep::data::audio
