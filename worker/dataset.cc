// worker/dataset.cc: feature-store rows → tensors (see dataset.h).
#include "worker/dataset.h"

#include <cstring>

#include "data/feature_store.h"

namespace emosweep::worker {

StoreCache& StoreCache::Process() {
  static StoreCache cache;
  return cache;
}

void StoreCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  stores_.clear();
}

Result<std::shared_ptr<const LoadedStore>> StoreCache::Get(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = stores_.find(path);
  if (it != stores_.end()) return it->second;
  auto s = std::make_shared<LoadedStore>();
  ES_ASSIGN_OR_RETURN(data::StoreInfo info, data::ReadStoreInfo(path));
  ES_ASSIGN_OR_RETURN(s->corpus, data::ReadFeatureStore(path));
  s->content_hash = info.content_hash;
  for (size_t i = 0; i < s->corpus.utterances.size(); ++i)
    s->row_of.emplace(s->corpus.utterances[i].id, static_cast<int64_t>(i));
  stores_[path] = s;
  return std::shared_ptr<const LoadedStore>(s);
}

namespace {

Result<Split> Gather(const data::Corpus& corpus, const std::unordered_map<std::string, int64_t>* row_of,
                     const std::vector<std::string>& ids, const std::map<std::string, std::string>& features,
                     const std::vector<std::string>& labels, bool labelled, const std::string& where) {
  std::vector<int64_t> rows;
  rows.reserve(ids.size());
  std::unordered_map<std::string, int64_t> local;
  if (!row_of) {
    for (size_t i = 0; i < corpus.utterances.size(); ++i) local.emplace(corpus.utterances[i].id, static_cast<int64_t>(i));
    row_of = &local;
  }
  for (const auto& id : ids) {
    auto it = row_of->find(id);
    if (it == row_of->end()) return Status::NotFound(where + ": utterance '" + id + "' is not in the store");
    rows.push_back(it->second);
  }
  Split s;
  s.ids = ids;
  const int64_t n = static_cast<int64_t>(rows.size());
  s.labels = torch::full({n}, -1, torch::kLong);
  if (labelled) {
    std::map<std::string, int64_t> index;
    for (size_t i = 0; i < labels.size(); ++i) index[labels[i]] = static_cast<int64_t>(i);
    int64_t* l = s.labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const auto& u = corpus.utterances[rows[i]];
      auto it = index.find(u.label);
      if (it == index.end()) {
        std::string all;
        for (const auto& x : labels) all += (all.empty() ? "" : ", ") + x;
        return Status::InvalidArgument(where + ": utterance '" + u.id + "' has label '" + u.label +
                                       "', which is not among the job's classes (" + all + ")");
      }
      l[i] = it->second;
    }
  }
  for (const auto& [modality, set] : features) {
    const data::FeatureSet* fs = corpus.FindFeature(set);
    if (!fs) {
      std::string have;
      for (const auto& f : corpus.features) have += (have.empty() ? "" : ", ") + f.name;
      return Status::NotFound(where + ": feature set '" + set + "' (" + modality + ") not in the store (has: " +
                              (have.empty() ? "none" : have) + ")");
    }
    torch::Tensor t = torch::empty({n, fs->dim}, torch::kFloat);
    float* dst = t.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * fs->dim, fs->row(rows[i]), sizeof(float) * fs->dim);
    s.inputs[modality] = t;
  }
  return s;
}

}  // namespace

Result<Split> SplitFromCorpus(const data::Corpus& corpus, const std::vector<std::string>& ids,
                              const std::map<std::string, std::string>& features,
                              const std::vector<std::string>& labels, bool labelled, const std::string& where) {
  return Gather(corpus, nullptr, ids, features, labels, labelled, where);
}

