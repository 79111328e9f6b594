// protocols/exp_supervised.cc: in_domain, loco, cross_corpus and joint
// experiments (docs/formats/protocol.md, "Experiment kinds").
#include "protocols/experiments.h"

namespace emosweep::protocols {
namespace {

std::string JoinPlus(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "+") + x;
  return s;
}

Status NeedVal(const ExperimentDecl& e, const std::vector<std::string>& val, const std::string& what) {
  if (val.empty() && (e.selection == "source_val"))
    return Status::FailedPrecondition(e.where + ": " + what + " has no validation share for selection = "
                                      "\"source_val\" (raise the split's val_fraction or use selection = \"last\")");
  return Status::Ok();
}

}  // namespace

Status Expander::ExpandInDomain(const ExperimentDecl& e, ExperimentSummary* s) {
  for (const auto& c : e.corpora) {
    ES_ASSIGN_OR_RETURN(const CorpusView* view, View(e, c));
    ES_ASSIGN_OR_RETURN(std::vector<data::Fold> folds, Folds(e, *view));
    for (const auto& fold : folds) {
      ES_RETURN_IF_ERROR(NeedVal(e, fold.val, "fold '" + fold.name + "' of corpus '" + c + "'"));
      if (fold.train.empty() || fold.test.empty())
        return Status::FailedPrecondition(e.where + ": fold '" + fold.name + "' of corpus '" + c +
                                          "' has an empty train or test share");
      // One interned list per share, read by every model, grid point and seed.
      const jobs::DataRef train = view->Ref(fold.train), val = view->Ref(fold.val), test = view->Ref(fold.test);
      for (const auto& [m, point] : e.points)
        for (uint64_t seed : e.seeds) {
          PlannedJob j;
          j.spec = BaseSpec(e, point, seed);
          j.spec.train = {train};
          if (!fold.val.empty()) j.spec.val = {val};
          j.spec.eval["test"] = {test};
          j.attrs = BaseAttrs(e, m, point, seed);
          j.attrs["corpus"] = j.attrs["source"] = j.attrs["target"] = c;
          j.attrs["fold"] = fold.name;
          Add(std::move(j), s);
        }
    }
  }
  return Status::Ok();
}

// Held-out corpora (`heldout`, default `corpora`): one of `corpora` trains on
// the others, one outside `corpora` (held out only) trains on all of them and
// is never trained on; its partition is made only when its test share is its
// evaluation set (evaluate_on = "test").
Status Expander::ExpandLoco(const ExperimentDecl& e, ExperimentSummary* s) {
  std::map<std::string, const CorpusView*> views;
  std::map<std::string, Partition> parts;
  for (const auto& c : e.corpora) {
    ES_ASSIGN_OR_RETURN(views[c], View(e, c));
  }
  auto part = [&](const std::string& c) -> Result<const Partition*> {
    auto it = parts.find(c);
    if (it == parts.end()) {
      ES_ASSIGN_OR_RETURN(Partition p, PartitionOf(e, *views[c]));
      it = parts.emplace(c, std::move(p)).first;
    }
    return &it->second;
  };
  for (const auto& held : e.heldout.empty() ? e.corpora : e.heldout) {
    std::vector<jobs::DataRef> train, val, test_in;
    std::vector<std::string> others;
    for (const auto& c : e.corpora) {
      if (c == held) continue;
      others.push_back(c);
      ES_ASSIGN_OR_RETURN(const Partition* p, part(c));
      train.push_back(views[c]->Ref(p->train));
      if (!p->val.empty()) val.push_back(views[c]->Ref(p->val));
      test_in.push_back(views[c]->Ref(p->test));
    }
    if (val.empty()) ES_RETURN_IF_ERROR(NeedVal(e, {}, "the training corpora of held-out '" + held + "'"));
    ES_ASSIGN_OR_RETURN(jobs::DataRef test, EvalSetOf(e, held, "whole"));
    for (const auto& [m, point] : e.points)
      for (uint64_t seed : e.seeds) {
        PlannedJob j;
        j.spec = BaseSpec(e, point, seed);
        j.spec.train = train;
        j.spec.val = val;
        j.spec.eval["test"] = {test};
        j.spec.eval["test_in"] = test_in;
        j.attrs = BaseAttrs(e, m, point, seed);
        j.attrs["corpus"] = j.attrs["heldout"] = j.attrs["target"] = held;
        j.attrs["source"] = JoinPlus(others);
        Add(std::move(j), s);
      }
  }
  return Status::Ok();
}

