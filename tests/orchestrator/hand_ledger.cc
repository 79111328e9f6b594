#include "tests/orchestrator/hand_ledger.h"

#include <cmath>

#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::testing {
namespace {

// A result whose UA and WA are `ua` on 40 utterances (the first round(40 ua) right), trained for
// `epochs` epochs with the one before last selected.
jobs::JobResult ResultWithUa(double ua, int epochs) {
  jobs::JobResult r;
  jobs::EvalResult ev;
  int right = static_cast<int>(std::lround(ua * 40));
  std::vector<std::vector<int>> confusion(4, std::vector<int>(4, 0));
  for (int i = 0; i < 40; ++i) {
    jobs::Prediction p;
    p.utt_id = "utt" + std::to_string(i);
    p.label = i % 4;
    p.pred = i < right ? p.label : (p.label + 1) % 4;
    confusion[p.label][p.pred]++;
    ev.predictions.push_back(p);
  }
  ev.metrics = {{"ua", ua}, {"wa", ua - 0.01}, {"n", 40}, {"confusion", confusion}};
  r.evals["test"] = ev;
  for (int e = 1; e <= epochs; ++e) {
    jobs::EpochRecord rec;
    rec.epoch = e;
    rec.train_loss = 1.4 / e;
    rec.val_loss = 1.5 / e + 0.2;
    r.curve.push_back(rec);
  }
  r.selected_epoch = epochs - 1;
  return r;
}

}  // namespace

HandLedger MakeHandLedger(const std::string& path) {
  HandLedger h;
  h.protocol.name = "hand";
  h.protocol.path = "hand.toml";
  h.protocol.effective = {{"name", "hand"}};
  const std::map<std::string, std::vector<double>> ua = {
      {"good|emodb", {0.901, 0.915, 0.887}},
      {"mid|emodb", {0.742, 0.760, 0.751}},
      {"good|ravdess", {0.650, 0.670}},
  };
  for (const std::string model : {"good", "mid"})
    for (const std::string target : {"emodb", "ravdess"})
      for (uint64_t seed = 1; seed <= 3; ++seed) h.protocol.jobs.push_back(MakeJob("loco", model, target, seed));
  protocols::TableSpec t;
  t.name = "loco_ua";
  t.experiment = "loco";
  t.rows = "model";
  t.columns = "target";
  t.metrics = {"ua"};
  t.published = {{"good|emodb", 90.0}, {"mid|emodb", 77.0}, {"mid|ravdess", 60.0}};
  t.tolerance = 1.0;
  h.protocol.tables.push_back(t);
  h.ledger = std::move(orchestrator::Ledger::Open(path)).value();
  int64_t sweep = *h.ledger->BeginSweep({"hand", "hand.toml", "h", h.protocol.effective, {}});
  (void)h.ledger->RegisterJobs(sweep, h.protocol.jobs);
  std::string me = orchestrator::ThisOwner();
  for (const auto& j : h.protocol.jobs) {
    auto it = ua.find(j.attrs.at("model") + "|" + j.attrs.at("target"));
    if (it == ua.end() || j.spec.seed > it->second.size()) continue;
    (void)h.ledger->Claim(j.spec.id, me, {});
    // good x ravdess seed 2 stopped early (3 epochs instead of 4): the report must say so.
    const bool early = j.attrs.at("model") == "good" && j.attrs.at("target") == "ravdess" && j.spec.seed == 2;
    (void)h.ledger->Complete(j.spec.id, me, ResultWithUa(it->second[j.spec.seed - 1], early ? 3 : 4), {});
  }
  return h;
}

}  // namespace emosweep::testing
