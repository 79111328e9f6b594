#include "data/audio/frontend.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>

#include "data/audio/fft.h"
#include "data/audio/mel.h"
#include "data/audio/prosody.h"
#include "data/audio/window_stats.h"

namespace emosweep::data::audio {
namespace {

constexpr int kNfft = 400;      // 25 ms at 16 kHz
constexpr int kHop = 160;       // 10 ms
constexpr int kMels = 64;
constexpr int kMfcc = 20;
constexpr float kLogOffset = 1e-6f;
constexpr int64_t kWindowFrames = 400;  // 4 s of 10 ms frames
constexpr int64_t kStepFrames = 200;    // 2 s

enum class Kind { kLogmelStats, kLogmelFrames, kMfccStats, kProsody, kWindowStats };

Kind KindOf(const std::string& name) {
  if (name == "logmel64_stats") return Kind::kLogmelStats;
  if (name == "logmel64_frames") return Kind::kLogmelFrames;
  if (name == "mfcc_stats") return Kind::kMfccStats;
  if (name == "prosody") return Kind::kProsody;
  return Kind::kWindowStats;
}

std::vector<std::string> Columns(const std::string& prefix, int n) {
  std::vector<std::string> out;
  char buf[64];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%s_%02d", prefix.c_str(), i);
    out.emplace_back(buf);
  }
  return out;
}

void Append(std::vector<std::string>* a, const std::vector<std::string>& b) { a->insert(a->end(), b.begin(), b.end()); }

// Index into x[0..n) of position j under reflection at both ends
// (torch "reflect" padding, extended periodically for very short inputs).
int64_t Reflect(int64_t j, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  j %= period;
  if (j < 0) j += period;
  return j < n ? j : period - j;
}

}  // namespace

const std::vector<std::string>& KnownAudioFeatureSets() {
  static const std::vector<std::string> kSets = {"logmel64_stats", "logmel64_frames", "mfcc_stats", "prosody",
                                                 "window_stats"};
  return kSets;
}

Result<std::vector<std::string>> ParseFeatureSetList(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      const auto& known = KnownAudioFeatureSets();
      if (std::find(known.begin(), known.end(), item) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        return Status::InvalidArgument("unknown audio feature set '" + item + "' (known: " + list + ")");
      }
      if (std::find(out.begin(), out.end(), item) != out.end()) {
        return Status::InvalidArgument("audio feature set '" + item + "' listed twice");
      }
      out.push_back(item);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (out.empty()) return Status::InvalidArgument("empty audio feature set list");
  return out;
}

struct AudioFrontEnd::Impl {
  RealFft fft;
  std::vector<float> window;
  MelFilterbank mel{kNfft / 2 + 1, kMels, double(kSampleRate), 0.0, kSampleRate / 2.0};
  DctMatrix dct{kMels, kMfcc};
  ProsodySpectral spectral{kNfft / 2 + 1, double(kSampleRate)};
  PitchOptions pitch;
  std::vector<Kind> kinds;
  bool need_prosody = false, need_mfcc = false;
};

AudioFrontEnd::AudioFrontEnd(AudioFeatureOptions options) : options_(std::move(options)) {}
AudioFrontEnd::~AudioFrontEnd() = default;

