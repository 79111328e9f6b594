#include "tests/orchestrator/hand_ledger.h"

#include <cmath>

#include "tests/orchestrator/fake_jobs.h"

namespace emosweep::testing {
namespace {

// A result whose UA and WA are `ua` on 40 utterances (the first round(40 ua) right), trained for
// `epochs` epochs (0-based, as the trainer records them) with the one before last selected.
jobs::JobResult ResultWithUa(double ua, int epochs = 4) {
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
  for (int e = 0; e < epochs; ++e) {
    jobs::EpochRecord rec;
    rec.epoch = e;
    rec.train_loss = 1.4 / (e + 1);
    rec.val_loss = 1.5 / (e + 1) + 0.2;
    r.curve.push_back(rec);
  }
  r.selected_epoch = epochs - 2;
  return r;
}

// Test UA `ua` and (when given) validation UA `val`.
jobs::JobResult ResultWith(double ua, double val = -1) {
  jobs::JobResult r = ResultWithUa(ua);
  if (val >= 0) {
    jobs::EvalResult v = r.evals["test"];
    v.metrics["ua"] = val;
    v.metrics["wa"] = val;
    r.evals["val"] = v;
  }
  return r;
}

// A job of MakeJob's with extra identity (so otherwise equal coordinates get their own id) and attributes.
protocols::PlannedJob Job(const std::string& experiment, const std::string& model, const std::string& target,
                          uint64_t seed, const std::map<std::string, std::string>& extra) {
  protocols::PlannedJob j = MakeJob(experiment, model, target, seed);
  j.spec.selection = "source_val";
  for (const auto& [k, v] : extra) {
    j.attrs[k] = v;
    j.spec.train_config[k] = v;
  }
  j.spec.id = j.spec.ComputeId();
  return j;
}

void Finish(orchestrator::Ledger* ledger, const std::string& id, const jobs::JobResult& r) {
  std::string me = orchestrator::ThisOwner();
  (void)ledger->Claim(id, me, {});
  (void)ledger->Complete(id, me, r, {});
}

HandLedger Open(HandLedger h, const std::string& path) {
  h.ledger = std::move(orchestrator::Ledger::Open(path)).value();
  int64_t sweep = *h.ledger->BeginSweep({h.protocol.name, h.protocol.path, "h", h.protocol.effective, {}});
  (void)h.ledger->RegisterJobs(sweep, h.protocol.jobs);
  return h;
}

}  // namespace

HandLedger MakeMultiExperimentLedger(const std::string& path) {
  HandLedger h;
  h.protocol.name = "multi";
  h.protocol.path = "multi.toml";
  h.protocol.effective = {{"name", "multi"}};
  const std::map<std::string, std::vector<double>> ua = {
      {"zeroshot||emodb", {0.50, 0.52, 0.54}}, {"zeroshot||ravdess", {0.40, 0.41, 0.42}},
      {"adapt|dann|emodb", {0.60, 0.63, 0.61}}, {"adapt|dann|ravdess", {0.45, 0.47, 0.43}},
      {"adapt|mmd|emodb", {0.59, 0.64, 0.60}},  {"adapt|mmd|ravdess", {0.70, 0.72}},
      {"other||emodb", {0.99, 0.99, 0.99}},     {"other||ravdess", {0.99, 0.99, 0.99}},
  };
  std::vector<std::pair<std::string, std::string>> rows = {
      {"zeroshot", ""}, {"adapt", "dann"}, {"adapt", "mmd"}, {"other", ""}};
  for (const auto& [experiment, variant] : rows)
    for (const std::string target : {"emodb", "ravdess"})
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        std::map<std::string, std::string> extra;
        if (!variant.empty()) extra = {{"variant", variant}, {"kind", "adapt"}};
        h.protocol.jobs.push_back(Job(experiment, "mlp", target, seed, extra));
      }
  protocols::TableSpec t;
  t.name = "combined";
  t.experiments = {"zeroshot", "adapt"};
  t.row_attrs = {"experiment", "variant"};
  t.rows = "experiment / variant";
  t.columns = "target";
  t.metrics = {"ua"};
  t.average = true;
  h.protocol.tables.push_back(t);
  h = Open(std::move(h), path);
  for (const auto& j : h.protocol.jobs) {
    auto v = j.attrs.find("variant");
    auto it = ua.find(j.attrs.at("experiment") + "|" + (v == j.attrs.end() ? "" : v->second) + "|" +
                      j.attrs.at("target"));
    if (it == ua.end() || j.spec.seed > it->second.size()) continue;
    Finish(h.ledger.get(), j.spec.id, ResultWith(it->second[j.spec.seed - 1]));
  }
  return h;
}

