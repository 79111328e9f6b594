#!/usr/bin/env bash
# Thread and parallelism defaults of `emosweep run` (issue 13, item 1): jobs/s
# of the real-corpora protocol (protocols/library/real-corpora.toml: LOCO,
# few-shot and DA over EmoDB, RAVDESS, EMOVO and TESS from ../shared) with
#   default            (no --parallel/--threads/--pack: packs of jobs as one batched
#                       model (--pack auto, issue 16), one worker per usable core, 1 thread each)
#   --pack off         (the same without packing: one job per worker at a time)
#   --parallel 1 --threads 1 --pack off   (one job at a time, one thread)
#   --parallel 1 --threads 2 --pack off   (one job at a time, two intra-op threads)
# on an idle machine and with a burner process per core started in its own
# session (as another user's work would be). Runs are interleaved (A B C A B C
# ...) and every run starts from an empty ledger; prints min and median wall
# seconds, jobs/s, and each setting's ratio to the best fixed setting and to
# one job at a time.
#   bench/thread_defaults.sh [--build build] [--reps 3] [--conditions idle,loaded] [--stores DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build REPS=3 CONDITIONS=idle,loaded STORES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --conditions) CONDITIONS=$2; shift 2 ;;
    --stores) STORES=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--reps N] [--conditions idle,loaded] [--stores DIR]" >&2; exit 2 ;;
  esac
done
BIN=$PWD/$BUILD/bin/emosweep
SHARED=$(cd .. && pwd)/shared/corpora
[ -x "$BIN" ] || { echo "no $BIN: build first (scripts/build.sh)" >&2; exit 2; }
[ -d "$SHARED" ] || { echo "the real corpora are not at $SHARED: this bench needs ../shared" >&2; exit 2; }
W=$(mktemp -d)
BURNERS=()
cleanup() { for p in "${BURNERS[@]}"; do kill -- -"$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
if [ -z "$STORES" ]; then
  STORES=$W/stores
  for c in emodb ravdess emovo tess; do
    "$BIN" data import --adapter "$c" --root "$SHARED/$c" --out "$STORES/$c.h5" --log-level warn > /dev/null
  done
fi
PROTO=protocols/library/real-corpora.toml
JOBS=$("$BIN" plan "$PROTO" --store-dir "$STORES" --json --log-level warn | sed -n 's/.*"jobs_total": *\([0-9]*\).*/\1/p' | head -1)
names=(default nopack p1t1 p1t2)
args_default=""
args_nopack="--pack off"
args_p1t1="--parallel 1 --threads 1 --pack off"
args_p1t2="--parallel 1 --threads 2 --pack off"
echo "thread_defaults: $PROTO, ${JOBS:-?} jobs, $(nproc) cores, $REPS interleaved reps, load before: $(cut -d' ' -f1 /proc/loadavg)"
printf '%-8s %-8s %10s %10s %10s %10s\n' condition setting min_s median_s jobs/s_med vs_1job
for cond in ${CONDITIONS//,/ }; do
  if [ "$cond" = loaded ]; then
    for _ in $(seq 1 "$(nproc)"); do setsid sh -c 'while :; do :; done' & BURNERS+=($!); done
    sleep 2
  fi
  echo "$cond: load average at start $(cut -d" " -f1 /proc/loadavg)"
  declare -A t=()
  for rep in $(seq 1 "$REPS"); do
    for n in "${names[@]}"; do
      a="args_$n"
      s=$(date +%s.%N)
      # shellcheck disable=SC2086
      "$BIN" run "$PROTO" --store-dir "$STORES" --ledger "$W/$cond-$n-$rep.db" ${!a} --log-level error > /dev/null
      e=$(date +%s.%N)
      t[$n]="${t[$n]:-} $(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.2f", b - a }')"
    done
  done
  declare -A med=() mins=()
  for n in "${names[@]}"; do
    sorted=$(tr ' ' '\n' <<< "${t[$n]}" | sed '/^$/d' | sort -g)
    mins[$n]=$(head -1 <<< "$sorted")
    med[$n]=$(awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }' <<< "$sorted")
  done
  for n in "${names[@]}"; do
    printf '%-8s %-8s %10s %10s %10.2f %10.2f\n' "$cond" "$n" "${mins[$n]}" "${med[$n]}" \
      "$(awk -v j="${JOBS:-0}" -v m="${med[$n]}" 'BEGIN { print j / m }')" \
      "$(awk -v b="${med[p1t1]}" -v m="${med[$n]}" 'BEGIN { print b / m }')"
  done
  # Packing must not change a number: the first rep's tables of every setting are byte-identical.
  "$BIN" table "$PROTO" --store-dir "$STORES" --ledger "$W/$cond-p1t1-1.db" --log-level error > "$W/$cond-p1t1.table"
  for n in default nopack p1t2; do
    "$BIN" table "$PROTO" --store-dir "$STORES" --ledger "$W/$cond-$n-1.db" --log-level error > "$W/$cond-$n.table"
    if cmp -s "$W/$cond-p1t1.table" "$W/$cond-$n.table"; then echo "$cond: $n table byte-identical to p1t1"
    else echo "$cond: $n table DIFFERS from p1t1" >&2; diff "$W/$cond-p1t1.table" "$W/$cond-$n.table" | head -20 >&2; exit 1; fi
  done
  best_fixed=$(printf '%s\n%s\n' "${med[p1t1]}" "${med[p1t2]}" | sort -g | head -1)
  echo "$cond: default / best fixed setting = $(awk -v b="$best_fixed" -v m="${med[default]}" 'BEGIN { printf "%.2f", b / m }')x," \
       "default / one job at a time (1 thread) = $(awk -v b="${med[p1t1]}" -v m="${med[default]}" 'BEGIN { printf "%.2f", b / m }')x (speed-ups; > 1 = default faster)"
  if [ "$cond" = loaded ]; then
    for p in "${BURNERS[@]}"; do kill -- -"$p" 2>/dev/null || true; done
    BURNERS=()
  fi
  unset t med mins
done
