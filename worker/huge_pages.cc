// worker/huge_pages.cc: see huge_pages.h.
#include "worker/huge_pages.h"

#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace emosweep::worker {
namespace {

int64_t RoundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// [aligned, aligned + bytes) of a fresh anonymous mapping (zero pages), the slack around it unmapped; null
// when the mapping fails.
void* MapAligned(int64_t bytes) {
  const auto len = static_cast<size_t>(bytes + kHugePageBytes);
  void* raw = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const auto aligned = static_cast<uintptr_t>(RoundUp(static_cast<int64_t>(base), kHugePageBytes));
  if (aligned > base) munmap(raw, aligned - base);
  const uintptr_t end = aligned + static_cast<uintptr_t>(bytes), raw_end = base + len;
  if (raw_end > end) munmap(reinterpret_cast<void*>(end), raw_end - end);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

torch::Tensor HugePageZeros(at::IntArrayRef sizes, const torch::TensorOptions& opts) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const int64_t bytes = numel * static_cast<int64_t>(c10::elementSize(c10::typeMetaToScalarType(opts.dtype())));
  if (!opts.device().is_cpu() || bytes < kHugePageBytes) return torch::zeros(sizes, opts);
  const int64_t mapped = RoundUp(bytes, kHugePageBytes);
  void* p = MapAligned(mapped);
  if (p == nullptr) return torch::zeros(sizes, opts);
  // Advice only: a kernel without THP refuses it (EINVAL) and the buffer stays on small pages.
  madvise(p, static_cast<size_t>(mapped), MADV_HUGEPAGE);
  return torch::from_blob(
      p, sizes, [mapped](void* q) { munmap(q, static_cast<size_t>(mapped)); }, opts);
}

std::string TransparentHugePageMode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto open = line.find('['), close = line.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  return line.substr(open + 1, close - open - 1);
}

bool HugePagesAllowed() {
  const std::string mode = TransparentHugePageMode();
  if (mode != "always" && mode != "madvise") return false;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("THP_enabled:", 0) == 0) return line.find('1', 12) != std::string::npos;
  return true;  // kernels before 5.0 do not report it
}

bool HugePageEligible(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2) {  // a mapping's "lo-hi perms ..."
      inside = addr >= lo && addr < hi;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) {
      std::istringstream v(line.substr(12));
      int eligible = 0;
      v >> eligible;
      return eligible == 1;
    }
  }
  return false;
}

}  // namespace emosweep::worker
