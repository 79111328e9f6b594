// models/mer_gfl.cc: MER "AVTmodel" with gated feature layers (seed-methods.md §3.4).
//
// Per modality x' = Dropout(Linear(D→D) x); GFL(f1, f2): h1 = tanh(f1 W1),
// h2 = tanh(f2 W2), z = softmax([f1; f2] W) over the g gate dimensions,
// h = z⊙h1 + (1−z)⊙h2. Works with whichever modalities the job has: in the
// order audio, video, text (then others), consecutive pairs around the cycle
// (three modalities: (a,v), (v,t), (t,a) as in the seed; two: (a,t) and (t,a)).
// The softmax gate has mean 1/g, so h ≈ h2: around the cycle every modality is
// the second input of one GFL; a single GFL for two modalities would fuse
// almost only the second one.
#include "models/dropout.h"
#include "models/model_factories.h"

namespace emosweep::models {
namespace {

class Gfl : public torch::nn::Module {
 public:
  Gfl(int64_t d1, int64_t d2, int64_t g, bool softmax) : softmax_(softmax) {
    auto xavier = [&](const char* n, int64_t r, int64_t c) {
      auto w = register_parameter(n, torch::empty({r, c}));
      torch::nn::init::xavier_uniform_(w);
      return w;
    };
    // PyTorch's Xavier treats a [rows, cols] parameter as fan_out = rows, fan_in = cols: symmetric, same bound.
    w1_ = xavier("w1", d1, g);
    w2_ = xavier("w2", d2, g);
    w_ = xavier("w", d1 + d2, g);
  }
  torch::Tensor forward(const torch::Tensor& f1, const torch::Tensor& f2) {
    auto h1 = torch::tanh(torch::matmul(f1, w1_));
    auto h2 = torch::tanh(torch::matmul(f2, w2_));
    auto s = torch::matmul(torch::cat({f1, f2}, 1), w_);
    auto z = softmax_ ? torch::softmax(s, 1) : torch::sigmoid(s);
    return z * h1 + (1 - z) * h2;
  }

 private:
  bool softmax_;
  torch::Tensor w1_, w2_, w_;
};

class MerGfl : public FusionModelImpl {
 public:
  MerGfl(std::vector<std::string> order, const std::vector<int64_t>& dims, int64_t g, double p, bool softmax,
         int64_t classes)
      : order_(std::move(order)), g_(g) {
    for (size_t i = 0; i < order_.size(); ++i) {
      auto lin = torch::nn::Linear(dims[i], dims[i]);
      torch::nn::init::xavier_uniform_(lin->weight);
      in_.push_back(register_module("in_" + order_[i], lin));
    }
    drop_ = register_module("dropout", FastDropout(p));
    const size_t n = order_.size();
    const size_t npairs = n;
    for (size_t k = 0; k < npairs; ++k) {
      const size_t i = k, j = (k + 1) % n;
      pairs_.emplace_back(i, j);
      gfl_.push_back(register_module("gfl_" + order_[i] + "_" + order_[j],
                                     std::make_shared<Gfl>(dims[i], dims[j], g, softmax)));
    }
    fc_ = register_module("fc", torch::nn::Linear(static_cast<int64_t>(npairs) * g, g));
    out_ = register_module("out", torch::nn::Linear(g, classes));
    torch::nn::init::xavier_uniform_(fc_->weight);
    torch::nn::init::xavier_uniform_(out_->weight);
  }

  ModelOutput Forward(const Batch& batch) override {
    std::vector<torch::Tensor> x;
    x.reserve(order_.size());
    for (size_t i = 0; i < order_.size(); ++i) x.push_back(drop_(in_[i](Input(batch, order_[i]))));
    std::vector<torch::Tensor> h;
    h.reserve(pairs_.size());
    for (size_t k = 0; k < pairs_.size(); ++k) h.push_back(gfl_[k]->forward(x[pairs_[k].first], x[pairs_[k].second]));
    ModelOutput out;
    out.features = drop_(fc_(torch::relu(torch::cat(h, 1))));
    out.logits = out_(out.features);
    return out;
  }
  int64_t feature_dim() const override { return g_; }

 private:
  std::vector<std::string> order_;
  int64_t g_;
  std::vector<torch::nn::Linear> in_;
  std::vector<std::pair<size_t, size_t>> pairs_;
  std::vector<std::shared_ptr<Gfl>> gfl_;
  FastDropout drop_{nullptr};
  torch::nn::Linear fc_{nullptr}, out_{nullptr};
};

}  // namespace

Result<ModelPtr> MakeMerGfl(const ModelSpec& spec, const nlohmann::json& cfg) {
  static const char* kOrder[] = {"audio", "video", "text"};
  std::vector<std::string> order;
  for (const char* m : kOrder)
    if (spec.input_dims.count(m)) order.push_back(m);
  for (const auto& [m, d] : spec.input_dims)
    if (m != "audio" && m != "video" && m != "text") order.push_back(m);
  if (order.size() < 2)
    return Status::InvalidArgument("model 'mer_gfl' needs at least two modalities, the job provides " +
                                   std::to_string(order.size()));
  std::vector<int64_t> dims;
  for (const auto& m : order) {
    ES_ASSIGN_OR_RETURN(int64_t d, RequireInput(spec, "mer_gfl", m));
    dims.push_back(d);
  }
  return ModelPtr(std::make_shared<MerGfl>(order, dims, cfg["gated_dim"].get<int64_t>(), cfg["dropout"].get<double>(),
                                           cfg["gate"].get<std::string>() == "softmax", spec.num_classes));
}

}  // namespace emosweep::models
