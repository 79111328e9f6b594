// orchestrator/stats.cc: see stats.h.
#include "orchestrator/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

namespace emosweep::orchestrator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Continued fraction of the regularized incomplete beta (Numerical Recipes 6.4).
double BetaCf(double a, double b, double x) {
  const double eps = 1e-15, tiny = 1e-300;
  double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < eps) break;
  }
  return h;
}

double IncompleteBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double bt = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return bt * BetaCf(a, b, x) / a;
  return 1 - bt * BetaCf(b, a, 1 - x) / b;
}

struct Confusion {
  int c;
  std::vector<int64_t> m;  // [truth * c + pred]
  explicit Confusion(int classes) : c(classes), m(static_cast<size_t>(classes) * classes, 0) {}
  void Add(int t, int p) { m[static_cast<size_t>(t) * c + p]++; }
  void Clear() { std::fill(m.begin(), m.end(), 0); }
};

Result<int> MetricIndex(const std::string& metric) {
  static const char* kNames[] = {"ua", "wa", "macro_f1", "weighted_f1"};
  for (int i = 0; i < 4; ++i)
    if (metric == kNames[i]) return i;
  return Status::InvalidArgument("unknown metric '" + metric + "' (ua, wa, macro_f1, weighted_f1)");
}

// Same conventions as jobs/metrics.h (sklearn): UA over classes present in
// the truth; macro-F1 over classes in truth ∪ predictions; weighted-F1 by true counts.
double MetricOf(int which, const Confusion& cm) {
  int c = cm.c;
  std::vector<int64_t> truth(c, 0), predicted(c, 0);
  int64_t correct = 0, n = 0;
  for (int t = 0; t < c; ++t)
    for (int p = 0; p < c; ++p) {
      int64_t v = cm.m[static_cast<size_t>(t) * c + p];
      truth[t] += v;
      predicted[p] += v;
      n += v;
      if (t == p) correct += v;
    }
  if (n == 0) return kNaN;
  if (which == 1) return static_cast<double>(correct) / n;
  double sum = 0;
  int count = 0;
  for (int k = 0; k < c; ++k) {
    int64_t tp = cm.m[static_cast<size_t>(k) * c + k];
    if (which == 0) {
      if (truth[k] > 0) sum += static_cast<double>(tp) / truth[k], ++count;
      continue;
    }
    double f1 = (truth[k] + predicted[k]) > 0 ? 2.0 * tp / (truth[k] + predicted[k]) : 0.0;
    if (which == 2) {
      if (truth[k] + predicted[k] > 0) sum += f1, ++count;
    } else {
      sum += f1 * truth[k];
    }
  }
  if (which == 3) return sum / n;
  return count ? sum / count : kNaN;
}

}  // namespace

double Summary::Spread(const std::string& kind) const {
  if (kind == "sem") return sem;
  if (kind == "ci95") return ci95;
  return std;
}

Summary Summarize(const std::vector<double>& v) {
  Summary s;
  s.n = static_cast<int>(v.size());
  if (s.n == 0) {
    s.mean = s.std = s.sem = s.ci95 = kNaN;
    return s;
  }
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / s.n;
  if (s.n < 2) {
    s.std = s.sem = s.ci95 = kNaN;
    return s;
  }
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / (s.n - 1));
  s.sem = s.std / std::sqrt(static_cast<double>(s.n));
  s.ci95 = StudentTQuantile(0.95, s.n - 1) * s.sem;
  return s;
}

double StudentTCdf(double t, int df) {
  double x = df / (df + t * t);
  double tail = 0.5 * IncompleteBeta(df / 2.0, 0.5, x);
  return t >= 0 ? 1 - tail : tail;
}

double StudentTQuantile(double level, int df) {
  if (df < 1) return kNaN;
  double lo = 0, hi = 1e6;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    double covered = 1 - 2 * (1 - StudentTCdf(mid, df));
    (covered < level ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Result<double> PairedTTestP(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return Status::InvalidArgument("paired t-test: the two samples differ in length");
  if (a.size() < 2) return Status::InvalidArgument("paired t-test: needs at least 2 pairs");
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    d[i] = a[i] - b[i];
    if (!std::isfinite(d[i])) return Status::InvalidArgument("paired t-test: a value is not finite");
  }
  Summary s = Summarize(d);
  // "The same" up to rounding: the same 1/N step computed from different counts differs in the last bits
  // (0.19685039370078528 vs 0.19685039370079238), which gave a spread of 1e-15, t of 1e13 and p = 0: bold
  // where the docs promise none (helper-72).
  double scale = 1.0, spread = 0.0;
  for (double x : d) scale = std::max(scale, std::fabs(x));
  for (double x : d) spread = std::max(spread, std::fabs(x - d[0]));
  const double tol = 1e-9 * scale;
  if (s.sem == 0 || spread <= tol) {
    if (std::fabs(s.mean) <= tol) return 1.0;
    // Every difference the same and not 0 (UA moves in steps of 1/N: two or three runs can do this): t is
    // infinite on a variance estimate of 0, which says nothing about the runs' spread. Not testable.
    return Status::FailedPrecondition("paired t-test: every difference is the same, so their spread is 0");
  }
  double t = s.mean / s.sem;
  return 2 * (1 - StudentTCdf(std::fabs(t), s.n - 1));
}

Result<std::string> SpreadLabel(const std::string& kind) {
  if (kind == "std") return std::string("std (ddof=1)");
  if (kind == "sem") return std::string("SEM");
  if (kind == "ci95") return std::string("95% CI half-width (Student t)");
  return Status::InvalidArgument("unknown spread '" + kind + "' (std, sem, ci95)");
}

Result<double> MetricFromPredictions(const std::string& metric, const std::vector<int>& labels,
                                     const std::vector<int>& preds, int num_classes) {
  ES_ASSIGN_OR_RETURN(int which, MetricIndex(metric));
  if (labels.size() != preds.size())
    return Status::InvalidArgument("labels and predictions differ in length (" + std::to_string(labels.size()) +
                                   " vs " + std::to_string(preds.size()) + ")");
  Confusion cm(num_classes);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes || preds[i] < 0 || preds[i] >= num_classes)
      return Status::InvalidArgument("label or prediction out of range at item " + std::to_string(i));
    cm.Add(labels[i], preds[i]);
  }
  return MetricOf(which, cm);
}

