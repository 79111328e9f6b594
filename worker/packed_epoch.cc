// worker/packed_epoch.cc: one training epoch of every active pack member (packed_trainer_internal.h): batched
// forward per group of equal batch length, each member's own loss, domain-adaptation step and update.
#include "worker/packed_trainer_internal.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "models/generator_swap.h"
#include "models/host_to_device.h"
#include "models/losses.h"
#include "worker/da_selection.h"

namespace emosweep::worker::packed {

// One epoch of every member in `act`, step by step: at step b the members that still have a
// batch form groups of equal batch length; each group runs as one batched forward, each member's
// loss is its model's own Loss on its logits, one backward, then each member's own update.
void PackedTrainer::TrainEpoch(int epoch, std::vector<Member*>& act) {
  int64_t max_batches = 0;
  std::vector<Member*> trainers;
  for (Member* m : act) {
    const int64_t n = m->train.size();
    if (m->cfg.balanced_sampling) {
      std::vector<int64_t> labels(m->train.labels.data_ptr<int64_t>(), m->train.labels.data_ptr<int64_t>() + n);
      m->order = m->shuffle->BalancedSample(labels, m->num_classes, n);
    } else {
      m->order.resize(n);
      for (int64_t i = 0; i < n; ++i) m->order[i] = i;
      m->shuffle->Shuffle(m->order);
    }
    const int64_t bs = m->cfg.batch_size;
    m->batches = m->cfg.drop_last ? n / bs : (n + bs - 1) / bs;
    m->count = 0;
    std::fill(std::begin(m->da_acc), std::end(m->da_acc), 0.0);
    m->lambda_last = 0;
    max_batches = std::max(max_batches, m->batches);
  }
  const Pool& pool = train_pool_;
  torch::Tensor loss_acc =
      torch::zeros({static_cast<int64_t>(act.size())}, torch::TensorOptions().dtype(torch::kDouble).device(dev_));
  std::vector<models::CounterGenerator*> gens;
  for (int64_t b = 0; b < max_batches; ++b) {
    std::map<int64_t, std::vector<size_t>> groups;  // batch length -> positions in act
    for (size_t i = 0; i < act.size(); ++i) {
      Member* m = act[i];
      if (b >= m->batches) continue;
      const int64_t bs = m->cfg.batch_size, lo = b * bs;
      groups[std::min(bs, m->train.size() - lo)].push_back(i);
    }
    if (groups.empty()) break;
    // No zeroing: PackedLinear's backward overwrites every trainable element of a stepped member's row
    // (each is a weight or bias of some layer); rows of members not stepped are not read.
    std::vector<torch::Tensor> totals;
    std::vector<size_t> stepped;
    for (auto& [len, pos] : groups) {
      const int64_t gm = static_cast<int64_t>(pos.size());
      std::vector<int64_t> gidx;
      gidx.reserve(gm * len);
      std::vector<int> slots;
      gens.clear();
      for (size_t i : pos) {
        Member* m = act[i];
        const int64_t lo = b * m->cfg.batch_size;
        for (int64_t r = 0; r < len; ++r) gidx.push_back(pool.offset[m->slot] + m->order[lo + r]);
        slots.push_back(m->slot);
        gens.push_back(&m->gen);
      }
      // Adaptation: each adapting member draws its target batch (as many rows as its source batch) from its own
      // cycle, before its forward, exactly as trainer_epoch.cc does.
      std::vector<int64_t> da_j;  // positions in this group of the adapting members
      for (int64_t j = 0; j < gm; ++j) {
        Member* m = act[pos[static_cast<size_t>(j)]];
        if (!m->adapter) continue;
        DrawTargetRows(*m->target_shuffle, m->target.size(), len, /*shuffle=*/true, &m->target_order, &m->target_cursor,
                       &m->target_idx);
        da_j.push_back(j);
      }
      // DANN (the members agree on the variant): the target batch back-propagates through the model too, so
      // each layer's gradient is the sum of two (as AccumulateGrad adds them alone): the rows start at zero and
      // both forwards accumulate. The discriminator's gradients are autograd's own (reset, as FlatParameters
      // does).
      const bool target_grad = !da_j.empty() && act[pos[static_cast<size_t>(da_j[0])]]->adapter->needs_target_grad();
      if (target_grad)
        for (size_t i : pos) {
          Member* m = act[i];
          grads_[m->slot].zero_();
          for (auto& [p, g] : m->adapter_params) p.mutable_grad() = torch::Tensor();
        }
      torch::Tensor ti = IndexOn(gidx, dev_);
      torch::Tensor x = pool.x.index_select(0, ti).view({gm, len, pool.x.size(1)});
      torch::Tensor y = pool.y.index_select(0, ti).view({gm, len});
      torch::Tensor feats;
      torch::Tensor logits =
          mlp_.Forward(slots, x, /*training=*/true, gens, da_j.empty() ? nullptr : &feats, target_grad);
      // The adapting members' target forward (training mode: their dropout draws follow the source batch's, from
      // the same generator, as alone), without gradient for MMD / CORAL (DomainAdapter::needs_target_grad).
      std::vector<torch::Tensor> fs, ft;
      if (!da_j.empty()) {
        const int64_t dm = static_cast<int64_t>(da_j.size());
        std::vector<int64_t> tidx;
        tidx.reserve(dm * len);
        std::vector<int> tslots;
        std::vector<models::CounterGenerator*> tgens;
        for (int64_t j : da_j) {
          Member* m = act[pos[static_cast<size_t>(j)]];
          for (int64_t r = 0; r < len; ++r) tidx.push_back(target_pool_.offset[m->slot] + m->target_idx[r]);
          tslots.push_back(m->slot);
          tgens.push_back(&m->gen);
        }
        torch::Tensor tt = IndexOn(tidx, dev_);
        torch::Tensor tx = target_pool_.x.index_select(0, tt).view({dm, len, target_pool_.x.size(1)});
        torch::Tensor tf;
        if (target_grad) {
          mlp_.Forward(tslots, tx, /*training=*/true, tgens, &tf, /*accumulate_grads=*/true);
        } else {
          torch::NoGradGuard ng;
          mlp_.Forward(tslots, tx, /*training=*/true, tgens, &tf);
        }
        fs = feats.unbind(0);
        ft = tf.unbind(0);
      }
      std::vector<torch::Tensor> lg, lb;  // the members' own logits and labels (CPU path: each member's Loss)
      if (!device_path_) {
        lg = logits.unbind(0);
        lb = y.unbind(0);
      }
      std::vector<torch::Tensor> gtot;
      // Device path: every member's cross-entropy at once ([gm]); the adapting members' DA losses added to theirs.
      torch::Tensor ce;
      std::vector<torch::Tensor> da_total(static_cast<size_t>(gm));
      if (device_path_) {
        const std::vector<int64_t> s64(slots.begin(), slots.end());
        const torch::Tensor si = IndexOn(s64, dev_);
        ce = models::PackedCrossEntropy(logits, y, class_w_.index_select(0, si), smoothing_.index_select(0, si));
      }
      size_t next_da = 0;
      for (int64_t j = 0; j < gm; ++j) {
        Member* m = act[pos[static_cast<size_t>(j)]];
        const models::LossContext lctx = m->LossCtx(epoch);
        torch::Tensor total;
        if (!device_path_) {
          models::ModelOutput o;
          o.logits = lg[static_cast<size_t>(j)];
          models::Batch batch;
          batch.labels = lb[static_cast<size_t>(j)];
          total = m->model->Loss(o, batch, lctx).total;
        }
        if (m->adapter) {
          // Its DA loss on its own slices of the features, with its own adapter (weight, schedule), as alone.
          // DANN's discriminator draws its dropout masks from torch's default generator, which alone is the one
          // the model's dropout draws from: the member's generator stands in for it during the call.
          models::DefaultGeneratorSwap swap(target_grad ? &m->gen.get() : nullptr, dev_);
          models::LossTerms da = m->adapter->Loss(fs[static_cast<size_t>(j)], ft[next_da++], lctx);
          swap.Restore();
          if (device_path_)
            da_total[static_cast<size_t>(j)] = da.total;
          else
            total = total + da.total;
          const double nl = static_cast<double>(len);
          m->da_acc[0] += static_cast<double>(da.parts.at("da").detach().item<float>()) * nl;
          if (da.parts.count("disc_acc"))
            m->da_acc[1] += static_cast<double>(da.parts.at("disc_acc").item<float>()) * nl;
          m->lambda_last = m->adapter->last_lambda();
          m->da_acc[2] += m->lambda_last * nl;
          m->da_lambda_seen = std::max(m->da_lambda_seen, m->lambda_last);
        }
        if (!device_path_) gtot.push_back(total);
        m->count += static_cast<double>(len);
      }
      if (device_path_) {
        torch::Tensor g = ce;
        if (!da_j.empty()) {
          std::vector<torch::Tensor> parts = ce.unbind(0);
          for (int64_t j : da_j) parts[static_cast<size_t>(j)] = parts[static_cast<size_t>(j)] + da_total[static_cast<size_t>(j)];
          g = torch::stack(parts);
        }
        gtot = {g};
      }
      {
        torch::NoGradGuard ng;
        std::vector<int64_t> p64(pos.begin(), pos.end());
        torch::Tensor stacked =
            (device_path_ ? gtot[0] : torch::stack(gtot)).detach().to(torch::kDouble) * static_cast<double>(len);
        loss_acc.index_add_(0, IndexOn(p64, dev_), stacked);
      }
      totals.insert(totals.end(), gtot.begin(), gtot.end());
      stepped.insert(stepped.end(), pos.begin(), pos.end());
    }
    // Each member's gradient is its own loss's: the members share no parameter.
    (device_path_ ? torch::cat(totals) : torch::stack(totals)).sum().backward();
    std::vector<Member*> st;
    for (size_t i : stepped) st.push_back(act[i]);
    for (Member* m : st) {
      if (m->adapter_params.empty()) continue;
      torch::NoGradGuard ng;
      for (auto& [p, g] : m->adapter_params) {  // FlatParameters::SyncGrads: copied in, zero when none
        if (p.grad().defined())
          g.copy_(p.grad());
        else
          g.zero_();
        p.mutable_grad() = torch::Tensor();
      }
    }
    if (device_path_) {
      StepMembers(st);
    } else {
      for (Member* m : st) {
        if (!m->adapter_params.empty()) {
          // The model's parameters only, as trainer_epoch.cc (a discriminator's gradients neither count nor get
          // scaled).
          const auto [off, n] = m->own->Span("model.");
          if (m->cfg.grad_clip > 0) {
            torch::Tensor g = m->row->grads().narrow(0, off, n);
            ClipGradNorm(g, m->cfg.grad_clip);
          }
        } else if (m->cfg.grad_clip > 0) {
          ClipGradNorm(m->row->grads(), m->cfg.grad_clip);
        }
        m->opt->Step();
      }
    }
    for (Member* m : st) {
      ++m->step;
      m->sched->StepBatch();
      m->opt->set_lr(m->sched->lr());
      if (m->sched->cycles_momentum()) m->opt->set_momentum(m->sched->momentum());
    }
  }
  torch::Tensor acc = loss_acc.to(torch::kCPU).contiguous();
  for (size_t i = 0; i < act.size(); ++i) {
    Member* m = act[i];
    const double loss_sum = acc.data_ptr<double>()[i];
    const float s0 = static_cast<float>(loss_sum), s1 = static_cast<float>(m->count);
    m->rec.train_loss = s1 > 0 ? s0 / s1 : std::nan("");
    if (m->adapter && s1 > 0) {  // trainer_epoch.cc's sums[2..4] (floats) over the row count
      const float d0 = static_cast<float>(m->da_acc[0]), d1 = static_cast<float>(m->da_acc[1]),
                  d2 = static_cast<float>(m->da_acc[2]);
      m->da_train = DaTrainingMeans(d0 / s1, d1 / s1, d2 / s1, m->lambda_last, m->adapter->weight(),
                                    m->adapter->lambda_max() > 0);
    }
  }
}

// The device path's update of the members stepped: their gradient rows gathered once, clipped by one batched
// norm (per member: its own max norm, over its model's parameters as ClipGradNorm alone), the Adam/AdamW members
// updated by one FusedOptimizer::StepRows, any other optimizer member by member.
void PackedTrainer::StepMembers(std::vector<Member*>& stepped) {
  if (stepped.empty()) return;
  torch::NoGradGuard ng;
  std::vector<Member*> ms = stepped;
  std::sort(ms.begin(), ms.end(), [](const Member* a, const Member* b) { return a->slot < b->slot; });
  const int64_t m = static_cast<int64_t>(ms.size());
  std::vector<int64_t> slots;
  bool consecutive = true, any_clip = false;
  std::vector<float> max_norm;
  for (Member* x : ms) {
    if (!slots.empty()) consecutive &= x->slot == slots.back() + 1;
    slots.push_back(x->slot);
    any_clip |= x->cfg.grad_clip > 0;
    max_norm.push_back(x->cfg.grad_clip > 0 ? static_cast<float>(x->cfg.grad_clip)
                                            : std::numeric_limits<float>::infinity());
  }
  torch::Tensor g = consecutive ? grads_.narrow(0, slots[0], m) : grads_.index_select(0, IndexOn(slots, dev_));
  if (any_clip) {
    // The span ClipGradNorm takes alone: the whole row (its padding is zero), or the model's parameters of an
    // adapting member with a discriminator (the same span for every member: they adapt the same way).
    int64_t off = 0, n = g.size(1);
    if (!ms[0]->adapter_params.empty()) std::tie(off, n) = ms[0]->own->Span("model.");
    torch::Tensor span = g.narrow(1, off, n);
    torch::Tensor norms = span.norm(2, {1}, /*keepdim=*/true);  // [m, 1]
    const torch::Tensor limit = models::HostToDevice(torch::tensor(max_norm, torch::kFloat).view({m, 1}), dev_);
    span.mul_((limit / (norms + 1e-6)).clamp_max_(1.0));
  }
  std::vector<FusedOptimizer*> adam;
  std::vector<int64_t> adam_slots, adam_rows;
  for (int64_t i = 0; i < m; ++i) {
    Member* x = ms[static_cast<size_t>(i)];
    if (FusedOptimizer::StepRowsTakes(*x->opt)) {
      adam.push_back(x->opt.get());
      adam_slots.push_back(x->slot);
      adam_rows.push_back(i);
      continue;
    }
    // SGD: its own update of its row (clipped above: the gathered rows are a copy unless consecutive).
    if (!consecutive) x->row->grads().copy_(g[i].narrow(0, 0, x->row->grads().numel()));
    x->opt->Step();
  }
  if (adam.empty()) return;
  torch::Tensor ga = static_cast<int64_t>(adam.size()) == m ? g : g.index_select(0, IndexOn(adam_rows, dev_));
  FusedOptimizer::StepRows(adam, adam_slots, params_, ga, exp_avg_, exp_avg_sq_);
}

}  // namespace emosweep::worker::packed
