// data/synth.cc: synthetic corpora (the generative model is described in synth.h).
#include "data/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "data/label_map.h"
#include "data/portable_rng.h"

namespace emosweep::data {
namespace {

// Stream ids for MixSeed: keep each kind of draw independent of the others, so
// adding a modality does not change the classes of another one.
constexpr uint64_t kClassStream = 1000, kShiftStream = 2000, kSampleStream = 3000, kFrameStream = 4000;

std::vector<double> Gaussian(PortableRng& rng, int64_t n, double std) {
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = std * rng.Normal();
  return v;
}

struct Shift {
  std::vector<double> offset, scale;
  std::vector<std::pair<size_t, size_t>> pairs;  // Givens rotation planes
  std::vector<double> angles;
};

Shift MakeShift(const SynthSpec& s, const SynthModality& m, const std::vector<std::vector<double>>& means,
                uint64_t stream) {
  PortableRng rng(MixSeed(s.seed, stream));
  Shift sh;
  const size_t d = static_cast<size_t>(m.dim);
  // A random direction of norm 2 * separation, plus 1.5 times the difference of
  // two class means: the second part pushes class j past class i, so an
  // unadapted classifier fails systematically rather than by a little.
  sh.offset = Gaussian(rng, m.dim, 1.0);
  double norm = std::sqrt(std::inner_product(sh.offset.begin(), sh.offset.end(), sh.offset.begin(), 0.0));
  const size_t i = rng.Below(means.size());
  const size_t j = (i + 1 + rng.Below(means.size() - 1)) % means.size();
  for (size_t k = 0; k < d; ++k)
    sh.offset[k] = s.shift * (2.0 * sh.offset[k] * s.separation * m.separation / norm + 1.5 * (means[i][k] - means[j][k]));
  sh.scale.resize(d);
  for (auto& x : sh.scale) x = std::exp(0.25 * s.shift * rng.Normal());
  std::vector<size_t> perm(d);
  std::iota(perm.begin(), perm.end(), 0);
  rng.Shuffle(perm);
  for (size_t i = 0; i + 1 < d; i += 2) {
    sh.pairs.emplace_back(perm[i], perm[i + 1]);
    const double sign = rng.Below(2) ? 1.0 : -1.0;
    sh.angles.push_back(sign * s.rotation * (0.5 + 0.5 * rng.Uniform()));
  }
  return sh;
}

void ApplyShift(const Shift& sh, std::vector<double>& z) {
  for (size_t i = 0; i < z.size(); ++i) z[i] *= sh.scale[i];
  for (size_t p = 0; p < sh.pairs.size(); ++p) {
    if (sh.angles[p] == 0.0) continue;
    auto [i, j] = sh.pairs[p];
    const double c = std::cos(sh.angles[p]), s = std::sin(sh.angles[p]);
    const double a = z[i], b = z[j];
    z[i] = c * a - s * b;
    z[j] = s * a + c * b;
  }
  for (size_t i = 0; i < z.size(); ++i) z[i] += sh.offset[i];
}

// Per-speaker class counts: largest-remainder rounding of p * U, at least one
// utterance per class whenever U >= number of classes. Ties in the remainder go
// round-robin over speakers, so balanced corpora stay balanced overall.
std::vector<int> ClassCounts(const std::vector<double>& p, int u, int speaker) {
  const size_t c = p.size();
  std::vector<int> n(c, 0);
  int base = u >= static_cast<int>(c) ? 1 : 0;
  int rest = u - base * static_cast<int>(c);
  std::vector<std::pair<double, size_t>> rem;
  int used = 0;
  for (size_t i = 0; i < c; ++i) {
    double want = p[i] * rest;
    n[i] = base + static_cast<int>(std::floor(want));
    used += static_cast<int>(std::floor(want));
    rem.emplace_back(want - std::floor(want), i);
  }
  auto turn = [&](size_t i) { return (i + c - static_cast<size_t>(speaker) % c) % c; };
  std::stable_sort(rem.begin(), rem.end(), [&](auto& a, auto& b) {
    if (std::abs(a.first - b.first) > 1e-9) return a.first > b.first;
    return turn(a.second) < turn(b.second);
  });
  for (int k = 0; k < rest - used; ++k) ++n[rem[static_cast<size_t>(k) % c].second];
  return n;
}

Corpus MakeCorpus(const SynthSpec& s, int k, const std::vector<std::vector<std::vector<double>>>& means) {
  // Every corpus draws its own shift; shift = 0 makes them all identical in distribution.
  Corpus c;
  c.name = s.name_prefix + "_" + std::string(1, static_cast<char>('a' + k));
  c.language = "zxx";  // ISO 639-2 "no linguistic content"
  c.label_set = s.classes;
  const size_t nc = s.classes.size();
  PortableRng rng(MixSeed(s.seed, kSampleStream + static_cast<uint64_t>(k)));

  std::vector<size_t> rank(nc);
  std::iota(rank.begin(), rank.end(), 0);
  rng.Shuffle(rank);
  std::vector<double> p(nc);
  for (size_t i = 0; i < nc; ++i) p[i] = std::exp(-s.imbalance * static_cast<double>(rank[i]));
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  for (auto& x : p) x /= total;

  std::vector<Shift> shifts;
  for (size_t m = 0; m < s.modalities.size(); ++m)
    shifts.push_back(MakeShift(s, s.modalities[m], means[m], kShiftStream + 64 * static_cast<uint64_t>(k) + m));
  for (const auto& m : s.modalities) {
    FeatureSet f;
    f.name = m.name;
    f.modality = m.modality;
    f.dim = m.dim;
    f.provenance = {{"extractor", "synthetic"}, {"seed", s.seed}, {"corpus_index", k}};
    if (s.frames && m.modality == "audio") {
      f.frame_dim = std::min(s.frame_dim, m.dim);
      f.offsets.push_back(0);
    }
    c.features.push_back(std::move(f));
  }
  PortableRng frame_rng(MixSeed(s.seed, kFrameStream + static_cast<uint64_t>(k)));
  for (int sp = 0; sp < s.speakers_per_corpus; ++sp) {
    const auto counts = ClassCounts(p, s.utterances_per_speaker, sp);
    char spk[32];
    std::snprintf(spk, sizeof spk, "%s_s%02d", c.name.c_str(), sp);
    std::vector<std::vector<double>> spk_offset;
    for (const auto& m : s.modalities) spk_offset.push_back(Gaussian(rng, m.dim, s.speaker_std));
    std::vector<size_t> labels;
    for (size_t ci = 0; ci < nc; ++ci) labels.insert(labels.end(), static_cast<size_t>(counts[ci]), ci);
    rng.Shuffle(labels);
    for (size_t r = 0; r < labels.size(); ++r) {
      Utterance u;
      u.id = std::string(spk) + "_u" + std::to_string(r);
      u.speaker = spk;
      u.gender = sp % 2 ? "m" : "f";
      u.session = "session" + std::to_string(sp / 2 + 1);
      u.label = u.original_label = s.classes[labels[r]];
      u.duration_s = 1.0 + 4.0 * rng.Uniform();
      for (size_t m = 0; m < s.modalities.size(); ++m) {
        const auto& mu = means[m][labels[r]];
        std::vector<double> z(mu.size());
        for (size_t d = 0; d < z.size(); ++d) z[d] = mu[d] + spk_offset[m][d] + s.noise * rng.Normal();
        ApplyShift(shifts[m], z);
        FeatureSet& f = c.features[m];
        for (double v : z) f.values.push_back(static_cast<float>(v));
        if (f.has_frames()) {
          const int t = s.min_frames + static_cast<int>(frame_rng.Below(static_cast<uint64_t>(s.max_frames - s.min_frames + 1)));
          for (int fr = 0; fr < t; ++fr)
            for (int64_t d = 0; d < f.frame_dim; ++d)
              f.frames.push_back(static_cast<float>(z[static_cast<size_t>(d)] + 0.5 * s.noise * frame_rng.Normal()));
          f.offsets.push_back(f.offsets.back() + t);
        }
      }
      c.utterances.push_back(std::move(u));
    }
  }
  nlohmann::json syn = {{"corpus_index", k},
                        {"class_proportions", p},
                        {"generator", "emosweep synth v1 (data/synth.h)"}};
  for (size_t m = 0; m < s.modalities.size(); ++m) {
    double on = 0;
    for (double x : shifts[m].offset) on += x * x;
    syn["shift"][s.modalities[m].name] = {{"offset_norm", std::sqrt(on)}, {"rotation_pairs", shifts[m].pairs.size()}};
  }
  c.metadata["synthetic"] = syn;
  return c;
}

}  // namespace

Status SynthSpec::Validate() const {
  auto bad = [](const std::string& m) { return Status::InvalidArgument("synth: " + m); };
  if (num_corpora < 1 || num_corpora > 26) return bad("number of corpora must be 1..26");
  if (speakers_per_corpus < 1) return bad("speakers per corpus must be >= 1");
  if (utterances_per_speaker < 1) return bad("utterances per speaker must be >= 1");
  if (classes.size() < 2) return bad("need at least two classes");
  for (const auto& c : classes)
    if (!IsCanonicalLabel(c)) return bad("class '" + c + "' is not a canonical label");
  if (modalities.empty()) return bad("need at least one modality");
  for (const auto& m : modalities) {
    if (m.dim < 1 || m.dim > 1 << 16) return bad("feature set '" + m.name + "' needs 1 <= dim <= 65536");
    if (!IsKnownModality(m.modality))
      return bad("modality must be audio, text or video, not '" + m.modality + "'");
  }
  if (!(shift >= 0) || !(imbalance >= 0) || !(noise > 0) || !(speaker_std >= 0) || !(separation > 0) ||
      !std::isfinite(rotation))
    return bad("need shift >= 0, imbalance >= 0, noise > 0, speaker_std >= 0, separation > 0");
  if (frames && (frame_dim < 1 || min_frames < 1 || max_frames < min_frames))
    return bad("frames need frame_dim >= 1 and 1 <= min_frames <= max_frames");
  return Status::Ok();
}

Result<std::vector<Corpus>> MakeSynthCorpora(const SynthSpec& spec) {
  ES_RETURN_IF_ERROR(spec.Validate());
  // Class means are shared by all corpora: the task does not change, only the domain.
  std::vector<std::vector<std::vector<double>>> means;
  for (size_t m = 0; m < spec.modalities.size(); ++m) {
    PortableRng rng(MixSeed(spec.seed, kClassStream + m));
    const auto& mod = spec.modalities[m];
    // Unit-norm directions of radius separation / sqrt(2): random directions are
    // nearly orthogonal, so class means are about `separation` apart in any dimension.
    const double radius = spec.separation * mod.separation / std::sqrt(2.0);
    std::vector<std::vector<double>> per_class;
    for (size_t c = 0; c < spec.classes.size(); ++c) {
      auto g = Gaussian(rng, mod.dim, 1.0);
      double n = std::sqrt(std::inner_product(g.begin(), g.end(), g.begin(), 0.0));
      for (auto& x : g) x = x / n * radius;
      per_class.push_back(std::move(g));
    }
    means.push_back(std::move(per_class));
  }
  std::vector<Corpus> out;
  for (int k = 0; k < spec.num_corpora; ++k) {
    Corpus c = MakeCorpus(spec, k, means);
    nlohmann::json sj = {{"num_corpora", spec.num_corpora}, {"speakers_per_corpus", spec.speakers_per_corpus},
                         {"utterances_per_speaker", spec.utterances_per_speaker}, {"classes", spec.classes},
                         {"shift", spec.shift}, {"rotation", spec.rotation}, {"imbalance", spec.imbalance},
                         {"separation", spec.separation}, {"noise", spec.noise}, {"speaker_std", spec.speaker_std},
                         {"frames", spec.frames}, {"seed", spec.seed}};
    c.metadata["synthetic"]["spec"] = sj;
    ES_RETURN_IF_ERROR(c.Validate("synthetic corpus " + c.name));
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace emosweep::data
