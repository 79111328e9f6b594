// models/msr.cc: multimodal-ser models (seed-methods.md §4.2–4.4):
// (a) SentimentogramSER (cross layers, CE + VAD + SupCon) and
// (b) NovelMultimodalSER (VGA, EAAF, MICL, VAD head).
//
// All sequences have length 1 (§0.4), so every attention is out_proj(W_v·kv);
// VGA's additive VAD bias λ·M_VAD cannot change a softmax over one key and is
// therefore not computed (its VAD projectors would get no gradient either).
// VAD targets are looked up by canonical label name (spec.labels).
#include <map>

#include "models/dropout.h"
#include "models/layers.h"
#include "models/losses.h"
#include "models/model_factories.h"
#include "models/slot_linear.h"

namespace emosweep::models {
namespace {

// NRC-VAD-style targets of the seed (§4.2; ekman_7 values for fear and disgust).
const std::map<std::string, std::array<float, 3>>& VadTable() {
  static const std::map<std::string, std::array<float, 3>> kTable = {
      {"anger", {-0.666f, 0.730f, 0.314f}},      {"happiness", {0.960f, 0.648f, 0.588f}},
      {"neutral", {-0.062f, -0.632f, -0.286f}},  {"sadness", {-0.896f, -0.424f, -0.672f}},
      {"excitement", {0.850f, 0.750f, 0.450f}},  {"frustration", {-0.500f, 0.600f, -0.200f}},
      {"fear", {-0.854f, 0.680f, -0.414f}},      {"surprise", {0.750f, 0.750f, 0.124f}},
      {"disgust", {-0.896f, 0.550f, -0.366f}},
  };
  return kTable;
}

Result<torch::Tensor> VadTargets(const ModelSpec& spec, const nlohmann::json& cfg, const std::string& name,
                                 bool faithful_iemocap4) {
  const int64_t c = spec.num_classes;
  auto table = torch::zeros({c, 3});
  if (cfg["vad_weight"].get<double>() == 0.0) return table;
  if (faithful_iemocap4) {
    // Seed (b): index lookup in the iemocap_4 table [anger, happiness, neutral, sadness]; zeros for other configs.
    if (c != 4) return table;
    const char* order[] = {"anger", "happiness", "neutral", "sadness"};
    for (int64_t i = 0; i < 4; ++i)
      for (int k = 0; k < 3; ++k) table[i][k] = VadTable().at(order[i])[k];
    return table;
  }
  if (static_cast<int64_t>(spec.labels.size()) != c)
    return Status::InvalidArgument("model '" + name + "': the VAD term needs the " + std::to_string(c) +
                                   " class names (got " + std::to_string(spec.labels.size()) +
                                   "); set vad_weight = 0 to train without it");
  const auto& over = cfg["vad_overrides"];
  for (int64_t i = 0; i < c; ++i) {
    const std::string& l = spec.labels[i];
    std::array<float, 3> v{};
    if (over.contains(l)) {
      const auto& o = over[l];
      if (!o.is_array() || o.size() != 3 || !o[0].is_number() || !o[1].is_number() || !o[2].is_number())
        return Status::InvalidArgument("model '" + name + "': vad_overrides." + l + " must be [v, a, d] numbers");
      for (int k = 0; k < 3; ++k) v[k] = o[k].get<float>();
    } else {
      auto it = VadTable().find(l);
      if (it == VadTable().end())
        return Status::InvalidArgument("model '" + name + "': no VAD target for label '" + l +
                                       "'; give one in vad_overrides = {" + l + " = [v, a, d]} or set vad_weight = 0");
      v = it->second;
    }
    for (int k = 0; k < 3; ++k) table[i][k] = v[k];
  }
  return table;
}

torch::nn::LayerNorm Ln(int64_t d) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})); }

// Post-norm transformer block on length-1 sequences: y = LN(q + Drop(Attn(kv))); LN(y + FFN(y)).
// With q = kv it is nn.TransformerEncoderLayer (GELU); otherwise one direction of a cross layer.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t d, int64_t heads, int64_t ffn, double p) {
    attn = register_module("attn", LengthOneAttention(d, heads, p));
    ln1_ = register_module("norm1", Ln(d));
    ln2_ = register_module("norm2", Ln(d));
    ffn_ = register_module("ffn", torch::nn::Sequential(SlotLinear(d, ffn), torch::nn::GELU(),
                                                        FastDropout(p), SlotLinear(ffn, d),
                                                        FastDropout(p)));
    drop_ = register_module("dropout", FastDropout(p));
  }
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& kv) {
    auto y = ln1_(q + drop_(attn(kv)));
    return ln2_(y + ffn_->forward(y));
  }
  LengthOneAttention attn{nullptr};

 private:
  torch::nn::LayerNorm ln1_{nullptr}, ln2_{nullptr};
  torch::nn::Sequential ffn_{nullptr};
  FastDropout drop_{nullptr};
};
TORCH_MODULE(Block);

