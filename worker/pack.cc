// worker/pack.cc: RunPack. Reference implementation: the members one after
// another through RunJob (the batched trainer replaces it for packable packs).
#include "worker/pack.h"

namespace emosweep::worker {

std::vector<Result<JobResult>> RunPack(const std::vector<JobSpec>& members, const std::vector<JobContext>& contexts) {
  std::vector<Result<JobResult>> out;
  out.reserve(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    if (i >= contexts.size()) {
      out.emplace_back(Status::InvalidArgument("RunPack: no context for member " + std::to_string(i)));
      continue;
    }
    out.push_back(RunJob(members[i], contexts[i]));
  }
  return out;
}

}  // namespace emosweep::worker
