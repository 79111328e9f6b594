#include "data/audio/decode.h"

#include <sndfile.h>
#include <soxr.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace emosweep::data::audio {
namespace {

// Little- or big-endian unsigned integer of `n` bytes.
uint64_t ReadUint(const unsigned char* p, int n, bool big_endian) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(p[big_endian ? n - 1 - i : i]) << (8 * i);
  return v;
}

// How a container lays out its chunks (RIFF and its relatives, AIFF, Sony Wave64).
struct ChunkLayout {
  const char* name;          // for messages: "WAV", "RIFX WAV", "RF64 WAV", "AIFF", "W64"
  int64_t first;             // offset of the first chunk
  int id_bytes, size_bytes;  // chunk id and size field widths
  bool big_endian;
  bool size_includes_header;  // W64: a chunk's size counts its own 24-byte header
  int align;                 // chunks start on multiples of this
  std::string data_id;       // the id of the chunk holding the samples
};

const unsigned char kW64Riff[16] = {0x72, 0x69, 0x66, 0x66, 0x2E, 0x91, 0xCF, 0x11,
                                    0xA5, 0xD6, 0x28, 0xDB, 0x04, 0xC1, 0x00, 0x00};
const unsigned char kW64Data[16] = {0x64, 0x61, 0x74, 0x61, 0xF3, 0xAC, 0xD3, 0x11,
                                    0x8C, 0xD1, 0x00, 0xC0, 0x4F, 0x8E, 0xDB, 0x8A};

// libsndfile silently shortens a file whose sample chunk is cut off (RIFF/RIFX/RF64 WAV, AIFF/AIFC, W64: it
// reports the frames actually present, so a short read cannot show it); a truncated recording must be an error,
// so walk the chunks ourselves and compare the sample chunk's declared size with the bytes present. Other
// containers (FLAC, OGG, CAF, ...) are left to libsndfile, which reports their truncation itself.
Status CheckContainerComplete(const std::string& path, int64_t file_size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  struct Closer {
    std::FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{f};
  unsigned char head[40] = {};
  const size_t have = std::fread(head, 1, sizeof head, f);
  ChunkLayout layout{};
  if (have >= 12 && std::memcmp(head + 8, "WAVE", 4) == 0 &&
      (std::memcmp(head, "RIFF", 4) == 0 || std::memcmp(head, "RIFX", 4) == 0 || std::memcmp(head, "RF64", 4) == 0)) {
    const bool rifx = std::memcmp(head, "RIFX", 4) == 0;
    layout = {rifx ? "RIFX WAV" : std::memcmp(head, "RF64", 4) == 0 ? "RF64 WAV" : "WAV", 12, 4, 4, rifx, false, 2,
              "data"};
  } else if (have >= 12 && std::memcmp(head, "FORM", 4) == 0 &&
             (std::memcmp(head + 8, "AIFF", 4) == 0 || std::memcmp(head + 8, "AIFC", 4) == 0)) {
    layout = {"AIFF", 12, 4, 4, true, false, 2, "SSND"};
  } else if (have >= 40 && std::memcmp(head, kW64Riff, 16) == 0) {
    layout = {"W64", 40, 16, 8, false, true, 8, std::string(reinterpret_cast<const char*>(kW64Data), 16)};
  } else {
    return Status::Ok();
  }
  const int header = layout.id_bytes + layout.size_bytes;
  uint64_t rf64_data = 0;  // RF64: the data chunk's real size, from the ds64 chunk
  bool rf64_known = false;
  std::vector<unsigned char> chunk(static_cast<size_t>(header));
  for (int64_t pos = layout.first; pos + header <= file_size;) {
    if (std::fseek(f, long(pos), SEEK_SET) != 0 || std::fread(chunk.data(), 1, chunk.size(), f) != chunk.size()) break;
    const std::string id(reinterpret_cast<const char*>(chunk.data()), size_t(layout.id_bytes));
    uint64_t size = ReadUint(chunk.data() + layout.id_bytes, layout.size_bytes, layout.big_endian);
    if (layout.size_includes_header) size = size >= uint64_t(header) ? size - header : 0;
    if (id == "ds64" && size >= 16) {  // RF64: riff size (8), data size (8), sample count (8)
      unsigned char ds[16];
      if (std::fread(ds, 1, 16, f) == 16) rf64_data = ReadUint(ds + 8, 8, false), rf64_known = true;
    }
    if (id == layout.data_id) {
      const int64_t available = file_size - pos - header;
      // 0 and 0xFFFFFFFF in a 32-bit size mark streamed files whose size was never patched (and RF64's data
      // size is 0xFFFFFFFF, the real one in ds64).
      uint64_t declared = size;
      bool unknown = layout.size_bytes == 4 && (size == 0 || size == 0xFFFFFFFFu);
      if (std::string(layout.name) == "RF64 WAV" && size == 0xFFFFFFFFu && rf64_known)
        declared = rf64_data, unknown = false;
      // An empty data chunk followed by a real chunk (e.g. LIST) is a file with no audio, not a stream.
      auto next_is_chunk = [&] {
        unsigned char nxt[8];
        if (available < 8 || std::fseek(f, long(pos + header), SEEK_SET) != 0 || std::fread(nxt, 1, 8, f) != 8)
          return false;
        for (int k = 0; k < 4; ++k)
          if (nxt[k] < 0x20 || nxt[k] > 0x7e) return false;
        return ReadUint(nxt + 4, 4, false) + 8 <= uint64_t(available);
      };
      if (size == 0 && available > 0 && std::strcmp(layout.name, "WAV") == 0 && !next_is_chunk())
        // libsndfile reads such a file as empty.
        return Status::Corruption(path + ": its " + layout.name + " sample chunk declares 0 bytes but " +
                                  std::to_string(available) + " follow: a recording whose header was never "
                                  "finalised; rewrite it with a tool that reads such files (e.g. ffmpeg -i IN OUT.wav)");
      if (!unknown && declared > uint64_t(std::max<int64_t>(available, 0)))
        return Status::Corruption(path + ": truncated " + layout.name + ": its sample chunk declares " +
                                  std::to_string(declared) + " bytes but only " + std::to_string(available) +
                                  " are present");
      break;
    }
    if (size > uint64_t(file_size)) break;  // a chunk past the end (or a wrapping 64-bit size): libsndfile judges
    uint64_t next = uint64_t(header) + size;
    next = (next + uint64_t(layout.align) - 1) / uint64_t(layout.align) * uint64_t(layout.align);
    if (next > uint64_t(file_size)) break;  // a chunk before the samples runs past the end: libsndfile judges
    pos += int64_t(next);
  }
  return Status::Ok();
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
  ES_RETURN_IF_ERROR(CheckContainerComplete(path, int64_t(st.st_size)));

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
