// models/torchscript_reference.cc: see torchscript_reference.h.
#include "models/torchscript_reference.h"

#include <torch/script.h>

#include <cstdio>
#include <sstream>

#include "models/layers.h"

namespace emosweep::models {
namespace {

torch::jit::Module LinearModule(int64_t in, int64_t out) {
  torch::jit::Module m("Linear");
  m.register_parameter("weight", torch::zeros({out, in}), /*is_buffer=*/false);
  m.register_parameter("bias", torch::zeros({out}), /*is_buffer=*/false);
  m.register_attribute("in_features", c10::IntType::get(), in);
  m.register_attribute("out_features", c10::IntType::get(), out);
  m.register_attribute("training", c10::BoolType::get(), true);  // as nn.Module (self.training)
  return m;
}

Status Save(torch::jit::Module& m, const std::string& source, const std::string& path) {
  try {
    m.define(source);
    m.save(path + ".tmp");  // temp name + rename: no half-written model file
  } catch (const std::exception& e) {
    std::remove((path + ".tmp").c_str());
    return Status::IoError("writing TorchScript module " + path + ": " + e.what());
  }
  if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    std::remove((path + ".tmp").c_str());
    return Status::IoError("writing TorchScript module " + path + ": rename failed");
  }
  return Status::Ok();
}

}  // namespace

Status SaveScriptedConcatMlp(const std::string& path, const std::map<std::string, int64_t>& input_dims,
                             const std::vector<int64_t>& hidden_dims, double dropout, int64_t num_classes) {
  torch::jit::Module m("ScriptedConcatMlp");
  m.register_attribute("training", c10::BoolType::get(), true);
  int64_t d = 0;
  for (const auto& [mod, dim] : input_dims) d += dim;
  std::ostringstream src;
  src.precision(17);
  src << "def forward(self";
  for (const auto& [mod, dim] : input_dims) src << ", " << mod;
  src << "):\n    x = torch.cat([";
  bool first = true;
  for (const auto& mod : ModalityOrder(input_dims)) src << (first ? "" : ", ") << mod, first = false;
  src << "], 1)\n";
  for (size_t i = 0; i < hidden_dims.size(); ++i) {
    const std::string l = "self.l" + std::to_string(i);
    m.register_module("l" + std::to_string(i), LinearModule(d, hidden_dims[i]));
    src << "    x = torch.dropout(torch.relu(torch.linear(x, " << l << ".weight, " << l << ".bias)), self.dropout, "
        << "self.training)\n";
    d = hidden_dims[i];
  }
  m.register_module("head", LinearModule(d, num_classes));
  src << "    return (torch.linear(x, self.head.weight, self.head.bias), x)\n";
  m.register_attribute("dropout", c10::FloatType::get(), dropout);
  m.register_attribute("hidden_dims", c10::ListType::ofInts(), c10::List<int64_t>(hidden_dims));
  m.register_attribute("num_classes", c10::IntType::get(), num_classes);
  return Save(m, src.str(), path);
}

Status SaveScriptedGatedFusion(const std::string& path, const std::map<std::string, int64_t>& input_dims,
                               int64_t hidden, double dropout, int64_t num_classes) {
  torch::jit::Module m("GatedFusion");
  m.register_attribute("training", c10::BoolType::get(), true);
  int64_t total = 0;
  std::ostringstream src;
  src << "def forward(self, inputs: Dict[str, Tensor]):\n";
  std::string cat;
  for (const auto& [mod, dim] : input_dims) {
    m.register_module("proj_" + mod, LinearModule(dim, hidden));
    total += dim;
    cat += (cat.empty() ? "" : ", ") + std::string("inputs['") + mod + "']";
  }
  m.register_module("gate", LinearModule(total, static_cast<int64_t>(input_dims.size())));
  m.register_module("head", LinearModule(hidden, num_classes));
  src << "    g = torch.sigmoid(torch.linear(torch.cat([" << cat << "], 1), self.gate.weight, self.gate.bias))\n";
  src << "    fused = torch.zeros([g.size(0), self.hidden], dtype=g.dtype, device=g.device)\n";
  int i = 0;
  for (const auto& [mod, dim] : input_dims) {
    (void)dim;
    src << "    fused = fused + g[:, " << i++ << ":" << i << "] * torch.tanh(torch.linear(inputs['" << mod
        << "'], self.proj_" << mod << ".weight, self.proj_" << mod << ".bias))\n";
  }
  src << "    fused = torch.dropout(fused, self.dropout, self.training)\n";
  src << "    return {'logits': torch.linear(fused, self.head.weight, self.head.bias), 'embedding': fused}\n";
  m.register_attribute("hidden", c10::IntType::get(), hidden);
  m.register_attribute("dropout", c10::FloatType::get(), dropout);
  return Save(m, src.str(), path);
}

}  // namespace emosweep::models
