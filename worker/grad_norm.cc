// worker/grad_norm.cc: torch's float L2 norm reproduced over gradient ranges (see grad_norm.h).
// Compiled with -O3 -fno-math-errno -ffp-contract=off: a multiply-add is fused only where written as
// std::fma, so each candidate computes exactly the operations it names.
#include "worker/grad_norm.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>
#include <string>

namespace emosweep::worker {
namespace {

// Spans shorter than this are gathered and handed to torch (RangesNorm); the lane pass is identified and
// used from this length on.
constexpr int64_t kMinLanePass = 64;

// One candidate: W lanes, lane update acc + x·x (fused or not), the tail's update (fused or not).
template <int W, bool kFma, bool kTailFma>
struct NormPass {
  float acc[W] = {};
  float tail[W] = {};
  int ntail = 0;

  [[gnu::always_inline]] static float Op(float a, float x, bool fma) { return fma ? std::fma(x, x, a) : a + x * x; }

  // Elements rel.. of the reduced vector (rel = index within it); vec_end = count - count % W.
  [[gnu::always_inline]] void Add(const float* x, int64_t rel, int64_t len, int64_t vec_end) {
    const int64_t lane_len = std::clamp<int64_t>(vec_end - rel, 0, len);
    int64_t k = 0;
    for (; k < lane_len && (rel + k) % W != 0; ++k) acc[(rel + k) % W] = Op(acc[(rel + k) % W], x[k], kFma);
    for (; k + W <= lane_len; k += W)
      for (int l = 0; l < W; ++l) acc[l] = Op(acc[l], x[k + l], kFma);
    for (; k < lane_len; ++k) acc[(rel + k) % W] = Op(acc[(rel + k) % W], x[k], kFma);
    for (; k < len; ++k) tail[ntail++] = x[k];
  }
  [[gnu::always_inline]] float Finish() const {
    float b = acc[0];
    for (int j = 1; j < W; ++j) b = b + acc[j];
    for (int j = 0; j < ntail; ++j) b = Op(b, tail[j], kTailFma);
    return std::sqrt(b);
  }
};

template <int W, bool kFma, bool kTailFma>
[[gnu::always_inline]] inline float NormOver(const std::vector<GradRange>& ranges, int64_t offset, int64_t count) {
  NormPass<W, kFma, kTailFma> pass;
  const int64_t vec_end = count - count % W, end = offset + count;
  for (const GradRange& r : ranges) {
    const int64_t b = std::max(offset, r.offset), e = std::min(end, r.offset + r.count);
    if (b < e) pass.Add(r.data + (b - r.offset), b - offset, e - b, vec_end);
  }
  return pass.Finish();
}

// The candidates, each compiled for the instruction set torch's kernel of that width runs on (the pass is
// inlined into each, so that it vectorises for it).
using NormFn = float (*)(const std::vector<GradRange>&, int64_t, int64_t);
#define ES_NORM_VARIANT(name, isa, W, F, T)                                                          \
  __attribute__((target(isa))) float name(const std::vector<GradRange>& r, int64_t o, int64_t n) { \
    return NormOver<W, F, T>(r, o, n);                                                               \
  }
ES_NORM_VARIANT(NormW16, "avx512f", 16, false, false)
ES_NORM_VARIANT(NormW16Fma, "avx512f", 16, true, false)
ES_NORM_VARIANT(NormW16FmaTail, "avx512f", 16, true, true)
ES_NORM_VARIANT(NormW8Fma, "avx2,fma", 8, true, false)
ES_NORM_VARIANT(NormW8FmaTail, "avx2,fma", 8, true, true)
#undef ES_NORM_VARIANT
float NormW8(const std::vector<GradRange>& r, int64_t o, int64_t n) { return NormOver<8, false, false>(r, o, n); }

struct Candidate {
  const char* name;
  NormFn fn;
  bool avx512, avx2;  // the instruction set it needs
};
// Mathematically distinct: at most one can match torch on the identification vector.
const Candidate kCandidates[] = {
    {"w16", NormW16, true, false},          {"w16-fma", NormW16Fma, true, false},
    {"w16-fma-tailfma", NormW16FmaTail, true, false},
    {"w8-fma", NormW8Fma, false, true},     {"w8-fma-tailfma", NormW8FmaTail, false, true},
    {"w8", NormW8, false, false},
};

const Candidate* g_chosen = nullptr;
std::string g_report;  // what RangesNormVariant says
std::once_flag g_once;

void Identify() {
  __builtin_cpu_init();
  const bool has512 = __builtin_cpu_supports("avx512f");
  const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // Fixed vectors (normal values): a long one with a tail for either width, also cut into uneven ranges, and
  // many short ones with a few elements per lane and tails as heavy as the lanes. Fused and unfused
  // multiply-adds differ only in a last bit that the sum and the sqrt often round away, so each wrong
  // candidate fails on a few of them only; all of them together tell the candidates apart.
  std::mt19937 rng(20261206);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<std::vector<float>> vecs;
  vecs.emplace_back(3 * 4096 + 13);
  for (int rep = 0; rep < 16; ++rep)
    for (size_t len : {13, 37, 55, 100, 1003}) vecs.emplace_back(len);
  for (auto& v : vecs)
    for (float& x : v) x = dist(rng);
  torch::NoGradGuard no_grad;
  std::vector<float> refs;
  for (auto& v : vecs)
    refs.push_back(torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kFloat).norm().item<float>());
  const int64_t n0 = static_cast<int64_t>(vecs[0].size());
  std::vector<GradRange> pieces;
  for (int64_t off = 0, step = 1; off < n0; off += step, step = step * 3 + 1)
    pieces.push_back({off, std::min(step, n0 - off), vecs[0].data() + off});
  const Candidate* match = nullptr;
  int matches = 0;
  for (const Candidate& c : kCandidates) {
    if ((c.avx512 && !has512) || (c.avx2 && !has2)) continue;
    bool all = c.fn(pieces, 0, n0) == refs[0];
    for (size_t k = 0; all && k < vecs.size(); ++k) {
      const int64_t n = static_cast<int64_t>(vecs[k].size());
      all = c.fn({{0, n, vecs[k].data()}}, 0, n) == refs[k];
    }
    if (!all) continue;
    ++matches;
    match = &c;
    g_report += std::string(g_report.empty() ? "" : ", ") + c.name;
  }
  g_chosen = matches == 1 ? match : nullptr;
  g_report = g_chosen ? g_chosen->name : "none (matching: " + (g_report.empty() ? "no candidate" : g_report) + ")";
}

}  // namespace

std::optional<float> RangesNorm(const std::vector<GradRange>& ranges, int64_t offset, int64_t count) {
  std::call_once(g_once, Identify);
  if (!g_chosen) return std::nullopt;
  if (count >= kMinLanePass) return g_chosen->fn(ranges, offset, count);
  // Short spans: torch's own norm of a gathered copy (it does not reduce vectors shorter than a lane width
  // as above, and the copy costs nothing at this size).
  std::vector<float> v(static_cast<size_t>(count));
  const int64_t end = offset + count;
  for (const GradRange& r : ranges) {
    const int64_t b = std::max(offset, r.offset), e = std::min(end, r.offset + r.count);
    if (b < e) std::copy(r.data + (b - r.offset), r.data + (e - r.offset), v.begin() + (b - offset));
  }
  torch::NoGradGuard no_grad;
  return torch::from_blob(v.data(), {count}, torch::kFloat).norm().item<float>();
}

bool RangesNormAvailable() {
  std::call_once(g_once, Identify);
  return g_chosen != nullptr;
}

const char* RangesNormVariant() {
  std::call_once(g_once, Identify);
  return g_report.c_str();
}

}  // namespace emosweep::worker