Split ConcatSplits(const std::vector<Split>& parts) {
  if (parts.size() == 1) return parts[0];
  Split s;
  std::vector<torch::Tensor> labels;
  std::map<std::string, std::vector<torch::Tensor>> inputs;
  for (const auto& p : parts) {
    labels.push_back(p.labels);
    for (const auto& [m, t] : p.inputs) inputs[m].push_back(t);
    s.ids.insert(s.ids.end(), p.ids.begin(), p.ids.end());
    s.parts.insert(s.parts.end(), p.parts.begin(), p.parts.end());
  }
  s.labels = labels.empty() ? torch::empty({0}, torch::kLong) : torch::cat(labels);
  for (auto& [m, ts] : inputs) s.inputs[m] = torch::cat(ts);
  return s;
}

Result<Split> LoadSplit(const std::vector<DataRef>& refs, const std::map<std::string, std::string>& features,
                        const std::vector<std::string>& labels, bool labelled, const std::string& what) {
  std::vector<Split> parts;
  for (const auto& ref : refs) {
    const std::string where = what + " (" + ref.store + ")";
    ES_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStore> store, StoreCache::Process().Get(ref.store));
    if (!ref.corpus_hash.empty() && ref.corpus_hash != store->content_hash)
      return Status::FailedPrecondition(where + ": store content hash " + store->content_hash.substr(0, 12) +
                                        " differs from the job's " + ref.corpus_hash.substr(0, 12) +
                                        " (the store changed since the job was planned)");
    ES_ASSIGN_OR_RETURN(Split s, Gather(store->corpus, &store->row_of, ref.ids, features, labels, labelled, where));
    s.parts = {{ref.store, s.size()}};
    parts.push_back(std::move(s));
  }
  if (parts.empty()) return Split{};
  // Every part must provide the same modalities with the same dimensions.
  for (const auto& p : parts)
    for (const auto& [m, t] : p.inputs)
      if (t.size(1) != parts[0].inputs.at(m).size(1))
        return Status::InvalidArgument(what + ": modality '" + m + "' has dimension " + std::to_string(t.size(1)) +
                                       " in one store and " + std::to_string(parts[0].inputs.at(m).size(1)) +
                                       " in another");
  return ConcatSplits(parts);
}

namespace {

NormStats StatsOfRows(const torch::Tensor& x) {
  torch::NoGradGuard g;
  auto xd = x.to(torch::kDouble);
  auto mean = xd.mean(0);
  auto sd = xd.var(0, /*unbiased=*/false).sqrt();
  auto inv = torch::where(sd < 1e-8, torch::ones_like(sd), 1.0 / sd.clamp_min(1e-8));
  return {mean.to(torch::kFloat), inv.to(torch::kFloat)};
}

}  // namespace

ModalityStats StatsOf(const Split& split) {
  ModalityStats out;
  for (const auto& [m, t] : split.inputs) out[m] = StatsOfRows(t);
  return out;
}

Result<ModalityStats> StoreStats(const std::string& store, const std::map<std::string, std::string>& features) {
  ES_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStore> s, StoreCache::Process().Get(store));
  ModalityStats out;
  for (const auto& [modality, set] : features) {
    const data::FeatureSet* fs = s->corpus.FindFeature(set);
    if (!fs) return Status::NotFound(store + ": feature set '" + set + "' not in the store");
    auto x = torch::from_blob(const_cast<float*>(fs->values.data()), {fs->rows(), fs->dim}, torch::kFloat);
    out[modality] = StatsOfRows(x);
  }
  return out;
}

Status Standardize(Split* split, const ModalityStats& stats, int64_t begin, int64_t end, const std::string& where) {
  torch::NoGradGuard g;
  for (auto& [m, t] : split->inputs) {
    auto it = stats.find(m);
    if (it == stats.end()) return Status::InvalidArgument(where + ": no standardisation statistics for '" + m + "'");
    if (it->second.mean.numel() != t.size(1))
      return Status::InvalidArgument(where + ": standardisation statistics of '" + m + "' have dimension " +
                                     std::to_string(it->second.mean.numel()) + ", the data " +
                                     std::to_string(t.size(1)));
    if (end <= begin) continue;
    auto rows = t.narrow(0, begin, end - begin);
    rows.sub_(it->second.mean.to(t.device())).mul_(it->second.inv_std.to(t.device()));
  }
  return Status::Ok();
}

}  // namespace emosweep::worker
