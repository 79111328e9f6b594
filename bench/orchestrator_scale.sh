#!/usr/bin/env bash
# bench/orchestrator_scale.sh: the orchestrator at 10^3..10^5 (10^6 with --million)
# jobs (issue 15). For each size it generates the widened quick-start protocol and
# a ledger where every job is finished (bench/ledger_scale_gen: real identities,
# fake results), then prints CPU seconds (user + sys) and peak RSS of
#   `emosweep version` (start-up), `plan`, a re-run of the finished protocol
#   (0 jobs to run), `ledger status` (all jobs, and one sweep's) and `table --all`
#   (cold: fills the expansion cache; warm: reads it),
# and the growth exponent (slope of log CPU / log jobs between the smallest and
# the largest size, and between the last two).
#
#   bench/orchestrator_scale.sh <build> [--million] [--out DIR] [--keep]
# Ledgers and protocols are kept in DIR (default /tmp/emosweep-scale) and reused
# unless the generator binary is newer; --keep never regenerates an existing one.
set -euo pipefail
BUILD=${1:?usage: bench/orchestrator_scale.sh <build> [--million] [--out DIR] [--keep]}
shift
SIZES="1000 10000 100000"
OUT=/tmp/emosweep-scale
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --million) SIZES="$SIZES 1000000" ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
EMO=$BUILD/bin/emosweep
GEN=$BUILD/bench/ledger_scale_gen
mkdir -p "$OUT"
[ -f "$OUT/stores/synth_c.h5" ] || "$EMO" data synth --out "$OUT/stores" --log-level warn >/dev/null

# measure_min NAME N REPS CMD...: like measure, the least CPU of REPS runs, to the
# microsecond (getrusage of the child; /usr/bin/time rounds to 10 ms): state commands.
measure_min() {
  local name=$1 n=$2 reps=$3
  shift 3
  python3 - "$OUT/results.tsv" "$name" "$n" "$reps" "$@" <<'PY'
import resource, subprocess, sys
out, name, n, reps, cmd = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
best = None
for _ in range(reps):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    best = cpu if best is None else min(best, cpu)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
open(out, "a").write(f"{name}\t{n}\t{best:.4f}\t{rss:.0f}\n")
PY
}

# measure NAME N CMD...: one line "name jobs cpu_s rss_mb" to $OUT/results.tsv
measure() {
  local name=$1 n=$2
  shift 2
  /usr/bin/time -f "%U %S %M" -o "$OUT/time.txt" "$@" >"$OUT/last.out" 2>"$OUT/last.err" || {
    echo "FAILED: $name at $n jobs: $*" >&2
    tail -5 "$OUT/last.err" >&2
    exit 1
  }
  read -r u s m <"$OUT/time.txt"
  printf '%s\t%s\t%.3f\t%.0f\n' "$name" "$n" "$(echo "$u + $s" | bc -l)" "$(echo "$m / 1024" | bc -l)" \
    >>"$OUT/results.tsv"
}

: >"$OUT/results.tsv"
: >"$OUT/results.jsonl"
rm -rf "$OUT/cache"
export EMOSWEEP_CACHE_DIR="$OUT/cache"
measure version 0 "$EMO" version
for n in $SIZES; do
  P=$OUT/p$n.toml L=$OUT/l$n.db
  if [ ! -f "$L" ] || { [ "$KEEP" = 0 ] && [ "$GEN" -nt "$L" ]; }; then
    "$GEN" --stores "$OUT/stores" --jobs "$n" --protocol "$P" --ledger "$L" >"$OUT/gen$n.json"
  fi
  jobs=$(python3 -c "import json,sys; print(json.load(open('$OUT/gen$n.json'))['jobs'])" 2>/dev/null || echo "$n")
  measure plan "$jobs" "$EMO" plan "$P" --max-jobs 0 --log-level warn
  # First re-run expands and caches the job ids (cold); the next only checks them (warm).
  measure rerun_cold "$jobs" "$EMO" run "$P" --ledger "$L" --max-jobs 0 --parallel 1 --log-level warn
  grep -q " 0 ran" "$OUT/last.out" || { echo "re-run ran jobs: $(cat "$OUT/last.out")" >&2; exit 1; }
  measure rerun "$jobs" "$EMO" run "$P" --ledger "$L" --max-jobs 0 --parallel 1 --log-level warn
  grep -q " 0 ran" "$OUT/last.out" || { echo "re-run ran jobs: $(cat "$OUT/last.out")" >&2; exit 1; }
  # `ledger status` (the re-runs opened the ledger read-write, so it has the current schema;
  # every re-run added a sweep of every job, sharing the links of the first from schema v3 on),
  # and of one sweep: least of 5 runs.
  measure_min status "$jobs" 5 "$EMO" ledger status --ledger "$L"
  measure_min status_sweep "$jobs" 5 "$EMO" ledger status --ledger "$L" --sweep 1
  # First table of a protocol expands it and fills the expansion cache (cold);
  # the next reads the cache (warm). Both print the same bytes.
  measure table_cold "$jobs" "$EMO" table "$P" --ledger "$L" --all --max-jobs 0 --log-level warn
  cp "$OUT/last.out" "$OUT/table$n.md"
  measure table "$jobs" "$EMO" table "$P" --ledger "$L" --all --max-jobs 0 --log-level warn
  cmp -s "$OUT/last.out" "$OUT/table$n.md" || { echo "cached table differs at $n jobs" >&2; exit 1; }
