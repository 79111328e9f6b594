// models/baselines.cc: the multimodal-ser baselines (seed-methods.md §4.5):
// unimodal MLP, concatenation MLP, standard cross-attention, unconstrained gated fusion.
#include "models/dropout.h"
#include "models/layers.h"
#include "models/model_configs.h"
#include "models/model_factories.h"

namespace emosweep::models {
namespace {

std::vector<int64_t> Ints(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

// MLP over one tensor (a modality or the concatenation of all): hidden stack + Linear(→C).
class MlpModel : public FusionModelImpl {
 public:
  MlpModel(std::vector<std::string> modalities, int64_t in_dim, const std::vector<int64_t>& hidden, double dropout,
           int64_t classes)
      : modalities_(std::move(modalities)), feature_dim_(hidden.empty() ? in_dim : hidden.back()) {
    body_ = register_module("body", MlpStack(in_dim, hidden, dropout));
    head_ = register_module("head", torch::nn::Linear(feature_dim_, classes));
  }
  ModelOutput Forward(const Batch& batch) override {
    torch::Tensor x;
    if (modalities_.size() == 1) {
      x = Input(batch, modalities_[0]);
    } else {
      std::vector<torch::Tensor> parts;
      parts.reserve(modalities_.size());
      for (const auto& m : modalities_) parts.push_back(Input(batch, m));
      x = torch::cat(parts, 1);
    }
    ModelOutput out;
    out.features = body_->size() ? body_->forward(x) : x;
    out.logits = head_(out.features);
    return out;
  }
  int64_t feature_dim() const override { return feature_dim_; }

 private:
  std::vector<std::string> modalities_;
  int64_t feature_dim_;
  torch::nn::Sequential body_{nullptr};
  torch::nn::Linear head_{nullptr};
};

class CrossAttentionModel : public FusionModelImpl {
 public:
  CrossAttentionModel(int64_t dt, int64_t da, int64_t d, int64_t heads, double p, int64_t classes) : d_(d) {
    proj_t_ = register_module("text_proj", torch::nn::Linear(dt, d));
    proj_a_ = register_module("audio_proj", torch::nn::Linear(da, d));
    attn_t_ = register_module("text_attn", LengthOneAttention(d, heads, p));
    attn_a_ = register_module("audio_attn", LengthOneAttention(d, heads, p));
    ln_t_ = register_module("text_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    ln_a_ = register_module("audio_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    head_ = register_module("head", torch::nn::Sequential(torch::nn::Linear(2 * d, d), torch::nn::ReLU(),
                                                          FastDropout(p), torch::nn::Linear(d, classes)));
  }
  ModelOutput Forward(const Batch& batch) override {
    auto t = proj_t_(Input(batch, "text"));
    auto a = proj_a_(Input(batch, "audio"));
    // q = t attends to a (and vice versa); length-1 sequences, mean-pool is the identity.
    auto t2 = ln_t_(t + attn_t_(a));
    auto a2 = ln_a_(a + attn_a_(t));
    ModelOutput out;
    out.features = torch::cat({t2, a2}, 1);
    out.logits = head_->forward(out.features);
    return out;
  }
  int64_t feature_dim() const override { return 2 * d_; }

 private:
  int64_t d_;
  torch::nn::Linear proj_t_{nullptr}, proj_a_{nullptr};
  LengthOneAttention attn_t_{nullptr}, attn_a_{nullptr};
  torch::nn::LayerNorm ln_t_{nullptr}, ln_a_{nullptr};
  torch::nn::Sequential head_{nullptr};
};

class GatedModel : public FusionModelImpl {
 public:
  GatedModel(int64_t dt, int64_t da, int64_t d, int64_t gate_hidden, int64_t head_hidden, double p, int64_t classes)
      : d_(d) {
    proj_t_ = register_module("text_proj", torch::nn::Linear(dt, d));
    proj_a_ = register_module("audio_proj", torch::nn::Linear(da, d));
    auto gate = [&]() {
      return torch::nn::Sequential(torch::nn::Linear(2 * d, gate_hidden), torch::nn::ReLU(),
                                   torch::nn::Linear(gate_hidden, 1), torch::nn::Sigmoid());
    };
    gate_t_ = register_module("text_gate", gate());
    gate_a_ = register_module("audio_gate", gate());
    head_ = register_module("head", torch::nn::Sequential(torch::nn::Linear(d, head_hidden), torch::nn::ReLU(),
                                                          FastDropout(p),
                                                          torch::nn::Linear(head_hidden, classes)));
  }
  ModelOutput Forward(const Batch& batch) override {
    auto t = proj_t_(Input(batch, "text"));
    auto a = proj_a_(Input(batch, "audio"));
    auto ta = torch::cat({t, a}, 1);
    auto at = gate_t_->forward(ta), aa = gate_a_->forward(ta);
    ModelOutput out;
    out.features = at * t + aa * a;  // unconstrained: the two gates need not sum to one
    out.logits = head_->forward(out.features);
    out.aux["gate_text"] = at;
    out.aux["gate_audio"] = aa;
    return out;
  }
  int64_t feature_dim() const override { return d_; }

 private:
  int64_t d_;
  torch::nn::Linear proj_t_{nullptr}, proj_a_{nullptr};
  torch::nn::Sequential gate_t_{nullptr}, gate_a_{nullptr}, head_{nullptr};
};

}  // namespace

Result<ModelPtr> MakeUnimodalMlp(const ModelSpec& spec, const nlohmann::json& cfg) {
  const std::string m = cfg["modality"].get<std::string>();
  ES_ASSIGN_OR_RETURN(int64_t d, RequireInput(spec, "unimodal_mlp", m));
  return ModelPtr(std::make_shared<MlpModel>(std::vector<std::string>{m}, d, Ints(cfg["hidden_dims"]),
                                             cfg["dropout"].get<double>(), spec.num_classes));
}

Result<ModelPtr> MakeConcatMlp(const ModelSpec& spec, const nlohmann::json& cfg) {
  if (spec.input_dims.empty()) return Status::InvalidArgument("model 'concat_mlp': the job provides no modality");
  auto order = ModalityOrder(spec.input_dims);
  int64_t d = 0;
  for (const auto& m : order) {
    ES_ASSIGN_OR_RETURN(int64_t dm, RequireInput(spec, "concat_mlp", m));
    d += dm;
  }
  return ModelPtr(std::make_shared<MlpModel>(order, d, Ints(cfg["hidden_dims"]), cfg["dropout"].get<double>(),
                                             spec.num_classes));
}

Result<ModelPtr> MakeCrossAttention(const ModelSpec& spec, const nlohmann::json& cfg) {
  ES_ASSIGN_OR_RETURN(int64_t dt, RequireInput(spec, "cross_attention", "text"));
  ES_ASSIGN_OR_RETURN(int64_t da, RequireInput(spec, "cross_attention", "audio"));
  const int64_t d = cfg["hidden_dim"].get<int64_t>(), h = cfg["num_heads"].get<int64_t>();
  if (d % h) return Status::InvalidArgument("model 'cross_attention': hidden_dim not divisible by num_heads");
  return ModelPtr(std::make_shared<CrossAttentionModel>(dt, da, d, h, cfg["dropout"].get<double>(), spec.num_classes));
}

Result<ModelPtr> MakeGatedUnconstrained(const ModelSpec& spec, const nlohmann::json& cfg) {
  ES_ASSIGN_OR_RETURN(int64_t dt, RequireInput(spec, "gated_unconstrained", "text"));
  ES_ASSIGN_OR_RETURN(int64_t da, RequireInput(spec, "gated_unconstrained", "audio"));
  return ModelPtr(std::make_shared<GatedModel>(dt, da, cfg["hidden_dim"].get<int64_t>(),
                                               cfg["gate_hidden"].get<int64_t>(), cfg["head_hidden"].get<int64_t>(),
                                               cfg["dropout"].get<double>(), spec.num_classes));
}

}  // namespace emosweep::models
