// worker/grad_norm.h: the L2 norm of a gradient given as ranges (FlatParameters::GradRanges), bitwise the
// value torch's norm() gives for the same floats in one contiguous buffer (what ClipGradNorm computes),
// so that clipping a single-process step needs no copy of the gradient into the flat buffer.
//
// torch (CPU, float, a contiguous vector) reduces in one sequential pass: W lanes (the width of its
// dispatched kernel's vector: 16 floats with AVX-512, 8 otherwise) accumulate x·x over the leading
// n - n % W elements (element i into lane i % W), the lanes are summed in order, the n % W tail is
// added one by one and the result is the float sqrt. Whether its multiply-adds are fused depends on how
// libtorch was compiled, so the variant this process's torch runs is identified once, by comparing each
// candidate with torch's own norm of a fixed vector; when no single candidate matches, RangesNorm
// reports that it is unavailable and the caller keeps the copy (tests/worker/optimizer_test.cc). On this
// project's machine (libtorch 1.13, its AVX2 kernel): 8 lanes, fused multiply-adds, the tail unfused. A
// span shorter than 64 elements (torch reduces those differently) is gathered and handed to torch itself.
// Thread-safety: thread-safe (the identification runs once).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "worker/flat_params.h"

namespace emosweep::worker {

// torch's norm of the values at [offset, offset + count) of the layout the ranges cover (in order, as
// FlatParameters::GradRanges gives them); nullopt when the variant torch runs could not be identified.
std::optional<float> RangesNorm(const std::vector<GradRange>& ranges, int64_t offset, int64_t count);

// Whether RangesNorm is available (the variant was identified).
bool RangesNormAvailable();

// The identified variant ("w8-fma", "w16", ...), or "none (...)" with the candidates that matched (bench
// output, tests).
const char* RangesNormVariant();

}  // namespace emosweep::worker
