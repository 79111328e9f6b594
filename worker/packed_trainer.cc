// worker/packed_trainer.cc: K MLP jobs trained as one batched model (see packed_trainer.h): which packs
// the batched trainer takes, and PackedTrainer::Run, the pack's epoch loop. The other steps live in the
// packed_*.cc files listed in packed_trainer_internal.h.
#include "worker/packed_trainer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cluster/reducer.h"
#include "core/hash.h"
#include "core/log.h"
#include "jobs/pack.h"
#include "worker/da_selection.h"
#include "worker/packed_trainer_internal.h"
#include "worker/trainer.h"

namespace emosweep::worker::packed {

std::atomic<bool> g_device_path_for_test{false};
std::function<at::Generator(uint64_t seed)> g_member_generator_for_test;

std::vector<Result<JobResult>> PackedTrainer::Run() {
  const JobContext& c0 = contexts_[0];
  members_.resize(specs_.size());
  // Threads: contexts[0]'s (or member 0's train.threads), as RunJob would set them.
  for (size_t i = 0; i < specs_.size(); ++i) {
    Member& m = members_[i];
    m.spec = &specs_[i];
    m.ctx = &contexts_[i];
    m.index = i;
  }
  {
    auto cfg0 = ParseTrainConfig(specs_[0].train_config, "train_config");
    threads_ = cfg0.ok() && cfg0->threads > 0 ? cfg0->threads : std::max(1, c0.threads);
  }
  at::set_num_threads(threads_);
  reducer_name_ = cluster::MakeLocalReducer()->backend();
  // The pack's device (PackedTrainerSupports: every member's), with its index: "cuda" is the current GPU.
  dev_ = torch::Device(c0.device);
  if (!dev_.is_cpu() && !dev_.has_index()) dev_ = torch::empty({0}, torch::TensorOptions().device(dev_)).device();
  device_path_ = !dev_.is_cpu() || g_device_path_for_test;
  {
    std::vector<std::string> ids;
    for (const auto& s : specs_) ids.push_back(s.id.empty() ? s.ComputeId() : s.id);
    std::sort(ids.begin(), ids.end());
    pack_id_ = HashJson(ids);
  }
  for (Member& m : members_) {
    Status st = Setup(m);
    if (!st.ok()) {
      // The single path reports the same problem (and anything this code does not expect runs as it would alone).
      m.result = RunJob(*m.spec, *m.ctx);
      at::set_num_threads(threads_);
      m.done = true;
      continue;
    }
    m.slot = static_cast<int>(packed_.size());
    packed_.push_back(&m);
  }
  std::vector<Result<JobResult>> out;
  auto collect = [&]() {
    for (Member& m : members_) out.push_back(std::move(m.result));
    return out;
  };
  if (packed_.empty()) return collect();
  if (Status st = BuildPack(); !st.ok()) {
    LOG_WARN << "pack: " << st.ToString() << "; running its members one after another";
    for (Member* m : packed_) {
      m->result = RunJob(*m->spec, *m->ctx);
      at::set_num_threads(threads_);
    }
    return collect();
  }
  {
    std::vector<const torch::Tensor*> tx, ty, vx, vy, ux, uy;
    const torch::Tensor none_x = torch::empty({0, mlp_.layers.front().in}), none_y = torch::empty({0}, torch::kLong);
    std::vector<torch::Tensor> no_labels;  // the target's labels are never read: row counts only
    for (Member* m : packed_) no_labels.push_back(torch::zeros({m->target.size()}, torch::kLong));
    for (Member* m : packed_) {
      tx.push_back(m->train.size() ? &m->train_x : &none_x);
      ty.push_back(m->train.size() ? &m->train.labels : &none_y);
      vx.push_back(m->val.size() ? &m->val_x : &none_x);
      vy.push_back(m->val.size() ? &m->val.labels : &none_y);
      ux.push_back(m->adapter ? &m->target_x : &none_x);
      uy.push_back(m->adapter ? &no_labels[static_cast<size_t>(m->slot)] : &none_y);
    }
    train_pool_ = MakePool(tx, ty, dev_);
    val_pool_ = MakePool(vx, vy, dev_);
    target_pool_ = MakePool(ux, uy, dev_);
  }
  if (device_path_) {
    const int k = static_cast<int>(packed_.size());
    const int64_t c = static_cast<int64_t>(packed_[0]->num_classes);
    class_w_ = torch::ones({k, c});
    std::vector<float> eps;
    for (Member* m : packed_) {
      if (m->class_weights.defined()) class_w_[m->slot].copy_(m->class_weights.to(torch::kCPU, torch::kFloat));
      eps.push_back(static_cast<float>(m->cfg.label_smoothing));
    }
    class_w_ = class_w_.to(dev_);
    smoothing_ = torch::tensor(eps, torch::kFloat).to(dev_);
    exp_avg_ = torch::zeros({k, stride_}, params_.options());
    exp_avg_sq_ = torch::zeros({k, stride_}, params_.options());
  }
  for (Member* m : packed_) {
    if (device_path_ && (m->cfg.optimizer == "adam" || m->cfg.optimizer == "adamw"))
      m->opt = std::make_unique<FusedOptimizer>(
          m->row.get(), m->cfg,
          FusedOptimizer::StateViews{exp_avg_[m->slot].narrow(0, 0, p_), exp_avg_sq_[m->slot].narrow(0, 0, p_), {}});
    else
      m->opt = std::make_unique<FusedOptimizer>(m->row.get(), m->cfg);
    m->sched = std::make_unique<Schedule>(m->cfg, m->steps_per_epoch * m->cfg.epochs);
    m->opt->set_lr(m->sched->lr());
    if (m->sched->cycles_momentum()) m->opt->set_momentum(m->sched->momentum());
    if (Status st = MaybeResume(*m); !st.ok()) Fail(*m, st);
    m->resumed_from = m->start_epoch;
    m->epochs_run = m->start_epoch;
  }
  int epochs = 0, first = std::numeric_limits<int>::max();
  for (Member* m : packed_) {
    if (m->done) continue;
    epochs = std::max(epochs, m->training ? m->cfg.epochs : 0);
    first = std::min(first, m->start_epoch);
  }
  // Members with nothing to train (eval jobs, or resumed at their last epoch) finish first.
  {
    std::vector<Member*> fin;
    for (Member* m : packed_)
      if (!m->done && (!m->training || m->start_epoch >= m->cfg.epochs)) fin.push_back(m);
    Finish(fin);
  }
  for (int epoch = first; epoch < epochs; ++epoch) {
    std::vector<Member*> act;
    for (Member* m : packed_)
      if (!m->done && m->start_epoch <= epoch && epoch < m->cfg.epochs) act.push_back(m);
    if (act.empty()) continue;
    const auto t_epoch = Clock::now();
    for (Member* m : act) {
      m->rec = EpochRecord();
      m->rec.epoch = epoch;
      m->rec.lr = m->opt->lr();
      m->rec.val_loss = std::nan("");
    }
    TrainEpoch(epoch, act);
    std::vector<Member*> alive;
    for (Member* m : act) {
      const double tl = m->rec.train_loss;
      if (m->count > 0 && !std::isfinite(tl)) {
        Fail(*m, DivergedError(m->where, tl, epoch));
        continue;
      }
      m->sched->StepEpoch();
      m->opt->set_lr(m->sched->lr());
      m->stopped_early = false;
      // Per-epoch DA diagnostics (training-side means + an eval-mode pass over the unlabeled target): trainer.cc's
      // own function (EpochDaDiagnostics, da_selection.cc) on the member's single model, its parameters copied
      // from its row.
      m->da = nlohmann::json::object();
      if (m->target.size() > 0) {
        m->PullRow();
        m->da = EpochDaDiagnostics(*m->model, m->train, m->val, m->target, m->da_train, m->spec->selection,
                                   m->cfg.batch_size, torch::Device(torch::kCPU));
      }
      alive.push_back(m);
    }
    {
      std::vector<Member*> val;
      for (Member* m : alive)
        if ((epoch + 1) % m->cfg.eval_every == 0 || epoch + 1 == m->cfg.epochs) val.push_back(m);
      Validate(epoch, val);
    }
    for (Member* m : alive) {
      if (m->done) continue;  // failed in validation
      if (!m->da.empty()) {
        if (!m->rec.val_metrics.is_object()) m->rec.val_metrics = nlohmann::json::object();
        m->rec.val_metrics["da"] = m->da;
      }
      m->rec.seconds = Since(t_epoch);
      m->curve.push_back(m->rec);
      m->epochs_run = epoch + 1;
      if (m->ctx->on_epoch) m->ctx->on_epoch(m->rec);
    }
    // As the single path: the stop flag is read after the epoch's progress callbacks.
    bool preempt = false;
    for (const auto& ctx : contexts_) preempt |= ctx.stop_requested && ctx.stop_requested->load();
    std::vector<Member*> fin;
    const bool write_due = Since(last_state_write_) > 60;
    for (Member* m : alive) {
      if (m->done) continue;
      if (m->stopped_early || epoch + 1 == m->cfg.epochs) {
        // Preempted at its last epoch, the single path still saves and aborts.
        if (!m->stopped_early && preempt) {
        } else {
          fin.push_back(m);
          continue;
        }
      }
      if (preempt || write_due) {
        if (Status st = WriteState(*m, epoch + 1); !st.ok()) {
          Fail(*m, st);
          continue;
        }
      }
      if (preempt)
        Fail(*m, Status::Aborted(m->where + ": stopped on request after epoch " + std::to_string(epoch + 1) +
                                 "; state saved to " + m->state_path));
    }
    if (preempt || write_due) last_state_write_ = Clock::now();
    Finish(fin);
    if (preempt) {
      // Members resumed at a later epoch than the pack had reached keep the state they resumed from.
      for (Member* m : packed_)
        if (!m->done)
          Fail(*m, Status::Aborted(m->where + ": stopped on request before its epoch " +
                                   std::to_string(m->start_epoch + 1) + "; state kept in " + m->state_path));
      break;
    }
  }
  for (Member* m : packed_)
    if (!m->done) Fail(*m, Status::Internal(m->where + ": the pack ended without finishing this member"));
  return collect();
}

}  // namespace emosweep::worker::packed

