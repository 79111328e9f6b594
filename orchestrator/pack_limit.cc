// orchestrator/pack_limit.cc: see pack_limit.h.
#include "orchestrator/pack_limit.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace emosweep::orchestrator {

Result<int> ParsePack(const std::string& text) {
  if (text == "off") return kPackOff;
  if (text == "auto") return kPackAuto;
  const bool digits = !text.empty() && text.size() <= 4 && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  const int k = digits ? std::stoi(text) : 0;
  if (k < 1 || k > 4096)
    return Status::InvalidArgument("--pack '" + text + "': expected auto, off or a number of jobs from 1 to 4096");
  return k;
}

namespace {
// Positive integers under keys that name layer widths ("hidden_dims", "hidden", "proj_dim", ...).
void Widths(const nlohmann::json& j, bool named, std::vector<int64_t>* out) {
  if (j.is_number_integer() && named) {
    if (j.get<int64_t>() > 0) out->push_back(j.get<int64_t>());
  } else if (j.is_array()) {
    for (const auto& v : j) Widths(v, named, out);
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      Widths(v, named || k.find("hidden") != std::string::npos || k.find("dim") != std::string::npos, out);
  }
}
}  // namespace

namespace {
// input_dim -> the model's hidden widths (2 x 512 when it names none) -> classes.
std::vector<int64_t> Chain(const jobs::JobSpec& spec, int64_t input_dim) {
  std::vector<int64_t> widths;
  Widths(spec.model, false, &widths);
  if (widths.empty()) widths = {512, 512};
  std::vector<int64_t> chain = {std::max<int64_t>(1, input_dim)};
  chain.insert(chain.end(), widths.begin(), widths.end());
  chain.push_back(std::max<int64_t>(2, static_cast<int64_t>(spec.labels.size())));
  return chain;
}
}  // namespace

int64_t PackMemberParams(const jobs::JobSpec& spec, int64_t input_dim) {
  const std::vector<int64_t> chain = Chain(spec, input_dim);
  int64_t params = 0;
  for (size_t i = 0; i + 1 < chain.size(); ++i) params += (chain[i] + 1) * chain[i + 1];
  return params;
}

int CpuPackCap(int64_t params, int64_t budget) {
  const int64_t state = std::max<int64_t>(1, params) * 16;
  return static_cast<int>(std::min<int64_t>(kPackMaxCpu, std::max<int64_t>(2, budget / state)));
}

int64_t PackMemberBytes(const jobs::JobSpec& spec, int64_t input_dim) {
  const std::vector<int64_t> chain = Chain(spec, input_dim);
  const int64_t params = PackMemberParams(spec, input_dim);
  int64_t width_sum = 0;
  for (int64_t w : chain) width_sum += w;
  int64_t batch = 32;
  if (spec.train_config.is_object()) {
    auto it = spec.train_config.find("batch_size");
    if (it != spec.train_config.end() && it->is_number_integer()) batch = std::max<int64_t>(1, it->get<int64_t>());
  }
  int64_t rows = 0;
  for (const auto& r : spec.train) rows += static_cast<int64_t>(r.ids.size());
  for (const auto& r : spec.val) rows += static_cast<int64_t>(r.ids.size());
  for (const auto& [name, refs] : spec.eval)
    for (const auto& r : refs) rows += static_cast<int64_t>(r.ids.size());
  for (const auto& r : spec.target_unlabeled) rows += static_cast<int64_t>(r.ids.size());  // adapting members
  const int64_t state = params * 4 * 4;                   // weights, gradients, Adam's two moments (float32)
  const int64_t activations = batch * width_sum * 4 * 3;  // forward, backward, dropout masks
  const int64_t data = rows * std::max<int64_t>(1, input_dim) * 4;
  return (state + activations + data) * 3 / 2;
}

int64_t MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream ss(line.substr(13));
    int64_t kb = 0;
    ss >> kb;
    return kb > 0 ? kb * 1024 : 0;
  }
  return 0;
}

int AutoPackLimit(const AutoPackInput& in) {
  int64_t k = in.gpu ? kPackMaxGpu : kPackMaxCpu;
  if (in.mem_available > 0 && in.member_bytes > 0) {
    const double budget = kPackMemoryFraction * static_cast<double>(in.mem_available) / std::max(1, in.parallel);
    k = std::min<int64_t>(k, static_cast<int64_t>(budget / static_cast<double>(in.member_bytes)));
  }
  return static_cast<int>(std::max<int64_t>(1, k));
}

}  // namespace emosweep::orchestrator
