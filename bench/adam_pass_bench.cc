// bench/adam_pass_bench.cc: the fused AdamW/Adam update alone, without and with its software prefetch
// (issue 16, single step: the update is memory-bound on the 10-11 M-parameter seed models).
//
// Per size n (parameters): FusedOptimizer::Step over a flat buffer of n floats, prefetch off (0) and at
// --prefetch elements ahead (default FusedOptimizer::kPrefetchAhead), alternated rep by rep, one thread.
// Two settings:
//   warm   steps back to back (the arrays stay in whatever cache holds them);
//   evict  between steps, one read+write pass over --evict-mb of other memory, as a training step's
//          forward and backward touch activations and weights between two updates (only the update
//          is timed).
// A third column (`nt`, AdamW on AVX-512 only) is the same update with non-temporal (streaming) stores of
// p, m and v, a loop of this bench (the library does not stream: it measured slower, bench/README.md).
// Columns: ms per step, best and median of --reps (the three alternated), the medians over `off`, and `ok`
// when all three's parameters and moments after the same steps are bitwise equal.
// Usage: adam_pass_bench [--sizes 1000000,4000000,10183431] [--reps 15] [--evict-mb 256] [--kind adamw|adam]
//                        [--prefetch 512]
#include <torch/torch.h>

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"
#include "jobs/train_config.h"

