// worker/job_config.cc: JOB.toml → JobSpec (see job_config.h, docs/trainer.md).
#include "worker/job_config.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/log.h"
#include "core/toml_json.h"
#include "data/corpus.h"
#include "data/feature_store.h"
#include "data/label_map.h"
#include "data/splits.h"
#include "models/adapt_configs.h"
#include "models/model_configs.h"
#include "worker/dataset.h"
#include "worker/job.h"

namespace emosweep::worker {
namespace {

namespace fs = std::filesystem;

std::string Resolve(const fs::path& base, const std::string& p) {
  fs::path q(p);
  return q.is_absolute() ? p : (base / q).lexically_normal().string();
}

Status CheckKeys(const nlohmann::json& table, const std::set<std::string>& known, const TomlDocument& doc,
                 const std::string& pointer) {
  if (!table.is_object()) return Status::InvalidArgument(doc.Where(pointer) + ": expected a table");
  for (auto it = table.begin(); it != table.end(); ++it)
    if (!known.count(it.key())) {
      std::string all;
      for (const auto& k : known) all += (all.empty() ? "" : ", ") + k;
      return Status::InvalidArgument(doc.Where(pointer + "/" + it.key()) + ": unknown key '" + it.key() +
                                     "' (known: " + all + ")");
    }
  return Status::Ok();
}

// Source lines of the keys of one table, relative to it ("/train/lr" → "lr").
std::map<std::string, int> LinesOf(const TomlDocument& doc, const std::string& table) {
  std::map<std::string, int> lines;
  const std::string prefix = "/" + table + "/";
  for (const auto& [ptr, line] : doc.lines)
    if (ptr.rfind(prefix, 0) == 0) lines[ptr.substr(prefix.size())] = line;
  return lines;
}

// The effective [model] table (defaults filled, `name` kept), as the protocol
// layer stores it, so a JOB.toml and the same job planned from a protocol
// share one job id; unknown models and keys are errors naming the line.
Result<nlohmann::json> EffectiveModel(const nlohmann::json& m, const TomlDocument& doc) {
  if (!m.is_object() || !m.contains("name") || !m["name"].is_string())
    return Status::InvalidArgument(doc.path + ": [model] with a 'name' is required");
  const std::string name = m["name"].get<std::string>();
  const models::ModelInfo* info = models::FindModelInfo(name);
  if (!info) {
    std::string all;
    for (const auto& i : models::ModelInfos()) all += (all.empty() ? "" : ", ") + i.name;
    return Status::InvalidArgument(doc.Where("/model/name") + ": unknown model '" + name + "' (known: " + all + ")");
  }
  nlohmann::json given = m;
  given.erase("name");
  ES_ASSIGN_OR_RETURN(nlohmann::json out, info->config.Apply(given, doc.path + " [model]", LinesOf(doc, "model")));
  // A model file (torchscript) resolves against the JOB.toml's directory and is hashed into the identity.
  ES_RETURN_IF_ERROR(models::ResolveModelFile(
      name, fs::absolute(fs::path(doc.path)).parent_path().string(),
      doc.lines.count("/model/file") ? doc.Where("/model/file") : doc.path + " [model]", &out));
  out["name"] = name;
  return out;
}

// Every store has the job's feature sets (checked here so that the message
// names the TOML line). Utterances whose label is not one of the job's classes
// are left out of the labelled roles, as the protocol layer does (e.g. EmoDB's
// boredom/disgust/fear under core4); unlabelled target data is kept whole.
Status CheckAndFilterData(const TomlDocument& doc, JobSpec* s) {
  auto check_features = [&](const DataRef& r) -> Result<std::shared_ptr<const LoadedStore>> {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStore> st, StoreCache::Process().Get(r.store));
    for (const auto& [modality, set] : s->features) {
      if (st->corpus.FindFeature(set)) continue;
      std::string have;
      for (const auto& f : st->corpus.features) have += (have.empty() ? "" : ", ") + f.name;
      return Status::NotFound(doc.Where("/features/" + modality) + ": feature set '" + set + "' (" + modality +
                              ") is not in " + r.store + " (has: " + (have.empty() ? "none" : have) + ")");
    }
    return st;
  };
  for (const auto& r : s->target_unlabeled) ES_RETURN_IF_ERROR(check_features(r).status());
  // Every class listed in `labels` is a label of its training stores (of its eval
  // stores for an eval job): a misspelt or foreign label would otherwise be an
  // empty class while the real one is silently left out.
  const std::vector<DataRef>* labelled = &s->train;
  std::vector<DataRef> eval_refs;
  if (labelled->empty()) {
    for (const auto& [name, refs] : s->eval) eval_refs.insert(eval_refs.end(), refs.begin(), refs.end());
    labelled = &eval_refs;
  }
  std::set<std::string> have;
  std::string stores;
  for (const auto& r : *labelled) {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStore> st, StoreCache::Process().Get(r.store));
    for (const auto& u : st->corpus.utterances) have.insert(u.label);
    stores += (stores.empty() ? "" : ", ") + r.store;
  }
  for (size_t i = 0; i < s->labels.size() && !labelled->empty(); ++i) {
    if (have.count(s->labels[i])) continue;
    std::string all;
    for (const auto& l : have) all += (all.empty() ? "" : ", ") + l;
    const std::string what = "class '" + s->labels[i] + "' is not a label of " + stores + " (labels there: " +
                             (all.empty() ? "none" : all) + ")";
    if (!doc.value.contains("labels")) {  // a named set may name a class a corpus lacks (as in protocols)
      LOG_WARN << doc.Where("/label_set") << ": " << what;
      continue;
    }
    return Status::InvalidArgument(doc.Where("/labels/" + std::to_string(i)) + ": " + what);
  }
  const std::set<std::string> wanted(s->labels.begin(), s->labels.end());
  auto filter = [&](std::vector<DataRef>& refs, const std::string& role) -> Status {
    for (auto& r : refs) {
      ES_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStore> st, check_features(r));
      std::map<std::string, int> dropped;
      std::vector<std::string> kept;
      kept.reserve(r.ids.size());
      for (const auto& id : r.ids) {
        auto it = st->row_of.find(id);
        if (it == st->row_of.end())
          return Status::InvalidArgument(doc.path + ": " + r.store + " has no utterance '" + id + "' (" + role + ")");
        const std::string& label = st->corpus.utterances[static_cast<size_t>(it->second)].label;
        if (wanted.count(label)) kept.push_back(id);
        else ++dropped[label];
      }
      if (!dropped.empty()) {
        std::string what;
        for (const auto& [l, n] : dropped) what += (what.empty() ? "" : ", ") + l + " " + std::to_string(n);
        LOG_INFO << role << " (" << r.store << "): left out " << r.ids.size() - kept.size()
                 << " utterances outside the job's classes (" << what << ")";
      }
      if (kept.empty())
        return Status::InvalidArgument(doc.path + ": " + r.store + ": no utterance of the job's classes in " + role);
      r.ids = std::move(kept);
    }
    return Status::Ok();
  };
  ES_RETURN_IF_ERROR(filter(s->train, "train"));
  ES_RETURN_IF_ERROR(filter(s->val, "val"));
  for (auto& [name, refs] : s->eval) ES_RETURN_IF_ERROR(filter(refs, "eval '" + name + "'"));
  return Status::Ok();
}

