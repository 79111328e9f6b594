// data/import/import_common.h: pieces shared by the table and pickle importers.
//
// Label mapping with or without a map, the corpus label order, and the
// report every import returns (printed by `emosweep data import --json`).
// Thread-safety: functions are reentrant.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/corpus.h"
#include "data/label_map.h"

namespace emosweep::data {

struct ImportReport {
  std::vector<std::string> sources;       // files read, in order
  int64_t records_read = 0;
  int64_t records_dropped = 0;            // dropped by the label map
  std::vector<std::string> ignored_keys;  // pickle keys / CSV columns not imported
  std::vector<std::string> notes;         // e.g. "speaker unknown for 551 utterances"
};

// Canonical label for `original`: through `map` when given (std::nullopt when
// the map drops it), else `original` must already be a canonical label.
// Errors name `where` and the label.
Result<std::optional<std::string>> MapLabel(const LabelMap* map, const std::string& original,
                                            const std::string& where);

// Label order of a corpus: the label map's targets (or the canonical taxonomy
// when there is no map) restricted to labels that occur.
std::vector<std::string> PresentLabelsInOrder(const std::vector<Utterance>& utterances, const LabelMap* map);

}  // namespace emosweep::data
