// worker/trainer_state.h: the pieces of training state that a checkpoint
// must carry for a resumed run to continue bitwise like an uninterrupted one.
//
// Internal to worker/ (trainer*.cc, packed_*.cc, checkpoint round-trips in tests).
// Thread-safety: plain values, one job.
#pragma once

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "worker/job.h"

namespace emosweep::worker {

// Seeded, portable index permutations: std::mt19937_64's output sequence is
// fixed by the standard, std::shuffle's use of it is not, so the shuffle is ours.
class IndexShuffler {
 public:
  explicit IndexShuffler(uint64_t seed) : rng_(seed) {}
  void Shuffle(std::vector<int64_t>& v);
  // `n` indices drawn with replacement, P(i) ∝ 1 / count(label_i) (class-balanced).
  std::vector<int64_t> BalancedSample(const std::vector<int64_t>& labels, int num_classes, int64_t n);
  std::string State() const;
  bool LoadState(const std::string& s);

 private:
  double Uniform();  // [0, 1) from 53 bits
  std::mt19937_64 rng_;
};

struct EarlyStopState {
  bool have_best = false;
  int best_tier = 0;  // unsupervised selection ranks by (tier, value): da_selection.h SelectionValue
  double best_value = 0;
  int best_epoch = -1;
  int bad_evals = 0;
  nlohmann::json ToJson() const;
  static EarlyStopState FromJson(const nlohmann::json& j);
};

nlohmann::json EpochRecordToJson(const EpochRecord& r);
EpochRecord EpochRecordFromJson(const nlohmann::json& j);

// Seeds derived from the job seed, one stream per purpose (SplitMix64 mixing,
// so that seed and seed+1 give unrelated streams).
uint64_t DeriveSeed(uint64_t job_seed, uint64_t purpose);

}  // namespace emosweep::worker