Result<std::shared_ptr<const AudioFrontEnd>> AudioFrontEnd::Create(const AudioFeatureOptions& options) {
  if (options.decode.sample_rate != kSampleRate) {
    return Status::InvalidArgument("audio front end: features are defined at 16000 Hz, got sample_rate " +
                                   std::to_string(options.decode.sample_rate));
  }
  if (options.feature_sets.empty()) return Status::InvalidArgument("audio front end: no feature sets requested");
  std::string joined;
  for (const auto& s : options.feature_sets) joined += (joined.empty() ? "" : ",") + s;
  ES_ASSIGN_OR_RETURN(std::vector<std::string> sets, ParseFeatureSetList(joined));
  if (options.num_threads < 0) return Status::InvalidArgument("audio front end: num_threads must be >= 0");

  std::shared_ptr<AudioFrontEnd> fe(new AudioFrontEnd(options));
  fe->options_.feature_sets = sets;
  auto impl = std::make_unique<Impl>();
  ES_ASSIGN_OR_RETURN(impl->fft, RealFft::Create(kNfft));
  impl->window.resize(kNfft);
  for (int i = 0; i < kNfft; ++i) impl->window[i] = float(0.5 - 0.5 * std::cos(2.0 * M_PI * i / kNfft));
  impl->pitch.sample_rate = kSampleRate;
  impl->pitch.hop = kHop;
  for (const auto& name : sets) {
    const Kind kind = KindOf(name);
    impl->kinds.push_back(kind);
    FeatureSetSpec spec;
    spec.name = name;
    switch (kind) {
      case Kind::kLogmelStats:
        spec.dim = 4 * kMels;
        spec.frame_dim = options.store_frames ? kMels : 0;
        for (const char* p : {"logmel_mean", "logmel_std", "logmel_delta_mean", "logmel_delta_std"}) {
          Append(&spec.columns, Columns(p, kMels));
        }
        break;
      case Kind::kLogmelFrames:
        spec.dim = kMels;
        spec.frame_dim = kMels;
        spec.columns = Columns("logmel_mean", kMels);
        break;
      case Kind::kMfccStats:
        impl->need_mfcc = true;
        spec.dim = 4 * kMfcc;
        spec.frame_dim = options.store_frames ? kMfcc : 0;
        for (const char* p : {"mfcc_mean", "mfcc_std", "mfcc_delta_mean", "mfcc_delta_std"}) {
          Append(&spec.columns, Columns(p, kMfcc));
        }
        break;
      case Kind::kProsody:
        impl->need_prosody = true;
        spec.columns = ProsodyNames();
        spec.dim = int64_t(spec.columns.size());
        break;
      case Kind::kWindowStats:
        spec.dim = 2 * kMels;
        Append(&spec.columns, Columns("win_logmel_mean", kMels));
        Append(&spec.columns, Columns("win_logmel_std", kMels));
        break;
    }
    fe->specs_.push_back(std::move(spec));
  }
  fe->impl_ = std::move(impl);
  return std::shared_ptr<const AudioFrontEnd>(std::move(fe));
}

nlohmann::json AudioFrontEnd::Provenance(const std::string& set_name) const {
  nlohmann::json p = {
      {"extractor", "emosweep.audio"}, {"extractor_version", 1}, {"feature_set", set_name},
      {"sample_rate", kSampleRate}, {"resampler", "libsoxr SOXR_HQ"},
      {"normalisation", NormalisationName(options_.decode.normalisation)},
      {"n_fft", kNfft}, {"win_length", kNfft}, {"hop_length", kHop}, {"window", "hann_periodic"},
      {"center", true}, {"pad_mode", "reflect"}, {"power", 2.0}, {"mel_scale", "htk"}, {"mel_norm", "none"},
      {"n_mels", kMels}, {"f_min", 0.0}, {"f_max", kSampleRate / 2.0}, {"log_offset", kLogOffset},
      {"delta_win_length", 5}, {"std_ddof", 0}, {"docs", "docs/features.md"}};
  if (options_.decode.normalisation == Normalisation::kPeak) p["target_peak"] = options_.decode.target_peak;
  if (options_.decode.normalisation == Normalisation::kRms) p["target_rms_dbfs"] = options_.decode.target_rms_dbfs;
  const Kind kind = KindOf(set_name);
  if (kind == Kind::kMfccStats) {
    p["n_mfcc"] = kMfcc;
    p["dct"] = "type-II orthonormal of natural-log mel";
  } else if (kind == Kind::kWindowStats) {
    p["window_frames"] = kWindowFrames;
    p["step_frames"] = kStepFrames;
    p["window_padding"] = "tile";
  } else if (kind == Kind::kProsody) {
    const PitchOptions& po = impl_->pitch;
    p["pitch"] = {{"method", "yin"}, {"f0_min", po.f0_min}, {"f0_max", po.f0_max}, {"window", po.window},
                  {"threshold", po.threshold}, {"min_rms", po.min_rms}, {"rel_gate_db", po.rel_gate_db},
                  {"dc", "utterance mean removed"}};  // absent (kept) before session 20: such rows are re-extracted
  }
  for (const auto& spec : specs_) {
    if (spec.name == set_name) p["dim"] = spec.dim;
  }
  return p;
}

