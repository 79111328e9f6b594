// worker/dataset.h: a job's data as tensors, loaded from feature stores.
//
// A Split is the rows named by one or more DataRefs, gathered into one
// contiguous [N, D] float tensor per modality, int64 labels (indices into
// JobSpec::labels; -1 for unlabelled target data) and the utterance ids.
// Stores are read once per process (StoreCache) and shared by every job that
// names them; each DataRef's corpus_hash is checked against the store, and a
// label outside the job's class list is an error naming the utterance.
// Thread-safety: StoreCache is internally locked; a Split is owned by one job.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "data/corpus.h"
#include "worker/job.h"

namespace emosweep::worker {

struct LoadedStore {
  data::Corpus corpus;
  std::string content_hash;
  std::unordered_map<std::string, int64_t> row_of;  // utterance id -> row
};

// Process-wide cache of opened stores: a sweep runs many jobs over the same
// few corpora, and reading HDF5 per job would dominate short jobs.
class StoreCache {
 public:
  static StoreCache& Process();
  Result<std::shared_ptr<const LoadedStore>> Get(const std::string& path);
  void Clear();

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const LoadedStore>> stores_;
};

struct Split {
  std::map<std::string, torch::Tensor> inputs;  // modality -> [N, D] float32
  torch::Tensor labels;                         // [N] int64
  std::vector<std::string> ids;
  // Where the rows came from, in row order: (store path, row count) per DataRef.
  std::vector<std::pair<std::string, int64_t>> parts;
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// Per-dimension standardisation of one modality: x <- (x - mean) * inv_std.
struct NormStats {
  torch::Tensor mean, inv_std;  // [D] float32
};
using ModalityStats = std::map<std::string, NormStats>;

// Mean and population std over the rows of `split`; a dimension whose std is
// below 1e-8 (constant) gets inv_std 1 so that it becomes 0, not inf.
ModalityStats StatsOf(const Split& split);
// The same over every utterance of a store's feature sets (labels unused).
Result<ModalityStats> StoreStats(const std::string& store, const std::map<std::string, std::string>& features);
// Standardises rows [begin, end) of every modality of `split` in place.
Status Standardize(Split* split, const ModalityStats& stats, int64_t begin, int64_t end, const std::string& where);

// `features`: modality -> feature-set name (JobSpec::features). `labelled`:
// false for target_unlabeled (labels become -1 and are never read).
Result<Split> LoadSplit(const std::vector<DataRef>& refs, const std::map<std::string, std::string>& features,
                        const std::vector<std::string>& labels, bool labelled, const std::string& what);

// In-memory variant used by LoadSplit (and by tests that build corpora directly).
Result<Split> SplitFromCorpus(const data::Corpus& corpus, const std::vector<std::string>& ids,
                              const std::map<std::string, std::string>& features,
                              const std::vector<std::string>& labels, bool labelled, const std::string& where);

Split ConcatSplits(const std::vector<Split>& parts);

}  // namespace emosweep::worker