namespace {

using Clock = std::chrono::steady_clock;
using emosweep::worker::FlatParameters;
using emosweep::worker::FusedOptimizer;

// The AdamW update with non-temporal (streaming) stores of p, m, v (no write-allocate reads: 7 array passes
// instead of 10), the same operations in the same order as the library's loop; AVX-512, n a multiple of 16
// from 64-byte aligned p, m, v (torch's allocations are). The library does not use it: slower here.
__attribute__((target("avx512f"))) void StreamAdamW(float* p, const float* g, float* m, float* v, int64_t n,
                                                    float b1s, float one_b1s, float b2s, float one_b2s,
                                                    float sqrt_bc2s, float eps_s, float step_s, float decay_s) {
  const __m512 b1 = _mm512_set1_ps(b1s), one_b1 = _mm512_set1_ps(one_b1s), b2 = _mm512_set1_ps(b2s);
  const __m512 one_b2 = _mm512_set1_ps(one_b2s), sq = _mm512_set1_ps(sqrt_bc2s), eps = _mm512_set1_ps(eps_s);
  const __m512 ss = _mm512_set1_ps(step_s), decay = _mm512_set1_ps(decay_s);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 gi = _mm512_loadu_ps(g + i);
    const __m512 pi = _mm512_mul_ps(_mm512_load_ps(p + i), decay);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_load_ps(m + i), b1), _mm512_mul_ps(one_b1, gi));
    const __m512 vi =
        _mm512_add_ps(_mm512_mul_ps(_mm512_load_ps(v + i), b2), _mm512_mul_ps(_mm512_mul_ps(one_b2, gi), gi));
    const __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), sq), eps);
    _mm512_stream_ps(m + i, mi);
    _mm512_stream_ps(v + i, vi);
    _mm512_stream_ps(p + i, _mm512_add_ps(pi, _mm512_mul_ps(ss, _mm512_div_ps(mi, den))));
  }
  _mm_sfence();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes = {1000000, 4000000, 10183431};
  int reps = 15;
  int64_t evict_mb = 256;
  std::string kind = "adamw";
  int64_t prefetch = FusedOptimizer::kPrefetchAhead;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::stringstream ss(argv[++i]);
      std::string t;
      while (std::getline(ss, t, ',')) sizes.push_back(std::stoll(t));
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::stoi(argv[++i]);
    } else if (a == "--evict-mb" && i + 1 < argc) {
      evict_mb = std::stoll(argv[++i]);
    } else if (a == "--prefetch" && i + 1 < argc) {
      prefetch = std::stoll(argv[++i]);
    } else if (a == "--kind" && i + 1 < argc) {
      kind = argv[++i];
    } else {
      std::fprintf(stderr, "usage: adam_pass_bench [--sizes a,b] [--reps N] [--evict-mb MB] [--kind adamw|adam] [--prefetch N]\n");
      return 2;
    }
  }
  at::set_num_threads(1);
  auto cfg = emosweep::jobs::ParseTrainConfig({{"optimizer", kind}, {"lr", 2e-5}, {"weight_decay", 0.01}}, "bench");
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 2;
  }
  std::vector<float> evict(static_cast<size_t>(evict_mb) * (1 << 18), 1.0f);
  std::printf("%-10s %-6s | %9s %9s | %9s %9s | %9s %9s | %6s %6s | %s\n", "n", "mode", "off min", "off med",
              "pf min", "pf med", "nt min", "nt med", "pf x", "nt x", "ok");
  const bool stream = kind == "adamw" && __builtin_cpu_supports("avx512f");
  for (int64_t n : sizes) {
    n = n / 16 * 16;  // the streaming loop has no tail
    torch::manual_seed(1);
    torch::Tensor p0 = torch::randn({n}), g = torch::randn({n});
    FlatParameters fa = FlatParameters::OverBuffers(p0.clone(), g.clone());
    FlatParameters fb = FlatParameters::OverBuffers(p0.clone(), g.clone());
    torch::Tensor pc = p0.clone(), mc = torch::zeros_like(p0), vc = torch::zeros_like(p0);
    int64_t stream_steps = 0;
    const auto stream_step = [&] {
      ++stream_steps;
      const double bc1 = 1 - std::pow(cfg->beta1, static_cast<double>(stream_steps));
      const double bc2 = 1 - std::pow(cfg->beta2, static_cast<double>(stream_steps));
      StreamAdamW(pc.data_ptr<float>(), g.data_ptr<float>(), mc.data_ptr<float>(), vc.data_ptr<float>(), n,
                  static_cast<float>(cfg->beta1), static_cast<float>(1 - cfg->beta1), static_cast<float>(cfg->beta2),
                  static_cast<float>(1 - cfg->beta2), static_cast<float>(std::sqrt(bc2)),
                  static_cast<float>(cfg->eps), static_cast<float>(-cfg->lr / bc1),
                  static_cast<float>(1 - cfg->lr * cfg->weight_decay));
    };
    FusedOptimizer oa(&fa, *cfg), ob(&fb, *cfg);
    oa.set_prefetch(0);
    ob.set_prefetch(prefetch);
    for (const bool ev : {false, true}) {
      std::vector<double> t[3];
      for (int r = 0; r < reps; ++r) {
        for (int k = 0; k < 3; ++k) {
          const int side = (r + k) % 3;
          if (side == 2 && !stream) continue;
          if (ev) {
            volatile float sink = 0;
            float s = 0;
            for (size_t i = 0; i < evict.size(); i += 16) {
              s += evict[i];
              evict[i] = s * 0.5f;
            }
            sink = s;
            (void)sink;
          }
          const auto t0 = Clock::now();
          if (side == 0) oa.Step();
          else if (side == 1) ob.Step();
          else stream_step();
          t[side].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
      }
      bool ok_pf = torch::equal(fa.params(), fb.params());
      auto sa = oa.StateTensors(), sb = ob.StateTensors();
      for (size_t i = 0; i < sa.size(); ++i) ok_pf = ok_pf && torch::equal(sa[i].second, sb[i].second);
      const bool ok_nt = !stream || (torch::equal(fa.params(), pc) && torch::equal(sa[0].second, mc) &&
                                     torch::equal(sa[1].second, vc));
      if (!ok_nt && std::getenv("ADAM_BENCH_DEBUG")) std::printf("p %g m %g v %g\n", (fa.params() - pc).abs().max().item<float>(), (sa[0].second - mc).abs().max().item<float>(), (sa[1].second - vc).abs().max().item<float>());
      const char* ok = ok_pf && ok_nt ? "ok" : !ok_pf ? "DIFFER (pf)" : "DIFFER (nt)";
      const auto mn = [](const std::vector<double>& x) { return x.empty() ? 0.0 : *std::min_element(x.begin(), x.end()); };
      const auto md = [](const std::vector<double>& x) { return x.empty() ? 0.0 : Median(x); };
      std::printf("%-10lld %-6s | %9.3f %9.3f | %9.3f %9.3f | %9.3f %9.3f | %6.2f %6.2f | %s\n",
                  static_cast<long long>(n), ev ? "evict" : "warm", mn(t[0]), md(t[0]), mn(t[1]), md(t[1]), mn(t[2]),
                  md(t[2]), md(t[1]) / md(t[0]), stream ? md(t[2]) / md(t[0]) : 0.0, ok);
    }
  }
  return 0;
}
