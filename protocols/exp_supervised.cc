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
      for (const auto& [m, point] : e.points)
        for (uint64_t seed : e.seeds) {
          PlannedJob j;
          j.spec = BaseSpec(e, point, seed);
          j.spec.train = {view->Ref(fold.train)};
          if (!fold.val.empty()) j.spec.val = {view->Ref(fold.val)};
          j.spec.eval["test"] = {view->Ref(fold.test)};
          j.attrs = BaseAttrs(e, m, point, seed);
          j.attrs["corpus"] = j.attrs["source"] = j.attrs["target"] = c;
          j.attrs["fold"] = fold.name;
          Add(std::move(j), s);
        }
    }
  }
  return Status::Ok();
}

Status Expander::ExpandLoco(const ExperimentDecl& e, ExperimentSummary* s) {
  std::map<std::string, const CorpusView*> views;
  std::map<std::string, Partition> parts;
  for (const auto& c : e.corpora) {
    ES_ASSIGN_OR_RETURN(views[c], View(e, c));
    ES_ASSIGN_OR_RETURN(parts[c], PartitionOf(e, *views[c]));
  }
  for (const auto& held : e.corpora) {
    std::vector<jobs::DataRef> train, val, test_in;
    std::vector<std::string> others;
    for (const auto& c : e.corpora) {
      if (c == held) continue;
      others.push_back(c);
      train.push_back(views[c]->Ref(parts[c].train));
      if (!parts[c].val.empty()) val.push_back(views[c]->Ref(parts[c].val));
      test_in.push_back(views[c]->Ref(parts[c].test));
    }
    if (val.empty()) ES_RETURN_IF_ERROR(NeedVal(e, {}, "the training corpora of held-out '" + held + "'"));
    for (const auto& [m, point] : e.points)
      for (uint64_t seed : e.seeds) {
        PlannedJob j;
        j.spec = BaseSpec(e, point, seed);
        j.spec.train = train;
        j.spec.val = val;
        j.spec.eval["test"] = {views[held]->Ref(views[held]->ids)};
        j.spec.eval["test_in"] = test_in;
        j.attrs = BaseAttrs(e, m, point, seed);
        j.attrs["corpus"] = j.attrs["heldout"] = j.attrs["target"] = held;
        j.attrs["source"] = JoinPlus(others);
        Add(std::move(j), s);
      }
  }
  return Status::Ok();
}

Status Expander::ExpandCrossCorpus(const ExperimentDecl& e, ExperimentSummary* s) {
  std::map<std::string, const CorpusView*> views;
  std::map<std::string, Partition> parts;
  for (const auto& c : e.corpora) {
    ES_ASSIGN_OR_RETURN(views[c], View(e, c));
    ES_ASSIGN_OR_RETURN(parts[c], PartitionOf(e, *views[c]));
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
        for (const auto& tgt : e.corpora) {
          if (tgt == src) continue;
          auto attrs = BaseAttrs(e, m, point, seed);
          attrs["source"] = src;
          attrs["target"] = attrs["corpus"] = tgt;
          AddEval(j, views[tgt]->Ref(parts[tgt].test), attrs, s);
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