class MsrModel : public FusionModelImpl {
 public:
  MsrModel(int64_t dt, int64_t da, const nlohmann::json& c, int64_t classes, bool novel, torch::Tensor vad)
      : novel_(novel),
        d_(c["hidden_dim"].get<int64_t>()),
        smoothing_(c["label_smoothing"].get<double>()),
        vad_w_(c["vad_weight"].get<double>()),
        tau_(c["tau"].get<double>()),
        contrast_w_(novel ? c["micl_weight"].get<double>() : c["supcon_weight"].get<double>()),
        same_w_(novel ? c["micl_same_label_weight"].get<double>() : 0.0) {
    const double p = c["dropout"].get<double>();
    const int64_t heads = c["num_heads"].get<int64_t>(), ffn = c["ffn_dim"].get<int64_t>();
    const int64_t layers = c["num_layers"].get<int64_t>(), pd = c["proj_dim"].get<int64_t>();
    vad_ = register_buffer("vad_targets", vad);
    auto proj = [&](int64_t in) {
      return torch::nn::Sequential(SlotLinear(in, d_), Ln(d_), torch::nn::GELU(), FastDropout(p));
    };
    proj_t_ = register_module("text_proj", proj(dt));
    proj_a_ = register_module("audio_proj", proj(da));
    emb_t_ = register_parameter("text_embedding", torch::randn({1, d_}) * 0.02);
    emb_a_ = register_parameter("audio_embedding", torch::randn({1, d_}) * 0.02);
    self_t_ = register_module("text_self", Block(d_, heads, ffn, p));
    self_a_ = register_module("audio_self", Block(d_, heads, ffn, p));
    for (int64_t i = 0; i < layers; ++i) {
      const std::string s = std::to_string(i);
      cross_a_.push_back(register_module((novel ? "vga_audio" : "cross_audio") + s, Block(d_, heads, ffn, p)));
      cross_t_.push_back(register_module((novel ? "vga_text" : "cross_text") + s, Block(d_, heads, ffn, p)));
    }
    auto lin = [&](int64_t i, int64_t o) { return SlotLinear(i, o); };
    if (novel) {
      gate_t_ = register_module("eaaf_gate_text", torch::nn::Sequential(lin(3 * d_, d_), Ln(d_)));
      gate_a_ = register_module("eaaf_gate_audio", torch::nn::Sequential(lin(3 * d_, d_), Ln(d_)));
      inter_ = register_module("eaaf_interaction",
                               torch::nn::Sequential(lin(d_, d_), Ln(d_), torch::nn::GELU(), FastDropout(p)));
      beta_ = register_parameter("eaaf_beta", torch::full({1}, 0.5));
      fuse_ = register_module("eaaf_out",
                              torch::nn::Sequential(lin(d_, d_), Ln(d_), torch::nn::GELU(), FastDropout(p)));
      auto micl = [&]() {
        return torch::nn::Sequential(lin(d_, d_), torch::nn::BatchNorm1d(d_), torch::nn::ReLU(), lin(d_, pd));
      };
      micl_t_ = register_module("micl_text", micl());
      micl_a_ = register_module("micl_audio", micl());
    } else {
      fuse_ = register_module("fusion",
                              torch::nn::Sequential(lin(2 * d_, d_), Ln(d_), torch::nn::GELU(), FastDropout(p)));
      contrast_ = register_module("contrastive_head",
                                  torch::nn::Sequential(lin(d_, d_), torch::nn::ReLU(), lin(d_, pd)));
    }
    cls_ = register_module("classifier", torch::nn::Sequential(lin(d_, d_), Ln(d_), torch::nn::GELU(),
                                                               FastDropout(p), lin(d_, classes)));
    vad_head_ = register_module("vad_head", torch::nn::Sequential(lin(d_, d_ / 2), torch::nn::GELU(),
                                                                  FastDropout(p), lin(d_ / 2, 3),
                                                                  torch::nn::Tanh()));
    // Seed init: Xavier + zero bias on every nn.Linear; nn.MultiheadAttention's packed in_proj keeps
    // PyTorch's; VGA (b) is a custom attention made of nn.Linear, so its value projection is Xavier too.
    XavierLinears(*this, /*keep_mha_in_proj=*/true);
    if (novel) {
      torch::NoGradGuard g;
      for (auto* v : {&cross_a_, &cross_t_})
        for (auto& b : *v) torch::nn::init::xavier_uniform_(b->attn->v_proj->weight);
    }
  }

