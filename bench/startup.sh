#!/usr/bin/env bash
# bench/startup.sh: start-up cost of `emosweep` commands (issue 15, target < 50 ms
# for state commands). State commands link no libtorch; training loads the torch
# module (libemosweep_torch.so) on demand, shown last for comparison.
#
#   bench/startup.sh <build> [--reps N] [--out DIR] [--json]
#
# Runs, interleaved (one rep of every command, then the next rep, so a busy
# moment of the shared machine hits all of them alike), N reps (default 15) of
#   version, --help, ledger status, plan (a 4-job protocol over synthetic stores,
#   with --ledger), table (its table, cache warm), a re-run of the finished
#   protocol (0 jobs), and `train` of a one-epoch job (loads libtorch),
# and prints per command the min and median of CPU time (user + sys, from
# getrusage of the child: microsecond resolution) and wall time, in ms, against
# the 50 ms target. No baseline build is run: the numbers are absolute.
set -euo pipefail
BUILD=${1:?usage: bench/startup.sh <build> [--reps N] [--out DIR] [--json]}
shift
REPS=15
OUT=/tmp/emosweep-startup
JSON=0
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --json) JSON=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
EMO=$(readlink -f "$BUILD/bin/emosweep")
[ -x "$EMO" ] || { echo "no $BUILD/bin/emosweep (build it first)" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT"
"$EMO" data synth --out "$OUT/s" --corpora 1 --speakers 4 --per-speaker 12 --seed 3 --log-level warn > /dev/null
cat > "$OUT/p.toml" <<'EOF'
version = 1
name = "startup"
[corpora.synth_a]
store = "${STORE_DIR}/synth_a.h5"
[defaults]
labels = "core4"
features = {audio = "synth_audio", text = "synth_text"}
seeds = [1, 2]
selection = "source_val"
split = {method = "speaker_kfold", k = 2, val_fraction = 0.25}
train = {batch_size = 16, epochs = 1}
[[experiment]]
name = "in_domain"
kind = "in_domain"
corpora = ["synth_a"]
models = ["concat_mlp"]
[[table]]
name = "t"
experiment = "in_domain"
rows = "model"
columns = "corpus"
metrics = ["ua"]
spread = "std"
EOF
cat > "$OUT/job.toml" <<'EOF'
seed = 7
label_set = "core4"
[features]
audio = "synth_audio"
text = "synth_text"
[data]
train = ["s/synth_a.h5"]
val = "s/synth_a.h5"
[model]
name = "concat_mlp"
[train]
epochs = 1
batch_size = 16
EOF
export EMOSWEEP_CACHE_DIR="$OUT/cache"
common="--store-dir $OUT/s --log-level warn"
"$EMO" run "$OUT/p.toml" --ledger "$OUT/l.db" --parallel 1 $common > /dev/null
"$EMO" table "$OUT/p.toml" --ledger "$OUT/l.db" $common > /dev/null  # fills the expansion cache

python3 - "$EMO" "$OUT" "$REPS" "$JSON" "$common" <<'PY'
import json, os, resource, statistics, subprocess, sys, time
emo, out, reps, as_json, common = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5].split()
p, l = f"{out}/p.toml", f"{out}/l.db"
cmds = [
    ("version", ["version"], True),
    ("--help", ["--help"], True),
    ("ledger status", ["ledger", "status", "--ledger", l], True),
    ("plan (4 jobs)", ["plan", p, "--ledger", l] + common, True),
    ("table", ["table", p, "--ledger", l] + common, True),
    ("run, 0 to run", ["run", p, "--ledger", l, "--parallel", "1"] + common, True),
    ("train (torch)", ["train", "--config", f"{out}/job.toml", "--log-level", "warn"], False),
]
samples = {name: ([], []) for name, _, _ in cmds}
for _ in range(reps):
    for name, args, _ in cmds:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run([emo] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=out)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            sys.exit(f"FAILED: emosweep {' '.join(args)}: exit {r.returncode}: {r.stderr.decode()[-500:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        samples[name][0].append(cpu * 1e3)
        samples[name][1].append(wall * 1e3)
rows = []
for name, _, state in cmds:
    cpu, wall = samples[name]
    rows.append({"command": name, "state_command": state, "reps": reps,
                 "cpu_ms_min": min(cpu), "cpu_ms_median": statistics.median(cpu),
                 "wall_ms_min": min(wall), "wall_ms_median": statistics.median(wall),
                 "meets_50ms": (statistics.median(cpu) < 50 and statistics.median(wall) < 50) if state else None})
if as_json:
    print(json.dumps({"target_ms": 50, "load_average": os.getloadavg(), "rows": rows}, indent=2))
else:
    print(f"emosweep start-up, {reps} interleaved reps, load average {os.getloadavg()[0]:.2f} (target < 50 ms)")
    print(f"{'command':<16} {'cpu min':>8} {'cpu med':>8} {'wall min':>9} {'wall med':>9}  target")
    for r in rows:
        verdict = "-" if r["meets_50ms"] is None else ("ok" if r["meets_50ms"] else "MISSED")
        print(f"{r['command']:<16} {r['cpu_ms_min']:8.1f} {r['cpu_ms_median']:8.1f} {r['wall_ms_min']:9.1f} "
              f"{r['wall_ms_median']:9.1f}  {verdict}")
PY
