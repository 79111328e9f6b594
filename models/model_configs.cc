#include "models/model_configs.h"

#include <cctype>

#include <filesystem>
#include <fstream>

#include "core/hash.h"

namespace emosweep::models {
namespace {

using J = nlohmann::json;

ConfigKey Int(const std::string& n, int64_t d, const std::string& help, double lo = 1) {
  return {n, ConfigType::kInt, d, help, lo, {}, {}};
}
ConfigKey Dbl(const std::string& n, double d, const std::string& help, double lo = 0, std::optional<double> hi = {}) {
  return {n, ConfigType::kDouble, d, help, lo, hi, {}};
}
ConfigKey Dropout(double d) { return Dbl("dropout", d, "dropout probability", 0.0, 0.99); }
ConfigKey Faithful(const std::string& what) {
  return {"faithful", ConfigType::kBool, false, "reproduce the seed code's behaviour: " + what, {}, {}, {}};
}
ConfigKey IntList(const std::string& n, J d, const std::string& help) {
  return {n, ConfigType::kIntList, std::move(d), help, 1.0, {}, {}};
}

std::vector<ConfigKey> GraphKeys(int64_t k_text, int64_t k_audio) {
  return {Int("hidden_dim", 512, "H: projection and GAT width"),
          Int("num_heads", 4, "GAT and cross-attention heads"),
          Dropout(0.3),
          Int("num_layers", 3, "GAT layers (>= 2: first, num_layers-2 residual middle blocks, last)", 2),
          Int("k_text", k_text, "top-k neighbours per node in text space", 0),
          Int("k_audio", k_audio, "top-k neighbours per node in audio space", 0)};
}

std::vector<ConfigKey> MsrKeys() {
  return {Int("hidden_dim", 384, "d: backbone width"),
          Int("num_heads", 8, "attention heads (d must be divisible)"),
          Int("num_layers", 2, "cross-modal layers"),
          Int("ffn_dim", 1536, "feed-forward width of every transformer block"),
          Dropout(0.3),
          Dbl("label_smoothing", 0.1, "label smoothing of the model's CE term", 0.0, 1.0),
          Dbl("vad_weight", 0.3, "weight of the VAD MSE term (0 disables it and the VAD table lookup)"),
          Dbl("tau", 0.07, "temperature of the contrastive term", 1e-6),
          Int("proj_dim", 128, "contrastive projection size"),
          {"vad_overrides", ConfigType::kObject, J::object(),
           "extra/overriding VAD targets: {label = [v, a, d]} for labels missing from the built-in table", {}, {},
           {}}};
}

std::vector<ModelInfo> Build() {
  std::vector<ModelInfo> v;
  v.push_back({"unimodal_mlp", "MLP on one modality (multimodal-ser baselines: text-only / audio-only)", {"any"},
               ConfigTable("model", {{"modality", ConfigType::kString, "audio", "which input modality to use", {}, {},
                                      {}},
                                     IntList("hidden_dims", J::array({256, 128}), "hidden layer sizes"),
                                     Dropout(0.3)})});
  v.push_back({"concat_mlp", "concatenation of all present modalities -> MLP (baseline)", {"any"},
               ConfigTable("model", {IntList("hidden_dims", J::array({384, 192}), "hidden layer sizes"),
                                     Dropout(0.3)})});
  v.push_back({"cross_attention", "standard bidirectional cross-attention (baseline)", {"audio", "text"},
               ConfigTable("model", {Int("hidden_dim", 384, "projection width"),
                                     Int("num_heads", 8, "attention heads"), Dropout(0.3)})});
  v.push_back({"gated_unconstrained", "unconstrained scalar sigmoid-gate fusion (baseline)", {"audio", "text"},
               ConfigTable("model", {Int("hidden_dim", 384, "projection width"),
                                     Int("gate_hidden", 384, "hidden size of each gate MLP"),
                                     Int("head_hidden", 192, "hidden size of the classifier"), Dropout(0.3)})});
  v.push_back({"glomer", "GloMER: cross-modal attention + GMU + NT-Xent/diversity/consistency (default rewards diversity; faithful = true: the seed code's loss)", {"audio", "text"},
               ConfigTable("model",
                           {Int("fusion_dim", 512, "encoder / fusion width"),
                            Int("projection_dim", 256, "contrastive projection size"),
                            Int("num_heads", 8, "cross-attention heads"), Dropout(0.2),
                            IntList("classifier_dims", J::array({512, 128}), "classifier hidden sizes"),
                            Dbl("alpha", 0.3, "weight of the diversity and consistency terms"),
                            Dbl("tau", 0.05, "NT-Xent temperature", 1e-6),
                            Dbl("ntxent_weight", 1.0, "weight of the NT-Xent term"),
                            Faithful("the diversity term is minimised (pulls modalities together) instead of "
                                     "rewarded")})});
  v.push_back({"mer_gfl", "MER gated feature layers over the present modalities (pairwise GFLs)", {"any"},
               ConfigTable("model", {Int("gated_dim", 128, "g: gate width"), Dropout(0.1),
                                     {"gate", ConfigType::kString, "softmax",
                                      "gate nonlinearity (the seed uses softmax over the g dimensions)", {}, {},
                                      {"softmax", "sigmoid"}}})});
  {
    auto k = GraphKeys(7, 8);
    k.push_back({"fusion", ConfigType::kString, "min", "xCBAM fusion of [text_attn, audio_attn]", {}, {},
                 {"min", "mean", "max", "cls", "concat"}});
    k.push_back(Faithful("shared BatchNorm in the GAT stack, 2*sigmoid channel gate and [x,x] spatial input in "
                         "CBAM, train-in-eval-mode bug flag, concat fusion rejected"));
    v.push_back({"cemobam", "CemoBAM: dual top-k kNN graph + GAT + xCBAM (transductive; default: the method as described, faithful = true: the seed's code and numbers)", {"audio", "text"},
                 ConfigTable("model", k), /*transductive=*/true});
  }
  {
    auto k = GraphKeys(2, 8);
    k.push_back(Faithful("shared BatchNorm in the GAT stack, train-in-eval-mode bug flag"));
    v.push_back({"hemogat", "HemoGAT: dual top-k kNN graph + GAT + cross-modal transformer (transductive; default: the method as described, faithful = true: the seed's code)",
                 {"audio", "text"}, ConfigTable("model", k), /*transductive=*/true});
  }
  {
    auto k = MsrKeys();
    k.push_back(Dbl("supcon_weight", 0.2, "weight of the SupCon term"));
    v.push_back({"msr_a", "multimodal-ser (a) SentimentogramSER: cross layers + CE/VAD/SupCon", {"audio", "text"},
                 ConfigTable("model", k)});
  }
  {
    auto k = MsrKeys();
    k.push_back(Dbl("micl_weight", 0.2, "weight of the MICL term"));
    k.push_back(Dbl("micl_same_label_weight", 0.1, "weight of MICL's same-label similarity term"));
    k.push_back(Faithful("VAD targets looked up by class index in the iemocap_4 table for 4 classes, zero otherwise"));
    v.push_back({"msr_b", "multimodal-ser (b) NovelMultimodalSER: VGA + EAAF + MICL + VAD", {"audio", "text"},
                 ConfigTable("model", k)});
  }
  v.push_back({"torchscript", "your own model: a TorchScript file (torch.jit.script(model).save(...), docs/models.md)",
               {"any"},
               ConfigTable("model", {{"file", ConfigType::kString, "",
                                      "the .pt file (relative paths: to the protocol / JOB.toml directory)", {}, {},
                                      {}},
                                     {"sha256", ConfigType::kString, "",
                                      "the file's SHA-256: filled in when the protocol is read (part of the job "
                                      "identity); set it to pin the file",
                                      {}, {}, {}}})});
  return v;
}

}  // namespace

const std::vector<ModelInfo>& ModelInfos() {
  static const std::vector<ModelInfo> kInfos = Build();
  return kInfos;
}

Result<std::string> FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot read");
  Sha256 h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.Update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return Status::IoError(path + ": read error");
  return h.HexDigest();
}