  ModelOutput Forward(const Batch& batch) override {
    auto t = proj_t_->forward(Input(batch, "text")) + emb_t_;
    auto a = proj_a_->forward(Input(batch, "audio")) + emb_a_;
    t = self_t_(t, t);
    a = self_a_(a, a);
    for (size_t i = 0; i < cross_a_.size(); ++i) {
      auto a2 = cross_a_[i](a, t);  // both directions from the same inputs
      auto t2 = cross_t_[i](t, a);
      a = a2;
      t = t2;
    }
    ModelOutput out;
    if (novel_) {
      auto ta = t * a;
      auto g = torch::cat({t, a, ta}, 1);
      auto at = torch::sigmoid(gate_t_->forward(g)), aa = torch::sigmoid(gate_a_->forward(g));
      auto f = at * t + aa * a + beta_ * inter_->forward(ta);
      out.features = fuse_->forward(f);
      out.aux["gate_text"] = at;
      out.aux["gate_audio"] = aa;
      out.aux["micl_text"] = micl_t_->forward(t);
      out.aux["micl_audio"] = micl_a_->forward(a);
    } else {
      out.features = fuse_->forward(torch::cat({t, a}, 1));
      out.aux["proj"] = contrast_->forward(out.features);
    }
    out.logits = cls_->forward(out.features);
    out.aux["vad"] = vad_head_->forward(out.features);
    return out;
  }

  LossTerms Loss(const ModelOutput& out, const Batch& batch, const LossContext& ctx) override {
    LossTerms r;
    auto ce = CrossEntropy(out.logits, batch.labels, ctx.class_weights, smoothing_, ctx.class_weight_mean);
    r.total = ce;
    r.parts["ce"] = ce;
    if (vad_w_ != 0.0) {
      auto vad = VadMse(out.aux.at("vad"), vad_, batch.labels);
      r.total = r.total + vad_w_ * vad;
      r.parts["vad"] = vad;
    }
    if (contrast_w_ != 0.0) {
      if (novel_) {
        auto m = MiclLoss(out.aux.at("micl_text"), out.aux.at("micl_audio"), batch.labels, tau_, same_w_);
        r.total = r.total + contrast_w_ * m;
        r.parts["micl"] = m;
      } else {
        auto s = SupConLoss(out.aux.at("proj"), batch.labels, tau_);
        r.total = r.total + contrast_w_ * s;
        r.parts["supcon"] = s;
      }
    }
    return r;
  }
  int64_t feature_dim() const override { return d_; }

 private:
  bool novel_;
  int64_t d_;
  double smoothing_, vad_w_, tau_, contrast_w_, same_w_;
  torch::Tensor vad_, emb_t_, emb_a_, beta_;
  torch::nn::Sequential proj_t_{nullptr}, proj_a_{nullptr}, gate_t_{nullptr}, gate_a_{nullptr}, inter_{nullptr},
      fuse_{nullptr}, micl_t_{nullptr}, micl_a_{nullptr}, contrast_{nullptr}, cls_{nullptr}, vad_head_{nullptr};
  Block self_t_{nullptr}, self_a_{nullptr};
  std::vector<Block> cross_a_, cross_t_;
};

Result<ModelPtr> Make(const ModelSpec& spec, const nlohmann::json& cfg, bool novel) {
  const std::string name = novel ? "msr_b" : "msr_a";
  ES_ASSIGN_OR_RETURN(int64_t dt, RequireInput(spec, name, "text"));
  ES_ASSIGN_OR_RETURN(int64_t da, RequireInput(spec, name, "audio"));
  const int64_t d = cfg["hidden_dim"].get<int64_t>();
  if (d % cfg["num_heads"].get<int64_t>() || d < 2)
    return Status::InvalidArgument("model '" + name + "': hidden_dim must be even and divisible by num_heads");
  const bool faithful = novel && cfg["faithful"].get<bool>();
  ES_ASSIGN_OR_RETURN(torch::Tensor vad, VadTargets(spec, cfg, name, faithful));
  return ModelPtr(std::make_shared<MsrModel>(dt, da, cfg, spec.num_classes, novel, vad));
}

}  // namespace

Result<ModelPtr> MakeMsrA(const ModelSpec& spec, const nlohmann::json& cfg) { return Make(spec, cfg, false); }
Result<ModelPtr> MakeMsrB(const ModelSpec& spec, const nlohmann::json& cfg) { return Make(spec, cfg, true); }

}  // namespace emosweep::models
