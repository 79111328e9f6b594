// protocols/store_index.cc: opening the protocol's feature stores for expansion.
#include "protocols/store_index.h"

#include <algorithm>
#include <set>

#include "core/files.h"

namespace emosweep::protocols {
namespace {

Result<StoreView> OpenOne(const CorpusDecl& c) {
  StoreView v;
  v.corpus = c.name;
  v.path = c.path;
  auto info = data::ReadStoreInfo(c.path);
  if (!info.ok()) return info.status().WithContext(c.where + ": corpus '" + c.name + "'");
  v.info = std::move(info).value();
  if (v.info.features.empty())
    return Status::Corruption(c.path + ": the store has no feature set (corpus '" + c.name + "')");
  auto smallest = std::min_element(v.info.features.begin(), v.info.features.end(),
                                   [](const auto& a, const auto& b) { return a.dim < b.dim; });
  data::StoreReadOptions options;
  options.feature_sets = {smallest->name};
  auto corpus = data::ReadFeatureStore(c.path, options);
  if (!corpus.ok()) return corpus.status().WithContext(c.where + ": corpus '" + c.name + "'");
  v.meta = std::move(corpus).value();
  v.meta.features.clear();
  v.meta.features.shrink_to_fit();
  if (!c.label_map.empty()) {
    // Labels are mapped at import time; the protocol can only insist that
    // the store was imported with the map it expects.
    const auto& md = v.info.metadata;
    if (!md.is_object() || !md.contains("label_map") || !md["label_map"].is_string())
      return Status::FailedPrecondition(c.where + ": corpus '" + c.name + "' expects label map '" + c.label_map +
                                        "' but " + c.path +
                                        " records none (a synthetic store, or imported without a label map)");
    if (md["label_map"].get<std::string>() != c.label_map)
      return Status::FailedPrecondition(c.where + ": corpus '" + c.name + "' expects label map '" + c.label_map +
                                        "' but " + c.path + " was imported with '" +
                                        md["label_map"].get<std::string>() + "'");
  }
  return v;
}

}  // namespace

Result<StoreIndex> StoreIndex::Open(const ProtocolDecl& protocol) {
  StoreIndex index;
  std::set<std::string> used;
  for (const auto& e : protocol.experiments)
    for (const auto& c : e.Corpora()) used.insert(c);
  for (const auto& c : protocol.corpora) {
    if (!used.count(c.name)) continue;
    if (!FileExists(c.path)) {
      index.missing_.push_back(c.name + ": " + c.path);
      index.missing_names_[c.name] = true;
      continue;
    }
    ES_ASSIGN_OR_RETURN(StoreView v, OpenOne(c));
    index.views_.emplace(c.name, std::move(v));
  }
  return index;
}

const StoreView* StoreIndex::Find(const std::string& corpus) const {
  auto it = views_.find(corpus);
  return it == views_.end() ? nullptr : &it->second;
}

}  // namespace emosweep::protocols
