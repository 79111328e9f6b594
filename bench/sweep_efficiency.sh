#!/usr/bin/env bash
# Sweep efficiency of `emosweep run` under mpirun on a protocol of many tiny jobs
# (bench/sweep_efficiency.toml: 80 in-domain jobs of ~20-150 ms each).
#
#   bench/sweep_efficiency.sh [BUILD_DIR] [RANKS...]      (default: build, ranks 2 3)
#
# Every configuration runs the same protocol on a fresh ledger, one thread per
# rank (ranks x threads = ranks; oversubscribed where ranks > cores). Baseline
# (the 1-rank row): the plain single-process `emosweep run --parallel 1 --threads 1`,
# in the same bench run. Then <build>/bench/coordinator_bench (when built) at 1, 2
# and 3 ranks: the same path with sleeping fake jobs, so the per-job scheduling
# overhead is measured without the jobs' own start-up costs (issue 15's target,
# < 2 ms a job at 1-3 ranks). Columns of the first table:
#   wall      the run's own wall time (its --json summary; excludes process start)
#   jobs_s    sum over jobs of the job's own time inside RunJob (ledger provenance.seconds)
#   eff       the run summary's "efficiency" = busy / (ranks x wall), busy = sum over
#             jobs of (send -> result at rank 0) x group size. Rank 0 coordinates and
#             counts in `ranks`, so N ranks cap it at (N-1)/N. For the single-process
#             rows: jobs_s / wall.
#   eff_wk    jobs_s / (worker ranks x wall): the share of worker time spent in jobs
#   ovh/job   (worker ranks x wall - jobs_s) / jobs: worker time per job not spent in
#             RunJob (dispatch, result transfer, ledger writes, waiting, idle tail,
#             and fixed costs spread over the 80 jobs: the 1-rank row loads the
#             torch module with its first job, ~0.45 s = ~5 ms a job)
#   steady    (worker ranks x span - jobs_s) / jobs, span = first job's start to last
#             job's end (ledger provenance: finished_at - seconds .. finished_at; MPI
#             rows record finished_at on rank 0, so the end is when rank 0 recorded it):
#             ovh/job without the sweep's start (rank 0's set-up, a worker still loading
#             the torch module) and end, i.e. the per-job part (issue 15: < 2 ms)
#   rtt/job   (busy - jobs_s) / jobs, MPI rows: per job, rank 0's send -> result time
#             minus the job's own time: messages, JSON, the worker's set-up (with the
#             prefetch a queued job's time counts from the previous result)
#   speedup   baseline wall / wall
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
RANKS=("${@:-2 3}")
[ ${#RANKS[@]} -eq 1 ] && read -r -a RANKS <<< "${RANKS[0]}"
ES="$BUILD/bin/emosweep"
[ -x "$ES" ] || { echo "no $ES: build the emosweep target first" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
export OMPI_MCA_rmaps_base_oversubscribe=1
T=$(mktemp -d "${TMPDIR:-/tmp}/es_sweep_eff.XXXXXX")
trap 'rm -rf "$T"' EXIT
P=bench/sweep_efficiency.toml
"$ES" data synth --out "$T/stores" --corpora 2 --speakers 8 --per-speaker 30 --seed 3 --log-level quiet >/dev/null
ARGS=(--store-dir "$T/stores" --threads 1 --log-level quiet --json)

num() { { grep -o "\"$1\": *[0-9.eE+-]*" "$2" || true; } | head -1 | sed 's/.*: *//'; }

# run NAME RANKS CMD...: runs one configuration, prints one row.
BASE_WALL=""
row() {
  local name=$1 ranks=$2
  shift 2
  local ledger="$T/run$ranks-$RANDOM.sqlite" out="$T/run$ranks-$RANDOM.json"
  "$@" "$P" "${ARGS[@]}" --ledger "$ledger" > "$out"
  local wall jobs jobs_s busy eff workers
  wall=$(num seconds "$out")
  busy=$(num busy_rank_seconds "$out")
  jobs=$(sqlite3 "$ledger" "select count(*) from jobs where status = 'done'")
  jobs_s=$(sqlite3 "$ledger" "select coalesce(sum(seconds), 0) from provenance")
  span=$(sqlite3 "$ledger" "select coalesce(max(finished_at) - min(finished_at - seconds), 0) from provenance")
  workers=$(( ranks > 1 ? ranks - 1 : 1 ))
  [ -z "$BASE_WALL" ] && BASE_WALL=$wall
  awk -v n="$name" -v r="$ranks" -v w="$workers" -v wall="$wall" -v js="$jobs_s" -v busy="${busy:-}" \
      -v jobs="$jobs" -v base="$BASE_WALL" -v span="$span" 'BEGIN {
    eff = (busy == "") ? js / wall : busy / (r * wall)
    rtt = (busy == "") ? "-" : sprintf("%.1f", (busy - js) / jobs * 1000)
    printf "%-22s %5d %5d %8.2f %8.2f %6.3f %6.3f %9.1f %8.1f %8s %7.2f\n", n, r, jobs, wall, js, eff, js / (w * wall),
           (w * wall - js) / jobs * 1000, (w * span - js) / jobs * 1000, rtt, base / wall }'
}

echo "# sweep efficiency: $P ($(grep -c processor /proc/cpuinfo) cores; load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf "%-22s %5s %5s %8s %8s %6s %6s %9s %8s %8s %7s\n" config ranks jobs wall_s jobs_s eff eff_wk "ovh/job" steady \
  "rtt/job" speedup
printf "%-22s %5s %5s %8s %8s %6s %6s %9s %8s %8s %7s\n" "" "" "" "" "" "" "" "(ms)" "(ms)" "(ms)" ""
row "1 process (baseline)" 1 "$ES" run --parallel 1
for n in "${RANKS[@]}"; do
  # --oversubscribe twice: mpirun's (more ranks than slots) and emosweep's (more worker threads than
  # cores, which `emosweep run` otherwise refuses; this bench measures scheduling, not throughput).
  row "mpirun -n $n" "$n" timeout 1800 mpirun --oversubscribe -n "$n" "$ES" run --oversubscribe
done
echo "# ranks > cores are oversubscribed; rank 0 only coordinates (it sleeps between polls)."

# Per-job scheduling overhead without the jobs: coordinator_bench (400 jobs of 20 ms, sleeping).
CB="$BUILD/bench/coordinator_bench"
if [ -x "$CB" ]; then
  echo "# per-job scheduling overhead, $CB (400 sleeping 20 ms jobs; target < 2 ms at 1-3 ranks;"
  echo "# --no-prefetch: every job waits for the round trip to rank 0, as before the prefetch)"
  "$CB" --jobs 400 --job-ms 20
  for n in 2 3; do
    timeout 600 mpirun --oversubscribe -n "$n" "$CB" --jobs 400 --job-ms 20
    timeout 600 mpirun --oversubscribe -n "$n" "$CB" --jobs 400 --job-ms 20 --no-prefetch
  done
else
  echo "# no $CB (EMOSWEEP_BUILD_BENCH and EMOSWEEP_BUILD_TESTS): per-job overhead without the jobs not measured"
fi
