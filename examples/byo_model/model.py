"""Bring your own model: a small gated-fusion model for emosweep (docs/models.md).

Defines the model in PyTorch, scripts it with torch.jit.script and saves model.pt,
which loco.toml (next to this file) runs as `name = "torchscript"`:

    python model.py --audio-dim 64 --text-dim 32 --classes 4     # writes model.pt
    emosweep run examples/byo_model/loco.toml --store-dir quickstart-out/stores \
        --ledger byo.sqlite

(The dims above are those of the quick start's synthetic stores: `emosweep data
synth`; `emosweep data inspect STORE` prints a store's feature sets and dims.)

What emosweep expects of the scripted module:
  * forward(self, inputs: Dict[str, Tensor]) -> one [B, D_m] float32 tensor per
    modality of the job's `features` (or positional tensors, one per modality, in the
    order of the modality names sorted: audio, text, video);
  * returns logits [B, C] (C = number of classes of the job's labels, in the job's
    label order), or (logits, embedding), or {"logits": ..., "embedding": ...};
    the embedding [B, F] is what the domain-adaptation losses act on (without one
    they act on the logits);
  * float32 parameters; emosweep re-initialises them for every seed (the module's
    exported reset_parameters()/reset() if it has one, else PyTorch's nn.Linear
    default for every >= 2-D weight and its bias; 1-D "weight"s 1, other 1-D 0);
  * its int/float/bool/str attributes (hidden, dropout below) are recorded in each
    job's provenance; the file's SHA-256 is part of every job's identity.

emosweep's trainer does the rest (optimizer, schedule, class weights, selection,
checkpoints, data-parallel training); the loss is cross-entropy on the logits.
tests build the same architecture from C++ (models/torchscript_reference.cc,
SaveScriptedGatedFusion) since the test machines have no Python.
"""
import argparse
from typing import Dict

import torch
from torch import nn


class GatedFusion(nn.Module):
    def __init__(self, dims: Dict[str, int], hidden: int = 64, num_classes: int = 4, dropout: float = 0.2):
        super().__init__()
        names = sorted(dims)
        self.proj = nn.ModuleDict({m: nn.Linear(dims[m], hidden) for m in names})
        self.gate = nn.Linear(sum(dims.values()), len(names))  # one sigmoid gate per modality
        self.head = nn.Linear(hidden, num_classes)
        self.hidden = hidden
        self.dropout = dropout

    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        xs = [inputs[name] for name in self.proj.keys()]
        g = torch.sigmoid(self.gate(torch.cat(xs, 1)))
        fused = torch.zeros(g.size(0), self.hidden, dtype=g.dtype, device=g.device)
        i = 0
        for name, proj in self.proj.items():
            fused = fused + g[:, i:i + 1] * torch.tanh(proj(inputs[name]))
            i += 1
        fused = nn.functional.dropout(fused, self.dropout, self.training)
        return {"logits": self.head(fused), "embedding": fused}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio-dim", type=int, required=True)
    ap.add_argument("--text-dim", type=int, required=True)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--out", default="model.pt")
    a = ap.parse_args()
    model = GatedFusion({"audio": a.audio_dim, "text": a.text_dim}, a.hidden, a.classes, a.dropout)
    scripted = torch.jit.script(model)
    # The check emosweep runs before the first job: 2 rows in, finite logits [2, C] out.
    out = scripted({"audio": torch.randn(2, a.audio_dim), "text": torch.randn(2, a.text_dim)})
    assert out["logits"].shape == (2, a.classes)
    scripted.save(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