namespace emosweep::worker {
namespace {

bool IsMlpFamily(const JobSpec& s) {
  const std::string name = s.model.is_object() ? s.model.value("name", std::string()) : std::string();
  return name == "concat_mlp" || name == "unimodal_mlp";
}

}  // namespace

bool PackedTrainerSupports(const std::vector<JobSpec>& members, const std::vector<JobContext>& contexts,
                           std::string* why) {
  auto no = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  if (members.size() < 2) return no("fewer than 2 members");
  if (contexts.size() != members.size()) return no("one context per member needed");
  for (size_t i = 0; i < members.size(); ++i) {
    const JobSpec& s = members[i];
    const JobContext& c = contexts[i];
    if (!IsMlpFamily(s)) return no("model family other than concat_mlp / unimodal_mlp");
    if (s.kind != "supervised" && s.kind != "pretrain" && s.kind != "finetune" && s.kind != "eval" && s.kind != "adapt")
      return no("job kind '" + s.kind + "'");
    if (!s.adapt.empty()) {
      const std::string v = s.adapt.value("variant", std::string());
      if (!jobs::PackableAdaptVariant(v)) return no("adaptation variant '" + v + "'");
    }
    // The DA variant and its settings (all but its weight) agree: every member adapts the same way, or none does.
    nlohmann::json a0 = members[0].adapt.is_object() ? members[0].adapt.tree() : nlohmann::json::object();
    nlohmann::json ai = s.adapt.is_object() ? s.adapt.tree() : nlohmann::json::object();
    a0.erase("weight");
    ai.erase("weight");
    if (a0 != ai) return no("members' adaptation differs (beyond its weight)");
    if (s.selection != "source_val" && s.selection != "target_val" && s.selection != "last" && s.selection != "dev" &&
        s.selection != "im" && s.selection != "snd")
      return no("selection '" + s.selection + "'");
    if (c.device != contexts[0].device) return no("members' devices differ");
    if (c.device != "cpu" && c.device.rfind("cuda", 0) != 0) return no("device " + c.device);
    if (c.reducer) return no("a data-parallel group");
    if (s.kind != members[0].kind) return no("members' kinds differ");
    // What shapes the batched model, the step count or the evaluation batches must agree (jobs::PackKey).
    auto cfg = ParseTrainConfig(s.train_config, "train_config");
    auto cfg0 = ParseTrainConfig(members[0].train_config, "train_config");
    if (!cfg.ok() || !cfg0.ok()) return no("bad train config");
    if (cfg->batch_size != cfg0->batch_size || cfg->epochs != cfg0->epochs || cfg->drop_last != cfg0->drop_last ||
        cfg->freeze != cfg0->freeze || cfg->threads != cfg0->threads)
      return no("members differ in batch_size, epochs, drop_last, freeze or threads");
    nlohmann::json m0 = members[0].model, mi = s.model;
    if (m0.is_object()) m0.erase("dropout");
    if (mi.is_object()) mi.erase("dropout");
    if (m0 != mi) return no("members' models differ (beyond dropout)");
  }
  return true;
}

void SetPackedDevicePathForTest(bool on) { packed::g_device_path_for_test = on; }

std::vector<Result<JobResult>> RunPackedTrainer(const std::vector<JobSpec>& members,
                                                const std::vector<JobContext>& contexts) {
  packed::PackedTrainer t(members, contexts);
  return t.Run();
}

}  // namespace emosweep::worker
