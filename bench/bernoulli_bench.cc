// bench/bernoulli_bench.cc: dropout-mask draws per second (issue 16, single step / packing).
//
// Three ways to fill n floats with bernoulli(p) draws from a CPU generator, all the same bits:
//   bernoulli_  torch's kernel, `t.bernoulli_(p, gen)` (one bernoulli_distribution<double> per element
//               through the generator's virtual random64 on a libtorch without MKL);
//   scalar      the same per-element draws on an inlined copy of the engine (the packed trainer's
//               DrawBernoulli before models/fast_bernoulli.cc);
//   block       models::FillBernoulli (the 624-word twist and the tempering in vector loops);
// and, per shape, one training-mode dropout: at::dropout against models::ApplyDropout.
// Columns: n, p, million draws/s of each (best of --reps batches), block / bernoulli_, and `ok` when the
// three fills and the generator states afterwards are bitwise equal (the two dropouts likewise).
// Usage: bernoulli_bench [--sizes 1000,8192,100000,1000000] [--p 0.7] [--reps 7] [--json]
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "models/dropout.h"
#include "models/fast_bernoulli.h"

namespace {

using Clock = std::chrono::steady_clock;

struct InlineEngine {  // the generator interface at::*_distribution calls, over a local mt19937
  at::mt19937 engine;
  uint32_t random() { return engine(); }
  uint64_t random64() {
    const uint32_t hi = engine(), lo = engine();
    return (static_cast<uint64_t>(hi) << 32) | lo;
  }
};

void ScalarFill(float* d, int64_t n, double p, at::CPUGeneratorImpl* g) {
  std::lock_guard<std::mutex> lock(g->mutex_);
  InlineEngine e{g->engine()};
  for (int64_t i = 0; i < n; ++i) {
    at::bernoulli_distribution<double> bernoulli(p);
    d[i] = static_cast<float>(bernoulli(&e));
  }
  g->set_engine(e.engine);
}

// Seconds per call, best of `reps` batches of enough calls for ~20 ms.
template <typename Fn>
double Best(int reps, int64_t n, Fn fn) {
  const int calls = static_cast<int>(std::max<int64_t>(1, 2000000 / std::max<int64_t>(n, 1)));
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (int c = 0; c < calls; ++c) fn();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count() / calls);
  }
  return best;
}

std::vector<int64_t> Ints(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(std::stoll(x));
  return v;
}

bool Same(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() &&
         std::memcmp(a.data_ptr(), b.data_ptr(), static_cast<size_t>(a.numel()) * a.element_size()) == 0;
}

bool SameEngine(at::Generator& a, at::Generator& b) {
  const auto x = a.get<at::CPUGeneratorImpl>()->engine().data(), y = b.get<at::CPUGeneratorImpl>()->engine().data();
  return x.left_ == y.left_ && x.next_ == y.next_ && x.state_ == y.state_;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes = {1000, 8192, 100000, 1000000};
  double p = 0.7;
  int reps = 7;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sizes" && i + 1 < argc) sizes = Ints(argv[++i]);
    else if (a == "--p" && i + 1 < argc) p = std::stod(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "bernoulli_bench: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(1);
  if (!json)
    std::printf("%9s %5s %12s %12s %12s %7s %4s | %14s %14s %7s %4s\n", "n", "p", "bernoulli_", "scalar", "block",
                "speedup", "ok", "at::dropout us", "ApplyDropout", "speedup", "ok");
  for (int64_t n : sizes) {
    // Correctness: the three fills from equal generators, drawn twice (the second starts mid-block).
    bool ok = true;
    {
      at::Generator a = at::make_generator<at::CPUGeneratorImpl>(11), b = at::make_generator<at::CPUGeneratorImpl>(11),
                    c = at::make_generator<at::CPUGeneratorImpl>(11);
      for (int k = 0; k < 2; ++k) {
        torch::Tensor ta = torch::empty({n}), tb = torch::empty({n}), tc = torch::empty({n});
        ta.bernoulli_(p, a);
        ScalarFill(tb.data_ptr<float>(), n, p, b.get<at::CPUGeneratorImpl>());
        emosweep::models::FillBernoulli(tc.data_ptr<float>(), n, p, c.get<at::CPUGeneratorImpl>());
        ok = ok && Same(ta, tb) && Same(ta, tc);
      }
      ok = ok && SameEngine(a, b) && SameEngine(a, c);
    }
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(12);
    torch::Tensor t = torch::empty({n});
    const double s_torch = Best(reps, n, [&] { t.bernoulli_(p, g); });
    const double s_scalar = Best(reps, n, [&] { ScalarFill(t.data_ptr<float>(), n, p, g.get<at::CPUGeneratorImpl>()); });
    const double s_block =
        Best(reps, n, [&] { emosweep::models::FillBernoulli(t.data_ptr<float>(), n, p, g.get<at::CPUGeneratorImpl>()); });
    // One dropout (keep probability p, as at::dropout draws bernoulli(1 - drop)) on a [n / 256, 256]-ish input.
    const int64_t cols = n >= 256 ? 256 : n;
    torch::Tensor x = torch::randn({n / cols, cols});
    torch::manual_seed(3);
    torch::Tensor ya = torch::dropout(x, 1 - p, true);
    torch::manual_seed(3);
    torch::Tensor yb = emosweep::models::ApplyDropout(x, 1 - p, true);
    const bool dropout_ok = Same(ya, yb);
    const double d_torch = Best(reps, n, [&] { torch::dropout(x, 1 - p, true); });
    const double d_fast = Best(reps, n, [&] { emosweep::models::ApplyDropout(x, 1 - p, true); });
    const double m = static_cast<double>(n) / 1e6;
    if (json) {
      std::printf(
          "{\"n\": %lld, \"p\": %g, \"bernoulli_mdraws_s\": %.2f, \"scalar_mdraws_s\": %.2f, \"block_mdraws_s\": %.2f, "
          "\"ok\": %s, \"at_dropout_us\": %.2f, \"apply_dropout_us\": %.2f, \"dropout_ok\": %s}\n",
          static_cast<long long>(n), p, m / s_torch, m / s_scalar, m / s_block, ok ? "true" : "false", d_torch * 1e6,
          d_fast * 1e6, dropout_ok ? "true" : "false");
    } else {
      std::printf("%9lld %5.2f %10.1f/s %10.1f/s %10.1f/s %6.2fx %4s | %14.1f %14.1f %6.2fx %4s\n",
                  static_cast<long long>(n), p, m / s_torch, m / s_scalar, m / s_block, s_torch / s_block,
                  ok ? "ok" : "DIFF", d_torch * 1e6, d_fast * 1e6, d_torch / d_fast, dropout_ok ? "ok" : "DIFF");
    }
  }
  return 0;
}