Status ResolveModelFile(const std::string& name, const std::string& base_dir, const std::string& where,
                        nlohmann::json* config, bool* missing) {
  namespace fs = std::filesystem;
  if (missing) *missing = false;
  if (name != "torchscript") return Status::Ok();
  const std::string given = config->value("file", "");
  if (given.empty())
    return Status::InvalidArgument(where + ": model 'torchscript' needs file = \"model.pt\" (a TorchScript file)");
  fs::path path(given);
  if (path.is_relative()) path = fs::absolute(fs::path(base_dir.empty() ? "." : base_dir) / path);
  const std::string abs = path.lexically_normal().string();
  std::error_code ec;
  if (missing && !fs::exists(abs, ec)) {
    *missing = true;
    (*config)["file"] = abs;
    return Status::Ok();
  }
  if (!fs::is_regular_file(abs, ec))
    return Status::InvalidArgument(where + ": model file " + abs + " " +
                                   (fs::exists(abs, ec) ? "is not a regular file" : "does not exist") +
                                   " (expected a TorchScript .pt file)");
  Result<std::string> sha = FileSha256(abs);
  if (!sha.ok()) return Status::InvalidArgument(where + ": model file " + sha.status().message());
  std::string pinned = config->value("sha256", "");
  for (char& ch : pinned) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));  // hex either case
  if (!pinned.empty() && pinned != *sha)
    return Status::InvalidArgument(where + ": model file " + abs + " has SHA-256 " + *sha + " but sha256 = \"" +
                                   pinned + "\" was given (the file changed?)");
  (*config)["file"] = abs;
  (*config)["sha256"] = *sha;
  return Status::Ok();
}

std::vector<std::string> ModelReadsModalities(const std::string& name, const nlohmann::json& config) {
  std::vector<std::string> out;
  if (const ModelInfo* info = FindModelInfo(name))
    for (const auto& m : info->modalities)
      if (m != "any") out.push_back(m);
  if (config.is_object() && config.contains("modality") && config["modality"].is_string())
    out.push_back(config["modality"].get<std::string>());
  return out;
}

const ModelInfo* FindModelInfo(const std::string& name) {
  for (const auto& i : ModelInfos())
    if (i.name == name) return &i;
  return nullptr;
}

}  // namespace emosweep::models
