// worker/trainer_resume.cc: a job's resume state (job_trainer_internal.h): written on preemption and once
// a minute, read back so that a resumed run continues bitwise like an uninterrupted one.
#include "worker/job_trainer_internal.h"

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/files.h"
#include "core/log.h"
#include "worker/checkpoint.h"

namespace emosweep::worker::internal {

Status Trainer::WriteState(int next_epoch) {
  // The group's ranks hold the same state: its rank 0 (the leader) writes it once.
  if (state_path_.empty() || reducer_->rank() != 0) return Status::Ok();
  Checkpoint c;
  AddModuleState(c, *m_.root, "");
  for (auto& [n, t] : opt_->StateTensors()) c.Add(n, t);
  if (best_params_.defined()) {
    c.Add("best.params", best_params_);
    for (size_t i = 0; i < best_buffers_.size(); ++i) c.Add("best.buffer." + std::to_string(i), best_buffers_[i]);
  }
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    c.Add("rng.torch", gen.get_state());
  }
  if (!device_.is_cpu()) {  // dropout on a GPU draws from that device's generator
    at::Generator gen = at::globalContext().defaultGenerator(device_);
    std::lock_guard<std::mutex> lock(gen.mutex());
    c.Add("rng.cuda", gen.get_state());
  }
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& r : curve_) curve.push_back(EpochRecordToJson(r));
  c.meta = {{"job_id", id_},
            {"next_epoch", next_epoch},
            {"step", step_},
            {"optimizer", opt_->StateMeta()},
            {"schedule", sched_->State()},
            {"early_stop", es_.ToJson()},
            {"shuffle_rng", shuffle_->State()},
            {"target_rng", target_shuffle_->State()},
            {"target_order", target_order_},
            {"target_cursor", target_cursor_},
            {"curve", curve},
            {"conditions", StateConditions(at::get_num_threads(), reducer_->size())}};
  ES_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(state_path_).parent_path().string()));
  ES_RETURN_IF_ERROR(WriteCheckpoint(state_path_, c));
  last_state_write_ = Clock::now();
  return Status::Ok();
}

Status Trainer::MaybeResume() {
  if (state_path_.empty() || !FileExists(state_path_)) return Status::Ok();
  Result<Checkpoint> read = ReadCheckpoint(state_path_);
  Status usable = read.ok() ? CheckJobStateMeta(read->meta, cfg_.epochs, state_path_) : read.status();
  if (!usable.ok())  // every later run would fail the same way: say how to get past it
    return Status(usable.code(), usable.message() + " (the job's saved state: delete it to start the job over)");
  Checkpoint c = std::move(read).value();
  const auto& meta = c.meta;
  if (meta["job_id"].get<std::string>() != id_)
    return Status::Corruption(state_path_ + ": checkpoint belongs to job " + meta["job_id"].get<std::string>());
  const std::string differs = StateConditionsDiffer(meta, StateConditions(at::get_num_threads(), reducer_->size()));
  if (!differs.empty()) {
    LOG_WARN << log_where_ << ": its saved state (epoch " << meta["next_epoch"].get<int>() << ") was computed with "
             << differs << "; the result depends on these, so the job starts over from epoch 0 instead of mixing "
             << "them; the saved state stays until this run saves its own (within a minute): to continue it instead, stop "
             << "now and re-run with the earlier setting (" << state_path_ << ")";
    return Status::Ok();
  }
  ES_RETURN_IF_ERROR(LoadModuleState(c, *m_.root, "", /*strict=*/true, state_path_));
  std::vector<std::pair<std::string, torch::Tensor>> opt_state;
  for (const auto& [n, t] : c.tensors)
    if (n.rfind("optimizer.", 0) == 0) opt_state.emplace_back(n, t);
  ES_RETURN_IF_ERROR(opt_->LoadState(meta["optimizer"], opt_state).WithContext(state_path_));
  ES_RETURN_IF_ERROR(sched_->LoadState(meta["schedule"]).WithContext(state_path_));
  if (const torch::Tensor* b = c.Find("best.params")) {
    best_params_ = b->to(device_);
    best_buffers_.clear();
    for (size_t i = 0;; ++i) {
      const torch::Tensor* t = c.Find("best.buffer." + std::to_string(i));
      if (!t) break;
      best_buffers_.push_back(t->to(device_));
    }
  }
  const torch::Tensor* rng = c.Find("rng.torch");
  if (!rng) return Status::Corruption(state_path_ + ": checkpoint lacks the torch RNG state");
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle sharing the default generator
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(*rng);
  }
  if (!device_.is_cpu()) {
    if (const torch::Tensor* cuda = c.Find("rng.cuda")) {
      at::Generator dev_gen = at::globalContext().defaultGenerator(device_);
      std::lock_guard<std::mutex> lock(dev_gen.mutex());
      dev_gen.set_state(*cuda);
    } else {
      LOG_WARN << log_where_ << ": " << state_path_ << " has no GPU RNG state; the dropout stream restarts";
    }
  }
  if (!shuffle_->LoadState(meta["shuffle_rng"]) || !target_shuffle_->LoadState(meta["target_rng"]))
    return Status::Corruption(state_path_ + ": bad RNG state");
  target_order_ = meta["target_order"].get<std::vector<int64_t>>();
  target_cursor_ = meta["target_cursor"];
  es_ = EarlyStopState::FromJson(meta["early_stop"]);
  step_ = meta["step"];
  start_epoch_ = meta["next_epoch"];
  curve_.clear();
  for (const auto& r : meta["curve"]) curve_.push_back(EpochRecordFromJson(r));
  opt_->set_lr(sched_->lr());
  if (sched_->cycles_momentum()) opt_->set_momentum(sched_->momentum());
  LOG_INFO << log_where_ << ": resuming at epoch " << start_epoch_ << " from " << state_path_;
  return Status::Ok();
}

}  // namespace emosweep::worker::internal
