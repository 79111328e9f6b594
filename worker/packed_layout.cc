// worker/packed_layout.cc: the pack's memory layout (packed_trainer_internal.h): the [K, stride] parameter and
// gradient buffers (member k's row is its single job's flat buffer), the batched layers' strided views into
// them, and the pools that hold every member's rows of a split in one tensor.
#include "models/host_to_device.h"
#include "worker/huge_pages.h"
#include "worker/packed_trainer_internal.h"

#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace emosweep::worker::packed {

using models::PackedLayer;

torch::Tensor IndexOn(const std::vector<int64_t>& idx, torch::Device device) {
  torch::Tensor t = torch::from_blob(const_cast<int64_t*>(idx.data()), {static_cast<int64_t>(idx.size())}, torch::kLong);
  return models::HostToDevice(t, device);
}

Pool MakePool(const std::vector<const torch::Tensor*>& xs, const std::vector<const torch::Tensor*>& ys,
              torch::Device device) {
  Pool p;
  std::vector<torch::Tensor> xv, yv;
  int64_t off = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    p.offset.push_back(off);
    off += xs[i]->size(0);
    xv.push_back(*xs[i]);
    yv.push_back(*ys[i]);
  }
  p.x = torch::cat(xv, 0);
  p.y = torch::cat(yv, 0);
  if (!device.is_cpu()) {
    p.x = p.x.to(device);
    p.y = p.y.to(device);
  }
  return p;
}

