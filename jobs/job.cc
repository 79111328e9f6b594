// jobs/job.cc: JobSpec <-> JSON and the job identity. No libtorch here.
#include "jobs/job.h"

#include <limits>

#include "core/hash.h"

namespace emosweep::jobs {
namespace {

// Bump when the meaning of a job's JSON changes (docs/formats/ledger.md).
constexpr int kIdentityVersion = 1;

nlohmann::json RefsToJson(const std::vector<DataRef>& refs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : refs) a.push_back({{"store", r.store}, {"corpus_hash", r.corpus_hash}, {"ids", r.ids}});
  return a;
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

nlohmann::json JobSpec::ToJson() const {
  nlohmann::json eval_j = nlohmann::json::object();
  for (const auto& [name, refs] : eval) eval_j[name] = RefsToJson(refs);
  // The store *path* is not part of the identity (the same content may live
  // elsewhere); the corpus hash and the ids are. ToJson keeps the path for
  // running; ComputeId drops it.
  return {
      {"kind", kind},
      {"features", features},
      {"labels", labels},
      {"train", RefsToJson(train)},
      {"val", RefsToJson(val)},
      {"eval", eval_j},
      {"target_unlabeled", RefsToJson(target_unlabeled)},
      {"model", model},
      {"train_config", train_config},
      {"adapt", adapt},
      {"selection", selection},
      {"oracle_eval", oracle_eval},
      {"seed", seed},
      {"init_from", init_from},
      {"keep_checkpoint", keep_checkpoint},
  };
}

Result<JobSpec> JobSpec::FromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": a job must be a JSON object");
  JobSpec s;
  try {
    s.id = j.value("id", "");
    s.kind = j.value("kind", "supervised");
    if (j.contains("features")) s.features = j["features"].get<std::map<std::string, std::string>>();
    if (j.contains("labels")) s.labels = j["labels"].get<std::vector<std::string>>();
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
    s.model = j.value("model", nlohmann::json::object());
    s.train_config = j.value("train_config", nlohmann::json::object());
    s.adapt = j.value("adapt", nlohmann::json::object());
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

namespace {

// Appends the canonical JSON (nlohmann's compact dump) of a string: printable
// ASCII is written as is, anything else goes through nlohmann's escaping.
void AppendString(std::string* out, const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      *out += nlohmann::json(s).dump();
      return;
    }
  }
  out->push_back('"');
  out->append(s);
  out->push_back('"');
}

// [{"corpus_hash":...,"ids":[...]}, ...]: the identity's view of data (no store path).
void AppendRefs(std::string* out, const std::vector<DataRef>& refs) {
  out->push_back('[');
  for (size_t r = 0; r < refs.size(); ++r) {
    if (r) out->push_back(',');
    out->append("{\"corpus_hash\":");
    AppendString(out, refs[r].corpus_hash);
    out->append(",\"ids\":[");
    for (size_t i = 0; i < refs[r].ids.size(); ++i) {
      if (i) out->push_back(',');
      AppendString(out, refs[r].ids[i]);
    }
    out->append("]}");
  }
  out->push_back(']');
}

}  // namespace

// The bytes hashed are exactly HashJson({"identity_version": v, "job": ToJson() without
// every data reference's "store"}) (keys sorted, compact), written directly: building
// that JSON tree for thousands of utterance ids per job dominated protocol expansion
// (issue 15). tests/worker/job_identity_test.cc checks both agree.
std::string JobSpec::ComputeId() const {
  std::string out;
  size_t ids = 0;
  for (const auto* refs : {&train, &val, &target_unlabeled})
    for (const auto& r : *refs) ids += r.ids.size();
  for (const auto& [name, refs] : eval)
    for (const auto& r : refs) ids += r.ids.size();
  out.reserve(512 + ids * 24);
  out.append("{\"identity_version\":").append(std::to_string(kIdentityVersion)).append(",\"job\":{\"adapt\":");
  out.append(adapt.dump());
  out.append(",\"eval\":{");
  bool first = true;
  for (const auto& [name, refs] : eval) {
    if (!first) out.push_back(',');
    first = false;
    AppendString(&out, name);
    out.push_back(':');
    AppendRefs(&out, refs);
  }
  out.append("},\"features\":").append(nlohmann::json(features).dump());
  out.append(",\"init_from\":");
  AppendString(&out, init_from);
  out.append(",\"keep_checkpoint\":").append(keep_checkpoint ? "true" : "false");
  out.append(",\"kind\":");
  AppendString(&out, kind);
  out.append(",\"labels\":").append(nlohmann::json(labels).dump());
  out.append(",\"model\":").append(model.dump());
  out.append(",\"oracle_eval\":");
  AppendString(&out, oracle_eval);
  out.append(",\"seed\":").append(nlohmann::json(seed).dump());
  out.append(",\"selection\":");
  AppendString(&out, selection);
  out.append(",\"target_unlabeled\":");
  AppendRefs(&out, target_unlabeled);
  out.append(",\"train\":");
  AppendRefs(&out, train);
  out.append(",\"train_config\":").append(train_config.dump());
  out.append(",\"val\":");
  AppendRefs(&out, val);
  out.append("}}");
  return Sha256Hex(out);
}

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
