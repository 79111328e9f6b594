#include "data/import/import_common.h"

#include <algorithm>
#include <unordered_set>

namespace emosweep::data {

Result<std::optional<std::string>> MapLabel(const LabelMap* map, const std::string& original,
                                            const std::string& where) {
  if (map) return map->Map(original, where);
  if (!IsCanonicalLabel(original))
    return Status::InvalidArgument(where + ": label '" + original +
                                   "' is not a canonical label; pass --label-map (a built-in map name or a file)");
  return std::optional<std::string>(original);
}

std::vector<std::string> PresentLabelsInOrder(const std::vector<Utterance>& utterances, const LabelMap* map) {
  std::unordered_set<std::string> present;
  for (const auto& u : utterances) present.insert(u.label);
  std::vector<std::string> out;
  for (const auto& l : map ? map->targets() : CanonicalLabels())
    if (present.erase(l)) out.push_back(l);
  // A map whose targets() misses a label it produces would lose it here; keep it, sorted for determinism.
  std::vector<std::string> rest(present.begin(), present.end());
  std::sort(rest.begin(), rest.end());
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

}  // namespace emosweep::data