// A whole store as one DataRef (every utterance, in store order).
Result<DataRef> WholeStore(const std::string& path) {
  ES_ASSIGN_OR_RETURN(std::shared_ptr<const LoadedStore> s, StoreCache::Process().Get(path));
  DataRef r{path, s->content_hash, {}};
  for (const auto& u : s->corpus.utterances) r.ids.push_back(u.id);
  return r;
}

Result<std::vector<DataRef>> StoreList(const nlohmann::json& v, const fs::path& base, const TomlDocument& doc,
                                       const std::string& pointer) {
  std::vector<DataRef> out;
  auto add = [&](const std::string& p) -> Status {
    Result<DataRef> r = WholeStore(Resolve(base, p));
    if (!r.ok()) return r.status().WithContext(doc.Where(pointer));
    out.push_back(std::move(r).value());
    return Status::Ok();
  };
  if (v.is_string()) {
    ES_RETURN_IF_ERROR(add(v.get<std::string>()));
    return out;
  }
  if (!v.is_array()) return Status::InvalidArgument(doc.Where(pointer) + ": expected a store path or a list of them");
  for (const auto& e : v) {
    if (!e.is_string()) return Status::InvalidArgument(doc.Where(pointer) + ": store paths must be strings");
    ES_RETURN_IF_ERROR(add(e.get<std::string>()));
  }
  return out;
}

