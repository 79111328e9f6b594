#include "orchestrator/slice.h"

#include <cstdlib>
#include <map>
#include <numeric>

namespace emosweep::orchestrator {
namespace {

int Find(std::vector<int>& parent, int x) {
  while (parent[static_cast<size_t>(x)] != x) x = parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
  return x;
}

}  // namespace

Status ParseSlice(const std::string& text, int* index, int* count) {
  auto slash = text.find('/');
  char* end1 = nullptr;
  char* end2 = nullptr;
  if (slash != std::string::npos) {
    *index = static_cast<int>(std::strtol(text.c_str(), &end1, 10));
    *count = static_cast<int>(std::strtol(text.c_str() + slash + 1, &end2, 10));
  }
  if (slash == std::string::npos || end1 != text.c_str() + slash || *end2 != '\0' || *count < 1 || *index < 0 ||
      *index >= *count)
    return Status::InvalidArgument("--slice must be I/N with 0 <= I < N, got '" + text + "'");
  return Status::Ok();
}

std::vector<protocols::PlannedJob> SliceJobs(const std::vector<protocols::PlannedJob>& jobs, int index, int count) {
  std::map<std::string, int> pos;
  for (size_t i = 0; i < jobs.size(); ++i) pos[jobs[i].spec.id] = static_cast<int>(i);
  std::vector<int> parent(jobs.size());
  std::iota(parent.begin(), parent.end(), 0);
  for (size_t i = 0; i < jobs.size(); ++i)
    for (const auto& d : jobs[i].deps) {
      auto it = pos.find(d);
      if (it != pos.end()) parent[static_cast<size_t>(Find(parent, static_cast<int>(i)))] = Find(parent, it->second);
    }
  // Components numbered in order of their first job; dealt round-robin.
  std::map<int, int> component_number;
  std::vector<protocols::PlannedJob> out;
  for (size_t i = 0; i < jobs.size(); ++i) {
    int root = Find(parent, static_cast<int>(i));
    auto it = component_number.find(root);
    if (it == component_number.end()) it = component_number.emplace(root, static_cast<int>(component_number.size())).first;
    if (it->second % count == index) out.push_back(jobs[i]);
  }
  return out;
}

}  // namespace emosweep::orchestrator