Result<UtteranceFeatures> AudioFrontEnd::ExtractFile(const std::string& path) const {
  ES_ASSIGN_OR_RETURN(Waveform wave, DecodeAudio(path, options_.decode));
  return ExtractWaveform(wave, path);
}

Result<UtteranceFeatures> AudioFrontEnd::ExtractWaveform(const Waveform& wave, const std::string& where) const {
  if (wave.sample_rate != kSampleRate) {
    return Status::InvalidArgument(where + ": waveform is at " + std::to_string(wave.sample_rate) +
                                   " Hz, the front end needs " + std::to_string(kSampleRate));
  }
  const int64_t n = int64_t(wave.samples.size());
  if (n == 0) return Status::Corruption(where + ": no audio samples");
  const Impl& im = *impl_;
  const float* x = wave.samples.data();
  const int bins = im.fft.num_bins();

  // center=True framing: reflect-pad n_fft/2 on both sides.
  const int64_t half = kNfft / 2;
  std::vector<float> padded(size_t(n + 2 * half));
  for (int64_t i = 0; i < int64_t(padded.size()); ++i) {
    const int64_t j = i - half;
    padded[size_t(i)] = (j >= 0 && j < n) ? x[j] : x[Reflect(j, n)];
  }
  const int64_t frames = 1 + n / kHop;
  std::vector<float> logmel(size_t(frames * kMels));
  std::vector<float> frame(kNfft), power(static_cast<size_t>(bins)), melp(kMels);
  std::vector<Cpx> work(im.fft.workspace_size());
  std::optional<ProsodyAnalyzer> prosody;
  if (im.need_prosody) prosody.emplace(&im.spectral, bins, frames);
  for (int64_t t = 0; t < frames; ++t) {
    const float* src = padded.data() + t * kHop;
    for (int i = 0; i < kNfft; ++i) frame[i] = src[i] * im.window[i];
    im.fft.Power(frame.data(), power.data(), work.data());
    im.mel.Apply(power.data(), melp.data());
    float* row = logmel.data() + t * kMels;
    for (int b = 0; b < kMels; ++b) row[b] = std::log(melp[b] + kLogOffset);
    if (prosody) prosody->AddFrame(power.data(), melp.data(), kMels);
  }

  std::vector<float> deltas, mfcc;
  UtteranceFeatures out;
  out.duration_s = wave.duration_s();
  for (size_t s = 0; s < im.kinds.size(); ++s) {
    std::vector<float> values, frames_out;
    values.reserve(size_t(specs_[s].dim));
    switch (im.kinds[s]) {
      case Kind::kLogmelStats:
        if (deltas.empty()) {
          deltas.resize(logmel.size());
          ComputeDeltas(logmel.data(), frames, kMels, deltas.data());
        }
        AppendMeanStd(logmel.data(), frames, kMels, &values);
        AppendMeanStd(deltas.data(), frames, kMels, &values);
        if (specs_[s].frame_dim) frames_out = logmel;
        break;
      case Kind::kLogmelFrames: {
        std::vector<float> ms;
        AppendMeanStd(logmel.data(), frames, kMels, &ms);
        values.assign(ms.begin(), ms.begin() + kMels);
        frames_out = logmel;
        break;
      }
      case Kind::kMfccStats: {
        mfcc.resize(size_t(frames * kMfcc));
        for (int64_t t = 0; t < frames; ++t) im.dct.Apply(logmel.data() + t * kMels, mfcc.data() + t * kMfcc);
        std::vector<float> md(mfcc.size());
        ComputeDeltas(mfcc.data(), frames, kMfcc, md.data());
        AppendMeanStd(mfcc.data(), frames, kMfcc, &values);
        AppendMeanStd(md.data(), frames, kMfcc, &values);
        if (specs_[s].frame_dim) frames_out = mfcc;
        break;
      }
      case Kind::kProsody:
        prosody->Finish(x, n, out.duration_s, im.pitch, &values);
        break;
      case Kind::kWindowStats:
        AppendWindowStats(logmel.data(), frames, kMels, kWindowFrames, kStepFrames, &values);
        break;
    }
    for (float v : values) {
      if (!std::isfinite(v)) {
        // Finite samples far beyond full scale (a float file that is not audio, or never normalised) overflow
        // float powers: bad input, not a fault of the front end.
        float peak = 0.f;
        for (int64_t i = 0; i < n; ++i) peak = std::max(peak, std::fabs(x[i]));
        if (peak > 1e6f) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%.3g", double(peak));
          return Status::Corruption(where + ": samples reach magnitude " + buf + " (full scale is 1), so feature set " +
                                    specs_[s].name + " overflows: not audio, or float samples never normalised");
        }
        return Status::Internal(where + ": feature set " + specs_[s].name + " produced a non-finite value");
      }
    }
    out.values.push_back(std::move(values));
    out.frames.push_back(std::move(frames_out));
  }
  return out;
}

