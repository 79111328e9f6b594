// worker/da_selection.cc: DA diagnostics per epoch, unsupervised selection values and DA warnings (see
// da_selection.h).
#include "worker/da_selection.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "worker/da_diagnostics.h"

namespace emosweep::worker {
namespace {

// Rows 0, k, 2k, ... of a modality map, at most `limit` of them (all when fewer).
std::map<std::string, torch::Tensor> Strided(const std::map<std::string, torch::Tensor>& inputs, int64_t n,
                                             int64_t limit) {
  if (n <= limit) return inputs;
  const int64_t k = (n + limit - 1) / limit;
  torch::Tensor idx = torch::arange(0, n, k, torch::kLong);
  std::map<std::string, torch::Tensor> out;
  for (const auto& [m, t] : inputs) out[m] = t.index_select(0, idx);
  return out;
}

// Eval-mode forward in batches (transductive models: all rows at once): logits and features, on the device.
std::pair<torch::Tensor, torch::Tensor> ForwardRows(models::FusionModelImpl& model,
                                                   const std::map<std::string, torch::Tensor>& inputs,
                                                   int64_t batch_size, const torch::Device& device) {
  torch::NoGradGuard ng;
  const int64_t n = inputs.empty() ? 0 : inputs.begin()->second.size(0);
  const bool was_training = model.is_training();
  model.eval();
  const int64_t step = model.transductive() ? std::max<int64_t>(1, n) : std::max<int64_t>(1, batch_size);
  std::vector<torch::Tensor> logits, feats;
  for (int64_t b = 0; b < n; b += step) {
    models::Batch batch;
    for (const auto& [m, t] : inputs) batch.inputs[m] = t.narrow(0, b, std::min(n, b + step) - b).to(device);
    models::ModelOutput o = model.Forward(batch);
    logits.push_back(o.logits);
    feats.push_back(o.features);
  }
  if (was_training) model.train();
  if (logits.empty()) return {};
  return {torch::cat(logits, 0), torch::cat(feats, 0)};
}

}  // namespace

void DrawTargetRows(IndexShuffler& shuffler, int64_t n, int64_t want, bool shuffle, std::vector<int64_t>* order,
                    int64_t* cursor, std::vector<int64_t>* rows) {
  rows->clear();
  while (static_cast<int64_t>(rows->size()) < want) {
    if (*cursor >= static_cast<int64_t>(order->size())) {
      order->resize(n);
      for (int64_t i = 0; i < n; ++i) (*order)[i] = i;
      if (shuffle) shuffler.Shuffle(*order);
      *cursor = 0;
    }
    rows->push_back((*order)[(*cursor)++]);
  }
}

nlohmann::json DaTrainingMeans(double da_loss, double disc_acc, double lambda, double lambda_last, double weight,
                               bool has_discriminator) {
  nlohmann::json d = {{"lambda", lambda}, {"lambda_end", lambda_last}, {"weight", weight}, {"da_loss", da_loss}};
  if (has_discriminator) {
    d["disc_loss"] = da_loss;
    d["disc_acc"] = disc_acc;
  }
  return d;
}

bool UnsupervisedSelection(const std::string& s) { return s == "dev" || s == "im" || s == "snd"; }

Status CheckUnsupervisedTarget(const std::string& selection, bool training, int64_t target_rows,
                               const std::string& where) {
  if (!training || target_rows == 0) return Status::Ok();  // no target at all: the setup's own error
  const int64_t need = selection == "im" ? 2 : selection == "snd" ? 3 : 0;
  if (target_rows >= need) return Status::Ok();
  return Status::InvalidArgument(
      where + ": selection '" + selection + "' needs at least " + std::to_string(need) +
      " unlabeled target rows, the job has " + std::to_string(target_rows) +
      (selection == "im" ? " (im, the entropy of the mean prediction minus the mean entropy, is 0 on one row at every "
                           "epoch)"
                         : " (SND's neighbourhood of a row is the other rows: constant on two rows, undefined on one)") +
      "; use a larger target split or another selection");
}

nlohmann::json EpochDaDiagnostics(models::FusionModelImpl& model, const Split& train, const Split& val,
                                  const Split& target, const nlohmann::json& da_train, const std::string& selection,
                                  int64_t batch_size, const torch::Device& device) {
  if (target.size() == 0) return nlohmann::json::object();
  nlohmann::json d = da_train;
  const int64_t bs = batch_size;
  auto [t_logits, t_feats] = ForwardRows(model, Strided(target.inputs, target.size(), kDiagnosticRows), bs, device);
  auto [s_logits, s_feats] = ForwardRows(model, Strided(train.inputs, train.size(), kDiagnosticRows), bs, device);
  (void)s_logits;
  torch::Tensor probs = torch::softmax(t_logits.to(torch::kFloat), 1);
  d["mmd_linear"] = LinearMmd(s_feats, t_feats);
  PredictionStats ps = TargetPredictionStats(probs);
  d["target_dist"] = ps.class_share;
  d["target_max_share"] = ps.max_share;
  d["target_max_class"] = ps.max_class;
  d["target_entropy"] = ps.mean_entropy;
  d["im"] = ps.im;
  // SND (an N x N similarity matrix) and DEV (a domain classifier fit) cost more than the rest together: they are
  // computed for the jobs selected by them.
  if (selection == "snd") d["snd"] = SoftNeighborhoodDensity(probs);
  if (selection == "dev" && val.size() >= 1) {  // DeepEmbeddedValidation: undefined, with the reason, below 2 rows
    auto [v_logits, v_feats] = ForwardRows(model, val.inputs, bs, device);
    torch::Tensor losses = torch::nn::functional::cross_entropy(
        v_logits.to(torch::kFloat), val.labels.to(device),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    DevResult dev = DeepEmbeddedValidation(s_feats, t_feats, v_feats, losses);
    d["dev"] = dev.risk;  // null when undefined (non-finite numbers become null below)
    d["dev_eta"] = dev.eta;
    d["dev_weight_mean"] = dev.weight_mean;
    d["dev_ess"] = dev.ess;
    d["dev_domain_acc"] = dev.domain_acc;
    d["dev_l2"] = dev.l2;
    d["dev_defined"] = dev.defined;
    if (!dev.defined) d["dev_undefined"] = dev.undefined_reason;
  }
  for (auto it = d.begin(); it != d.end(); ++it)
    if (it->is_number_float() && !std::isfinite(it->get<double>())) *it = nullptr;
  return d;
}

Result<SelectionValue> UnsupervisedSelectionValue(const std::string& selection, const nlohmann::json& da, int epoch,
                                                  const std::string& where) {
  auto missing = [&](const std::string& what) {
    return Status::FailedPrecondition(where + ": selection '" + selection + "' has no value at epoch " +
                                      std::to_string(epoch) + " (0-based, as the curve)" + what);
  };
  if (!da.is_object()) return missing("");
  SelectionValue v;
  if (selection == "dev" && da.value("dev_defined", true) == false) {
    // DEV is undefined at this epoch (its reason is in the record): the epoch ranks after every epoch where it
    // is defined, and among such epochs by im (docs/trainer.md "Unsupervised selection").
    const nlohmann::json& im = da.value("im", nlohmann::json());
    if (!im.is_number()) return missing(" (DEV undefined, and no im to fall back on)");
    v.tier = 0;
    v.value = im.get<double>();
    v.higher = true;
    return v;
  }
  // Selection without target labels: the epoch's criterion from the diagnostics (dev: lower is better).
  const nlohmann::json& c = da.value(selection, nlohmann::json());
  if (!c.is_number()) return missing("");
  v.tier = selection == "dev" ? 1 : 0;
  v.value = c.get<double>();
  v.higher = selection != "dev";
  return v;
}

DaSummary DaWarnings(const std::vector<EpochRecord>& curve, int selected_epoch, const std::vector<std::string>& labels,
                     const std::string& selection, double lambda_max, double lambda_seen, int64_t steps,
                     const std::string& horizon, bool has_target) {
  DaSummary s;
  if (lambda_max > 0 && !curve.empty() && lambda_seen < kShortScheduleShare * lambda_max) {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "schedule: the GRL lambda never exceeded %.3g (%.1f%% of its maximum %.3g) in %lld steps: its "
                  "horizon (%s) is longer than the run, so this is close to no adaptation",
                  lambda_seen, 100 * lambda_seen / lambda_max, lambda_max, static_cast<long long>(steps),
                  horizon.c_str());
    s.warnings.push_back({{"code", "short_schedule"}, {"message", buf}});
  }
  if (!has_target) return s;
  const int num_classes = static_cast<int>(labels.size());
  for (const auto& rec : curve) {
    if (rec.epoch != selected_epoch || !rec.val_metrics.is_object() || !rec.val_metrics.contains("da")) continue;
    const nlohmann::json& da = rec.val_metrics["da"];
    s.da_selected = da;
    const double share = da.value("target_max_share", 0.0);
    if (share > kCollapseShare) {
      const int cls = da.value("target_max_class", 0);
      char buf[320];
      std::snprintf(buf, sizeof buf,
                    "collapse: at the selected epoch %d (0-based, as the curve), %.0f%% of the unlabeled target "
                    "is predicted as '%s' (more than %.0f%%)",
                    selected_epoch, 100 * share,
                    cls >= 0 && cls < num_classes ? labels[static_cast<size_t>(cls)].c_str() : "?",
                    100 * kCollapseShare);
      s.warnings.push_back({{"code", "target_collapse"}, {"message", buf}});
    }
    if (selection == "dev") {
      // Over the validated epochs only (eval_every > 1 records diagnostics at epochs never ranked): a validated
      // epoch's record has the validation metrics beside "da".
      int undefined = 0, validated = 0;
      std::string reason;
      for (const auto& e : curve) {
        if (!e.val_metrics.is_object() || !e.val_metrics.contains("da") || e.val_metrics.size() < 2) continue;
        const nlohmann::json& de = e.val_metrics["da"];
        if (!de.contains("dev_defined")) continue;
        ++validated;
        if (de["dev_defined"] == false) {
          ++undefined;
          if (reason.empty()) reason = de.value("dev_undefined", std::string("?"));
        }
      }
      char buf[720];
      if (da.value("dev_defined", true) == false) {
        std::snprintf(buf, sizeof buf,
                      "dev: DEV was undefined at %d of %d validated epochs, the selected epoch %d (0-based) included "
                      "(%s); that epoch was ranked by im instead (epochs without DEV rank after those with it, and "
                      "among themselves by im)",
                      undefined, validated, selected_epoch, da.value("dev_undefined", std::string("?")).c_str());
        s.warnings.push_back({{"code", "dev_undefined"}, {"message", buf}});
      } else if (2 * undefined >= validated && undefined > 0) {
        // Defined at the selected epoch but at few others: the choice is among those few (an epoch with DEV
        // beats every epoch without), so where DEV is defined decided as much as DEV's value did.
        std::snprintf(buf, sizeof buf,
                      "dev: DEV was defined at only %d of %d validated epochs (undefined at the others, e.g. %s); the "
                      "selected epoch %d (0-based) is the best by DEV among those %d, and every epoch without DEV "
                      "ranked below them whatever its im",
                      validated - undefined, validated, reason.c_str(), selected_epoch, validated - undefined);
        s.warnings.push_back({{"code", "dev_sparse"}, {"message", buf}});
      }
    }
  }
  return s;
}

}  // namespace emosweep::worker