done

python3 - "$OUT" <<'EOF'
import json, math, sys, os
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "results.tsv"))]
by = {}
for name, n, cpu, rss in rows:
    by.setdefault(name, []).append((int(n), float(cpu), float(rss)))
print(f"{'what':12} {'jobs':>9} {'CPU s':>8} {'peak RSS MB':>12}")
for name, pts in by.items():
    for n, cpu, rss in pts:
        print(f"{name:12} {n:>9} {cpu:>8.3f} {rss:>12.0f}")
print()
print(f"{'what':12} {'exponent (first..last)':>23} {'exponent (last two)':>20}   (slope of log CPU vs log jobs)")
for name, pts in by.items():
    if len(pts) < 2: continue
    def slope(a, b):
        return math.log(max(b[1], 1e-3) / max(a[1], 1e-3)) / math.log(b[0] / a[0])
    print(f"{name:12} {slope(pts[0], pts[-1]):>23.2f} {slope(pts[-2], pts[-1]):>20.2f}")
for name, pts in by.items():
    for n, cpu, rss in pts:
        if n: print(json.dumps({"what": name, "jobs": n, "cpu_s": cpu, "rss_mb": rss}), file=open(os.path.join(out, "results.jsonl"), "a"))

# Every target of issue 15: value, target, met / not met. A target at a size that
# was not run (10^6 without --million) says so instead of guessing.
start_cpu, start_rss = by["version"][0][1], by["version"][0][2]
def at(name, exp):
    for n, cpu, rss in by.get(name, []):
        if 10 ** exp <= n < 2 * 10 ** exp: return n, cpu, rss
    return None
def exponent(name):
    pts = by.get(name, [])
    if len(pts) < 2: return float("nan")
    a, b = pts[0], pts[-1]
    return math.log(max(b[1] - start_cpu, 1e-2) / max(a[1] - start_cpu, 1e-2)) / math.log(b[0] / a[0])
sched = []
for f in sorted(os.listdir(out), key=lambda f: (len(f), f)):
    if f.startswith("gen") and f.endswith(".json"):
        try: sched.append(json.load(open(os.path.join(out, f))))
        except Exception: pass
rows = []
def cpu_target(label, name, exp, limit):
    r = at(name, exp)
    if r is None:
        rows.append((label, "not run (--million)", f"< {limit} s", "not measured")); return
    n, cpu, _ = r
    rows.append((label, f"{cpu:.2f} s ({cpu - start_cpu:.2f} s after start-up) at {n} jobs", f"< {limit} s",
                 "met" if cpu < limit else "NOT met"))
cpu_target("re-run of a finished protocol, 10^4", "rerun", 4, 0.5)
cpu_target("re-run of a finished protocol, 10^6", "rerun", 6, 3)
cpu_target("table over finished runs, 10^5", "table", 5, 1)
cpu_target("table over finished runs, 10^6", "table", 6, 5)
cpu_target("plan, 10^6", "plan", 6, 10)
for exp in (3, 4, 5, 6):
    for name, label in (("status", "`ledger status`"), ("status_sweep", "`ledger status --sweep 1`")):
        r = at(name, exp)
        if r is None: continue
        n, cpu, _ = r
        rows.append((f"{label}, 10^{exp}", f"{cpu * 1000:.1f} ms CPU (least of 5) at {n} jobs", "< 50 ms",
                     "met" if cpu < 0.05 else "NOT met"))
r = at("plan", 6)
rows.append(("plan peak RSS, 10^6", f"{r[2]:.0f} MB" if r else "not run (--million)", "< 1024 MB",
             ("met" if r[2] < 1024 else "NOT met") if r else "not measured"))
for name in ("plan", "rerun_cold", "rerun", "table_cold", "table"):
    pts = by.get(name, [])
    if not pts: continue
    n, cpu, rss = pts[-1]
    kb = (rss - start_rss) * 1024 / n
    rows.append((f"memory per job, {name}", f"{kb:.2f} KB at {n} jobs (peak RSS above start-up)", "< 1 KB",
                 "met" if kb < 1 else "NOT met"))
for name in ("plan", "rerun_cold", "rerun", "table_cold", "table"):
    if name not in by: continue
    e = exponent(name)
    rows.append((f"growth exponent, {name}", f"{e:.2f} (CPU after start-up, {by[name][0][0]}..{by[name][-1][0]} jobs)",
                 "<= 1.1", "met" if e <= 1.1 else "NOT met"))
for g in sched:
    us = g.get("sched_us_per_job", float("nan"))
    rows.append(("scheduling per job, 1 rank", f"{us / 1000:.3f} ms at {g.get('jobs')} jobs (NextReady+OnFinished, ledger incl.)",
                 "< 2 ms", "met" if us < 2000 else "NOT met"))
print()
w = max(len(r[0]) for r in rows)
print(f"{'target':{w}}  {'value':64}  {'target':>10}  status")
for label, value, target, status in rows:
    print(f"{label:{w}}  {value:64}  {target:>10}  {status}")
EOF

