// worker/trainer_state.cc: shuffling, early-stopping state, records (see trainer_state.h).
#include "worker/trainer_state.h"

#include <cmath>
#include <sstream>

namespace emosweep::worker {

double IndexShuffler::Uniform() { return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0); }

void IndexShuffler::Shuffle(std::vector<int64_t>& v) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng_() % i);  // bias < 2^-40 for any realistic size
    std::swap(v[i - 1], v[j]);
  }
}

std::vector<int64_t> IndexShuffler::BalancedSample(const std::vector<int64_t>& labels, int num_classes, int64_t n) {
  std::vector<std::vector<int64_t>> by_class(num_classes);
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= 0 && labels[i] < num_classes) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  std::vector<int> present;
  for (int c = 0; c < num_classes; ++c)
    if (!by_class[c].empty()) present.push_back(c);
  std::vector<int64_t> out;
  out.reserve(n);
  // Equal class probability, then a uniform member: the same distribution as
  // WeightedRandomSampler with weights 1/count(class).
  for (int64_t k = 0; k < n && !present.empty(); ++k) {
    const auto& members = by_class[present[static_cast<size_t>(Uniform() * present.size())]];
    out.push_back(members[static_cast<size_t>(Uniform() * members.size())]);
  }
  return out;
}

std::string IndexShuffler::State() const {
  std::ostringstream os;
  os << rng_;
  return os.str();
}

bool IndexShuffler::LoadState(const std::string& s) {
  std::istringstream is(s);
  is >> rng_;
  return !is.fail();
}

nlohmann::json EarlyStopState::ToJson() const {
  return {{"have_best", have_best}, {"best_tier", best_tier}, {"best_value", have_best ? best_value : 0.0},
          {"best_epoch", best_epoch}, {"bad_evals", bad_evals}};
}

EarlyStopState EarlyStopState::FromJson(const nlohmann::json& j) {
  EarlyStopState s;
  s.have_best = j.value("have_best", false);
  s.best_tier = j.value("best_tier", 0);
  s.best_value = j.value("best_value", 0.0);
  s.best_epoch = j.value("best_epoch", -1);
  s.bad_evals = j.value("bad_evals", 0);
  return s;
}

nlohmann::json EpochRecordToJson(const EpochRecord& r) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"epoch", r.epoch},  {"train_loss", num(r.train_loss)}, {"val_loss", num(r.val_loss)},
          {"val_metrics", r.val_metrics}, {"lr", r.lr}, {"seconds", r.seconds}};
}

EpochRecord EpochRecordFromJson(const nlohmann::json& j) {
  auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::nan(""); };
  EpochRecord r;
  r.epoch = j.value("epoch", 0);
  r.train_loss = num(j["train_loss"]);
  r.val_loss = num(j["val_loss"]);
  r.val_metrics = j.value("val_metrics", nlohmann::json());
  r.lr = j.value("lr", 0.0);
  r.seconds = j.value("seconds", 0.0);
  return r;
}

uint64_t DeriveSeed(uint64_t job_seed, uint64_t purpose) {
  uint64_t z = job_seed + 0x9E3779B97F4A7C15ull * (purpose + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace emosweep::worker
