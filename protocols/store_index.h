// protocols/store_index.h: the feature stores a protocol names, opened once.
//
// Expansion needs each store's content hash (job identity), its feature sets
// (to check the protocol's `features`) and its utterance table (ids, labels,
// speakers: splits and few-shot subsets are computed from them). Feature
// values are not needed; only the smallest feature set is read because the
// store reader has no metadata-only mode. A store that does not exist is
// recorded as missing (not an error: `plan` reports it); a store that exists
// but cannot be read is an error naming the file.
// Thread-safety: built once, then read-only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/corpus.h"
#include "data/feature_store.h"
#include "protocols/grammar.h"

namespace emosweep::protocols {

struct StoreView {
  std::string corpus;       // name in the protocol
  std::string path;
  data::StoreInfo info;
  data::Corpus meta;        // utterances and label set; no feature values
};

class StoreIndex {
 public:
  // Opens every store the protocol's experiments use.
  static Result<StoreIndex> Open(const ProtocolDecl& protocol);

  const StoreView* Find(const std::string& corpus) const;  // nullptr when missing
  const std::vector<std::string>& missing() const { return missing_; }  // "name: path"
  bool IsMissing(const std::string& corpus) const { return missing_names_.count(corpus) > 0; }

 private:
  std::map<std::string, StoreView> views_;
  std::vector<std::string> missing_;
  std::map<std::string, bool> missing_names_;
};

}  // namespace emosweep::protocols