HandLedger MakeGridLedger(const std::string& path) {
  HandLedger h;
  h.protocol.name = "grid";
  h.protocol.path = "grid.toml";
  h.protocol.effective = {{"name", "grid"}};
  struct Point {
    std::string hp;
    double val, lodo, test;
  };
  const std::vector<Point> points = {
      {"train.lr=0.1", 0.80, 0.40, 0.50}, {"train.lr=0.01", 0.70, 0.65, 0.55}, {"train.lr=0.001", 0.60, 0.50, 0.60}};
  std::map<std::string, jobs::JobResult> results;
  for (const std::string target : {"emodb", "ravdess"})
    for (const auto& p : points)
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        auto j = Job("loco", "m", target, seed, {{"hp", p.hp}, {"source", "s1+s2"}, {"heldout", target}});
        results[j.spec.id] = ResultWith(p.test + 0.01 * (static_cast<double>(seed) - 2), p.val);
        h.protocol.jobs.push_back(j);
        // Left-out s1 scores lodo - 0.02, s2 lodo + 0.02: the mean is the point's lodo score.
        for (const std::string left : {"s1", "s2"}) {
          auto l = Job("loco", "m", target, seed,
                       {{"hp", p.hp}, {"source", left == "s1" ? "s2" : "s1"}, {"heldout", target},
                        {"lodo_val", left}, {"role", "lodo"}});
          l.reportable = false;
          bool never_ran = target == "ravdess" && p.hp == "train.lr=0.1" && seed == 3 && left == "s2";
          if (!never_ran) results[l.spec.id] = ResultWith(p.lodo + (left == "s1" ? -0.02 : 0.02));
          h.protocol.jobs.push_back(l);
        }
      }
  protocols::TableSpec t;
  t.name = "grid";
  t.experiment = "loco";
  t.rows = "model";
  t.columns = "target";
  t.metrics = {"ua"};
  h.protocol.tables.push_back(t);
  h = Open(std::move(h), path);
  for (const auto& [id, r] : results) Finish(h.ledger.get(), id, r);
  return h;
}

HandLedger MakeAdaptGridLedger(const std::string& path, bool no_dev) {
  HandLedger h;
  h.protocol.name = "adapt_grid";
  h.protocol.path = "adapt_grid.toml";
  h.protocol.effective = {{"name", "adapt_grid"}};
  struct Point {
    std::string hp;
    double test, im, dev;
  };
  const std::vector<Point> points = {
      {"adapt.weight=0.1", 0.50, 0.30, 0.30}, {"adapt.weight=1", 0.55, 0.50, 0.50}, {"adapt.weight=10", 0.60, 0.20, 0.70}};
  std::map<std::string, jobs::JobResult> results;
  for (const auto& p : points)
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      auto j = Job("adapt", "m", "emodb", seed, {{"hp", p.hp}, {"kind", "adapt"}, {"variant", "dann"}});
      j.spec.selection = "dev";
      const double step = 0.01 * (static_cast<double>(seed) - 2);
      jobs::JobResult r = ResultWith(p.test + step);
      r.info["da_selected"] = {{"im", p.im + step}, {"snd", p.im + 1 + step}, {"dev", p.dev + step},
                               {"dev_defined", true}};
      if (no_dev || (p.hp == "adapt.weight=0.1" && seed == 3))
        r.info["da_selected"]["dev"] = nullptr, r.info["da_selected"]["dev_defined"] = false;
      results[j.spec.id] = r;
      h.protocol.jobs.push_back(j);
    }
  protocols::TableSpec t;
  t.name = "adapt_grid";
  t.experiment = "adapt";
  t.rows = "model";
  t.columns = "target";
  t.metrics = {"ua"};
  h.protocol.tables.push_back(t);
  h = Open(std::move(h), path);
  for (const auto& [id, r] : results) Finish(h.ledger.get(), id, r);
  return h;
}

HandLedger MakeTwoRowLedger(const std::string& path, const std::map<uint64_t, double>& top,
                            const std::map<uint64_t, double>& next) {
  HandLedger h;
  h.protocol.name = "bold";
  h.protocol.path = "bold.toml";
  h.protocol.effective = {{"name", "bold"}};
  std::map<std::string, double> ua;
  for (const auto& [model, values] : {std::make_pair(std::string("top"), top), std::make_pair(std::string("next"), next)})
    for (const auto& [seed, v] : values) {
      h.protocol.jobs.push_back(MakeJob("loco", model, "emodb", seed));
      if (v >= 0) ua[h.protocol.jobs.back().spec.id] = v;
    }
  protocols::TableSpec t;
  t.name = "bold";
  t.experiment = "loco";
  t.rows = "model";
  t.columns = "target";
  t.metrics = {"ua"};
  h.protocol.tables.push_back(t);
  h = Open(std::move(h), path);
  for (const auto& [id, v] : ua) Finish(h.ledger.get(), id, ResultWithUa(v));
  return h;
}

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
  t.published = {{"good|emodb", 90.0}, {"mid|emodb", 77.0}, {"mid|ravdess", 60.0}, {"good|ravdess", 66.0}};
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