Result<PairedTestResult> PairedTest(const std::string& test, const std::string& metric,
                                    const std::vector<int>& labels, const std::vector<int>& pred_a,
                                    const std::vector<int>& pred_b, const std::vector<int>& group,
                                    int num_classes, int resamples, uint64_t seed) {
  ES_ASSIGN_OR_RETURN(int which, MetricIndex(metric));
  if (test != "permutation" && test != "bootstrap")
    return Status::InvalidArgument("unknown paired test '" + test + "' (permutation, bootstrap)");
  size_t n = labels.size();
  if (pred_a.size() != n || pred_b.size() != n || group.size() != n)
    return Status::InvalidArgument("paired test: labels, both predictions and groups must have the same length");
  if (n == 0) return Status::FailedPrecondition("paired test: no paired utterances (were predictions recorded?)");
  if (resamples < 1) return Status::InvalidArgument("paired test: resamples must be at least 1");
  for (size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= num_classes || pred_a[i] < 0 || pred_a[i] >= num_classes || pred_b[i] < 0 ||
        pred_b[i] >= num_classes || group[i] < 0)
      return Status::InvalidArgument("paired test: label, prediction or group out of range at item " +
                                     std::to_string(i));
  int groups = *std::max_element(group.begin(), group.end()) + 1;
  std::vector<std::vector<size_t>> members(groups);
  for (size_t i = 0; i < n; ++i) members[group[i]].push_back(i);
  std::vector<Confusion> ca(groups, Confusion(num_classes)), cb(groups, Confusion(num_classes));
  // Mean over non-empty groups of metric(A) - metric(B); fills *a / *b when given.
  auto statistic = [&](double* a, double* b) {
    double sa = 0, sb = 0;
    int used = 0;
    for (int g = 0; g < groups; ++g) {
      if (members[g].empty()) continue;
      sa += MetricOf(which, ca[g]);
      sb += MetricOf(which, cb[g]);
      ++used;
    }
    if (a) *a = sa / used;
    if (b) *b = sb / used;
    return (sa - sb) / used;
  };
  for (size_t i = 0; i < n; ++i) {
    ca[group[i]].Add(labels[i], pred_a[i]);
    cb[group[i]].Add(labels[i], pred_b[i]);
  }
  PairedTestResult out;
  out.test = test;
  out.metric = metric;
  out.n_items = static_cast<int>(n);
  out.resamples = resamples;
  out.delta = statistic(&out.a, &out.b);
  std::mt19937_64 rng(seed);
  int extreme = 0;
  const double observed = std::fabs(out.delta);
  const double tol = 1e-12;
  for (int r = 0; r < resamples; ++r) {
    for (int g = 0; g < groups; ++g) ca[g].Clear(), cb[g].Clear();
    if (test == "permutation") {
      for (size_t i = 0; i < n; ++i) {
        bool swap = (rng() >> 63) != 0;
        ca[group[i]].Add(labels[i], swap ? pred_b[i] : pred_a[i]);
        cb[group[i]].Add(labels[i], swap ? pred_a[i] : pred_b[i]);
      }
      if (std::fabs(statistic(nullptr, nullptr)) >= observed - tol) ++extreme;
    } else {
      for (int g = 0; g < groups; ++g) {
        const auto& m = members[g];
        for (size_t k = 0; k < m.size(); ++k) {
          size_t i = m[static_cast<size_t>((rng() >> 11) * (1.0 / 9007199254740992.0) * m.size())];
          ca[g].Add(labels[i], pred_a[i]);
          cb[g].Add(labels[i], pred_b[i]);
        }
      }
      // Shifted null (Berg-Kirkpatrick et al. 2012): how often does the resampled
      // delta stray from the observed one by at least the observed delta?
      if (std::fabs(statistic(nullptr, nullptr) - out.delta) >= observed - tol) ++extreme;
    }
  }
  out.p_value = (extreme + 1.0) / (resamples + 1.0);
  return out;
}

}  // namespace emosweep::orchestrator
