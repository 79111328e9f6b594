// worker/packed_eval.cc: batched evaluation of many (member, split) pairs and the per-epoch validation with
// model selection and early stopping (packed_trainer_internal.h).
#include "worker/packed_trainer_internal.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "jobs/metrics.h"
#include "models/losses.h"
#include "worker/da_selection.h"

namespace emosweep::worker::packed {
namespace {

double MetricValue(const EvalOutput& e, const std::string& metric) {
  return metric == "loss" ? e.loss : e.metrics.Get(metric);
}

}  // namespace

// evaluate.cc's Evaluate for many (member, split) pairs at once: batch i of every split, grouped by length.
void PackedTrainer::Evaluate(std::vector<EvalItem>& items, const Pool* by_slot) {
  std::vector<const torch::Tensor*> xs, ys;
  int64_t nmax = 0;
  for (auto& it : items) {
    xs.push_back(it.x);
    ys.push_back(&it.split->labels);
    nmax = std::max(nmax, it.split->size());
    it.labels.reserve(it.split->size());
    it.preds.reserve(it.split->size());
  }
  if (items.empty() || nmax == 0) return;
  Pool own;
  if (!by_slot) own = MakePool(xs, ys, dev_);
  const Pool& pool = by_slot ? *by_slot : own;
  auto offset = [&](size_t i) { return by_slot ? pool.offset[items[i].member->slot] : pool.offset[i]; };
  torch::NoGradGuard no_grad;
  const int64_t bs = std::max<int64_t>(1, items[0].member->cfg.batch_size);
  for (int64_t b = 0; b < nmax; b += bs) {
    std::map<int64_t, std::vector<size_t>> groups;
    for (size_t i = 0; i < items.size(); ++i) {
      const int64_t n = items[i].split->size();
      if (b < n) groups[std::min(n, b + bs) - b].push_back(i);
    }
    for (auto& [len, pos] : groups) {
      const int64_t gm = static_cast<int64_t>(pos.size());
      std::vector<int64_t> gidx;
      std::vector<int> slots;
      for (size_t i : pos) {
        for (int64_t r = 0; r < len; ++r) gidx.push_back(offset(i) + b + r);
        slots.push_back(items[i].member->slot);
      }
      torch::Tensor ti = IndexOn(gidx, dev_);
      torch::Tensor x = pool.x.index_select(0, ti).view({gm, len, pool.x.size(1)});
      torch::Tensor y = pool.y.index_select(0, ti).view({gm, len});
      torch::Tensor logits = mlp_.Forward(slots, x, /*training=*/false, {});
      torch::Tensor probs = torch::softmax(logits, 2).to(torch::kCPU).contiguous();  // as evaluate.cc: on the host
      torch::Tensor arg = probs.argmax(2).contiguous();
      std::vector<torch::Tensor> lg, lb;  // the members' own logits and labels (CPU path: each member's Loss)
      if (!device_path_) {
        lg = logits.unbind(0);
        lb = y.unbind(0);
      }
      torch::Tensor ce;  // device path: every item's loss at once, one copy to the host
      if (device_path_) {
        const std::vector<int64_t> s64(slots.begin(), slots.end());
        const torch::Tensor si = IndexOn(s64, dev_);
        ce = models::PackedCrossEntropy(logits, y, class_w_.index_select(0, si), smoothing_.index_select(0, si))
                 .to(torch::kCPU, torch::kDouble)
                 .contiguous();
      }
      for (int64_t j = 0; j < gm; ++j) {
        EvalItem& it = items[pos[static_cast<size_t>(j)]];
        const int nc = it.member->num_classes;
        const bool weighs_nothing = WeighsNothing(it.lctx.class_weights, it.split->labels.narrow(0, b, len));
        if (weighs_nothing) {
          // adds nothing to the loss (evaluate.h)
        } else if (device_path_) {
          it.loss_sum += ce.data_ptr<double>()[j] * static_cast<double>(len);
        } else {
          models::ModelOutput o;
          o.logits = lg[static_cast<size_t>(j)];
          models::Batch batch;
          batch.labels = lb[static_cast<size_t>(j)];
          models::LossTerms terms = it.member->model->Loss(o, batch, it.lctx);
          it.loss_sum += terms.total.item<double>() * static_cast<double>(len);
        }
        if (!weighs_nothing) it.loss_rows += len;
        const float* pp = probs.data_ptr<float>() + j * len * nc;
        const int64_t* ap = arg.data_ptr<int64_t>() + j * len;
        const int64_t* lp = it.split->labels.data_ptr<int64_t>();
        for (int64_t i = 0; i < len; ++i) {
          it.labels.push_back(static_cast<int>(lp[b + i]));
          it.preds.push_back(static_cast<int>(ap[i]));
          if (it.keep_predictions) {
            Prediction p;
            p.utt_id = it.split->ids[b + i];
            p.label = it.labels.back();
            p.pred = it.preds.back();
            p.probs.assign(pp + i * nc, pp + (i + 1) * nc);
            it.out.predictions.push_back(std::move(p));
          }
        }
      }
    }
  }
  for (auto& it : items) {
    it.out.loss_undefined = it.loss_rows == 0;
    it.out.loss = it.out.loss_undefined ? std::numeric_limits<double>::quiet_NaN()
                                        : it.loss_sum / static_cast<double>(it.loss_rows);
    auto metrics = ComputeMetrics(it.labels, it.preds, it.member->num_classes);
    if (metrics.ok())
      it.out.metrics = std::move(*metrics);
    else
      it.status = metrics.status();
  }
}

// trainer_validate.cc's ValidateEpoch (source_val / target_val / last, and dev / im / snd from the epoch's DA
// diagnostics) for every member at once.
void PackedTrainer::Validate(int epoch, std::vector<Member*>& act) {
  std::vector<EvalItem> items;
  for (Member* m : act)
    if (m->val.size()) items.push_back({m, &m->val, &m->val_x, m->LossCtx(epoch), false, {}, Status::Ok(), {}, {}});
  Evaluate(items, &val_pool_);
  for (auto& it : items) {
    Member& m = *it.member;
    if (!it.status.ok()) {
      Fail(m, it.status);
      continue;
    }
    const EvalOutput& v = it.out;
    m.rec.val_loss = v.loss;
    m.rec.val_metrics = v.metrics.ToJson(/*with_confusion=*/false);
    m.sched->StepValidation(MetricValue(v, m.cfg.plateau_metric));
    m.opt->set_lr(m.sched->lr());
    double value = MetricValue(v, m.cfg.metric);
    bool higher = m.cfg.MetricHigherIsBetter();
    int tier = 0;
    if (UnsupervisedSelection(m.spec->selection)) {  // dev / im / snd: from this epoch's DA diagnostics
      Result<SelectionValue> u = UnsupervisedSelectionValue(m.spec->selection, m.da, epoch, m.where);
      if (!u.ok()) {
        Fail(m, u.status());
        continue;
      }
      value = u->value;
      higher = u->higher;
      tier = u->tier;
    }
    const bool improved = !m.es.have_best || tier > m.es.best_tier ||
                          (tier == m.es.best_tier && (higher ? value > m.es.best_value : value < m.es.best_value));
    if (improved) {
      m.es.have_best = true;
      m.es.best_tier = tier;
      m.es.best_value = value;
      m.es.best_epoch = epoch;
      m.es.bad_evals = 0;
      if (m.spec->selection != "last") {
        torch::NoGradGuard g;
        if (!m.best_params.defined()) m.best_params = torch::empty_like(m.row->params());
        m.best_params.copy_(m.row->params());
      }
    } else {
      ++m.es.bad_evals;
    }
    m.stopped_early = m.cfg.patience > 0 && m.es.bad_evals >= m.cfg.patience;
  }
}

}  // namespace emosweep::worker::packed
