// protocols/expand.cc: LoadProtocol and what every experiment kind shares:
// per-corpus views, folds and partitions, base job specs, identity dedup.
#include "protocols/expand.h"

#include "core/files.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>

#include "core/build_info.h"
#include "core/hash.h"
#include "core/toml_json.h"
#include "data/feature_store.h"
#include "protocols/config_catalog.h"
#include "protocols/experiments.h"
#include "protocols/grammar.h"
#include "protocols/transductive.h"

namespace emosweep::protocols {

nlohmann::json SplitDecl::ToJson() const {
  nlohmann::json j = {{"method", method}, {"seed", seed}};
  if (method == "speaker_kfold") j["k"] = k;
  if (method == "loso") j["group_by"] = group_by;
  if (method != "file") j["val_fraction"] = val_fraction;
  if (method == "stratified") j["test_fraction"] = test_fraction;
  if (method == "file") j["file"] = file;
  if (allow_speaker_overlap) j["allow_speaker_overlap"] = true;
  if (!folds.empty()) j["fold"] = folds;
  return j;
}

std::vector<std::string> ExperimentDecl::Corpora() const {
  std::vector<std::string> out;
  for (const auto* list : {&corpora, &sources, &heldout, &targets})
    for (const auto& c : *list)
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

std::vector<std::vector<std::string>> ExperimentDecl::SourceSets() const {
  std::vector<std::vector<std::string>> sets;
  for (const auto& how : pool) {
    if (how == "each")
      for (const auto& s : sources) sets.push_back({s});
    else
      sets.push_back(sources);
  }
  // One source: "each" and "all" are the same set.
  std::vector<std::vector<std::string>> out;
  for (auto& s : sets)
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  return out;
}

nlohmann::json ExperimentDecl::ToJson() const {
  nlohmann::json models_j = nlohmann::json::array();
  for (const auto& m : models) models_j.push_back({{"name", m.name}, {"label", m.label}, {"config", m.config}});
  nlohmann::json j = {{"name", name},     {"kind", kind},         {"models", models_j},  {"grid", grid},
                      {"seeds", seeds},   {"selection", selection}, {"labels", labels}, {"features", features},
                      {"train", train},   {"split", split.ToJson()}};
  if (!oracle_eval.empty()) j["oracle_eval"] = oracle_eval;
  if (!corpora.empty()) j["corpora"] = corpora;
  if (!heldout.empty()) j["heldout"] = heldout;
  if (!source.empty() && !target.empty() && pool == std::vector<std::string>{"all"}) {
    j["source"] = source, j["target"] = target;  // the single-pair form, as before the role keys
  } else if (!sources.empty()) {
    j["source"] = sources, j["targets"] = targets, j["pool"] = pool;
  } else if (!targets.empty()) {
    j["targets"] = targets;
  }
  if (kind == "finetune" || kind == "fewshot") j["finetune_train"] = finetune_train;
  if (kind == "fewshot") {
    nlohmann::json b = nlohmann::json::array();
    for (const auto& x : budgets) b.push_back(x.label);
    j["budgets"] = b;
  }
  if (kind == "adapt") j["variants"] = variants, j["weight"] = weight, j["adapt_options"] = adapt_options;
  if (lodo) j["lodo"] = true;  // its leave-one-source-out jobs (exp_lodo.cc) are part of the expansion
  return j;
}

jobs::DataRef CorpusView::Ref(jobs::IdList ids) const {
  ids.MakeInterned();  // nothing to do for a share's or the view's list (interned when made)
  return {store->path, store->info.content_hash, std::move(ids)};
}

Result<const CorpusView*> Expander::View(const ExperimentDecl& e, const std::string& corpus) {
  std::string key = corpus;
  for (const auto& l : e.labels) key += "|" + l;
  for (const auto& [m, f] : e.features) key += "|" + m + "=" + f;
  auto it = views_.find(key);
  if (it != views_.end()) return &it->second;
  const StoreView* store = stores_.Find(corpus);
  if (!store) return Status::NotFound("store of corpus '" + corpus + "' is missing");
  for (const auto& [modality, name] : e.features) {
    auto f = std::find_if(store->info.features.begin(), store->info.features.end(),
                          [&n = name](const auto& fi) { return fi.name == n; });
    if (f == store->info.features.end()) {
      std::vector<std::string> have;
      for (const auto& fi : store->info.features) have.push_back(fi.name + " (" + fi.modality + ")");
      return Status::NotFound(e.where + ": store " + store->path + " (corpus '" + corpus + "') has no feature set '" +
                              name + "' for " + modality + "; it has: " + JoinNames(have));
    }
    if (f->modality != modality)
      return Status::InvalidArgument(e.where + ": feature set '" + name + "' of " + store->path + " is " +
                                     f->modality + ", not " + modality);
  }
  CorpusView v;
  v.store = store;
  v.meta.name = store->meta.name;
  v.meta.language = store->meta.language;
  std::set<std::string> wanted(e.labels.begin(), e.labels.end());
  std::map<std::string, int> counts, left_out;
  for (const auto& u : store->meta.utterances) {
    if (!wanted.count(u.label)) {
      ++left_out[u.label];
      continue;
    }
    v.meta.utterances.push_back(u);
    v.ids.push_back(u.id);
    ++counts[u.label];
  }
  for (const auto& l : e.labels) {
    if (counts[l]) v.meta.label_set.push_back(l);
    else
      warnings_.push_back("experiment '" + e.name + "': corpus '" + corpus + "' has no utterance of class '" + l + "'");
  }
  if (!left_out.empty()) {
    // Said once per corpus and label set (helper-72: EmoDB 535 -> 339 under core4 went unsaid).
    std::string what;
    for (const auto& [label, n] : left_out) what += (what.empty() ? "" : ", ") + label + " " + std::to_string(n);
    std::string labels;
    for (const auto& l : e.labels) labels += (labels.empty() ? "" : ",") + l;
    const std::string note = "corpus '" + corpus + "' (classes " + labels + "): " + std::to_string(v.ids.size()) +
                             " of " + std::to_string(store->meta.utterances.size()) +
                             " utterances kept; left out: " + what;
    if (std::find(notes_.begin(), notes_.end(), note) == notes_.end()) notes_.push_back(note);
  }
  if (v.ids.empty())
    return Status::FailedPrecondition(e.where + ": corpus '" + corpus + "' (" + store->path +
                                      ") has no utterance with a label of the experiment's label set");
  v.ids.MakeInterned();
  return &views_.emplace(key, std::move(v)).first->second;
}

Result<std::vector<data::Fold>> Expander::Folds(const ExperimentDecl& e, const CorpusView& view) {
  std::vector<data::Fold> folds;
  bool file_allows_overlap = false;
  const CorpusDecl* corpus = decl_.FindCorpus(view.store->corpus);
  const SplitDecl& s = corpus && corpus->has_split ? corpus->split : e.split;
  if (s.method == "file") {
    std::string path = s.file;
    for (size_t p = path.find("{corpus}"); p != std::string::npos; p = path.find("{corpus}"))
      path.replace(p, 8, view.store->corpus);
    if (!path.empty() && path[0] != '/') path = decl_.dir + "/" + path;
    Result<data::SplitSet> read = data::ReadSplitFile(path);
    if (!read.ok()) return read.status().WithContext(e.where + ": corpus '" + view.store->corpus + "'");
    data::SplitSet set = std::move(read).value();
    if (!set.corpus_hash.empty() && set.corpus_hash != view.store->info.content_hash)
      return Status::FailedPrecondition(path + ": split file was made for corpus hash " + set.corpus_hash +
                                        ", but " + view.store->path + " has " + view.store->info.content_hash);
    {  // every id of the file is an utterance of the store (helper-62: unknown ids were dropped without a word)
      std::set<std::string> known;
      for (const auto& u : view.store->meta.utterances) known.insert(u.id);
      size_t unknown = 0;
      std::string example;
      for (const auto& f : set.folds)
        for (const auto* part : {&f.train, &f.val, &f.test})
          for (const auto& id : *part)
            if (!known.count(id)) {
              if (unknown++ == 0) example = id;
            }
      // Refused when most ids are unknown (another corpus's or store's file); a few are dropped with a warning
      // (e.g. an official partition list that still names rows the label map dropped at import; helper-65).
      size_t total = 0;
      for (const auto& f : set.folds) total += f.train.size() + f.val.size() + f.test.size();
      const std::string what = std::to_string(unknown) + " of the split file's " + std::to_string(total) +
                               " ids are not utterances of corpus '" + view.store->corpus + "' (" + view.store->path +
                               "), e.g. '" + example + "'";
      if (unknown > 0 && 2 * unknown >= total)
        return Status::InvalidArgument(path + ": " + what + ": a split file of another corpus or store?");
      if (unknown > 0)
        warnings_.push_back(path + ": " + what + "; they are left out (rows the label map dropped at import?)");
    }
    std::set<std::string> keep(view.ids.begin(), view.ids.end());
    for (auto& f : set.folds)
      for (auto* part : {&f.train, &f.val, &f.test})
        part->erase(std::remove_if(part->begin(), part->end(), [&](const std::string& id) { return !keep.count(id); }),
                    part->end());
    // The experiment's utterances of the file: the corpus it names and the speaker lint (ids in two parts or
    // folds named alike were refused on reading).
    Status fits = data::CheckSplitForCorpus(set, view.meta, path);
    if (!fits.ok()) return fits.WithContext(e.where + ": corpus '" + view.store->corpus + "'");
    file_allows_overlap = set.spec.allow_speaker_overlap;  // flagged like the protocol's key (helper-62)
    for (auto& f : set.folds) folds.push_back(std::move(f));
  } else {
    data::SplitSpec spec;
    spec.method = s.method;
    spec.k = s.k;
    spec.group_by = s.group_by;
    spec.val_fraction = s.val_fraction;
    spec.test_fraction = s.test_fraction;
    spec.seed = s.seed;
    spec.allow_speaker_overlap = s.allow_speaker_overlap;
    auto set = data::MakeSplits(view.meta, spec);
    if (!set.ok()) return set.status().WithContext(e.where + ": corpus '" + view.store->corpus + "'");
    folds = std::move(set->folds);
  }
  if (s.allow_speaker_overlap || file_allows_overlap) {  // test shares whose speakers are trained on
    // Only folds where a test speaker is also in train or val (helper-62: a speaker k-fold that merely allowed
    // overlap was flagged speaker-dependent); an utterance without a speaker counts as overlapping.
    std::map<std::string, const std::string*> speaker;
    for (const auto& u : view.meta.utterances) speaker[u.id] = &u.speaker;
    auto overlaps = [&](const data::Fold& f) {
      std::set<std::string> seen;
      for (const auto* part : {&f.train, &f.val})
        for (const auto& id : *part) {
          auto it = speaker.find(id);
          if (it == speaker.end() || it->second->empty()) return true;
          seen.insert(*it->second);
        }
      for (const auto& id : f.test) {
        auto it = speaker.find(id);
        if (it == speaker.end() || it->second->empty() || seen.count(*it->second)) return true;
      }
      return false;
    };
    for (const auto& f : folds) {
      if (!overlaps(f)) continue;
      jobs::IdList test = jobs::IdList::Intern(f.test);
      auto [it, fresh] = overlap_test_ptrs_.try_emplace(test.shared());
      it->second.insert(e.name);
      if (fresh) overlap_tests_.push_back(std::move(test));
    }
  }
  if (s.folds.empty()) return folds;
  std::vector<data::Fold> chosen;
  for (const auto& want : s.folds) {
    auto it = std::find_if(folds.begin(), folds.end(), [&](const data::Fold& f) { return f.name == want; });
    bool is_index = !want.empty() && std::all_of(want.begin(), want.end(), ::isdigit);
    if (it == folds.end() && is_index && std::stoul(want) < folds.size()) it = folds.begin() + std::stoul(want);
    if (it == folds.end())
      return Status::InvalidArgument(e.where + ": split of corpus '" + view.store->corpus + "' has no fold '" + want +
                                     "' (it has " + std::to_string(folds.size()) + ")");
    chosen.push_back(*it);
  }
  return chosen;
}

Result<Partition> Expander::PartitionOf(const ExperimentDecl& e, const CorpusView& view) {
  ES_ASSIGN_OR_RETURN(std::vector<data::Fold> folds, Folds(e, view));
  if (folds.empty()) return Status::FailedPrecondition(e.where + ": split of '" + view.store->corpus + "' is empty");
  const data::Fold& f = folds.front();
  if (f.train.empty() || f.test.empty())
    return Status::FailedPrecondition(e.where + ": fold '" + f.name + "' of corpus '" + view.store->corpus +
                                      "' has an empty train or test share");
  return Partition{f.name, jobs::IdList::Intern(f.train), jobs::IdList::Intern(f.val), jobs::IdList::Intern(f.test)};
}

Result<Pooled> Expander::PoolOf(const ExperimentDecl& e, const std::vector<std::string>& corpora) {
  Pooled p;
  for (const auto& c : corpora) {
    ES_ASSIGN_OR_RETURN(const CorpusView* view, View(e, c));
    ES_ASSIGN_OR_RETURN(Partition part, PartitionOf(e, *view));
    p.train_rows += part.train.size();
    p.train.push_back(view->Ref(part.train));
    if (!part.val.empty()) p.val.push_back(view->Ref(part.val));
    p.test.push_back(view->Ref(part.test));
  }
  return p;
}

std::string Expander::EvaluateOn(const std::string& corpus, const std::string& kind_default) const {
  const CorpusDecl* c = decl_.FindCorpus(corpus);
  return c && !c->evaluate_on.empty() ? c->evaluate_on : kind_default;
}

Result<jobs::DataRef> Expander::EvalSetOf(const ExperimentDecl& e, const std::string& corpus,
                                          const std::string& kind_default) {
  ES_ASSIGN_OR_RETURN(const CorpusView* view, View(e, corpus));
  // "whole" needs no split of the corpus at all.
  if (EvaluateOn(corpus, kind_default) == "whole") return view->Ref(view->ids);
  ES_ASSIGN_OR_RETURN(Partition part, PartitionOf(e, *view));
  return view->Ref(part.test);
}

bool Expander::SelfFittedIdf(const jobs::JobSpec& spec) const {
  std::vector<const jobs::DataRef*> refs;
  for (const auto& [name, list] : spec.eval)
    for (const auto& r : list) refs.push_back(&r);
  for (const auto& r : spec.target_unlabeled) refs.push_back(&r);
  for (const auto* r : refs)
    for (const auto& c : decl_.corpora) {
      const StoreView* v = stores_.Find(c.name);
      if (!v || v->path != r->store) continue;
      for (const auto& fi : v->info.features)
        for (const auto& [modality, name] : spec.features)
          if (fi.name == name && fi.provenance.is_object() &&
              fi.provenance.value("extractor", "") == "emosweep.tfidf")
            return true;
    }
  return false;
}

jobs::JobSpec Expander::BaseSpec(const ExperimentDecl& e, const GridPoint& point, uint64_t seed) const {
  jobs::JobSpec s;
  s.kind = "supervised";
  // Every job of the experiment shares one map and one list (interned once per experiment).
  if (shared_for_ != &e) {
    shared_features_ = jobs::FeatureMap::Intern(e.features);
    shared_labels_ = jobs::IdList::Intern(e.labels);
    shared_for_ = &e;
  }
  s.features = shared_features_;
  s.labels = shared_labels_;
  s.model = point.model;
  s.train_config = point.train;
  s.selection = e.selection;
  s.oracle_eval = e.oracle_eval;
  s.seed = seed;
  return s;
}

std::map<std::string, std::string> Expander::BaseAttrs(const ExperimentDecl& e, size_t model, const GridPoint& point,
                                                       uint64_t seed) const {
  std::map<std::string, std::string> a = point.attrs;
  a["experiment"] = e.name;
  a["kind"] = e.kind;
  a["model"] = e.models[model].label;
  a["model_name"] = e.models[model].name;
  a["seed"] = std::to_string(seed);
  a["selection"] = e.selection == "oracle" ? "oracle(" + e.oracle_eval + ")" : e.selection;
  return a;
}

namespace {
uint64_t IdHash(const std::string& id) { return std::hash<std::string>()(id); }
}  // namespace

long Expander::FindJob(const std::string& id) const {
  if (id_slots_.empty()) return -1;
  const uint64_t h = IdHash(id), mask = id_slots_.size() - 1, tag = h >> 32;
  for (uint64_t s = h & mask; id_slots_[s]; s = (s + 1) & mask) {
    const uint64_t slot = id_slots_[s];
    if ((slot >> 32) == tag && jobs_[(slot & 0xffffffffu) - 1].spec.id == id) return (slot & 0xffffffffu) - 1;
  }
  return -1;
}

void Expander::IndexJob(size_t pos) {
  if ((pos + 1) * 2 > id_slots_.size()) {  // keep the load under 1/2: rebuild at twice the size
    std::vector<uint64_t> old = std::move(id_slots_);
    id_slots_.assign(std::max<size_t>(64, old.size() * 2), 0);
    for (uint64_t slot : old)
      if (slot) IndexJob((slot & 0xffffffffu) - 1);
  }
  const uint64_t h = IdHash(jobs_[pos].spec.id), mask = id_slots_.size() - 1;
  uint64_t s = h & mask;
  while (id_slots_[s]) s = (s + 1) & mask;
  id_slots_[s] = ((h >> 32) << 32) | static_cast<uint64_t>(pos + 1);
}

std::string Expander::Add(PlannedJob job, ExperimentSummary* summary) {
  // Jobs of one grid point share one model, train and adapt tree (jobs::SharedJson::Intern);
  // an interned tree keeps its dump, so the identity below serialises none of them again.
  job.spec.model.MakeInterned();
  job.spec.train_config.MakeInterned();
  job.spec.adapt.MakeInterned();
  job.spec.features.MakeInterned();  // nothing to do for the expansion's own jobs (BaseSpec)
  job.spec.labels.MakeInterned();
  job.spec.id = jobs::ComputeJobId(job.spec, &identities_);  // = ComputeId(), leading bytes cached
  const std::string steps = TransductiveSteps(job.spec, SelfFittedIdf(job.spec));
  if (!steps.empty()) job.attrs[kTransductiveAttr] = steps;
  if (!overlap_test_ptrs_.empty()) {  // tested on a speaker-overlap test share of a store it trained on
    // An eval job trains nothing: the model it evaluates trained on its parent's data (helper-62: a joint
    // model's per-corpus cells were not flagged).
    const std::vector<jobs::DataRef>* trained = &job.spec.train;
    if (trained->empty() && !job.spec.init_from.empty())
      if (const long parent = FindJob(job.spec.init_from); parent >= 0) trained = &jobs_[parent].spec.train;
    auto it_exp = job.attrs.find("experiment");
    const std::string experiment = it_exp == job.attrs.end() ? std::string() : it_exp->second;
    std::string evals;
    for (const auto& [name, refs] : job.spec.eval)
      for (const auto& r : refs)
        if (auto o = overlap_test_ptrs_.find(r.ids.shared());
            o != overlap_test_ptrs_.end() && o->second.count(experiment) &&
            std::any_of(trained->begin(), trained->end(), [&](const jobs::DataRef& t) {
              return t.store == r.store;
            })) {
          evals += (evals.empty() ? "" : ",") + name;
          break;
        }
    if (!evals.empty()) job.attrs[kSpeakerOverlapAttr] = evals;
  }
  if (job.reportable) {
    auto kind = job.attrs.find("kind");
    auto exp = job.attrs.find("experiment");
    auto eval = job.spec.eval.find("test");
    if (kind != job.attrs.end() && kind->second != "in_domain" && exp != job.attrs.end() && eval != job.spec.eval.end())
      for (const auto& r : eval->second)
        for (const auto& c : decl_.corpora) {
          if (c.evaluate_on != "test" || c.path != std::string(r.store) || r.ids.empty()) continue;
          auto& shares = test_shares_[c.name];
          if (shares.count(r.ids.shared())) continue;
          for (const auto& [ptr, first] : shares)
            if (first != exp->second && test_share_warned_.insert(c.name).second) {
              warnings_.push_back("corpus '" + c.name + "' (evaluate_on = \"test\"): experiments '" + first +
                                  "' and '" + exp->second + "' test it on different utterances (their splits or "
                                  "label sets differ), so their numbers are not on one test set; give [corpora." +
                                  c.name + "] its own split (and the experiments one label set) to fix it");
              break;
            }
          shares.emplace(r.ids.shared(), exp->second);
          test_share_lists_.push_back(r.ids);
        }
  }
  const long found = FindJob(job.spec.id);
  if (found >= 0) {
    PlannedJob& have = jobs_[found];
    if (job.reportable && !have.reportable) {
      have.reportable = true;  // a helper job another experiment reports on directly
      have.attrs = job.attrs;
    } else if (job.reportable && have.reportable && have.attrs != job.attrs) {
      auto describe = [](const Attrs& a) {
        std::string d = a.at("experiment");
        for (const char* k : {"model", "target", "budget", "variant", "hp"}) {
          auto it = a.find(k);
          if (it != a.end() && !it->second.empty()) d += std::string(" ") + k + "=" + it->second;
        }
        return d;
      };
      warnings_.push_back("job [" + describe(job.attrs) + "] is identical to job [" + describe(have.attrs) +
                          "] (same identity): it runs once and its table cell is reported under the first");
    }
    return job.spec.id;
  }
  ++summary->jobs;
  ++summary->jobs_by_kind[job.spec.kind];
  // Every job of a split holds the same list (jobs::IdList::Intern): one copy of the ids
  // per split, however many jobs read it. keep_data = false holds none, nor the model,
  // train and adapt configs (JSON trees, most of a lean job's memory once its id is known).
  auto share = [keep = keep_data_](std::vector<jobs::DataRef>& refs) {
    for (auto& r : refs) {
      if (keep) r.ids.MakeInterned();
      else r.ids.clear();
    }
  };
  share(job.spec.train);
  share(job.spec.val);
  share(job.spec.target_unlabeled);
  for (auto& [name, refs] : job.spec.eval) share(refs);
  if (!keep_data_) {
    job.spec.model = job.spec.train_config = job.spec.adapt = nlohmann::json();  // shared null
    // Nor its feature sets (~220 bytes of map a job) and the checkpoint it starts from
    // (its deps name that job): no lean reader reads them.
    job.spec.features.clear();
    job.spec.init_from.clear();
    if (plan_only_) {
      job.spec.labels.clear();
      for (auto* refs : {&job.spec.train, &job.spec.val, &job.spec.target_unlabeled})
        std::vector<jobs::DataRef>().swap(*refs);
      job.spec.eval.clear();
    }
    if (table_only_) {  // a table reads neither (nor does the dedup above)
      for (auto* refs : {&job.spec.train, &job.spec.val, &job.spec.target_unlabeled})
        std::vector<jobs::DataRef>().swap(*refs);
      job.spec.eval.clear();
      std::vector<jobs::SharedId>().swap(job.deps);
    }
  }
  std::string id = job.spec.id;
  jobs_.push_back(std::move(job));
  IndexJob(jobs_.size() - 1);
  return id;
}

jobs::SharedId Expander::ParentId(const std::string& id) {
  const long pos = FindJob(id);
  if (pos < 0) return jobs::SharedId(id);  // not added (a caller's error): a copy of its own
  if (parent_ids_.size() <= static_cast<size_t>(pos)) parent_ids_.resize(jobs_.size());
  jobs::SharedId& shared = parent_ids_[static_cast<size_t>(pos)];
  if (shared.empty()) shared = jobs::SharedId(id);
  return shared;
}

std::string Expander::AddEval(const PlannedJob& trained, const jobs::DataRef& test,
                              std::map<std::string, std::string> attrs, ExperimentSummary* s) {
  PlannedJob j;
  j.spec.kind = "eval";
  j.spec.features = trained.spec.features;
  j.spec.labels = trained.spec.labels;
  j.spec.model = trained.spec.model;
  j.spec.train_config = trained.spec.train_config;
  j.spec.selection = trained.spec.selection;
  j.spec.seed = trained.spec.seed;
  j.spec.init_from = ParentId(trained.spec.id);
  j.spec.eval["test"] = {test};
  j.deps = {j.spec.init_from};
  j.attrs = std::move(attrs);
  return Add(std::move(j), s);
}

Status Expander::Expand(const ExperimentDecl& e, ExperimentSummary* s) {
  if (e.kind == "in_domain") return ExpandInDomain(e, s);
  if (e.kind == "loco" && e.lodo) {
    ES_RETURN_IF_ERROR(ExpandLoco(e, s));
    return ExpandLodo(e, s);
  }
  if (e.kind == "loco") return ExpandLoco(e, s);
  if (e.kind == "cross_corpus") return e.sources.empty() ? ExpandCrossCorpus(e, s) : ExpandCrossCorpusSources(e, s);
  if (e.kind == "joint") return ExpandJoint(e, s);
  if (e.kind == "finetune" || e.kind == "fewshot") return ExpandFinetune(e, s);
  if (e.kind == "adapt") return ExpandAdapt(e, s);
  return Status::Internal("unhandled experiment kind " + e.kind);
}

namespace {
// The grammar refuses two corpus names written with one store path in a cross-corpus experiment (a held-out or
// target corpus would be its own training data under another name). Other spellings of one store (a symbolic
// or hard link: helper-66's loco held out an alias of synth_a at 95.6 UA) and byte-identical copies (the same
// content hash) are found here, once the stores are open.
Status CheckOneStoreUnderTwoNames(const ProtocolDecl& decl, const StoreIndex& stores) {
  for (const auto& e : decl.experiments) {
    if (e.kind == "in_domain") continue;
    const std::vector<std::string> names = e.Corpora();
    for (size_t a = 0; a < names.size(); ++a)
      for (size_t b = a + 1; b < names.size(); ++b) {
        const StoreView* va = stores.Find(names[a]);
        const StoreView* vb = stores.Find(names[b]);
        if (!va || !vb || va->path == vb->path) continue;  // the grammar's check covers one spelling
        const bool same_file = SameFile(va->path, vb->path);
        if (!same_file && (va->info.content_hash.empty() || va->info.content_hash != vb->info.content_hash)) continue;
        return Status::InvalidArgument(
            e.where + ": experiment '" + e.name + "' reads corpora '" + names[a] + "' (" + va->path + ") and '" +
            names[b] + "' (" + vb->path + "), which are one store (" +
            (same_file ? std::string("the same file") : "identical content, hash " + va->info.content_hash) +
            "): a held-out or target corpus would be trained on under another name");
      }
  }
  return Status::Ok();
}
}  // namespace

Result<Protocol> LoadProtocol(const std::string& path) { return LoadProtocol(path, LoadOptions{}); }

Result<Protocol> LoadProtocol(const std::string& path, const LoadOptions& options) {
  ES_ASSIGN_OR_RETURN(TomlDocument doc, ParseTomlFile(path));
  ES_ASSIGN_OR_RETURN(ProtocolDecl decl, ParseProtocol(doc, options));
  ES_ASSIGN_OR_RETURN(StoreIndex stores, StoreIndex::Open(decl));
  ES_RETURN_IF_ERROR(CheckOneStoreUnderTwoNames(decl, stores));
  Protocol p;
  p.path = path;
  p.name = decl.name;
  p.version = decl.version;
  p.description = decl.description;
  p.tables = decl.tables;
  p.missing_inputs = stores.missing();
  p.warnings = decl.warnings;
  nlohmann::json corpora = nlohmann::json::object();
  for (const auto& c : decl.corpora) {
    p.stores[c.name] = c.path;
    const StoreView* v = stores.Find(c.name);
    corpora[c.name] = {{"store", c.path}, {"content_hash", v ? v->info.content_hash : ""}};
    if (c.has_split) corpora[c.name]["split"] = c.split.ToJson();
    if (!c.evaluate_on.empty()) corpora[c.name]["evaluate_on"] = c.evaluate_on;
  }
  nlohmann::json experiments = nlohmann::json::array();
  Expander ex(decl, stores);
  ex.set_keep_data(options.keep_data);
  ex.set_plan_only(!options.keep_data && options.plan_only);
  ex.set_table_only(!options.keep_data && options.table_only);
  for (const auto& e : decl.experiments) {
    experiments.push_back(e.ToJson());
    ExperimentSummary s;
    s.name = e.name;
    s.kind = e.kind;
    s.selection = e.selection == "oracle" ? "oracle(" + e.oracle_eval + ")" : e.selection;
    s.corpora = e.Corpora();
    std::vector<std::string> missing;
    for (const auto& c : s.corpora)
      if (stores.IsMissing(c)) missing.push_back(c);
    for (const auto& f : e.missing_files)
      if (std::find(p.missing_inputs.begin(), p.missing_inputs.end(), "model file " + f) == p.missing_inputs.end())
        p.missing_inputs.push_back("model file " + f);
    if (!e.missing_files.empty()) {
      s.reason = "missing model file(s): " + JoinNames({e.missing_files.begin(), e.missing_files.end()});
    } else if (!missing.empty()) {
      s.reason = "missing store(s): " + JoinNames(missing);
    } else if (!options.expand) {
      s.reason = "not expanded";
    } else {
      ES_RETURN_IF_ERROR(ex.Expand(e, &s));
      s.expanded = true;
      // The count above is a lower bound (folds are known only now): the exact
      // total is checked after each experiment, so at most one over-counts.
      if (decl.max_jobs && ex.jobs().size() > decl.max_jobs)
        return Status::InvalidArgument(e.where + ": the protocol expands to " + std::to_string(ex.jobs().size()) +
                                       " jobs by the end of this experiment: more than --max-jobs " +
                                       std::to_string(decl.max_jobs) + " (shrink the grid, or raise --max-jobs)");
    }
    p.experiments.push_back(std::move(s));
  }
  p.jobs = std::move(ex.jobs());
  for (auto& w : ex.warnings()) p.warnings.push_back(std::move(w));
  for (auto& n : ex.notes()) p.notes.push_back(std::move(n));
  p.effective = {{"version", p.version},     {"name", p.name},           {"description", p.description},
                 {"corpora", corpora},       {"experiments", experiments}};
  {
    // Split files are named by path in the effective protocol: their bytes count too.
    nlohmann::json split_files = nlohmann::json::array();
    auto add_split = [&](const SplitDecl& s, const std::string& corpus) {
      if (s.method != "file") return;
      std::string path = s.file;
      for (size_t k = path.find("{corpus}"); k != std::string::npos; k = path.find("{corpus}"))
        path.replace(k, 8, corpus);
      if (!path.empty() && path[0] != '/') path = decl.dir + "/" + path;
      std::ifstream f(path, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      split_files.push_back({path, f.good() || f.eof() ? Sha256Hex(bytes) : std::string("unreadable")});
    };
    for (const auto& c : decl.corpora)
      if (c.has_split) add_split(c.split, c.name);
    for (const auto& e : decl.experiments)
      for (const auto& c : e.Corpora()) add_split(e.split, c);
    nlohmann::json build = BuildInfo();
    // This very binary (a rebuild with other expansion code gets other keys).
    struct stat exe;
    std::string binary = ::stat("/proc/self/exe", &exe) == 0
                             ? std::to_string(exe.st_size) + ":" + std::to_string(exe.st_mtim.tv_sec) + "." +
                                   std::to_string(exe.st_mtim.tv_nsec)
                             : "";
    p.expansion_key = HashJson({{"effective", p.effective},
                                {"binary", binary},
                                {"split_files", split_files},
                                {"identity_version", 1},
                                {"emosweep", build.value("version", "") + "+" + build.value("git_revision", "")}});
  }
  return p;
}

}  // namespace emosweep::protocols