std::vector<FeatureSet> AudioFrontEnd::MakeEmptySets() const {
  std::vector<FeatureSet> sets;
  for (const auto& spec : specs_) {
    FeatureSet fs;
    fs.name = spec.name;
    fs.modality = "audio";
    fs.dim = spec.dim;
    fs.frame_dim = spec.frame_dim;
    if (fs.frame_dim) fs.offsets = {0};
    fs.provenance = Provenance(spec.name);
    fs.provenance["columns"] = spec.columns;
    sets.push_back(std::move(fs));
  }
  return sets;
}

Status AudioFrontEnd::AppendUtterance(const UtteranceFeatures& utt, std::vector<FeatureSet>* sets) const {
  if (sets->size() != specs_.size() || utt.values.size() != specs_.size()) {
    return Status::InvalidArgument("AppendUtterance: feature set count mismatch (expected " +
                                   std::to_string(specs_.size()) + ")");
  }
  for (size_t s = 0; s < specs_.size(); ++s) {
    FeatureSet& fs = (*sets)[s];
    if (fs.name != specs_[s].name || int64_t(utt.values[s].size()) != fs.dim) {
      return Status::InvalidArgument("AppendUtterance: set " + fs.name + " does not match the front end");
    }
    fs.values.insert(fs.values.end(), utt.values[s].begin(), utt.values[s].end());
    if (fs.frame_dim) {
      if (fs.offsets.empty()) fs.offsets.push_back(0);
      fs.frames.insert(fs.frames.end(), utt.frames[s].begin(), utt.frames[s].end());
      fs.offsets.push_back(int64_t(fs.frames.size()) / fs.frame_dim);
    }
  }
  return Status::Ok();
}

Result<AudioBatch> ExtractAudioFeatures(const std::vector<std::string>& wav_paths, const AudioFeatureOptions& options,
                                        Progress* progress) {
  ES_ASSIGN_OR_RETURN(auto fe, AudioFrontEnd::Create(options));
  const size_t n = wav_paths.size();
  std::vector<std::optional<Result<UtteranceFeatures>>> results(n);
  int threads = options.num_threads == 0 ? int(std::max(1u, std::thread::hardware_concurrency())) : options.num_threads;
  threads = int(std::min<size_t>(size_t(threads), std::max<size_t>(1, n)));
  std::atomic<size_t> next{0};
  std::atomic<size_t> first_failure{n};
  auto worker = [&] {
    for (size_t i = next++; i < n; i = next++) {
      // Files after a known failure are not worth decoding; files before it
      // still run, so the reported error is the first bad file in path order.
      if (i > first_failure.load()) continue;
      Result<UtteranceFeatures> r = fe->ExtractFile(wav_paths[i]);
      if (!r.ok()) {
        size_t seen = first_failure.load();
        while (i < seen && !first_failure.compare_exchange_weak(seen, i)) {
        }
      }
      results[i].emplace(std::move(r));
      if (progress) progress->Add(1);
    }
  };
  if (threads <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
  }
  AudioBatch batch;
  batch.sets = fe->MakeEmptySets();
  for (size_t s = 0; s < batch.sets.size(); ++s) batch.sets[s].values.reserve(n * size_t(batch.sets[s].dim));
  for (size_t i = 0; i < n; ++i) {
    if (!results[i].has_value()) continue;  // skipped after an earlier failure
    if (!results[i]->ok()) return results[i]->status();
  }
  for (size_t i = 0; i < n; ++i) {
    ES_RETURN_IF_ERROR(fe->AppendUtterance(results[i]->value(), &batch.sets));
    batch.durations_s.push_back(results[i]->value().duration_s);
    results[i].reset();
  }
  return batch;
}

}  // namespace emosweep::data::audio