Status FillData(const nlohmann::json& d, const fs::path& base, const TomlDocument& doc, JobSpec* s) {
  ES_RETURN_IF_ERROR(CheckKeys(d, {"store", "split", "fold", "train", "val", "eval", "target_unlabeled"}, doc, "/data"));
  if (d.contains("split")) {
    if (!d.contains("store")) return Status::InvalidArgument(doc.Where("/data/split") + ": a split file needs 'store'");
    if (!d["store"].is_string())
      return Status::InvalidArgument(doc.Where("/data/store") + ": 'store' must be a store path (a string)");
    if (!d["split"].is_string())
      return Status::InvalidArgument(doc.Where("/data/split") + ": 'split' must be a split file path (a string)");
    const std::string store = Resolve(base, d["store"].get<std::string>());
    const std::string split = Resolve(base, d["split"].get<std::string>());
    Result<data::SplitSet> set_or = data::ReadSplitFile(split);
    if (!set_or.ok()) return set_or.status().WithContext(doc.Where("/data/split"));
    const data::SplitSet& set = set_or.value();
    Result<data::StoreInfo> info_or = data::ReadStoreInfo(store);
    if (!info_or.ok()) return info_or.status().WithContext(doc.Where("/data/store"));
    const data::StoreInfo& info = info_or.value();
    if (set.corpus_hash != info.content_hash)
      return Status::FailedPrecondition(split + ": made for corpus hash " + set.corpus_hash.substr(0, 12) + ", but " +
                                        store + " has " + info.content_hash.substr(0, 12));
    {  // the corpus name the file records, its ids and the speaker lint, against the store's utterances
      data::StoreReadOptions meta_only;
      if (!info.features.empty())
        meta_only.feature_sets = {std::min_element(info.features.begin(), info.features.end(), [](const auto& a,
                                                                                                   const auto& b) {
                                    return a.dim < b.dim;
                                  })->name};
      Result<data::Corpus> corpus = data::ReadFeatureStore(store, meta_only);
      if (!corpus.ok()) return corpus.status().WithContext(doc.Where("/data/store"));
      Status fits = data::CheckSplitForCorpus(set, *corpus, split);
      if (!fits.ok()) return fits.WithContext(doc.Where("/data/split"));
    }
    const data::Fold* fold = nullptr;
    const nlohmann::json f = d.value("fold", nlohmann::json(0));
    for (size_t i = 0; i < set.folds.size(); ++i)
      if ((f.is_number_integer() && f.get<size_t>() == i) || (f.is_string() && f.get<std::string>() == set.folds[i].name))
        fold = &set.folds[i];
    if (!fold) return Status::InvalidArgument(doc.Where("/data/fold") + ": no fold " + f.dump() + " in " + split);
    s->train = {{store, info.content_hash, fold->train}};
    if (!fold->val.empty()) s->val = {{store, info.content_hash, fold->val}};
    if (!fold->test.empty()) s->eval["test"] = {{store, info.content_hash, fold->test}};
    for (const char* key : {"train", "val"})  // one source of the training and validation rows
      if (d.contains(key))
        return Status::InvalidArgument(doc.Where(std::string("/data/") + key) + ": '" + key +
                                       "' and a split file both give the " + key +
                                       " rows; use store + split + fold, or train/val/eval without a split");
  } else if (d.contains("store")) {
    return Status::InvalidArgument(doc.Where("/data/store") + ": 'store' goes with 'split' (or use train/val/eval)");
  }
  if (d.contains("train")) { ES_ASSIGN_OR_RETURN(s->train, StoreList(d["train"], base, doc, "/data/train")); }
  if (d.contains("val")) { ES_ASSIGN_OR_RETURN(s->val, StoreList(d["val"], base, doc, "/data/val")); }
  if (d.contains("target_unlabeled")) {
    ES_ASSIGN_OR_RETURN(s->target_unlabeled, StoreList(d["target_unlabeled"], base, doc, "/data/target_unlabeled"));
  }
  if (d.contains("eval")) {
    if (!d["eval"].is_object()) return Status::InvalidArgument(doc.Where("/data/eval") + ": expected a table name = stores");
    for (auto it = d["eval"].begin(); it != d["eval"].end(); ++it) {
      if (s->eval.count(it.key()))  // the split fold's test part: it would be replaced without a word
        return Status::InvalidArgument(doc.Where("/data/eval/" + it.key()) + ": '" + it.key() +
                                       "' is the split fold's test part here; name this evaluation set otherwise "
                                       "(e.g. " + it.key() + "_other = ...) or use the whole-stores form");
      if (it.key() == "target_unlabeled")  // not a labeled eval set of that name: the adaptation set, misplaced
        return Status::InvalidArgument(doc.Where("/data/eval/target_unlabeled") +
                                       ": 'target_unlabeled' (the unlabeled adaptation data) goes in [data], not "
                                       "[data.eval]");
      ES_ASSIGN_OR_RETURN(s->eval[it.key()], StoreList(it.value(), base, doc, "/data/eval/" + it.key()));
    }
  }
  if (s->train.empty() && s->kind != "eval") return Status::InvalidArgument(doc.path + ": [data] gives no training data");
  return Status::Ok();
}

}  // namespace

