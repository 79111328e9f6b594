// worker/packed_trainer_internal.h: what the files of the batched trainer (packed_*.cc) share: a pack
// member's state (Member), the row pools, the evaluation items and the PackedTrainer class whose methods
// they define. Each step mirrors the single-job trainer's loop (trainer*.cc) member by member; the layout,
// the RNG streams and what is bitwise are described in docs/design/packing.md ("The batched trainer").
//   packed_trainer.cc  PackedTrainerSupports, RunPackedTrainer and PackedTrainer::Run (the epoch loop)
//   packed_setup.cc    each member's set-up: its data, model, normalisation and inputs
//   packed_layout.cc   the [K, stride] parameter buffer, the batched layers' views, the row pools
//   packed_state.cc    a member's resume state (read and written in the single job's format)
//   packed_epoch.cc    one training epoch of every active member, domain adaptation included
//   packed_eval.cc     batched evaluation and per-epoch validation / early stopping
//   packed_finish.cc   the end of a member's run: selected epoch, final evaluation, model file, result
// Internal to worker/ (includes libtorch). Thread-safety: one PackedTrainer per thread.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "jobs/schedule.h"
#include "models/da_losses.h"
#include "models/model.h"
#include "models/packed_mlp.h"
#include "worker/dataset.h"
#include "worker/evaluate.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"
#include "worker/job.h"
#include "worker/trainer_internal.h"
#include "worker/trainer_state.h"

namespace emosweep::worker::packed {

using Clock = std::chrono::steady_clock;
inline double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One member of the pack: everything its single job's Trainer holds.
struct Member {
  const JobSpec* spec = nullptr;
  const JobContext* ctx = nullptr;
  size_t index = 0;  // position in the caller's vectors
  int slot = -1;     // row of the packed buffer
  std::string id, where;
  std::string log_where;  // where and the job's label (ctx->label), for warnings in the log
  TrainConfig cfg;
  int num_classes = 0;
  bool training = true;
  Split train, val, target;  // target: target_unlabeled (domain adaptation, DA diagnostics)
  std::map<std::string, Split> evals;
  ModalityStats train_norm;
  std::vector<std::string> modalities;  // the model's input order
  torch::Tensor train_x, val_x, target_x;  // inputs concatenated in the model's order
  std::map<std::string, torch::Tensor> eval_x;
  models::ModelPtr model;
  std::shared_ptr<torch::nn::Module> root;
  std::shared_ptr<models::DomainAdapter> adapter;  // null without `adapt`
  // DANN: the discriminator's parameters, rebound to views of the member's row (where the single job's flat
  // buffer has them), and their gradients' views of the row.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> adapter_params;
  std::unique_ptr<FlatParameters> own;  // the single model's own buffer (checkpoint I/O)
  std::unique_ptr<FlatParameters> row;  // its row of the packed buffer
  std::unique_ptr<FusedOptimizer> opt;
  std::unique_ptr<Schedule> sched;
  torch::Tensor class_weights;
  std::unique_ptr<IndexShuffler> shuffle, target_shuffle;
  std::vector<int64_t> target_order, target_idx;  // trainer_epoch.cc's target cycling (DrawTargetRows)
  int64_t target_cursor = 0;
  // trainer_epoch.cc's DA bookkeeping: the last epoch's training-side means, the run's largest λ, and this epoch's
  // Σ n·da, Σ n·disc_acc, Σ n·λ and last λ.
  nlohmann::json da_train = nlohmann::json::object();
  double da_lambda_seen = 0;
  double da_acc[3] = {0, 0, 0};
  double lambda_last = 0;
  nlohmann::json da;  // this epoch's diagnostics (EpochDaDiagnostics)
  // Dropout (and a DANN discriminator's dropout): of the pack's device kind; every use but the packed MLP's keys
  // goes through gen.get() (models/counter_dropout.h).
  models::CounterGenerator gen;
  int64_t step = 0, steps_per_epoch = 0;
  int start_epoch = 0, epochs_run = 0, resumed_from = 0;
  bool stopped_early = false;
  EarlyStopState es;
  torch::Tensor best_params;
  std::vector<EpochRecord> curve;
  std::string state_path;
  double t_load = 0;
  Clock::time_point t_start;
  // The current epoch.
  std::vector<int64_t> order;
  int64_t batches = 0;
  double count = 0;
  EpochRecord rec;
  bool done = false;  // result set (finished, failed or aborted)
  Result<JobResult> result = Status::Internal("pack member not run");

