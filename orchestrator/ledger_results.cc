// orchestrator/ledger_results.cc: recording a job's results (Ledger::Complete): metrics, eval details,
// predictions, curve and provenance in one transaction.
#include <algorithm>
#include <cmath>
#include <string>

#include "orchestrator/ledger.h"

namespace emosweep::orchestrator {
namespace {

Status InsertEval(Db* db, Stmt& metric, Stmt& detail, Stmt& pred, const std::string& id, const std::string& name,
                  const jobs::EvalResult& ev) {
  nlohmann::json details = nlohmann::json::object();
  if (ev.metrics.is_object()) {
    for (auto it = ev.metrics.begin(); it != ev.metrics.end(); ++it) {
      if (it->is_number()) {
        double v = it->get<double>();
        if (!std::isfinite(v))
          return Status::InvalidArgument("job " + id + " eval '" + name + "': metric '" + it.key() +
                                         "' is not finite");
        metric.Reset();
        metric.Bind(1, id).Bind(2, name).Bind(3, it.key()).Bind(4, v);
        ES_RETURN_IF_ERROR(metric.Run());
      } else {
        details[it.key()] = *it;
      }
    }
  }
  detail.Reset();
  detail.Bind(1, id).Bind(2, name).Bind(3, details.dump());
  ES_RETURN_IF_ERROR(detail.Run());
  for (size_t i = 0; i < ev.predictions.size(); ++i) {
    const auto& p = ev.predictions[i];
    pred.Reset();
    pred.Bind(1, id).Bind(2, name).Bind(3, static_cast<int64_t>(i)).Bind(4, p.utt_id).Bind(5, p.label);
    pred.Bind(6, p.pred);
    if (p.probs.empty())
      pred.BindNull(7);
    else
      pred.BindBlob(7, p.probs.data(), p.probs.size() * sizeof(float));  // little-endian float32
    ES_RETURN_IF_ERROR(pred.Run());
  }
  (void)db;
  return Status::Ok();
}

}  // namespace

Result<bool> Ledger::Complete(const std::string& id, const std::string& owner, const jobs::JobResult& result,
                              const nlohmann::json& provenance) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(&db_);
  ES_RETURN_IF_ERROR(tx.status());
  {
    Stmt q(&db_, "SELECT status, owner FROM jobs WHERE id = ?", Stmt::kKeep);
    ES_RETURN_IF_ERROR(q.status());
    q.Bind(1, id);
    ES_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row || q.Text(0) != "running" || q.Text(1) != owner) return false;
  }
  // Rows left by an earlier run of this identity (a user deleting only the jobs row) go first.
  for (const char* table : {"metrics", "eval_details", "curves", "predictions", "provenance"}) {
    Stmt del(&db_, std::string("DELETE FROM ") + table + " WHERE job_id = ?", Stmt::kKeep);
    ES_RETURN_IF_ERROR(del.status());
    del.Bind(1, id);
    ES_RETURN_IF_ERROR(del.Run());
  }
  // Every statement of a completion is prepared once per connection (Stmt::kKeep): a
  // sweep completes one job after another with the same dozen statements.
  Stmt metric(&db_, "INSERT INTO metrics(job_id, eval, name, value) VALUES (?,?,?,?)", Stmt::kKeep);
  Stmt detail(&db_, "INSERT INTO eval_details(job_id, eval, details_json) VALUES (?,?,?)", Stmt::kKeep);
  Stmt pred(&db_, "INSERT INTO predictions(job_id, eval, idx, utt_id, label, pred, probs) VALUES (?,?,?,?,?,?,?)",
            Stmt::kKeep);
  Stmt curve(&db_,
             "INSERT OR REPLACE INTO curves(job_id, epoch, train_loss, val_loss, val_metrics_json, lr, seconds) "
             "VALUES (?,?,?,?,?,?,?)",
             Stmt::kKeep);
  for (Stmt* s : {&metric, &detail, &pred, &curve}) ES_RETURN_IF_ERROR(s->status());
  for (const auto& [name, ev] : result.evals) ES_RETURN_IF_ERROR(InsertEval(&db_, metric, detail, pred, id, name, ev));
  for (const auto& e : result.curve) {
    curve.Reset();
    curve.Bind(1, id).Bind(2, e.epoch).Bind(3, e.train_loss).Bind(4, e.val_loss);
    curve.Bind(5, e.val_metrics.is_null() ? std::string("{}") : e.val_metrics.dump()).Bind(6, e.lr).Bind(7, e.seconds);
    ES_RETURN_IF_ERROR(curve.Run());
  }
  double now = NowSeconds();
  Stmt prov(&db_,
            "INSERT INTO provenance(job_id, git_revision, host, pid, build_json, world_size, device, threads, "
            "started_at, finished_at, seconds, extra_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            Stmt::kKeep);
  ES_RETURN_IF_ERROR(prov.status());
  const nlohmann::json p = provenance.is_object() ? provenance : nlohmann::json::object();
  prov.Bind(1, id).Bind(2, p.value("git_revision", "")).Bind(3, p.value("host", ""));
  prov.Bind(4, p.value("pid", int64_t{0})).Bind(5, p.value("build", nlohmann::json::object()).dump());
  prov.Bind(6, p.value("world_size", 1)).Bind(7, p.value("device", "cpu")).Bind(8, p.value("threads", 1));
  prov.Bind(9, p.value("started_at", now)).Bind(10, now).Bind(11, p.value("seconds", 0.0));
  // Keys without a column of their own (the coordinator's group_size, worker_host, worker_rank) go to extra_json.
  nlohmann::json extra = p.value("extra", nlohmann::json::object());
  for (const auto& [k, v] : p.items()) {
    static const char* const kColumns[] = {"git_revision", "host", "pid", "build", "world_size", "device",
                                           "threads", "started_at", "seconds", "extra"};
    if (std::find(std::begin(kColumns), std::end(kColumns), k) == std::end(kColumns)) extra[k] = v;
  }
  prov.Bind(12, extra.dump());
  ES_RETURN_IF_ERROR(prov.Run());
  // The builds whose results the ledger holds (ResultBuilds): one meta row each, a probe of its key per result.
  if (const std::string rev = p.value("git_revision", std::string()); !rev.empty()) {
    Stmt build(&db_, "INSERT OR IGNORE INTO meta(key, value) VALUES ('result_build:' || ?, '')", Stmt::kKeep);
    ES_RETURN_IF_ERROR(build.status());
    build.Bind(1, rev);
    ES_RETURN_IF_ERROR(build.Run());
  }
  Stmt up(&db_,
          "UPDATE jobs SET status = 'done', error = NULL, owner = NULL, finished_at = ?, selected_epoch = ?, "
          "checkpoint = ?, info_json = ? WHERE id = ?", Stmt::kKeep);
  ES_RETURN_IF_ERROR(up.status());
  // Relative to the ledger's directory (absolute when elsewhere), not to this process's working directory:
  // a sweep resumed from another directory, or a project moved whole, finds its models (ledger.md, "Checkpoints").
  up.Bind(1, now).Bind(2, result.selected_epoch).Bind(3, StoredCheckpointPath(result.checkpoint));
  up.Bind(4, result.info.dump()).Bind(5, id);
  ES_RETURN_IF_ERROR(up.Run());
  ES_RETURN_IF_ERROR(tx.Commit());
  return true;
}

}  // namespace emosweep::orchestrator
