#include "models/model.h"

#include "models/losses.h"

namespace emosweep::models {

LossTerms FusionModelImpl::Loss(const ModelOutput& out, const Batch& batch, const LossContext& ctx) {
  LossTerms t;
  t.total = CrossEntropy(out.logits, batch.labels, ctx.class_weights, ctx.label_smoothing, ctx.class_weight_mean);
  t.parts["ce"] = t.total;
  return t;
}

}  // namespace emosweep::models
