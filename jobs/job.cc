// jobs/job.cc: JobSpec <-> JSON and the job identity. No libtorch here.
#include "jobs/job.h"

#include <limits>

#include "jobs/identity.h"

namespace emosweep::jobs {
namespace {

using ListRef = std::function<std::string(const IdList&)>;

nlohmann::json RefsToJson(const std::vector<DataRef>& refs, const ListRef* list_ref) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : refs) {
    if (list_ref)
      a.push_back({{"store", r.store}, {"corpus_hash", r.corpus_hash}, {"ids_list", (*list_ref)(r.ids)},
                   {"n_ids", r.ids.size()}});
    else
      a.push_back({{"store", r.store}, {"corpus_hash", r.corpus_hash}, {"ids", r.ids}});
  }
  return a;
}

nlohmann::json SpecToJson(const JobSpec& s, const ListRef* list_ref) {
  nlohmann::json eval_j = nlohmann::json::object();
  for (const auto& [name, refs] : s.eval) eval_j[name] = RefsToJson(refs, list_ref);
  // The store *path* is not part of the identity (the same content may live
  // elsewhere); the corpus hash and the ids are. ToJson keeps the path for
  // running; ComputeId drops it.
  return {
      {"kind", s.kind},
      {"features", s.features},
      {"labels", s.labels},
      {"train", RefsToJson(s.train, list_ref)},
      {"val", RefsToJson(s.val, list_ref)},
      {"eval", eval_j},
      {"target_unlabeled", RefsToJson(s.target_unlabeled, list_ref)},
      {"model", s.model.tree()},
      {"train_config", s.train_config.tree()},
      {"adapt", s.adapt.tree()},
      {"selection", s.selection},
      {"oracle_eval", s.oracle_eval},
      {"seed", s.seed},
      {"init_from", s.init_from},
      {"keep_checkpoint", s.keep_checkpoint},
  };
}

Result<std::vector<DataRef>> RefsFromJson(const nlohmann::json& j, const std::string& where) {
  std::vector<DataRef> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return Status::InvalidArgument(where + ": expected a list of data references");
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("store") || !e.contains("ids"))
      return Status::InvalidArgument(where + ": data reference needs 'store' and 'ids'");
    DataRef r;
    r.store = e["store"].get<std::string>();
    r.corpus_hash = e.value("corpus_hash", "");
    r.ids = IdList::Intern(e["ids"].get<std::vector<std::string>>());  // one list per split, however many jobs
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

nlohmann::json JobSpec::ToJson() const { return SpecToJson(*this, nullptr); }

nlohmann::json JobSpec::ToJson(const std::function<std::string(const IdList&)>& list_ref) const {
  return SpecToJson(*this, &list_ref);
}

Result<JobSpec> JobSpec::FromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": a job must be a JSON object");
  JobSpec s;
  try {
    s.id = j.value("id", "");
    s.kind = j.value("kind", "supervised");
    // One map and one list per distinct value, however many jobs read it.
    if (j.contains("features")) s.features = FeatureMap::Intern(j["features"].get<FeatureMap::Map>());
    if (j.contains("labels")) s.labels = IdList::Intern(j["labels"].get<std::vector<std::string>>());
    ES_ASSIGN_OR_RETURN(s.train, RefsFromJson(j.value("train", nlohmann::json()), where + " train"));
    ES_ASSIGN_OR_RETURN(s.val, RefsFromJson(j.value("val", nlohmann::json()), where + " val"));
    if (j.contains("eval")) {
      if (!j["eval"].is_object()) return Status::InvalidArgument(where + ": 'eval' must map names to data");
      for (auto it = j["eval"].begin(); it != j["eval"].end(); ++it) {
        ES_ASSIGN_OR_RETURN(s.eval[it.key()], RefsFromJson(it.value(), where + " eval." + it.key()));
      }
    }
    ES_ASSIGN_OR_RETURN(s.target_unlabeled,
                        RefsFromJson(j.value("target_unlabeled", nlohmann::json()), where + " target_unlabeled"));
    // One tree per distinct config, however many jobs read it.
    s.model = SharedJson::Intern(j.value("model", nlohmann::json::object()));
    s.train_config = SharedJson::Intern(j.value("train_config", nlohmann::json::object()));
    s.adapt = SharedJson::Intern(j.value("adapt", nlohmann::json::object()));
    s.selection = j.value("selection", "source_val");
    s.oracle_eval = j.value("oracle_eval", "");
    s.seed = j.value("seed", uint64_t{0});
    s.init_from = j.value("init_from", "");
    s.keep_checkpoint = j.value("keep_checkpoint", false);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(where + ": malformed job: " + e.what());
  }
  if (s.selection != "source_val" && s.selection != "target_val" && s.selection != "last" &&
      s.selection != "oracle" && s.selection != "dev" && s.selection != "im" && s.selection != "snd")
    return Status::InvalidArgument(where + ": selection must be source_val, target_val, last, oracle, dev, im or snd, got '" +
                                   s.selection + "'");
  return s;
}

// The bytes hashed are exactly HashJson({"identity_version": v, "job": ToJson() without
// every data reference's "store"}), written directly (jobs/identity.cc).
std::string JobSpec::ComputeId() const { return ComputeJobId(*this, nullptr); }

nlohmann::json JobResultToJson(const JobResult& r) {
  nlohmann::json evals = nlohmann::json::object();
  for (const auto& [name, e] : r.evals) {
    nlohmann::json preds = nlohmann::json::array();
    for (const auto& p : e.predictions) preds.push_back({p.utt_id, p.label, p.pred, p.probs});
    evals[name] = {{"metrics", e.metrics}, {"predictions", preds}};
  }
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& c : r.curve)
    curve.push_back({{"epoch", c.epoch}, {"train_loss", c.train_loss}, {"val_loss", c.val_loss},
                     {"val_metrics", c.val_metrics}, {"lr", c.lr}, {"seconds", c.seconds}});
  return {{"evals", evals}, {"curve", curve}, {"selected_epoch", r.selected_epoch},
          {"checkpoint", r.checkpoint}, {"info", r.info}};
}

Result<JobResult> JobResultFromJson(const nlohmann::json& j, const std::string& where) {
  // NaN/Inf become null in JSON; read them back as NaN.
  auto num = [](const nlohmann::json& v) {
    return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
  };
  JobResult r;
  try {
    for (auto it = j.at("evals").begin(); it != j.at("evals").end(); ++it) {
      EvalResult e;
      e.metrics = it.value().at("metrics");
      for (const auto& p : it.value().at("predictions")) {
        Prediction q;
        q.utt_id = p.at(0).get<std::string>();
        q.label = p.at(1).get<int>();
        q.pred = p.at(2).get<int>();
        q.probs = p.at(3).get<std::vector<float>>();
        e.predictions.push_back(std::move(q));
      }
      r.evals[it.key()] = std::move(e);
    }
    for (const auto& c : j.at("curve")) {
      EpochRecord e;
      e.epoch = c.at("epoch").get<int>();
      e.train_loss = num(c.at("train_loss"));
      e.val_loss = num(c.at("val_loss"));
      e.val_metrics = c.at("val_metrics");
      e.lr = num(c.at("lr"));
      e.seconds = num(c.at("seconds"));
      r.curve.push_back(std::move(e));
    }
    r.selected_epoch = j.at("selected_epoch").get<int>();
    r.checkpoint = j.at("checkpoint").get<std::string>();
    r.info = j.at("info");
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(where + ": malformed job result: " + e.what());
  }
  return r;
}

}  // namespace emosweep::jobs
