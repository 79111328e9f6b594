// data/audio/window_stats.h: the MER seed's window aggregation (seed-methods.md §3.3).
//
// Windows of `window` frames every `step` frames: for start = 0, step, ... <=
// T, end = min(start + window, T); stop when end - start < step and start != 0.
// Each chunk is padded to `window` frames by tiling (repeating) itself, its
// frames are averaged, and the per-window means are summarised as
// [mean over windows ; population std over windows] (one window → std 0).
// Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <vector>

namespace emosweep::data::audio {

// Appends 2 * dim values for the [num_frames, dim] sequence x; returns the window count.
int64_t AppendWindowStats(const float* x, int64_t num_frames, int dim, int64_t window, int64_t step,
                          std::vector<float>* out);

}  // namespace emosweep::data::audio
