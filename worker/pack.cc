// worker/pack.cc: RunPack. Packs the batched trainer supports (worker/packed_trainer.h) train
// as one batched model; any other pack, and K = 1, runs its members one after another through
// RunJob (the reference).
#include "worker/pack.h"

#include <optional>

#include "core/log.h"
#include "worker/packed_trainer.h"

namespace emosweep::worker {

std::vector<Result<JobResult>> RunPack(const std::vector<JobSpec>& members, const std::vector<JobContext>& contexts) {
  std::string why;
  // Members the batched trainer delivered (JobContext::on_finished) before a fault of its own keep that result:
  // the fallback below does not run them again (nor deliver them twice).
  std::vector<std::optional<JobResult>> delivered(members.size());
  if (members.size() >= 2 && contexts.size() == members.size() && PackedTrainerSupports(members, contexts, &why)) {
    std::vector<JobContext> watched = contexts;
    for (size_t i = 0; i < watched.size(); ++i)
      watched[i].on_finished = [&delivered, &contexts, i](const JobResult& r) {
        delivered[i] = r;
        if (contexts[i].on_finished) contexts[i].on_finished(r);
      };
    try {
      return RunPackedTrainer(members, watched);
    } catch (const c10::Error& e) {
      why = std::string("libtorch error: ") + e.what_without_backtrace();
    } catch (const std::exception& e) {
      why = e.what();
    }
    // A fault of the batched trainer itself: every member as a single job (results do not depend on the path).
    LOG_WARN << "pack of " << members.size() << ": the batched trainer failed (" << why
             << "); running its members one after another";
  }
  std::vector<Result<JobResult>> out;
  out.reserve(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    if (i >= contexts.size()) {
      out.emplace_back(Status::InvalidArgument("RunPack: no context for member " + std::to_string(i)));
      continue;
    }
    if (delivered[i]) {
      out.emplace_back(std::move(*delivered[i]));
      continue;
    }
    out.push_back(RunJob(members[i], contexts[i]));
  }
  return out;
}

}  // namespace emosweep::worker
