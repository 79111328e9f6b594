// worker/packed_finish.cc: the end of a pack member's run (packed_trainer_internal.h): the selected epoch's
// parameters, the final evaluation of every set, the model checkpoint and the JobResult with its info.
#include "worker/packed_trainer_internal.h"
#include "core/cpu.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/files.h"
#include "core/log.h"
#include "worker/checkpoint.h"
#include "worker/da_selection.h"
#include "worker/trainer.h"

namespace emosweep::worker::packed {

// The end of trainer.cc's Run(): restore the selected epoch, evaluate every set, write the model.
void PackedTrainer::Finish(std::vector<Member*>& fin) {
  const auto t_eval = Clock::now();
  std::vector<EvalItem> items;
  if (fin.empty()) return;
  for (Member* m : fin) {
    const bool use_best = m->training && m->spec->selection != "last" && m->best_params.defined();
    if (use_best) {
      torch::NoGradGuard g;
      m->row->params().copy_(m->best_params);
    }
    const models::LossContext lctx = m->LossCtx(std::max(0, m->epochs_run - 1));
    if (m->val.size()) items.push_back({m, &m->val, &m->val_x, lctx, true, {}, Status::Ok(), {}, {}});
    for (const auto& [name, s] : m->evals)
      if (s.size()) items.push_back({m, &s, &m->eval_x.at(name), lctx, true, {}, Status::Ok(), {}, {}});
  }
  Evaluate(items);
  std::map<Member*, std::vector<EvalItem*>> by_member;
  for (auto& it : items) by_member[it.member].push_back(&it);
  for (Member* m : fin) {
    JobResult result;
    const bool use_best = m->training && m->spec->selection != "last" && m->best_params.defined();
    result.selected_epoch = use_best ? m->es.best_epoch : m->epochs_run - 1;
    result.curve = m->curve;
    Status st = Status::Ok();
    for (EvalItem* it : by_member[m]) {
      if (!it->status.ok()) {
        st = it->status;
        break;
      }
      const std::string name = it->split == &m->val ? "val" : [&] {
        for (const auto& [n, s] : m->evals)
          if (&s == it->split) return n;
        return std::string();
      }();
      EvalResult& r = result.evals[name];
      r.metrics = it->out.metrics.ToJson(true);
      RecordLoss(it->out, &r.metrics);
      r.predictions = std::move(it->out.predictions);
    }
    if (!st.ok()) {
      Fail(*m, st);
      continue;
    }
    // Empty eval sets: Evaluate's result for no rows (what the single path records).
    for (const auto& [name, s] : m->evals) {
      if (s.size()) continue;
      EvalOutput e;
      EvalResult& r = result.evals[name];
      r.metrics = e.metrics.ToJson(true);
      r.metrics["loss"] = e.loss;
    }
    if (m->spec->keep_checkpoint) {
      m->PullRow();
      Checkpoint c;
      AddModuleState(c, *m->model, "model.");
      if (m->cfg.feature_norm == "train")
        for (const auto& [mod, ns] : m->train_norm) {
          c.Add("input_norm." + mod + ".mean", ns.mean);
          c.Add("input_norm." + mod + ".inv_std", ns.inv_std);
        }
      c.meta = {{"job_id", m->id},
                {"model", m->spec->model},
                {"labels", m->spec->labels},
                {"selected_epoch", result.selected_epoch}};
      const std::string path = JobModelPath(m->ctx->work_dir, m->id);
      st = MakeDirs(std::filesystem::path(path).parent_path().string());
      if (st.ok()) st = WriteCheckpoint(path, c);
      if (!st.ok()) {
        Fail(*m, st);
        continue;
      }
      result.checkpoint = path;
    }
    RemoveJobState(m->state_path);
    int64_t params = 0;
    for (const auto& p : m->root->parameters()) params += p.numel();
    result.info = {{"parameters", params},
                   {"trainable_parameters", m->own->numel()},
                   {"threads", threads_},
                   {"cpu", CpuModelName()},
                   {"device", m->ctx->device},
                   {"world_size", 1},
                   {"reducer", reducer_name_},
                   {"selection", m->spec->selection},
                   {"selection_metric", m->cfg.metric},
                   {"oracle_selection", false},
                   {"selected_epoch", result.selected_epoch},
                   {"epochs_run", m->epochs_run},
                   {"stopped_early", m->stopped_early},
                   {"resumed_from_epoch", m->resumed_from},
                   {"optimizer_steps", m->step},
                   {"seconds_load", m->t_load},
                   {"seconds_train", std::chrono::duration<double>(t_eval - m->t_start).count() - m->t_load},
                   {"seconds_eval", Since(t_eval)},
                   {"seconds_total", Since(m->t_start)},
                   {"pack", {{"size", static_cast<int>(specs_.size())}, {"index", static_cast<int>(m->index)}, {"id", pack_id_}}}};
    if (nlohmann::json pv = m->model->Provenance(); !pv.is_null()) result.info["model"] = pv;
    DaSummary da = DaWarnings(m->curve, result.selected_epoch, m->spec->labels, m->spec->selection,
                              m->adapter && m->epochs_run > 0 ? m->adapter->lambda_max() : 0.0, m->da_lambda_seen,
                              m->step, m->adapter ? m->adapter->horizon_text(m->LossCtx(0)) : std::string(),
                              m->training && m->target.size() > 0);
    if (!da.da_selected.is_null()) result.info["da_selected"] = da.da_selected;
    if (!da.warnings.empty()) {
      result.info["warnings"] = da.warnings;
      for (const auto& w : da.warnings) LOG_WARN << m->log_where << ": " << w["message"].get<std::string>();
    }
    m->result = std::move(result);
    m->done = true;
    if (m->ctx->on_finished) m->ctx->on_finished(*m->result);
  }
}

}  // namespace emosweep::worker::packed
