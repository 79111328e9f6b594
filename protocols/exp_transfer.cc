// protocols/exp_transfer.cc: finetune, fewshot and adapt experiments.
//
// Fine-tune and few-shot jobs start from a source pre-training job. The
// pre-training job's spec holds only what determines it (source data, model,
// train config, seed), so every finetune/fewshot job of any experiment that
// needs the same pre-training gets the same identity and Expander::Add keeps
// one job (architecture decision 4).
#include <algorithm>
#include <cstdio>

#include "protocols/config_catalog.h"
#include "protocols/experiments.h"

namespace emosweep::protocols {
namespace {

std::string JoinPlus(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "+") + x;
  return s;
}

}  // namespace

// Per training set of `source`/`pool` and per target: the pre-training job
// (shared by identity across targets and experiments) and one fine-tune job
// per budget, trained on (a subset of) the target's train share and tested on
// its test share (evaluate_on = "whole" is refused at parse time).
Status Expander::ExpandFinetune(const ExperimentDecl& e, ExperimentSummary* s) {
  for (const auto& set : e.SourceSets()) {
    const std::string source = JoinPlus(set);
    ES_ASSIGN_OR_RETURN(Pooled sp, PoolOf(e, set));
    if (sp.val.empty() && e.selection != "last")
      return Status::FailedPrecondition(e.where + ": source '" + source + "' has no validation share for pre-training");
    for (const auto& target : e.targets) {
      ES_ASSIGN_OR_RETURN(const CorpusView* tgt, View(e, target));
      ES_ASSIGN_OR_RETURN(Partition tp, PartitionOf(e, *tgt));
      if (tp.val.empty() && e.selection == "target_val")
        return Status::FailedPrecondition(e.where + ": target '" + target +
                                          "' has no validation share for target_val");
      std::vector<Budget> budgets = e.budgets;
      if (e.kind == "finetune") budgets = {Budget{"100%", 1.0, 0}};
      // Few-shot subsets draw from every class of the label set, so a class the
      // target lacks is an error naming it (not a silently smaller label space).
      data::Corpus subset_from;
      if (e.kind == "fewshot") {
        subset_from = tgt->meta;
        subset_from.label_set = e.labels;
      }
      for (const auto& [m, point] : e.points)
        for (uint64_t seed : e.seeds) {
          PlannedJob pre;
          pre.spec = BaseSpec(e, point, seed);
          pre.spec.kind = "pretrain";
          pre.spec.selection = e.selection == "last" ? "last" : "source_val";
          pre.spec.oracle_eval.clear();
          pre.spec.train = sp.train;
          pre.spec.val = sp.val;
          pre.spec.eval["test"] = sp.test;
          pre.spec.keep_checkpoint = true;
          pre.reportable = false;
          pre.attrs = BaseAttrs(e, m, point, seed);
          pre.attrs["source"] = pre.attrs["target"] = pre.attrs["corpus"] = source;
          pre.attrs["role"] = "pretrain";
          // Its fine-tune jobs share one copy of its id in init_from and deps (issue 15).
          const jobs::SharedId pre_id = ParentId(Add(std::move(pre), s));
          for (const auto& b : budgets) {
            // Budgets come from the target's train share only: never from its test share.
            jobs::IdList train_ids = tp.train;
            if (e.kind == "fewshot") {
              auto subset = data::StratifiedSubset(subset_from, tp.train, b.fraction, b.shots, seed,
                                                   e.where + ": budget " + b.label + " of target '" + target + "'");
              if (!subset.ok()) return subset.status();
              train_ids = std::move(subset).value();
            }
            PlannedJob j;
            j.spec = BaseSpec(e, point, seed);
            j.spec.kind = "finetune";
            j.spec.train_config = point.finetune;
            j.spec.init_from = pre_id;
            j.spec.train = {tgt->Ref(train_ids)};
            // Labelled target data beyond the budget only where the protocol asks for it (target_val). With
            // last or oracle the target's validation share would still steer early stopping (patience) and
            // training-domain grid selection, which captions say never read the target: the sources' share.
            if (e.selection == "target_val") {
              if (!tp.val.empty()) j.spec.val = {tgt->Ref(tp.val)};
            } else {
              j.spec.val = sp.val;
            }
            j.spec.eval["test"] = {tgt->Ref(tp.test)};
            j.deps = {pre_id};
            j.attrs = BaseAttrs(e, m, point, seed);
            j.attrs["source"] = source;
            j.attrs["target"] = j.attrs["corpus"] = target;
            if (e.kind == "fewshot") {
              j.attrs["budget"] = b.label;
              j.attrs["budget_n"] = std::to_string(train_ids.size());
            }
            Add(std::move(j), s);
          }
        }
    }
  }
  return Status::Ok();
}

