// worker/job_trainer_internal.h: what the files of the single-job trainer (trainer*.cc) share: the Trainer
// class whose methods they define, its modules (JobModules) and its clock. The loop is described step by step
// in docs/trainer.md.
//   trainer.cc           RunJob, RunJobUnguarded, the job's file paths and Trainer::Run (the epoch loop)
//   trainer_internal.cc  what it shares with the packed trainer (trainer_internal.h): class weights, loss
//                        context, init_from, feature normalisation
//   trainer_setup.cc     the job's data, model and normalised inputs, and the BatchNorm batch check
//   trainer_resume.cc    the job's resume state: writing it and resuming from it
//   trainer_epoch.cc     one training epoch, and the group's collectives (host floats, BatchNorm buffers)
//   trainer_validate.cc  per-epoch validation, selection / early stopping and the best epoch's snapshot
// Internal to worker/ (includes libtorch). Thread-safety: one Trainer per thread.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/reducer.h"
#include "core/status.h"
#include "models/da_losses.h"
#include "models/model.h"
#include "worker/dataset.h"
#include "worker/evaluate.h"
#include "worker/flat_params.h"
#include "worker/fused_optimizer.h"
#include "worker/job.h"
#include "worker/trainer_state.h"

namespace emosweep::worker::internal {

using Clock = std::chrono::steady_clock;
inline double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A job's modules under one root so that parameters, buffers and the flat
// buffer cover the model and the domain discriminator alike.
struct JobModules {
  models::ModelPtr model;
  std::shared_ptr<models::DomainAdapter> adapter;
  std::shared_ptr<torch::nn::Module> root;
};

class Trainer {
 public:
  Trainer(const JobSpec& spec, const JobContext& ctx) : spec_(spec), ctx_(ctx) {}
  Result<JobResult> Run();

 private:
  Status LoadData();
  Status BuildModel();
  Status NormalizeInputs();
  Status CheckOneRowBatches(int64_t n) const;
  Status SyncBuffers();
  Status MaybeResume();
  // Collectives on a few host floats (loss sums, stop votes): staged through device memory when the
  // group trains on CUDA (the NCCL reducer reads device pointers only).
  Status HostCollective(float* v, size_t n, bool broadcast);  // sum over the group, or rank 0's values
  Status HostAllreduceSum(float* v, size_t n) { return HostCollective(v, n, false); }
  Status HostBroadcast(float* v, size_t n) { return HostCollective(v, n, true); }
  Status WriteState(int next_epoch);
  Status TrainEpoch(int epoch, double* train_loss);
  Result<bool> ValidateEpoch(int epoch, const nlohmann::json& da, EpochRecord* rec);  // returns "stop early"
  void Snapshot();
  void RestoreBest();
  models::LossContext LossCtx(int epoch) const;

  const JobSpec& spec_;
  const JobContext& ctx_;
  std::string id_, where_;
  std::string log_where_;  // where_ and the job's label (ctx.label), for warnings in the log
  TrainConfig cfg_;
  torch::Device device_{torch::kCPU};
  cluster::GradientReducer* reducer_ = nullptr;
  std::unique_ptr<cluster::GradientReducer> local_reducer_;
  int num_classes_ = 0;

  Split train_, val_, target_;
  std::map<std::string, Split> evals_;
  ModalityStats train_norm_;  // feature_norm = train: the statistics applied (saved with the model)
  JobModules m_;
  std::unique_ptr<FlatParameters> flat_;
  std::unique_ptr<FusedOptimizer> opt_;
  std::unique_ptr<Schedule> sched_;
  torch::Tensor class_weights_;
  std::unique_ptr<IndexShuffler> shuffle_, target_shuffle_;
  std::vector<int64_t> target_order_;
  int64_t target_cursor_ = 0;
  std::vector<int64_t> target_idx_;  // the current global batch's target rows
  std::map<std::string, torch::Tensor> batch_bufs_;
  torch::Tensor label_buf_;

  int64_t step_ = 0;
  int64_t steps_per_epoch_ = 0;
  int start_epoch_ = 0;
  // The last epoch's training-side DA means (λ, DA loss, discriminator accuracy) and the run's largest λ.
  nlohmann::json da_train_ = nlohmann::json::object();
  double da_lambda_seen_ = 0;
  EarlyStopState es_;
  torch::Tensor best_params_;
  std::vector<double> class_weights_cpu_;  // the class weights for host-side batch sums
  std::vector<torch::Tensor> best_buffers_;
  std::vector<EpochRecord> curve_;
  std::string state_path_;
  Clock::time_point last_state_write_ = Clock::now();
};

}  // namespace emosweep::worker::internal
