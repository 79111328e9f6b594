// models/glomer.cc: GloMER (seed-methods.md §1.3–1.4).
//
// Encoders → cross-modal attention (length 1: out_proj(W_v·other)) → shared
// residual projection → GMU fusion → classifier; a shared projection head gives
// p_t, p_a for the one-directional NT-Xent. Loss = CE + w·NTX + α·Cons ∓ α·Div:
// the seed minimises Div too (both terms pull the modalities together);
// the default rewards diversity (−α·Div), `faithful = true` restores the seed.
#include "models/dropout.h"
#include "models/layers.h"
#include "models/losses.h"
#include "models/model_factories.h"
#include "models/slot_linear.h"

namespace emosweep::models {
namespace {

torch::nn::Sequential Encoder(int64_t in, int64_t d, double p) {
  return torch::nn::Sequential(SlotLinear(in, d), torch::nn::ReLU(),
                               torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})), FastDropout(p));
}

class Glomer : public FusionModelImpl {
 public:
  Glomer(int64_t dt, int64_t da, const nlohmann::json& c, int64_t classes)
      : d_(c["fusion_dim"].get<int64_t>()),
        alpha_(c["alpha"].get<double>()),
        tau_(c["tau"].get<double>()),
        ntx_w_(c["ntxent_weight"].get<double>()),
        faithful_(c["faithful"].get<bool>()) {
    const double p = c["dropout"].get<double>();
    const int64_t heads = c["num_heads"].get<int64_t>(), pd = c["projection_dim"].get<int64_t>();
    enc_t_ = register_module("text_encoder", Encoder(dt, d_, p));
    enc_a_ = register_module("audio_encoder", Encoder(da, d_, p));
    attn_t_ = register_module("text_attn", LengthOneAttention(d_, heads, p));
    attn_a_ = register_module("audio_attn", LengthOneAttention(d_, heads, p));
    res_ = register_module("res_proj", SlotLinear(d_, d_));
    gmu_t_ = register_module("gmu_text", SlotLinear(d_, d_));
    gmu_a_ = register_module("gmu_audio", SlotLinear(d_, d_));
    gmu_z_ = register_module("gmu_gate", SlotLinear(2 * d_, d_));
    proj_ = register_module("projection", torch::nn::Sequential(SlotLinear(d_, d_), torch::nn::ReLU(),
                                                                torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_})),
                                                                SlotLinear(d_, pd)));
    torch::nn::Sequential cls;
    int64_t in = d_;
    for (int64_t h : c["classifier_dims"].get<std::vector<int64_t>>()) {
      cls->push_back(SlotLinear(in, h));
      cls->push_back(torch::nn::ReLU());
      cls->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
      cls->push_back(FastDropout(p));
      in = h;
    }
    cls->push_back(SlotLinear(in, classes));
    cls_ = register_module("classifier", cls);
  }

  ModelOutput Forward(const Batch& batch) override {
    auto te = enc_t_->forward(Input(batch, "text"));
    auto ae = enc_a_->forward(Input(batch, "audio"));
    auto t = res_(te) + attn_t_(ae);  // q = text, k = v = audio
    auto a = res_(ae) + attn_a_(te);
    auto ht = torch::tanh(gmu_t_(t)), ha = torch::tanh(gmu_a_(a));
    auto z = torch::sigmoid(gmu_z_(torch::cat({t, a}, 1)));
    ModelOutput out;
    out.features = (1 - z) * ht + z * ha;
    out.logits = cls_->forward(out.features);
    out.aux["text"] = t;
    out.aux["audio"] = a;
    out.aux["proj_text"] = proj_->forward(t);
    out.aux["proj_audio"] = proj_->forward(a);
    return out;
  }

  LossTerms Loss(const ModelOutput& out, const Batch& batch, const LossContext& ctx) override {
    LossTerms r;
    // The seed's CE has no weights and no smoothing; a job's explicit settings still apply.
    auto ce = CrossEntropy(out.logits, batch.labels, ctx.class_weights, ctx.label_smoothing, ctx.class_weight_mean);
    auto ntx = NtXentCrossModal(out.aux.at("proj_text"), out.aux.at("proj_audio"), tau_);
    const auto& t = out.aux.at("text");
    const auto& a = out.aux.at("audio");
    // RowNormalize / RowCosineSimilarity: F::normalize / F::cosine_similarity bitwise, with fused backward passes.
    auto div = (RowNormalize(t) - RowNormalize(a)).norm(2, 1).mean();
    auto cons = 1.0 - RowCosineSimilarity(t, a).mean();
    const double div_sign = faithful_ ? 1.0 : -1.0;
    r.total = ce + ntx_w_ * ntx + alpha_ * (div_sign * div + cons);
    r.parts = {{"ce", ce}, {"ntxent", ntx}, {"diversity", div}, {"consistency", cons}};
    return r;
  }
  int64_t feature_dim() const override { return d_; }

 private:
  int64_t d_;
  double alpha_, tau_, ntx_w_;
  bool faithful_;
  torch::nn::Sequential enc_t_{nullptr}, enc_a_{nullptr}, proj_{nullptr}, cls_{nullptr};
  LengthOneAttention attn_t_{nullptr}, attn_a_{nullptr};
  SlotLinear res_{nullptr}, gmu_t_{nullptr}, gmu_a_{nullptr}, gmu_z_{nullptr};
};

}  // namespace

Result<ModelPtr> MakeGlomer(const ModelSpec& spec, const nlohmann::json& cfg) {
  ES_ASSIGN_OR_RETURN(int64_t dt, RequireInput(spec, "glomer", "text"));
  ES_ASSIGN_OR_RETURN(int64_t da, RequireInput(spec, "glomer", "audio"));
  if (cfg["fusion_dim"].get<int64_t>() % cfg["num_heads"].get<int64_t>())
    return Status::InvalidArgument("model 'glomer': fusion_dim not divisible by num_heads");
  return ModelPtr(std::make_shared<Glomer>(dt, da, cfg, spec.num_classes));
}

}  // namespace emosweep::models