  models::LossContext LossCtx(int epoch) const {
    return JobLossContext(cfg, epoch, step, steps_per_epoch, class_weights);
  }
  void PullRow() {  // the single model's parameters <- the packed row
    torch::NoGradGuard g;
    own->params().copy_(row->params());
  }
};

// Rows of several members' splits in one tensor, so that one index_select gathers a group's batch.
struct Pool {
  torch::Tensor x, y;
  std::vector<int64_t> offset;
};

// The pool of every xs[i] / ys[i] in order (offset[i]: where xs[i]'s rows start), on `device`.
Pool MakePool(const std::vector<const torch::Tensor*>& xs, const std::vector<const torch::Tensor*>& ys,
              torch::Device device);

// Host row indices as an index tensor on `device`: on the CPU a view of idx's values (keep idx alive while the
// tensor is used), on a GPU an asynchronous copy (models::HostToDevice; idx may go at once).
torch::Tensor IndexOn(const std::vector<int64_t>& idx, torch::Device device);

struct EvalItem {
  Member* member;
  const Split* split;
  const torch::Tensor* x;
  models::LossContext lctx;
  bool keep_predictions;
  EvalOutput out;
  Status status;
  std::vector<int> labels, preds;
  double loss_sum = 0;
  int64_t loss_rows = 0;  // rows whose batch weighed something (WeighsNothing)
};

extern std::atomic<bool> g_device_path_for_test;  // SetPackedDevicePathForTest
// Tests: makes each member's dropout generator (from its seed) instead of models::NewGeneratorLike, e.g. a stand-in
// Philox generator on the CPU, so that a CPU pack runs CounterGenerator's host-kept positions. Not thread-safe.
extern std::function<at::Generator(uint64_t seed)> g_member_generator_for_test;

class PackedTrainer {
 public:
  PackedTrainer(const std::vector<JobSpec>& specs, const std::vector<JobContext>& contexts)
      : specs_(specs), contexts_(contexts) {}
  std::vector<Result<JobResult>> Run();

 private:
  Status Setup(Member& m);
  Status LoadAndBuild(Member& m);
  Status NormalizeInputs(Member& m);
  Status BuildPack();
  Status MaybeResume(Member& m);
  Status WriteState(Member& m, int next_epoch);
  void TrainEpoch(int epoch, std::vector<Member*>& act);
  // by_slot: a pool holding each item's rows at its member's slot offset (otherwise one is made).
  void Evaluate(std::vector<EvalItem>& items, const Pool* by_slot = nullptr);
  void Validate(int epoch, std::vector<Member*>& act);
  void Finish(std::vector<Member*>& fin);
  void Fail(Member& m, Status s) {
    m.result = std::move(s);
    m.done = true;
  }

  const std::vector<JobSpec>& specs_;
  const std::vector<JobContext>& contexts_;
  std::vector<Member> members_;
  std::vector<Member*> packed_;  // by slot
  models::PackedMlp mlp_;
  Pool train_pool_, val_pool_, target_pool_;  // every packed member's training / validation / target rows, by slot
  torch::Tensor params_, grads_;  // [K, stride]
  int64_t p_ = 0, stride_ = 0;
  int threads_ = 1;
  // Where the pack trains (every member's JobContext::device; a GPU with its index): the buffers, pools and
  // batches. The members' single models stay on the CPU (checkpoints, DA diagnostics).
  torch::Device dev_{torch::kCPU};
  // The GPU's code path (on a GPU; on the CPU under SetPackedDevicePathForTest): the per-member parts a GPU
  // would launch K times batched over the members instead (the dropout masks too, on a GPU: models::PackedMlp): cross-entropy (class_w_ [K, C], ones without class weights; smoothing_ [K]), gradient
  // clipping and the Adam/AdamW update (state rows exp_avg_ / exp_avg_sq_ [K, stride]). Within the GPU
  // tolerance of the members' jobs alone, not bitwise ("Packs on a GPU").
  bool device_path_ = false;
  torch::Tensor class_w_, smoothing_, exp_avg_, exp_avg_sq_;
  void StepMembers(std::vector<Member*>& stepped);  // device path: clip + update of the members stepped
  std::string reducer_name_;
  std::string pack_id_;
  Clock::time_point last_state_write_ = Clock::now();
};

}  // namespace emosweep::worker::packed
