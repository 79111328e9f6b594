// worker/packed_state.cc: a pack member's resume state (packed_trainer_internal.h): read and written in the single
// job's format (trainer_resume.cc's MaybeResume / WriteState), so that a member resumes packed or alone.
#include "worker/packed_trainer_internal.h"

#include <filesystem>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/files.h"
#include "core/log.h"
#include "worker/checkpoint.h"

namespace emosweep::worker::packed {

Status PackedTrainer::MaybeResume(Member& m) {
  const std::string& path = m.state_path;
  if (path.empty() || !FileExists(path)) return Status::Ok();
  Result<Checkpoint> read = ReadCheckpoint(path);
  Status usable = read.ok() ? CheckJobStateMeta(read->meta, m.cfg.epochs, path) : read.status();
  if (!usable.ok())  // every later run would fail the same way: say how to get past it
    return Status(usable.code(), usable.message() + " (the job's saved state: delete it to start the job over)");
  Checkpoint c = std::move(read).value();
  const auto& meta = c.meta;
  if (meta["job_id"].get<std::string>() != m.id)
    return Status::Corruption(path + ": checkpoint belongs to job " + meta["job_id"].get<std::string>());
  // A pack is one process with no data-parallel group: a world of one, as the single path's.
  const std::string differs = StateConditionsDiffer(meta, StateConditions(at::get_num_threads(), 1));
  if (!differs.empty()) {
    LOG_WARN << m.log_where << ": its saved state (epoch " << meta["next_epoch"].get<int>() << ") was computed with "
             << differs << "; the result depends on these, so the job starts over from epoch 0 instead of mixing "
             << "them; the saved state stays until this run saves its own (within a minute): to continue it instead, stop "
             << "now and re-run with the earlier setting (" << path << ")";
    return Status::Ok();
  }
  ES_RETURN_IF_ERROR(LoadModuleState(c, *m.root, "", /*strict=*/true, path));
  {
    // The model's parameters load into its own buffer (copied into the row here), a discriminator's straight
    // into the row.
    torch::NoGradGuard g;
    if (m.adapter_params.empty()) {
      m.row->params().copy_(m.own->params());
    } else {
      const auto [off, n] = m.own->Span("model.");
      m.row->params().narrow(0, off, n).copy_(m.own->params().narrow(0, off, n));
    }
  }
  std::vector<std::pair<std::string, torch::Tensor>> opt_state;
  for (const auto& [n, t] : c.tensors)
    if (n.rfind("optimizer.", 0) == 0) opt_state.emplace_back(n, t);
  ES_RETURN_IF_ERROR(m.opt->LoadState(meta["optimizer"], opt_state).WithContext(path));
  ES_RETURN_IF_ERROR(m.sched->LoadState(meta["schedule"]).WithContext(path));
  if (const torch::Tensor* b = c.Find("best.params")) m.best_params = b->clone().to(dev_);
  const torch::Tensor* rng = c.Find("rng.torch");
  if (!rng) return Status::Corruption(path + ": checkpoint lacks the torch RNG state");
  // The member's dropout stream: on the CPU the torch state itself, on a GPU that device's ("rng.cuda", as the
  // single job writes it there; a state without it keeps the stream's start).
  const torch::Tensor* mine = dev_.is_cpu() ? rng : c.Find("rng.cuda");
  if (mine) {
    at::Generator& gen = m.gen.get();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(*mine);
  } else {
    LOG_WARN << m.log_where << ": " << path << " has no GPU RNG state; its dropout stream restarts";
  }
  if (!m.shuffle->LoadState(meta["shuffle_rng"]) || !m.target_shuffle->LoadState(meta["target_rng"]))
    return Status::Corruption(path + ": bad RNG state");
  m.target_order = meta["target_order"].get<std::vector<int64_t>>();
  m.target_cursor = meta["target_cursor"];
  m.es = EarlyStopState::FromJson(meta["early_stop"]);
  m.step = meta["step"];
  m.start_epoch = meta["next_epoch"];
  m.curve.clear();
  for (const auto& r : meta["curve"]) m.curve.push_back(EpochRecordFromJson(r));
  m.opt->set_lr(m.sched->lr());
  if (m.sched->cycles_momentum()) m.opt->set_momentum(m.sched->momentum());
  LOG_INFO << m.log_where << ": resuming at epoch " << m.start_epoch << " from " << path << " (pack member)";
  return Status::Ok();
}

// trainer_resume.cc's WriteState: the single job's format, so that the member resumes packed or alone.
Status PackedTrainer::WriteState(Member& m, int next_epoch) {
  if (m.state_path.empty()) return Status::Ok();
  m.PullRow();
  Checkpoint c;
  AddModuleState(c, *m.root, "");
  for (auto& [n, t] : m.opt->StateTensors()) c.Add(n, t);
  if (m.best_params.defined()) c.Add("best.params", m.best_params);
  {
    at::Generator& gen = m.gen.get();
    std::lock_guard<std::mutex> lock(gen.mutex());
    if (dev_.is_cpu()) {
      c.Add("rng.torch", gen.get_state());
    } else {  // trainer_resume.cc's layout on a GPU: the (unused) CPU stream, the dropout stream as "rng.cuda"
      at::Generator cpu = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock_cpu(cpu.mutex());
      c.Add("rng.torch", cpu.get_state());
      c.Add("rng.cuda", gen.get_state());
    }
  }
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& r : m.curve) curve.push_back(EpochRecordToJson(r));
  c.meta = {{"job_id", m.id},
            {"next_epoch", next_epoch},
            {"step", m.step},
            {"optimizer", m.opt->StateMeta()},
            {"schedule", m.sched->State()},
            {"early_stop", m.es.ToJson()},
            {"shuffle_rng", m.shuffle->State()},
            {"target_rng", m.target_shuffle->State()},
            {"target_order", m.target_order},
            {"target_cursor", m.target_cursor},
            {"curve", curve},
            {"conditions", StateConditions(at::get_num_threads(), 1)}};
  ES_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(m.state_path).parent_path().string()));
  return WriteCheckpoint(m.state_path, c);
}

}  // namespace emosweep::worker::packed
