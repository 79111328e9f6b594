// protocols/exp_lodo.cc: leave-one-source-out validation jobs (DomainBed's
// LODO model selection, issue 14), added to an experiment when a [[table]]
// selects its grid with `grid_selection = "lodo"` (docs/formats/protocol.md).
//
// For every target T of a loco experiment and its training corpora S (read
// from the experiment's own jobs, attrs target and source = "a+b+c", so corpus
// roles that restrict targets or sources carry over), every grid point and
// seed: one job per s in S, trained on S \ {s} (train shares; epochs selected
// on their val shares as the experiment says) and evaluated ("test") on the
// whole left-out corpus s, as loco evaluates T. The table averages these scores
// over s and seeds to rank the grid points for T (orchestrator/tables.cc); the
// target is never read. The jobs are not reportable: attrs role = "lodo",
// lodo_val = s, plus the main job's coordinates (experiment, model, hp, seed,
// target = heldout = T).
#include "protocols/experiments.h"

namespace emosweep::protocols {

Status Expander::ExpandLodo(const ExperimentDecl& e, ExperimentSummary* s) {
  if (e.kind != "loco")
    return Status::InvalidArgument(e.where + ": leave-one-source-out selection needs a loco experiment");
  // Targets and their training corpora, as this experiment's jobs have them.
  std::map<std::string, std::vector<std::string>> sources;
  for (const auto& j : jobs_) {
    auto exp = j.attrs.find("experiment"), target = j.attrs.find("target"), source = j.attrs.find("source");
    if (!j.reportable || exp == j.attrs.end() || exp->second != e.name || target == j.attrs.end() ||
        source == j.attrs.end() || j.attrs.count("role"))
      continue;
    std::vector<std::string> list;
    std::string part;
    for (char c : source->second + "+") {
      if (c != '+') { part += c; continue; }
      if (!part.empty()) list.push_back(part);
      part.clear();
    }
    sources[target->second] = list;
  }
  std::map<std::string, const CorpusView*> views;
  std::map<std::string, Partition> parts;
  for (const auto& [target, list] : sources) {
    if (list.size() < 2)
      return Status::InvalidArgument(e.where + ": leave-one-source-out selection for target '" + target +
                                     "' needs at least two training corpora, it has " + std::to_string(list.size()));
    for (const auto& c : list)
      if (!views.count(c)) {
        ES_ASSIGN_OR_RETURN(views[c], View(e, c));
        ES_ASSIGN_OR_RETURN(parts[c], PartitionOf(e, *views[c]));
      }
  }
  for (const auto& [target, list] : sources)
    for (const auto& left_out : list) {
      std::vector<jobs::DataRef> train, val;
      std::string source;
      for (const auto& c : list) {
        if (c == left_out) continue;
        train.push_back(views[c]->Ref(parts[c].train));
        if (!parts[c].val.empty()) val.push_back(views[c]->Ref(parts[c].val));
        source += (source.empty() ? "" : "+") + c;
      }
      if (val.empty() && e.selection == "source_val")
        return Status::FailedPrecondition(e.where + ": leave-one-source-out for target '" + target + "' without '" +
                                          left_out + "': " + source + " has no validation share for selection = "
                                          "\"source_val\" (raise the split's val_fraction or use selection = \"last\")");
      for (const auto& [m, point] : e.points)
        for (uint64_t seed : e.seeds) {
          PlannedJob j;
          j.spec = BaseSpec(e, point, seed);
          j.spec.train = train;
          j.spec.val = val;
          j.spec.eval["test"] = {views[left_out]->Ref(views[left_out]->ids)};
          j.attrs = BaseAttrs(e, m, point, seed);
          j.attrs["corpus"] = j.attrs["heldout"] = j.attrs["target"] = target;
          j.attrs["source"] = source;
          j.attrs["lodo_val"] = left_out;
          j.attrs["role"] = "lodo";
          j.reportable = false;
          Add(std::move(j), s);
        }
    }
  return Status::Ok();
}

}  // namespace emosweep::protocols