// The MLP's layers from member 0's model (MlpModel: body = [Linear, ReLU, Dropout]*, head = Linear);
// every member must have the same shapes, flat order and dropout.
Status PackedTrainer::BuildPack() {
  const int k = static_cast<int>(packed_.size());
  struct LayerRef {
    std::string w, b;
    int64_t in, out;
  };
  auto describe = [](Member& m, std::vector<LayerRef>* layers, double* p) -> Status {
    layers->clear();
    *p = 0;
    torch::nn::Module& model = *m.model;
    std::shared_ptr<torch::nn::Module> body, head;
    for (const auto& c : model.named_children()) {
      if (c.key() == "body") body = c.value();
      else if (c.key() == "head") head = c.value();
      else return Status::FailedPrecondition("unexpected module " + c.key());
    }
    if (!body || !head || !head->as<torch::nn::Linear>()) return Status::FailedPrecondition("not an MLP");
    bool have_dropout = false;
    size_t i = 0;
    const auto children = body->named_children();
    while (i < children.size()) {
      auto* lin = children[i].value()->as<torch::nn::Linear>();
      if (!lin || i + 2 >= children.size() + 0 || !children[i + 1].value()->as<torch::nn::ReLU>() ||
          !children[i + 2].value()->as<torch::nn::Dropout>())
        return Status::FailedPrecondition("body is not Linear-ReLU-Dropout");
      if (!lin->bias.defined()) return Status::FailedPrecondition("linear without bias");
      const double dp = children[i + 2].value()->as<torch::nn::Dropout>()->options.p();
      if (have_dropout && dp != *p) return Status::FailedPrecondition("dropout differs between layers");
      *p = dp;
      have_dropout = true;
      layers->push_back({"model.body." + children[i].key() + ".weight", "model.body." + children[i].key() + ".bias",
                         lin->weight.size(1), lin->weight.size(0)});
      i += 3;
    }
    auto* h = head->as<torch::nn::Linear>();
    if (!h->bias.defined()) return Status::FailedPrecondition("head without bias");
    layers->push_back({"model.head.weight", "model.head.bias", h->weight.size(1), h->weight.size(0)});
    return Status::Ok();
  };
  std::vector<LayerRef> layers;
  double p = 0;
  ES_RETURN_IF_ERROR(describe(*packed_[0], &layers, &p));
  for (int s = 1; s < k; ++s) {
    std::vector<LayerRef> l2;
    double p2 = 0;
    ES_RETURN_IF_ERROR(describe(*packed_[s], &l2, &p2));
    if (l2.size() != layers.size()) return Status::FailedPrecondition("members differ in architecture");
    for (size_t i = 0; i < l2.size(); ++i)
      if (l2[i].in != layers[i].in || l2[i].out != layers[i].out || l2[i].w != layers[i].w)
        return Status::FailedPrecondition("members differ in architecture");
    if (packed_[s]->own->names() != packed_[0]->own->names())
      return Status::FailedPrecondition("members differ in trainable parameters");
  }
  // The flat order of member 0's buffer (equal for all); rows padded to 16 floats (64 bytes).
  const FlatParameters& f0 = *packed_[0]->own;
  std::map<std::string, int64_t> offset;
  {
    int64_t off = 0;
    auto named = packed_[0]->root->named_parameters(true);
    for (const auto& name : f0.names()) {
      offset[name] = off;
      off += named[name].numel();
    }
    p_ = off;
  }
  stride_ = (p_ + 15) / 16 * 16;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(dev_);
  params_ = HugePageZeros({k, stride_}, opts);
  grads_ = HugePageZeros({k, stride_}, opts);
  for (int s = 0; s < k; ++s) {
    Member& m = *packed_[s];
    torch::NoGradGuard g;
    params_[s].narrow(0, 0, p_).copy_(m.own->params());
    m.row = std::make_unique<FlatParameters>(
        FlatParameters::OverBuffers(params_[s].narrow(0, 0, p_), grads_[s].narrow(0, 0, p_)));
    // DANN: the discriminator runs as the member's own module on its slices of the features; its parameters
    // become views of the member's row, so that the member's optimizer, state and selection see them where the
    // single job's flat buffer has them.
    m.adapter_params.clear();
    for (auto& p : m.root->named_parameters(true)) {
      if (p.key().rfind("adapter.", 0) != 0) continue;
      auto it = offset.find(p.key());
      if (it == offset.end()) continue;
      const int64_t n = p.value().numel();
      p.value().set_data(params_[s].narrow(0, it->second, n).view(p.value().sizes()));
      p.value().mutable_grad() = torch::Tensor();  // FlatParameters' gradient view is of the member's own buffer
      m.adapter_params.emplace_back(p.value(), grads_[s].narrow(0, it->second, n).view(p.value().sizes()));
    }
  }
  mlp_.k = k;
  mlp_.dropout.clear();
  for (int s = 0; s < k; ++s) {
    std::vector<LayerRef> l2;
    double ps = 0;
    ES_RETURN_IF_ERROR(describe(*packed_[s], &l2, &ps));
    mlp_.dropout.push_back(ps);
  }
  mlp_.layers.clear();
  for (const auto& L : layers) {
    PackedLayer pl;
    pl.in = L.in;
    pl.out = L.out;
    auto make = [&](const std::string& name, std::vector<int64_t> shape) {
      std::vector<int64_t> full = {k};
      full.insert(full.end(), shape.begin(), shape.end());
      const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
      auto it = offset.find(name);
      if (it == offset.end()) {  // frozen: a stacked copy without gradient
        std::vector<torch::Tensor> rows;
        for (int s = 0; s < k; ++s) rows.push_back(packed_[s]->root->named_parameters(true)[name].detach().clone());
        return torch::stack(rows).to(dev_);
      }
      torch::Tensor t = params_.narrow(1, it->second, n).view(full).detach();
      t.requires_grad_(true);  // its gradient is written by PackedLinear's backward, never accumulated
      return t;
    };
    auto grad_view = [&](const std::string& name, std::vector<int64_t> shape) {
      auto it = offset.find(name);
      if (it == offset.end()) return torch::Tensor();
      std::vector<int64_t> full = {k};
      full.insert(full.end(), shape.begin(), shape.end());
      const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
      return grads_.narrow(1, it->second, n).view(full);
    };
    pl.w = make(L.w, {L.out, L.in});
    pl.b = make(L.b, {L.out});
    pl.gw = grad_view(L.w, {L.out, L.in});
    pl.gb = grad_view(L.b, {L.out});
    mlp_.layers.push_back(pl);
  }
  return Status::Ok();
}

}  // namespace emosweep::worker::packed
