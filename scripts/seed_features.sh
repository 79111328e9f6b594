#!/usr/bin/env bash
# scripts/seed_features.sh: the fidelity sanity check of docs/results-seed-features.md. Trains every
# registered model on (1) the real IEMOCAP seed features and (2) EmoDB audio features, several
# seeds each, and prints one Markdown table per data set: test UA / WA / macro-F1 (mean ± std,
# ddof=1, over seeds, in %), epochs run, selected epoch, seconds per run.
#
# usage: scripts/seed_features.sh [-b BUILD_DIR] [-w WORK_DIR] [-s "SEEDS"] [-c EPOCH_CAP] [-m "MODELS"]
#                                  [iemocap] [emodb]
#   -b  build directory holding bin/emosweep (default: build)
#   -w  where stores, configs, logs and results go (default: BUILD_DIR/seed-features; never the
#       source tree)
#   -s  seeds (default "1 2 3")
#   -c  cap on every model's seed epoch count (default: none; the seeds use 50-300 epochs)
#   -m  only these model names (default: all)
#   data sets to run (default: both)
# Needs ../shared (or EMOSWEEP_SHARED_DIR). Stops at the first failing run.
#
# IEMOCAP: the CemoBAM pickles (BERT 768 + wav2vec2 768, 0 ang / 1 hap+exc / 2 neu / 3 sad).
#   Training data = the CemoBAM *val* file (551), split once, class-stratified (seed 0), 85 % train /
#   15 % validation (the pickles have no speaker ids); test = the CemoBAM *test* file (551).
#   Features unstandardised, as in the seeds.
# EmoDB: logmel64_stats (256) as "audio" and prosody (29) as "text" (EmoDB's ten scripted German
#   sentences are shared by every emotion, so its text carries no emotion); core4 (the other
#   three emotions are left out); speaker-independent 5-fold split (seed 0), fold 0 only
#   (2 test speakers, 1 validation speaker); feature_norm = "train".
# Selection: best validation UA (source_val) for every model except CemoBAM/HemoGAT, which keep the
#   last epoch as their seed code does.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=build WORK="" SEEDS="1 2 3" CAP=100000 ONLY=""
while getopts "b:w:s:c:m:h" o; do
  case $o in
    b) BUILD=$OPTARG ;; w) WORK=$OPTARG ;; s) SEEDS=$OPTARG ;; c) CAP=$OPTARG ;; m) ONLY=" $OPTARG " ;;
    *) sed -n '2,27p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
SETS=${*:-iemocap emodb}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
WORK=${WORK:-$BUILD/seed-features}
BIN=$BUILD/bin/emosweep
SHARED=${EMOSWEEP_SHARED_DIR:-$ROOT/../shared}
[ -x "$BIN" ] || { echo "no $BIN (build the emosweep target, or pass -b)" >&2; exit 2; }
[ -d "$SHARED/features/iemocap-seed-pkl" ] || { echo "missing $SHARED (../shared not present)" >&2; exit 2; }
mkdir -p "$WORK"

# name | seed epochs | [model] keys | [train] keys (the seed's protocol; docs/trainer.md)
BASE='optimizer = "adam"; lr = 1e-3; weight_decay = 1e-5; batch_size = 32; class_weights = "inverse_frequency"; schedule = "plateau"; plateau_metric = "ua"; plateau_factor = 0.5; plateau_patience = 5; patience = 10'
GRAPH='optimizer = "adam"; lr = 1e-4; weight_decay = 5e-4; schedule = "plateau"'
MSR='lr = 2e-5; weight_decay = 0.01; schedule = "onecycle"; onecycle_pct_start = 0.1; grad_clip = 1.0; batch_size = 16; drop_last = true; class_weights = "balanced"; patience = 15'
MODELS=(
  "unimodal_mlp|50|modality = \"audio\"|$BASE"
  "unimodal_mlp|50|modality = \"text\"|$BASE"
  "concat_mlp|50||$BASE"
  "cross_attention|50||$BASE"
  "gated_unconstrained|50||$BASE"
  "glomer|100||lr = 1e-4; weight_decay = 0.01; batch_size = 128; schedule = \"plateau\"; plateau_factor = 0.5; plateau_patience = 30"
  "mer_gfl|300||optimizer = \"adam\"; lr = 1e-4; weight_decay = 0.01; batch_size = 32; class_weights = \"balanced\"; patience = 21"
  "cemobam|100||$GRAPH; plateau_factor = 0.3; plateau_patience = 15"
  "hemogat|100||$GRAPH; plateau_factor = 0.5; plateau_patience = 15"
  "msr_a|100||$MSR"
  "msr_b|100||$MSR"
)

