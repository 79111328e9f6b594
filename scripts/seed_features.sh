#!/usr/bin/env bash
# scripts/seed_features.sh: train every model on the real IEMOCAP seed features
# (../shared/features/iemocap-seed-pkl) and print a table of test UA / WA /
# macro-F1 (mean ± std with ddof=1 over seeds) in Markdown.
#
# Data: the CemoBAM pickles (IEMOCAP 4-class, BERT 768 + wav2vec2 768, class
# indices 0 ang / 1 hap+exc / 2 neu / 3 sad). Training data = the CemoBAM *val*
# file (551 utterances), split once, class-stratified (seed 0), into 85 % train
# and 15 % validation (the file has no speaker ids, so the split cannot be
# speaker-independent); test = the CemoBAM *test* file (551), never used for
# selection (selection = source_val on the held-out 15 %).
#
# usage: scripts/seed_features.sh [BUILD_DIR] [EPOCHS] [SEEDS...]
#   defaults: build-trainer, 30 epochs, seeds 1 2 3
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-trainer}
EPOCHS=${2:-30}
shift $(( $# > 2 ? 2 : $# )) || true
SEEDS=${*:-1 2 3}
BIN=$BUILD/bin/emosweep
PKL=${EMOSWEEP_SHARED_DIR:-$ROOT/../shared}/features/iemocap-seed-pkl
WORK=${WORK:-$ROOT/build-trainer/seed-features}
mkdir -p "$WORK"
[ -f "$PKL/cemobam_IEMOCAP_BERT_WAV2VEC_val.pkl" ] || { echo "missing $PKL (../shared not present)" >&2; exit 2; }

"$BIN" data import --pickle "$PKL/cemobam_IEMOCAP_BERT_WAV2VEC_val.pkl" --label-map cemobam_iemocap4 \
  --corpus iemocap_cemobam_val --out "$WORK/train.h5" --log-level warn
"$BIN" data import --pickle "$PKL/cemobam_IEMOCAP_BERT_WAV2VEC_test.pkl" --label-map cemobam_iemocap4 \
  --corpus iemocap_cemobam_test --out "$WORK/test.h5" --log-level warn
"$BIN" data split "$WORK/train.h5" --method stratified --val-fraction 0.15 --test-fraction 0.0 \
  --allow-speaker-overlap --seed 0 --out "$WORK/train.split.json" --log-level warn

# model: name, [model] keys, [train] keys (the seed's protocol where it has one, epochs capped)
MODELS=(
  "unimodal_mlp|modality = \"audio\"|optimizer = \"adam\"
lr = 1e-3
weight_decay = 1e-5
batch_size = 32
class_weights = \"inverse_frequency\""
  "unimodal_mlp|modality = \"text\"|optimizer = \"adam\"
lr = 1e-3
weight_decay = 1e-5
batch_size = 32
class_weights = \"inverse_frequency\""
  "concat_mlp||optimizer = \"adam\"
lr = 1e-3
weight_decay = 1e-5
batch_size = 32
class_weights = \"inverse_frequency\""
  "cross_attention||optimizer = \"adam\"
lr = 1e-3
weight_decay = 1e-5
batch_size = 32
class_weights = \"inverse_frequency\""
  "gated_unconstrained||optimizer = \"adam\"
lr = 1e-3
weight_decay = 1e-5
batch_size = 32
class_weights = \"inverse_frequency\""
  "glomer||lr = 1e-4
weight_decay = 0.01
batch_size = 128
schedule = \"plateau\"
plateau_factor = 0.5
plateau_patience = 30"
  "mer_gfl||optimizer = \"adam\"
lr = 1e-4
weight_decay = 0.01
batch_size = 32
class_weights = \"balanced\""
  "cemobam||optimizer = \"adam\"
lr = 1e-4
weight_decay = 5e-4
schedule = \"plateau\"
plateau_factor = 0.3
plateau_patience = 15"
  "hemogat||optimizer = \"adam\"
lr = 1e-4
weight_decay = 5e-4
schedule = \"plateau\"
plateau_factor = 0.5
plateau_patience = 15"
  "msr_a||lr = 2e-5
weight_decay = 0.01
schedule = \"onecycle\"
onecycle_pct_start = 0.1
grad_clip = 1.0
batch_size = 16
drop_last = true
class_weights = \"balanced\""
  "msr_b||lr = 2e-5
weight_decay = 0.01
schedule = \"onecycle\"
onecycle_pct_start = 0.1
grad_clip = 1.0
batch_size = 16
drop_last = true
class_weights = \"balanced\""
)

RESULTS=$WORK/results.jsonl
: > "$RESULTS"
for entry in "${MODELS[@]}"; do
  IFS='|' read -r name model_keys train_keys <<< "$(echo "$entry" | tr '\n' '\a')"
  model_keys=$(echo "$model_keys" | tr '\a' '\n')
  train_keys=$(echo "$train_keys" | tr '\a' '\n')
  for seed in $SEEDS; do
    cfg=$WORK/${name}_$(echo "$model_keys" | tr -dc 'a-z')_s$seed.toml
    cat > "$cfg" <<TOML
seed = $seed
selection = "source_val"
label_set = "core4"

[features]
audio = "audio"
text = "text"

[data]
store = "train.h5"
split = "train.split.json"
fold = 0
[data.eval]
test = "test.h5"

[model]
name = "$name"
$model_keys

[train]
epochs = $EPOCHS
metric = "ua"
$train_keys
TOML
    echo "== $name $model_keys seed $seed" >&2
    "$BIN" train --config "$cfg" --json --log-level warn |
      python3 -c "import json,sys; d=json.load(sys.stdin); t=d['result']['evals']['test']['metrics']; \
print(json.dumps({'model': '$name $(echo "$model_keys" | tr -d '"')'.strip(), 'seed': $seed, 'ua': t['ua'], 'wa': t['wa'], \
'macro_f1': t['macro_f1'], 'epoch': d['result']['selected_epoch'], 's': d['result']['info']['seconds_total']}))" >> "$RESULTS"
  done
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
models = []
for r in rows:
    if r['model'] not in models: models.append(r['model'])
print("| model | UA (%) | WA (%) | macro-F1 (%) | seeds | mean selected epoch | s/run |")
print("|---|---|---|---|---|---|---|")
for m in models:
    rs = [r for r in rows if r['model'] == m]
    def f(k):
        v = [100 * r[k] for r in rs]
        sd = statistics.stdev(v) if len(v) > 1 else float('nan')
        return f"{statistics.mean(v):.2f} ± {sd:.2f}"
    print(f"| {m} | {f('ua')} | {f('wa')} | {f('macro_f1')} | {len(rs)} | "
          f"{statistics.mean(r['epoch'] for r in rs):.1f} | {statistics.mean(r['s'] for r in rs):.1f} |")
PY