// Matrix form: every corpus of `corpora` trains once; each of `targets`
// (default `corpora`) other than the source is evaluated on the trained model.
Status Expander::ExpandCrossCorpus(const ExperimentDecl& e, ExperimentSummary* s) {
  std::map<std::string, const CorpusView*> views;
  std::map<std::string, Partition> parts;
  for (const auto& c : e.corpora) {
    ES_ASSIGN_OR_RETURN(views[c], View(e, c));
    ES_ASSIGN_OR_RETURN(parts[c], PartitionOf(e, *views[c]));
  }
  const auto& targets = e.targets.empty() ? e.corpora : e.targets;
  std::map<std::string, jobs::DataRef> eval_sets;
  for (const auto& t : targets) {
    ES_ASSIGN_OR_RETURN(eval_sets[t], EvalSetOf(e, t, "test"));
  }
  for (const auto& src : e.corpora) {
    ES_RETURN_IF_ERROR(NeedVal(e, parts[src].val, "corpus '" + src + "'"));
    for (const auto& [m, point] : e.points)
      for (uint64_t seed : e.seeds) {
        // The diagonal cell is the training job's own held-out test; every
        // off-diagonal cell is an eval job on the trained model.
        PlannedJob j;
        j.spec = BaseSpec(e, point, seed);
        j.spec.train = {views[src]->Ref(parts[src].train)};
        if (!parts[src].val.empty()) j.spec.val = {views[src]->Ref(parts[src].val)};
        j.spec.eval["test"] = {views[src]->Ref(parts[src].test)};
        j.spec.keep_checkpoint = true;
        j.attrs = BaseAttrs(e, m, point, seed);
        j.attrs["source"] = j.attrs["target"] = j.attrs["corpus"] = src;
        std::string id = Add(j, s);
        j.spec.id = id;
        for (const auto& tgt : targets) {
          if (tgt == src) continue;
          auto attrs = BaseAttrs(e, m, point, seed);
          attrs["source"] = src;
          attrs["target"] = attrs["corpus"] = tgt;
          AddEval(j, eval_sets[tgt], attrs, s);
        }
      }
  }
  return Status::Ok();
}

// Source form (zero-shot): each training set of `source` and `pool` (one per
// source and/or the pooled sources) trains one job, not reported itself
// (role "source"), and each target is an eval job on its evaluation set.
Status Expander::ExpandCrossCorpusSources(const ExperimentDecl& e, ExperimentSummary* s) {
  std::map<std::string, jobs::DataRef> eval_sets;
  for (const auto& t : e.targets) {
    ES_ASSIGN_OR_RETURN(eval_sets[t], EvalSetOf(e, t, "test"));
  }
  for (const auto& set : e.SourceSets()) {
    ES_ASSIGN_OR_RETURN(Pooled pool, PoolOf(e, set));
    const std::string source = JoinPlus(set);
    if (pool.val.empty()) ES_RETURN_IF_ERROR(NeedVal(e, {}, "source '" + source + "'"));
    for (const auto& [m, point] : e.points)
      for (uint64_t seed : e.seeds) {
        PlannedJob j;
        j.spec = BaseSpec(e, point, seed);
        j.spec.train = pool.train;
        j.spec.val = pool.val;
        j.spec.eval["test"] = pool.test;
        j.spec.keep_checkpoint = true;
        j.reportable = false;
        j.attrs = BaseAttrs(e, m, point, seed);
        j.attrs["source"] = j.attrs["target"] = j.attrs["corpus"] = source;
        j.attrs["role"] = "source";
        j.spec.id = Add(j, s);
        for (const auto& tgt : e.targets) {
          auto attrs = BaseAttrs(e, m, point, seed);
          attrs["source"] = source;
          attrs["target"] = attrs["corpus"] = tgt;
          AddEval(j, eval_sets[tgt], attrs, s);
        }
      }
  }
  return Status::Ok();
}

Status Expander::ExpandJoint(const ExperimentDecl& e, ExperimentSummary* s) {
  std::map<std::string, const CorpusView*> views;
  std::map<std::string, Partition> parts;
  std::vector<jobs::DataRef> train, val, test;
  for (const auto& c : e.corpora) {
    ES_ASSIGN_OR_RETURN(views[c], View(e, c));
    ES_ASSIGN_OR_RETURN(parts[c], PartitionOf(e, *views[c]));
    train.push_back(views[c]->Ref(parts[c].train));
    if (!parts[c].val.empty()) val.push_back(views[c]->Ref(parts[c].val));
    test.push_back(views[c]->Ref(parts[c].test));
  }
  if (val.empty()) ES_RETURN_IF_ERROR(NeedVal(e, {}, "the joint training set"));
  for (const auto& [m, point] : e.points)
    for (uint64_t seed : e.seeds) {
      PlannedJob j;
      j.spec = BaseSpec(e, point, seed);
      j.spec.train = train;
      j.spec.val = val;
      j.spec.eval["test"] = test;
      j.spec.keep_checkpoint = true;
      j.attrs = BaseAttrs(e, m, point, seed);
      j.attrs["source"] = JoinPlus(e.corpora);
      j.attrs["target"] = j.attrs["corpus"] = "all";
      j.spec.id = Add(j, s);
      for (const auto& c : e.corpora) {
        auto attrs = BaseAttrs(e, m, point, seed);
        attrs["source"] = JoinPlus(e.corpora);
        attrs["target"] = attrs["corpus"] = c;
        AddEval(j, views[c]->Ref(parts[c].test), attrs, s);
      }
    }
  return Status::Ok();
}

}  // namespace emosweep::protocols
