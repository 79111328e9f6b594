#!/usr/bin/env bash
# Bring your own model, end to end (docs/walkthrough.md): synthetic corpora, two
# TorchScript model files written without Python (tools/make_scripted_model; with
# PyTorch installed, examples/byo_model/model.py writes the same kind of file),
# then protocols/library/byo-model.toml: plan, run, table.
# Everything goes under ${OUT:-quickstart-out}/ (the paths the protocol names).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-quickstart-out}
BUILD_DIR=${BUILD_DIR:-build}
[ -n "${NO_BUILD:-}" ] || BUILD_DIR=$BUILD_DIR scripts/build.sh emosweep make_scripted_model
ES=$BUILD_DIR/bin/emosweep
MK=$BUILD_DIR/bin/make_scripted_model
PROTO=protocols/library/byo-model.toml
mkdir -p "$OUT/byo"
[ -f "$OUT/stores/synth_a.h5" ] || "$ES" data synth --out "$OUT/stores" --seed 7
# synth stores: audio 64 and text 32 dims; labels core4 (4 classes).
"$MK" --out "$OUT/byo/concat_mlp.pt" --arch concat_mlp --dims audio=64,text=32 --classes 4 --hidden 64 --dropout 0.2
"$MK" --out "$OUT/byo/gated_fusion.pt" --arch gated_fusion --dims audio=64,text=32 --classes 4 --hidden 64 \
  --dropout 0.2
"$ES" plan "$PROTO" --store-dir "$OUT/stores" --ledger "$OUT/byo/ledger.sqlite"
"$ES" run "$PROTO" --store-dir "$OUT/stores" --ledger "$OUT/byo/ledger.sqlite" --work-dir "$OUT/byo/work"
"$ES" table "$PROTO" --store-dir "$OUT/stores" --ledger "$OUT/byo/ledger.sqlite" --all --format markdown \
  | tee "$OUT/byo/tables.md"