prepare_iemocap() {  # -> stores + split under $1
  local d=$1 pkl=$SHARED/features/iemocap-seed-pkl
  "$BIN" data import --pickle "$pkl/cemobam_IEMOCAP_BERT_WAV2VEC_val.pkl" --label-map cemobam_iemocap4 \
    --corpus iemocap_cemobam_val --out "$d/train.h5" --log-level error
  "$BIN" data import --pickle "$pkl/cemobam_IEMOCAP_BERT_WAV2VEC_test.pkl" --label-map cemobam_iemocap4 \
    --corpus iemocap_cemobam_test --out "$d/test.h5" --log-level error
  # `data split` requires a positive test fraction: 1e-4 rounds to 0 rows in every class.
  "$BIN" data split "$d/train.h5" --method stratified --val-fraction 0.15 --test-fraction 0.0001 \
    --allow-speaker-overlap --seed 0 --out "$d/split.json" --log-level warn
  DATA='store = "train.h5"
split = "split.json"
fold = 0
[data.eval]
test = "test.h5"'
  FEATURES='audio = "audio"
text = "text"'
  NORM=none
}

prepare_emodb() {
  local d=$1
  [ -f "$d/emodb.h5" ] || "$BIN" data import --adapter emodb --root "$SHARED/corpora/emodb" \
    --features logmel64_stats,prosody --corpus emodb --out "$d/emodb.h5" --threads 1 --log-level warn
  "$BIN" data split "$d/emodb.h5" --method speaker_kfold --k 5 --val-fraction 0.125 --seed 0 \
    --out "$d/split.json" --log-level warn
  DATA='store = "emodb.h5"
split = "split.json"
fold = 0'
  FEATURES='audio = "logmel64_stats"
text = "prosody"'
  NORM=train
}

for set in $SETS; do
  dir=$WORK/$set
  mkdir -p "$dir"
  case $set in iemocap) prepare_iemocap "$dir" ;; emodb) prepare_emodb "$dir" ;;
    *) echo "unknown data set '$set' (iemocap, emodb)" >&2; exit 2 ;; esac
  results=$dir/results${ONLY:+-$(echo $ONLY | tr ' ' '-')}.jsonl
  : > "$results"
  for entry in "${MODELS[@]}"; do
    IFS='|' read -r name seed_epochs model_keys train_keys <<< "$entry"
    [ -z "$ONLY" ] || [[ "$ONLY" == *" $name "* ]] || continue
    epochs=$(( seed_epochs < CAP ? seed_epochs : CAP ))
    selection=source_val
    case $name in cemobam|hemogat) selection=last ;; esac
    label="$name${model_keys:+ (${model_keys//\"/})}"
    for seed in $SEEDS; do
      cfg=$dir/${name}$(echo "$model_keys" | tr -dc 'a-z' | sed 's/^modality/_/')_s$seed.toml
      cat > "$cfg" <<TOML
seed = $seed
selection = "$selection"
label_set = "core4"

[features]
$FEATURES

[data]
$DATA

[model]
name = "$name"
$model_keys

[train]
epochs = $epochs
metric = "ua"
feature_norm = "$NORM"
$(echo "$train_keys" | sed 's/; /\n/g')
TOML
      echo "== $set: $label, seed $seed, $epochs epochs (seed protocol: $seed_epochs)" >&2
      "$BIN" train --config "$cfg" --json --log-level warn > "${cfg%.toml}.json"
      python3 - "${cfg%.toml}.json" "$label" "$seed" "$seed_epochs" >> "$results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d['result']; t = r['evals']['test']['metrics']
print(json.dumps({'model': sys.argv[2], 'seed': int(sys.argv[3]), 'seed_epochs': int(sys.argv[4]),
                  'ua': t['ua'], 'wa': t['wa'], 'macro_f1': t['macro_f1'], 'n_test': t['n'],
                  'epochs_run': r['info']['epochs_run'], 'selected_epoch': r['selected_epoch'],
                  'selection': r['info']['selection'], 's': r['info']['seconds_total']}))
PY
    done
  done
  echo "### $set"
  python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
models = list(dict.fromkeys(r['model'] for r in rows))
print("| model | UA (%) | WA (%) | macro-F1 (%) | seeds | epochs: seed / used (mean run) | selected epoch | s/run |")
print("|---|---|---|---|---|---|---|---|")
for m in models:
    rs = [r for r in rows if r['model'] == m]
    def f(k):
        v = [100 * r[k] for r in rs]
        sd = statistics.stdev(v) if len(v) > 1 else float('nan')
        return f"{statistics.mean(v):.1f} ± {sd:.1f}"
    mean = lambda k: statistics.mean(r[k] for r in rs)
    sel = 'last' if rs[0]['selection'] == 'last' else f"{mean('selected_epoch'):.1f}"
    print(f"| {m} | {f('ua')} | {f('wa')} | {f('macro_f1')} | {len(rs)} | {rs[0]['seed_epochs']} / "
          f"{mean('epochs_run'):.0f} | {sel} | {mean('s'):.1f} |")
PY
done
