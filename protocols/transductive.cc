// protocols/transductive.cc: transductive steps of a job and their caption
// sentence (protocols/transductive.h).
#include "protocols/transductive.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace emosweep::protocols {
namespace {

const std::vector<std::string>& StepOrder() {
  static const std::vector<std::string> kOrder = {"feature_norm=corpus", "idf", "adapt", "selection=dev",
                                                  "selection=im", "selection=snd"};
  return kOrder;
}

std::string Describe(const std::string& step) {
  if (step == "feature_norm=corpus")
    return "inputs standardised by each corpus's own statistics, the evaluated corpus's test utterances included "
           "(feature_norm = \"corpus\"; inductive: feature_norm = \"train\")";
  if (step == "idf")
    return "TF-IDF features whose IDF each corpus fitted on its own transcripts, the evaluated corpus's included "
           "(inductive: a text feature set not fitted on the target)";
  if (step == "adapt")
    return "domain adaptation on the target's unlabeled utterances (inductive: variant \"none\")";
  if (step.rfind("selection=", 0) == 0)
    return "model selection on the unlabeled target (selection = \"" + step.substr(10) +
           "\"; inductive: selection = \"source_val\")";
  return step;
}

}  // namespace

std::string TransductiveSteps(const jobs::JobSpec& spec, bool self_fitted_idf) {
  std::vector<std::string> steps;
  if (spec.train_config.is_object() && spec.train_config.value("feature_norm", "") == "corpus")
    steps.push_back("feature_norm=corpus");
  if (self_fitted_idf) steps.push_back("idf");
  if (spec.kind == "adapt") steps.push_back("adapt");
  if ((spec.selection == "dev" || spec.selection == "im" || spec.selection == "snd") && spec.kind != "eval" &&
      !spec.target_unlabeled.empty())
    steps.push_back("selection=" + spec.selection);
  std::string out;
  for (const auto& s : steps) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string TransductiveNote(const std::vector<const PlannedJob*>& jobs, const std::string& rows) {
  std::vector<std::string> all_rows;
  std::map<std::string, std::vector<std::string>> rows_of;  // step -> rows using it, table order
  for (const auto* j : jobs) {
    auto r = j->attrs.find(rows);
    const std::string row = r == j->attrs.end() ? "" : r->second;
    if (std::find(all_rows.begin(), all_rows.end(), row) == all_rows.end()) all_rows.push_back(row);
    auto t = j->attrs.find(kTransductiveAttr);
    if (t == j->attrs.end() || t->second.empty()) continue;
    std::stringstream ss(t->second);
    std::string step;
    while (std::getline(ss, step, ',')) {
      auto& v = rows_of[step];
      if (std::find(v.begin(), v.end(), row) == v.end()) v.push_back(row);
    }
  }
  if (rows_of.empty()) return "";
  std::vector<std::string> steps;
  for (const auto& s : StepOrder())
    if (rows_of.count(s)) steps.push_back(s);
  for (const auto& [s, r] : rows_of)
    if (std::find(steps.begin(), steps.end(), s) == steps.end()) steps.push_back(s);
  std::ostringstream c;
  c << "Transductive steps (unlabeled data of the evaluated corpus used): ";
  bool first = true;
  for (const auto& s : steps) {
    c << (first ? "" : "; ") << Describe(s);
    first = false;
    const auto& r = rows_of[s];
    if (rows == "metric" || r.size() == all_rows.size()) {
      c << (all_rows.size() > 1 && rows != "metric" ? ", in every row" : "");
    } else {
      c << ", in row" << (r.size() > 1 ? "s " : " ");
      for (size_t i = 0; i < r.size(); ++i) c << (i ? ", " : "") << r[i];
    }
  }
  c << ".";
  return c.str();
}

}  // namespace emosweep::protocols