Result<JobSpec> JobSpecFromTomlFile(const std::string& path) {
  ES_ASSIGN_OR_RETURN(TomlDocument doc, ParseTomlFile(path));
  const nlohmann::json& j = doc.value;
  ES_RETURN_IF_ERROR(CheckKeys(j, {"kind", "seed", "selection", "oracle_eval", "labels", "label_set", "features",
                                   "data", "model", "train", "adapt", "init_from", "keep_checkpoint"},
                               doc, ""));
  const fs::path base = fs::absolute(fs::path(path)).parent_path();
  JobSpec s;
  try {
    for (const char* key : {"kind", "selection", "oracle_eval", "init_from", "label_set"})
      if (j.contains(key) && !j[key].is_string())
        return Status::InvalidArgument(doc.Where(std::string("/") + key) + ": '" + key + "' must be a string, got " +
                                       j[key].dump());
    if (j.contains("keep_checkpoint") && !j["keep_checkpoint"].is_boolean())
      return Status::InvalidArgument(doc.Where("/keep_checkpoint") + ": 'keep_checkpoint' must be true or false, got " +
                                     j["keep_checkpoint"].dump());
    s.kind = j.value("kind", "supervised");
    if (s.kind != "supervised" && s.kind != "pretrain" && s.kind != "finetune" && s.kind != "adapt" &&
        s.kind != "eval")  // any other word would silently train as supervised
      return Status::InvalidArgument(doc.Where("/kind") + ": 'kind' must be one of supervised, pretrain, finetune, "
                                     "adapt, eval; got '" + s.kind + "'");
    if (j.contains("seed") && (!j["seed"].is_number_integer() || j["seed"].get<int64_t>() < 0))
      return Status::InvalidArgument(doc.Where("/seed") + ": 'seed' must be an integer >= 0, got " + j["seed"].dump());
    s.seed = j.value("seed", uint64_t{0});
    s.selection = j.value("selection", "source_val");
    s.oracle_eval = j.value("oracle_eval", "");
    s.init_from = j.value("init_from", "");
    s.keep_checkpoint = j.value("keep_checkpoint", false);
    if (j.contains("labels") == j.contains("label_set"))
      return Status::InvalidArgument(doc.path + ": give exactly one of 'labels' (a list) or 'label_set' (a name)");
    if (j.contains("labels")) {
      const auto& l = j["labels"];
      if (!l.is_array() || l.empty() || !std::all_of(l.begin(), l.end(), [](const auto& e) { return e.is_string(); }))
        return Status::InvalidArgument(doc.Where("/labels") + ": 'labels' must be a list of label names, got " +
                                       l.dump());
      s.labels = l.get<std::vector<std::string>>();
      std::set<std::string> seen;
      for (const auto& label : s.labels)  // a repeated name would add a class no utterance can have
        if (!seen.insert(label).second)
          return Status::InvalidArgument(doc.Where("/labels") + ": label '" + label + "' is listed twice");
    } else {
      Result<std::vector<std::string>> named = data::NamedLabelSet(j["label_set"].get<std::string>());
      if (!named.ok()) return named.status().WithContext(doc.Where("/label_set"));
      s.labels = std::move(named).value();
    }
    if (!j.contains("features") || !j["features"].is_object())
      return Status::InvalidArgument(doc.path + ": [features] (modality = \"feature set\") is required");
    for (const auto& [modality, set] : j["features"].items())
      if (!set.is_string())
        return Status::InvalidArgument(doc.Where("/features/" + modality) + ": '" + modality +
                                       "' must name a feature set (a string), got " + set.dump());
    s.features = j["features"].get<std::map<std::string, std::string>>();
    for (const auto& [modality, set] : s.features)  // the key is the modality the model reads it as
      if (!data::IsKnownModality(modality))
        return Status::InvalidArgument(doc.Where("/features/" + modality) + ": modality '" + modality +
                                       "' is not one of audio, text, video");
    if (!j.contains("model")) return Status::InvalidArgument(doc.path + ": [model] with a 'name' is required");
    ES_ASSIGN_OR_RETURN(s.model, EffectiveModel(j["model"], doc));
    {  // the modalities the model reads ([model] modality, or the model's own), against [features]
      for (const auto& m : models::ModelReadsModalities(s.model["name"].get<std::string>(), s.model))
        if (!s.features.count(m)) {
          std::string given;
          for (const auto& [k, v] : s.features) given += (given.empty() ? "" : ", ") + k;
          return Status::InvalidArgument(
              doc.Where(doc.lines.count("/model/modality") ? "/model/modality" : "/model/name") + ": model '" +
              s.model["name"].get<std::string>() + "' reads modality '" + m + "', but [features] gives only " + given);
        }
    }
    s.adapt = j.value("adapt", nlohmann::json::object());
    if (!s.adapt.empty()) {
      const auto* info = s.adapt.is_object() && s.adapt.value("variant", nlohmann::json()).is_string()
                             ? models::FindAdaptInfo(s.adapt["variant"].get<std::string>())
                             : nullptr;
      if (info) {
        ES_ASSIGN_OR_RETURN(s.adapt, info->config.Apply(s.adapt, doc.path + " [adapt]", LinesOf(doc, "adapt")));
        if (s.adapt.contains("grl_horizon") && s.adapt["grl_horizon"].is_string())  // its form, here with its line
          ES_RETURN_IF_ERROR(
              models::ParseGrlHorizon(s.adapt["grl_horizon"].get<std::string>(), doc.Where("/adapt/grl_horizon"))
                  .status());
      } else {  // its message names what is wrong (no table, no variant, unknown variant)
        ES_ASSIGN_OR_RETURN(s.adapt, models::ValidateAdaptConfig(s.adapt, doc.Where("/adapt")));
      }
    }
    if (s.kind == "finetune" && s.init_from.empty())  // it would train from scratch, as a supervised job
      return Status::InvalidArgument(doc.Where("/kind") + ": kind 'finetune' needs 'init_from' (the job id of the "
                                     "model to start from)");
    if (!s.oracle_eval.empty() && s.selection != "oracle")  // it would be ignored
      return Status::InvalidArgument(doc.Where("/oracle_eval") + ": 'oracle_eval' applies to selection = \"oracle\" "
                                     "only (this job selects by '" + s.selection + "')");
    if (s.kind == "adapt" && s.adapt.empty())  // it would train as a supervised job without a word
      return Status::InvalidArgument(doc.Where("/kind") +
                                     ": kind 'adapt' needs an [adapt] table naming its variant (docs/trainer.md)");
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(doc.path + ": " + e.what());
  }
  ES_ASSIGN_OR_RETURN(s.train_config, TrainConfigTable().Apply(j.value("train", nlohmann::json::object()),
                                                                 doc.path + " [train]", LinesOf(doc, "train")));
  ES_RETURN_IF_ERROR(EffectiveTrainConfig(s.train_config, doc.path + " [train]", LinesOf(doc, "train")).status());
  if (!j.contains("data")) return Status::InvalidArgument(doc.path + ": [data] is required");
  ES_RETURN_IF_ERROR(FillData(j["data"], base, doc, &s));
  ES_RETURN_IF_ERROR(CheckAndFilterData(doc, &s));
  // Reuse JobSpec's own validation (selection names etc.).
  ES_ASSIGN_OR_RETURN(s, JobSpec::FromJson(s.ToJson(), doc.path));
  s.id = s.ComputeId();
  return s;
}

}  // namespace emosweep::worker
