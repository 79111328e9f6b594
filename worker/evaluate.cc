// worker/evaluate.cc: eval-mode pass over a split (see evaluate.h).
#include "worker/evaluate.h"

#include <limits>

namespace emosweep::worker {

models::Batch SliceBatch(const Split& split, int64_t begin, int64_t end, const torch::Device& device) {
  models::Batch b;
  for (const auto& [m, t] : split.inputs) b.inputs[m] = t.narrow(0, begin, end - begin).to(device);
  b.labels = split.labels.narrow(0, begin, end - begin).to(device);
  return b;
}

bool WeighsNothing(const torch::Tensor& class_weights, const torch::Tensor& labels) {
  if (!class_weights.defined() || labels.numel() == 0) return false;
  const torch::Tensor w = class_weights.to(torch::kCPU, torch::kDouble);
  return w.index_select(0, labels.to(torch::kCPU)).sum().item<double>() == 0.0;
}

void RecordLoss(const EvalOutput& e, nlohmann::json* metrics) {
  if (!e.loss_undefined) (*metrics)["loss"] = e.loss;
}

Result<EvalOutput> Evaluate(models::FusionModelImpl& model, const Split& split, int64_t batch_size,
                            const models::LossContext& ctx, int num_classes, bool keep_predictions,
                            const torch::Device& device) {
  EvalOutput out;
  const int64_t n = split.size();
  if (n == 0) return out;
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t step = model.transductive() ? n : std::max<int64_t>(1, batch_size);
  std::vector<int> labels, preds;
  labels.reserve(n);
  preds.reserve(n);
  double loss_sum = 0;
  int64_t loss_rows = 0;
  for (int64_t b = 0; b < n; b += step) {
    const int64_t e = std::min(n, b + step);
    models::Batch batch = SliceBatch(split, b, e, device);
    models::ModelOutput o = model.Forward(batch);
    if (!WeighsNothing(ctx.class_weights, split.labels.narrow(0, b, e - b))) {
      models::LossTerms terms = model.Loss(o, batch, ctx);
      loss_sum += terms.total.item<double>() * static_cast<double>(e - b);
      loss_rows += e - b;
    }
    torch::Tensor probs = torch::softmax(o.logits, 1).to(torch::kCPU).contiguous();
    torch::Tensor arg = probs.argmax(1);
    const float* pp = probs.data_ptr<float>();
    const int64_t* ap = arg.data_ptr<int64_t>();
    const int64_t* lp = split.labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < e - b; ++i) {
      labels.push_back(static_cast<int>(lp[b + i]));
      preds.push_back(static_cast<int>(ap[i]));
      if (keep_predictions) {
        Prediction p;
        p.utt_id = split.ids[b + i];
        p.label = labels.back();
        p.pred = preds.back();
        p.probs.assign(pp + i * num_classes, pp + (i + 1) * num_classes);
        out.predictions.push_back(std::move(p));
      }
    }
  }
  if (was_training) model.train();
  out.loss_undefined = loss_rows == 0;
  out.loss = out.loss_undefined ? std::numeric_limits<double>::quiet_NaN() : loss_sum / static_cast<double>(loss_rows);
  ES_ASSIGN_OR_RETURN(out.metrics, ComputeMetrics(labels, preds, num_classes));
  return out;
}

}  // namespace emosweep::worker
