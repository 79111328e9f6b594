// models/torchscript_model.cc: `torchscript`, a researcher's own fusion model from a
// TorchScript file (docs/models.md, "Your own model (TorchScript)").
//
// The scripted module's parameters and buffers are registered (same tensors,
// not copies) in a mirror tree of torch::nn::Modules named like the module's
// own attributes ("fc1.weight"), so the trainer's flat parameter buffer,
// optimizers, checkpoints, freeze prefixes and the data-parallel reducer treat
// it like a built-in model: FlatParameters rebinds a parameter with set_data,
// which the scripted module sees because both hold the same TensorImpl.
// Loading checks the file before any training: a TorchScript module, a forward
// matching the job's modalities, parameters, and a dry forward pass in eval
// mode on 2 rows giving finite logits [2, C] (and a [2, F] embedding if any).
// The dry pass draws no random numbers, so the job's seed governs exactly the
// initialisation and then the data order / dropout, as for built-in models.
#include <torch/script.h>

#include <cmath>
#include <sstream>

#include "models/model_configs.h"
#include "models/model_factories.h"

namespace emosweep::models {
namespace {

std::string FirstLine(const std::string& s) {
  const size_t n = s.find('\n');
  return n == std::string::npos ? s : s.substr(0, n);
}

// What went wrong in a TorchScript call: the interpreter's first line is a generic header ("The following
// operation failed in the TorchScript interpreter."), the cause (the user's exception, a shape mismatch) its last
// non-empty line (helper-64: the cause was dropped).
std::string CauseOf(const std::string& what) {
  const std::string first = FirstLine(what);
  if (first.find("TorchScript interpreter") == std::string::npos) return first;
  size_t end = what.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return first;
  const size_t begin = what.rfind('\n', end);
  return what.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
}

std::string JoinStr(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// IValue attribute -> JSON (scalars, strings, lists of those); null when not representable.
nlohmann::json AttributeJson(const c10::IValue& v) {
  if (v.isBool()) return v.toBool();
  if (v.isInt()) return v.toInt();
  if (v.isDouble()) return v.toDouble();
  if (v.isString()) return v.toStringRef();
  if (v.isIntList()) return v.toIntVector();
  if (v.isDoubleList()) return v.toDoubleVector();
  if (v.isBoolList()) {
    std::vector<bool> out;
    for (bool b : v.toBoolList()) out.push_back(b);
    return out;
  }
  return nullptr;
}

class TorchScriptModel : public FusionModelImpl {
 public:
  static Result<std::shared_ptr<TorchScriptModel>> Load(const ModelSpec& spec, const nlohmann::json& cfg);

  ModelOutput Forward(const Batch& batch) override {
    return Unpack(module_.forward(Args(batch)), batch.inputs.begin()->second.size(0));
  }
  int64_t feature_dim() const override { return feature_dim_; }
  void train(bool on) override {
    FusionModelImpl::train(on);
    SetTraining(on);
  }
  nlohmann::json Provenance() const override { return provenance_; }

 private:
  std::vector<c10::IValue> Args(const Batch& batch) const {
    std::vector<c10::IValue> args;
    if (dict_input_) {
      c10::Dict<std::string, at::Tensor> d;
      for (const auto& m : modalities_) d.insert(m, Input(batch, m));
      args.emplace_back(d);
    } else {
      for (const auto& m : modalities_) args.emplace_back(Input(batch, m));
    }
    return args;
  }

  // Tensor logits | (logits, embedding) | {"logits": ..., "embedding": ...}; throws c10::Error otherwise.
  ModelOutput Unpack(const c10::IValue& out, int64_t rows) const {
    ModelOutput o;
    torch::Tensor emb;
    if (out.isTensor()) {
      o.logits = out.toTensor();
    } else if (out.isTuple()) {
      const auto& el = out.toTupleRef().elements();
      TORCH_CHECK(!el.empty() && el.size() <= 2 && el[0].isTensor() && (el.size() == 1 || el[1].isTensor()),
                  "forward returned a tuple that is not (logits, embedding)");
      o.logits = el[0].toTensor();
      if (el.size() == 2) emb = el[1].toTensor();
    } else if (out.isGenericDict()) {
      auto d = out.toGenericDict();
      TORCH_CHECK(d.contains("logits") && d.at("logits").isTensor(), "forward returned a dict without a 'logits' tensor");
      o.logits = d.at("logits").toTensor();
      if (d.contains("embedding")) {
        TORCH_CHECK(d.at("embedding").isTensor(), "forward's 'embedding' is not a tensor");
        emb = d.at("embedding").toTensor();
      }
    } else {
      TORCH_CHECK(false, "forward returned ", out.tagKind(), ", expected a Tensor, (logits, embedding) or a dict");
    }
    TORCH_CHECK(o.logits.dim() == 2 && o.logits.size(0) == rows && o.logits.size(1) == num_classes_,
                "logits have shape ", o.logits.sizes(), ", expected [", rows, ", ", num_classes_, "]");
    if (emb.defined()) {
      TORCH_CHECK(emb.dim() == 2 && emb.size(0) == rows, "embedding has shape ", emb.sizes(), ", expected [", rows,
                  ", F]");
      TORCH_CHECK(!has_embedding_ || feature_dim_ <= 0 || emb.size(1) == feature_dim_, "embedding has width ",
                  emb.size(1), " but ", feature_dim_, " before");
    }
    TORCH_CHECK(emb.defined() == has_embedding_ || feature_dim_ <= 0,
                "forward returned an embedding on some calls only");
    o.features = emb.defined() ? emb : o.logits;
    return o;
  }

  // torch::jit::Module::train asserts that every submodule has a `training` attribute (modules
  // scripted in Python do); this sets it where present.
  void SetTraining(bool on) {
    for (const auto& m : module_.modules())
      if (auto slot = m._ivalue()->type()->findAttributeSlot("training")) m._ivalue()->setSlot(*slot, on);
  }
  Status Bind(const std::string& where);
  Status Initialise();
  Status DryRun(const ModelSpec& spec, const std::string& where);

  torch::jit::Module module_;
  std::vector<std::string> modalities_;  // positional order: the job's feature order (modality names, sorted)
  bool dict_input_ = false;
  bool has_embedding_ = false;
  int64_t num_classes_ = 0;
  int64_t feature_dim_ = 0;
  std::string init_;
  nlohmann::json provenance_;
};

// Mirror tree: "a.b.weight" is registered as parameter "weight" of child "b" of child "a".
Status TorchScriptModel::Bind(const std::string& where) {
  auto parent_of = [this](const std::string& dotted, std::string* leaf) {
    torch::nn::Module* m = this;
    size_t start = 0;
    for (size_t dot = dotted.find('.'); dot != std::string::npos; dot = dotted.find('.', start)) {
      const std::string part = dotted.substr(start, dot - start);
      auto children = m->named_children();
      auto* found = children.find(part);
      m = found ? found->get() : m->register_module(part, std::make_shared<torch::nn::Module>(part)).get();
      start = dot + 1;
    }
    *leaf = dotted.substr(start);
    return m;
  };
  int64_t count = 0;
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
    if (p.value.scalar_type() != torch::kFloat)
      return Status::InvalidArgument(where + ": parameter '" + p.name + "' is " +
                                     std::string(c10::toString(p.value.scalar_type())) + ", expected float32");
    std::string leaf;
    torch::nn::Module* m = parent_of(p.name, &leaf);
    m->register_parameter(leaf, p.value, /*requires_grad=*/true);  // all trained; train.freeze excludes
    ++count;
  }
  if (count == 0)
    return Status::InvalidArgument(where + ": the module has no parameters (nothing to train); expected a module "
                                           "with trainable parameters (nn.Linear, nn.Parameter, ...)");
  for (const auto& b : module_.named_buffers(/*recurse=*/true)) {
    std::string leaf;
    parent_of(b.name, &leaf)->register_buffer(leaf, b.value);
  }
  return Status::Ok();
}

// The module's own reset_parameters()/reset() when it exports one; otherwise PyTorch's defaults for
// Linear/Conv, in parameter order: weights with >= 2 dims kaiming_uniform(a = sqrt(5)); a 1-D "bias"
// beside such a "weight" uniform(+-1/sqrt(fan_in)); other 1-D/0-D tensors named "weight" 1
// (norm scales), the rest 0. Buffers keep their saved values.
Status TorchScriptModel::Initialise() {
  for (const char* name : {"reset_parameters", "reset"}) {
    if (auto m = module_.find_method(name)) {
      if (m->function().getSchema().arguments().size() != 1) continue;
      torch::NoGradGuard no_grad;
      (*m)(std::vector<c10::IValue>{});
      init_ = std::string(name) + "()";
      return Status::Ok();
    }
  }
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> all;
  for (const auto& p : module_.named_parameters(true)) all[p.name] = p.value;
  for (const auto& p : module_.named_parameters(true)) {
    torch::Tensor t = p.value;
    const std::string& n = p.name;
    const size_t dot = n.rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : n.substr(0, dot + 1);
    const std::string leaf = n.substr(prefix.size());
    if (t.dim() >= 2) {
      torch::nn::init::kaiming_uniform_(t, std::sqrt(5.0));
    } else if (leaf.find("bias") != std::string::npos && all.count(prefix + "weight") &&
               all[prefix + "weight"].dim() >= 2) {
      const torch::Tensor& w = all[prefix + "weight"];
      const double fan_in = static_cast<double>(w.numel() / w.size(0));
      const double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
      torch::nn::init::uniform_(t, -bound, bound);
    } else if (leaf.find("weight") != std::string::npos) {
      t.fill_(1.0);
    } else {
      t.zero_();
    }
  }
  init_ = "rule";
  return Status::Ok();
}

Status TorchScriptModel::DryRun(const ModelSpec& spec, const std::string& where) {
  constexpr int64_t kRows = 2;
  Batch b;
  std::string shapes;
  for (const auto& m : modalities_) {
    const int64_t d = spec.input_dims.at(m);
    // Deterministic inputs: no random numbers drawn (the seed's stream stays the built-in models').
    b.inputs[m] = torch::linspace(-1.0, 1.0, kRows * d).view({kRows, d});
    shapes += (shapes.empty() ? "" : ", ") + m + " [" + std::to_string(kRows) + ", " + std::to_string(d) + "]";
  }
  const std::string expect = "expected logits [" + std::to_string(kRows) + ", " + std::to_string(num_classes_) +
                             "] (a Tensor, a tuple (logits, embedding) or a dict {\"logits\", \"embedding\"})";
  const bool was_training = is_training();
  SetTraining(false);
  ModelOutput o;
  try {
    torch::NoGradGuard no_grad;
    c10::IValue out = module_.forward(Args(b));
    if (out.isTuple() && out.toTupleRef().elements().size() == 2) has_embedding_ = true;
    if (out.isGenericDict() && out.toGenericDict().contains("embedding")) has_embedding_ = true;
    o = Unpack(out, kRows);
  } catch (const std::exception& e) {
    SetTraining(was_training);
    return Status::InvalidArgument(where + ": forward on " + shapes + " failed: " + CauseOf(e.what()) + " (" +
                                   expect + ")");
  }
  // Logits a loss can train: float32 (helper-64: float64 or integer logits failed every job in libtorch), and
  // depending on the parameters (constant or detached logits let no gradient through). The second forward runs with
  // gradients on, still in eval mode (no dropout drawn).
  if (o.logits.scalar_type() != torch::kFloat || (has_embedding_ && o.features.scalar_type() != torch::kFloat)) {
    SetTraining(was_training);
    return Status::InvalidArgument(where + ": forward on " + shapes + " gave " +
                                   (o.logits.scalar_type() != torch::kFloat
                                        ? std::string("logits of type ") + c10::toString(o.logits.scalar_type())
                                        : std::string("an embedding of type ") + c10::toString(o.features.scalar_type())) +
                                   "; expected float32 (return .float())");
  }
  bool trainable = false;
  for (const auto& p : module_.parameters()) trainable |= p.requires_grad();
  if (trainable) {
    try {
      torch::AutoGradMode grad(true);
      ModelOutput g = Unpack(module_.forward(Args(b)), kRows);
      if (!g.logits.requires_grad()) {
        SetTraining(was_training);
        return Status::InvalidArgument(where + ": forward's logits do not depend on the module's parameters (no "
                                               "gradient reaches them: constant or detached logits)");
      }
    } catch (const std::exception& e) {
      SetTraining(was_training);
      return Status::InvalidArgument(where + ": forward with gradients on " + shapes + " failed: " + CauseOf(e.what()));
    }
  }
  SetTraining(was_training);
  if (!torch::isfinite(o.logits).all().item<bool>())
    return Status::InvalidArgument(where + ": forward on " + shapes + " gave NaN or infinite logits; expected "
                                           "finite values");
  if (has_embedding_ && !torch::isfinite(o.features).all().item<bool>())
    return Status::InvalidArgument(where + ": forward on " + shapes + " gave a NaN or infinite embedding");
  feature_dim_ = o.features.size(1);
  return Status::Ok();
}

Result<std::shared_ptr<TorchScriptModel>> TorchScriptModel::Load(const ModelSpec& spec, const nlohmann::json& cfg) {
  const std::string file = cfg.value("file", "");
  const std::string where = "model file " + file;
  if (file.empty()) return Status::InvalidArgument("model 'torchscript' needs file = \"model.pt\"");
  if (const std::string want = cfg.value("sha256", ""); !want.empty()) {
    ES_ASSIGN_OR_RETURN(std::string sha, FileSha256(file));
    if (sha != want)
      return Status::InvalidArgument(where + ": SHA-256 is " + sha + " but the job was planned with " + want +
                                     " (the file changed after the protocol was read)");
  }
  auto self = std::make_shared<TorchScriptModel>();
  try {
    self->module_ = torch::jit::load(file, torch::kCPU);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(where + ": not a TorchScript module (" + FirstLine(e.what()) +
                                   "); expected a file written by torch.jit.script(model).save(path)");
  }
  self->num_classes_ = spec.num_classes;
  for (const auto& [m, d] : spec.input_dims) self->modalities_.push_back(m);  // std::map: sorted names
  auto fwd = self->module_.find_method("forward");
  if (!fwd) return Status::InvalidArgument(where + ": the module has no forward method");
  const auto& args = fwd->function().getSchema().arguments();  // [self, ...]
  const std::string positional = "forward(self, " + JoinStr(self->modalities_) + ")";
  const std::string expected = "expected " + positional + " (one [B, D] tensor per modality, in the job's feature "
                               "order) or forward(self, inputs: Dict[str, Tensor])";
  if (args.size() == 2 && args[1].type()->kind() == c10::TypeKind::DictType) {
    self->dict_input_ = true;
  } else {
    bool tensors = args.size() == self->modalities_.size() + 1;
    for (size_t i = 1; tensors && i < args.size(); ++i) tensors = args[i].type()->kind() == c10::TypeKind::TensorType;
    // Tensors are passed in the job's feature order; an argument named after a modality must be that modality
    // (helper-64: forward(self, text) trained on audio, and forward(self, text, audio) got them swapped). Other
    // names (x, y) are taken in order.
    // visual, vision and image name the video modality (helper-65: they were refused whatever their place).
    auto modality_of = [](const std::string& n) -> std::string {
      if (n == "visual" || n == "vision" || n == "image") return "video";
      return n == "audio" || n == "text" || n == "video" ? n : std::string();
    };
    for (size_t i = 1; tensors && i < args.size(); ++i) {
      const std::string& name = args[i].name();
      const std::string named = modality_of(name);
      const bool job_modality = std::count(self->modalities_.begin(), self->modalities_.end(), name) > 0;
      if ((job_modality || !named.empty()) && (named.empty() ? name : named) != self->modalities_[i - 1]) {
        std::vector<std::string> given;
        for (size_t k = 1; k < args.size(); ++k) given.push_back(args[k].name());
        return Status::InvalidArgument(where + ": forward(self, " + JoinStr(given) + ") would get the job's " +
                                       self->modalities_[i - 1] + " features as '" + name + "' (tensors come in the "
                                       "job's feature order, " + JoinStr(self->modalities_) + "); " + expected);
      }
    }
    if (!tensors) {
      std::vector<std::string> given;
      for (size_t i = 1; i < args.size(); ++i) given.push_back(args[i].name() + ": " + args[i].type()->str());
      return Status::InvalidArgument(where + ": forward is forward(self" + (given.empty() ? "" : ", ") +
                                     JoinStr(given) + ") but the job provides " +
                                     std::to_string(self->modalities_.size()) + " modalities (" +
                                     JoinStr(self->modalities_) + "); " + expected);
    }
  }
  ES_RETURN_IF_ERROR(self->Bind(where));
  ES_RETURN_IF_ERROR(self->Initialise());
  ES_RETURN_IF_ERROR(self->DryRun(spec, where));
  self->train(true);
  nlohmann::json attrs = nlohmann::json::object();
  for (const auto& a : self->module_.named_attributes(/*recurse=*/true)) {
    if (a.name == "training" || (a.name.size() > 9 && a.name.rfind(".training") == a.name.size() - 9)) continue;
    nlohmann::json v = AttributeJson(a.value);
    if (!v.is_null()) attrs[a.name] = v;
  }
  self->provenance_ = {{"file", file},
                       {"sha256", cfg.value("sha256", "")},
                       {"type", self->module_.type()->name() ? self->module_.type()->name()->qualifiedName() : ""},
                       {"input", self->dict_input_ ? "dict" : "positional"},
                       {"modalities", self->modalities_},
                       {"embedding", self->has_embedding_},
                       {"feature_dim", self->feature_dim_},
                       {"init", self->init_},
                       {"attributes", attrs}};
  return self;
}

}  // namespace

Result<ModelPtr> MakeTorchScript(const ModelSpec& spec, const nlohmann::json& cfg) {
  ES_ASSIGN_OR_RETURN(std::shared_ptr<TorchScriptModel> m, TorchScriptModel::Load(spec, cfg));
  return ModelPtr(m);
}

}  // namespace emosweep::models
