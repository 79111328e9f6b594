#include "data/audio/window_stats.h"

#include <algorithm>
#include <cmath>

namespace emosweep::data::audio {

int64_t AppendWindowStats(const float* x, int64_t num_frames, int dim, int64_t window, int64_t step,
                          std::vector<float>* out) {
  std::vector<double> means;  // [windows, dim]
  std::vector<double> chunk_sum(static_cast<size_t>(dim)), head_sum(static_cast<size_t>(dim));
  int64_t windows = 0;
  for (int64_t start = 0; start <= num_frames && num_frames > 0; start += step) {
    const int64_t end = std::min(start + window, num_frames);
    if (end - start < step && start != 0) break;
    const int64_t len = end - start;
    if (len <= 0) break;
    // Tiling to `window` frames = full repeats of the chunk plus its head.
    const int64_t reps = window / len, rem = window % len;
    std::fill(chunk_sum.begin(), chunk_sum.end(), 0.0);
    std::fill(head_sum.begin(), head_sum.end(), 0.0);
    for (int64_t t = 0; t < len; ++t) {
      const float* r = x + (start + t) * dim;
      for (int d = 0; d < dim; ++d) {
        chunk_sum[d] += r[d];
        if (t < rem) head_sum[d] += r[d];
      }
    }
    for (int d = 0; d < dim; ++d) means.push_back((double(reps) * chunk_sum[d] + head_sum[d]) / double(window));
    ++windows;
  }
  std::vector<double> mean(size_t(dim), 0.0);
  for (int d = 0; d < dim; ++d) {
    for (int64_t w = 0; w < windows; ++w) mean[d] += means[size_t(w * dim + d)];
    if (windows) mean[d] /= double(windows);
    out->push_back(float(mean[d]));
  }
  for (int d = 0; d < dim; ++d) {
    double v = 0.0;
    for (int64_t w = 0; w < windows; ++w) {
      const double c = means[size_t(w * dim + d)] - mean[d];
      v += c * c;
    }
    out->push_back(windows ? float(std::sqrt(v / double(windows))) : 0.f);
  }
  return windows;
}

}  // namespace emosweep::data::audio
