// worker/da_selection.h: the domain-adaptation side of a training run, apart from the epoch loop
// (docs/trainer.md "Domain-adaptation diagnostics" and "Unsupervised selection"):
//  - EpochDaDiagnostics: an epoch's `val_metrics.da` record (training-side means + an eval-mode pass over the
//    unlabeled target; SND / DEV for the jobs they select);
//  - UnsupervisedSelectionValue: the value an unsupervised selection policy (dev / im / snd) ranks an epoch by;
//  - DaWarnings: the selected epoch's diagnostics and the short-schedule / collapse warnings of a job.
// Internal to worker/ (the trainers, trainer*.cc and packed_*.cc, and tests). Thread-safety: pure functions,
// except that the diagnostics run the model's forward (eval mode, restored afterwards) as the trainer's own
// thread does.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/status.h"
#include "models/model.h"
#include "worker/dataset.h"
#include "worker/job.h"
#include "worker/trainer_state.h"

namespace emosweep::worker {

// Warnings on adaptation runs: a schedule whose λ stays below this share of its maximum, and a selected epoch
// at which one class takes more than this share of the unlabeled target.
constexpr double kShortScheduleShare = 0.10;
constexpr double kCollapseShare = 0.90;
// Rows of source training data and of the target used by the per-epoch diagnostics (evenly strided).
constexpr int64_t kDiagnosticRows = 2000;

// Adaptation draws target rows cyclically: `want` rows into *rows, continuing at *cursor in *order and starting
// a new pass (shuffled when `shuffle`) over the `n` target rows when one ends. Every rank of a group calls it
// with the global batch so the cursor and shuffle stay identical (docs/design/distributed.md).
void DrawTargetRows(IndexShuffler& shuffler, int64_t n, int64_t want, bool shuffle, std::vector<int64_t>* order,
                    int64_t* cursor, std::vector<int64_t>* rows);

// An epoch's training-side DA record from its row-weighted means (DA loss, discriminator accuracy, λ), the last
// step's λ and the adapter's weight; disc_loss / disc_acc only for adapters with a discriminator.
nlohmann::json DaTrainingMeans(double da_loss, double disc_acc, double lambda, double lambda_last, double weight,
                               bool has_discriminator);

// dev, im and snd: selection without target labels, from the epoch's diagnostics.
bool UnsupervisedSelection(const std::string& selection);
// InvalidArgument (a bad input, not retried) when a training job selected by `selection` has too few
// unlabeled target rows for the criterion to vary: im is 0 at every epoch on one row, and SND is constant
// (0) on two rows and undefined on one. Ok for other selections and for eval jobs.
Status CheckUnsupervisedTarget(const std::string& selection, bool training, int64_t target_rows,
                               const std::string& where);

// The per-epoch diagnostics of a job with target_unlabeled rows ({} without them). `da_train`: the epoch's
// training-side means (λ, DA loss, discriminator accuracy). Non-finite numbers become null.
nlohmann::json EpochDaDiagnostics(models::FusionModelImpl& model, const Split& train, const Split& val,
                                  const Split& target, const nlohmann::json& da_train, const std::string& selection,
                                  int64_t batch_size, const torch::Device& device);

// How an unsupervised selection policy ranks one epoch: first by `tier` (higher wins), then by `value` (better =
// higher when `higher`). `dev`: tier 1 and the DEV risk where DEV is defined; where it is not (DevResult), tier 0
// and the epoch's im (documented fallback, flagged by DaWarnings). im, snd: tier 0.
struct SelectionValue {
  int tier = 0;
  double value = 0;
  bool higher = true;
};
// FailedPrecondition when the epoch's diagnostics lack the criterion (`where`: the job, for the message).
Result<SelectionValue> UnsupervisedSelectionValue(const std::string& selection, const nlohmann::json& da,
                                                  int epoch, const std::string& where);

// A job's DA summary for JobResult::info: `da_selected` (the selected epoch's diagnostics, null when absent)
// and `warnings` (a list of {code, message}, possibly empty).
struct DaSummary {
  nlohmann::json da_selected;
  nlohmann::json warnings = nlohmann::json::array();
};
// `selection`: the job's policy (dev: a `dev_undefined` warning when the selected epoch had no DEV).
// `lambda_max` 0: no GRL schedule to check. `lambda_seen`: the run's largest applied λ; `steps`: optimizer
// steps run; `horizon`: the schedule's horizon in words; `has_target`: the job trained with target rows.
DaSummary DaWarnings(const std::vector<EpochRecord>& curve, int selected_epoch, const std::vector<std::string>& labels,
                     const std::string& selection, double lambda_max, double lambda_seen, int64_t steps,
                     const std::string& horizon, bool has_target);

}  // namespace emosweep::worker
