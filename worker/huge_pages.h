// worker/huge_pages.h: the training state's large CPU buffers on transparent huge pages (issue 16, single step).
//
// A seed model's step streams its parameter-sized buffers about ten times (the forward and dX read the
// weights, dW writes the gradient, the clip norm reads it, AdamW reads four and writes three): msr's are
// 40 MB each. On 4 KB pages every 4 KB of every stream is a TLB miss and, with ten buffers of 10 000 pages, a
// page walk; on 2 MB pages the whole state fits the TLB. The flat parameters and gradients, the fused
// optimizer's state and the packed trainer's rows are therefore allocated here: an anonymous mapping
// aligned to 2 MB and advised MADV_HUGEPAGE (in the kernel's "madvise" THP mode, this machine's, only
// advised memory gets huge pages). Nothing else changes: the same zeros, the same arithmetic, the same bits.
// Buffers under one huge page, GPU tensors, or a failed mapping get torch::zeros as before.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace emosweep::worker {

constexpr int64_t kHugePageBytes = int64_t{2} << 20;

// A zero-filled tensor of `sizes` (CPU: on a 2 MB aligned mapping advised for huge pages when it spans at
// least one; otherwise torch::zeros(sizes, opts)).
torch::Tensor HugePageZeros(at::IntArrayRef sizes, const torch::TensorOptions& opts);

// The kernel's THP mode ("always", "madvise" or "never"; "" where the file is missing).
std::string TransparentHugePageMode();

// Whether advised memory of this process may get huge pages: the mode is "always" or "madvise" and the
// process has not opted out (prctl PR_SET_THP_DISABLE, inherited: THP_enabled 0 in /proc/self/status).
bool HugePagesAllowed();

// Whether the kernel may back the page holding `p` with huge pages (THPeligible in /proc/self/smaps;
// false where smaps does not say).
bool HugePageEligible(const void* p);

}  // namespace emosweep::worker