// Per training set (the pooled sources form one source domain: every variant
// draws its source batches from the pooled train shares), per target, per
// variant. The target's unlabeled data is its train share when it is evaluated
// on its test share, and the whole corpus when evaluated whole (transductive
// UDA on the evaluation set itself; its labels are never read).
Status Expander::ExpandAdapt(const ExperimentDecl& e, ExperimentSummary* s) {
  for (const auto& set : e.SourceSets()) {
    const std::string source = JoinPlus(set);
    ES_ASSIGN_OR_RETURN(Pooled sp, PoolOf(e, set));
    for (const auto& target : e.targets) {
      ES_ASSIGN_OR_RETURN(const CorpusView* tgt, View(e, target));
      const bool whole = EvaluateOn(target, "test") == "whole";
      jobs::IdList unlabeled = tgt->ids, test = tgt->ids, target_val;  // interned lists, shared by the jobs
      if (!whole) {
        ES_ASSIGN_OR_RETURN(Partition tp, PartitionOf(e, *tgt));
        unlabeled = tp.train, test = tp.test, target_val = tp.val;
      }
      std::vector<jobs::DataRef> val;
      if (e.selection == "target_val") {
        if (!target_val.empty()) val = {tgt->Ref(target_val)};
      } else {
        val = sp.val;
      }
      if (val.empty() && e.selection != "last")
        return Status::FailedPrecondition(e.where + ": no validation share for selection '" + e.selection + "'");
      for (const auto& variant : e.variants)
        for (const auto& [m, point] : e.points)
          for (uint64_t seed : e.seeds) {
            nlohmann::json opts = e.adapt_options;
            double weight = e.weight;
            for (auto it = point.adapt_extra.begin(); it != point.adapt_extra.end(); ++it) {
              if (it.key() == "weight") weight = it.value().get<double>();
              else opts[it.key()] = it.value();
            }
            PlannedJob j;
            j.spec = BaseSpec(e, point, seed);
            j.spec.train = sp.train;
            j.spec.val = val;
            j.spec.eval["test"] = {tgt->Ref(test)};
            // Target labels are never read: the target's unlabeled share is passed, also to "none", which
            // does not train on it but records the same target diagnostics (and can be selected by dev/im/snd).
            j.spec.target_unlabeled = {tgt->Ref(unlabeled)};
            if (variant != "none") {
              j.spec.kind = "adapt";
              ES_ASSIGN_OR_RETURN(j.spec.adapt, EffectiveAdaptConfig(variant, weight, opts, e.where, {}));
              // A GRL schedule that cannot ramp up within the run is said at plan time (the job warns again).
              const int64_t n = static_cast<int64_t>(sp.train_rows);
              const int64_t bs = std::max<int64_t>(1, point.train.value("batch_size", int64_t{32}));
              const int64_t spe = point.train.value("drop_last", false) ? n / bs : (n + bs - 1) / bs;
              const int epochs = point.train.value("epochs", 0);
              const double share = GrlPeakShare(j.spec.adapt, epochs, spe);
              if (share >= 0 && share < 0.1) {
                char buf[64];
                std::snprintf(buf, sizeof buf, "%.1f%%", 100 * share);
                std::string w = "experiment '" + e.name + "': variant '" + variant + "'" +
                                (point.attrs.count("hp") && !point.attrs.at("hp").empty()
                                     ? " [" + point.attrs.at("hp") + "]"
                                     : "") +
                                ": the GRL lambda reaches only " + buf + " of lambda_max in " +
                                std::to_string(epochs * spe) +
                                " steps (horizon longer than the run: close to no adaptation; set adapt_options "
                                "grl_horizon, docs/models.md)";
                if (std::find(warnings_.begin(), warnings_.end(), w) == warnings_.end()) warnings_.push_back(w);
              }
            }
            j.attrs = BaseAttrs(e, m, point, seed);
            j.attrs["source"] = source;
            j.attrs["target"] = j.attrs["corpus"] = target;
            j.attrs["variant"] = variant;
            Add(std::move(j), s);
          }
    }
  }
  return Status::Ok();
}

}  // namespace emosweep::protocols
