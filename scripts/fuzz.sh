#!/usr/bin/env bash
# Runs every libFuzzer harness (fuzz/README.md) for a while and summarises.
#   scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]
# SECONDS defaults to 600 (10 minutes); TARGETs default to all of them. Builds
# the clang fuzz build in ${FUZZ_BUILD_DIR:-build-fuzz} first (FUZZ_NO_BUILD=1
# skips that, e.g. when the build was done under a lock). The corpus each run
# grows is kept in build-fuzz/fuzz-work/<target>/corpus and reused next time;
# crashes, hangs and leaks land in build-fuzz/fuzz-work/<target>/artifacts/
# (copy them to fuzz/regressions/<target>/ once fixed). Logs: fuzz-work/<target>.log.
# Exit status: 0 when every target ended without a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pickle wav npy csv store protocol job_toml)
build=${FUZZ_BUILD_DIR:-build-fuzz}
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  BUILD_DIR="$build" CMAKE_ARGS="-DEMOSWEEP_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14" \
    scripts/build.sh
fi
build=$(cd "$build" && pwd)
"$build/bin/fuzz_make_seeds" "$build/fuzz-seeds"
mkdir -p "$build/fuzz-work"
shared=$(cd .. && pwd)/shared
status=0
summary="| target | seconds | execs | exec/s | cov | ft | corpus | result |\n|---|---|---|---|---|---|---|---|\n"
for t in "${targets[@]}"; do
  exe="$build/bin/fuzz_$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz.sh: $exe was not built" >&2
    status=1
    continue
  fi
  log="$build/fuzz-work/$t.log"
  rc=0
  fuzz/run_target.sh run "$exe" "$t" "$secs" "$PWD" "$shared" "$build/fuzz-seeds" "$build/fuzz-work" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | awk '{print $2}' | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -1 || true)
  if [ -z "$execs" ]; then  # fork mode (store): "#EXECS: cov: C ft: F corp: N exec/s R ..."
    execs=$(grep -o '^#[0-9]*: cov' "$log" | tail -1 | tr -dc 0-9 || true)
    rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
    hangs=$(grep -o 'oom/timeout/crash: [0-9/]*' "$log" | tail -1 || true)
    [ -n "$hangs" ] && cov="$cov ($hangs, libhdf5 hangs skipped)"
  fi
  result="ok"
  if [ $rc -ne 0 ]; then
    result="FAILED rc=$rc: $(grep -m1 -o 'ERROR: [A-Za-z]*Sanitizer: [a-z-]*\|ERROR: libFuzzer: [a-z-]*\|runtime error: .*\|is a finding in emosweep' "$log" | head -1 || true) (see $log)"
    status=1
  fi
  summary+="| $t | $secs | ${execs:-?} | ${rate:-?} | $(echo "$cov" | awk '{print $2}') | $(echo "$cov" | awk '{print $4}') | $(echo "$cov" | awk '{print $6, $7, $8, $9, $10}') | $result |\n"
  echo "fuzz.sh: $t: $result (${execs:-?} execs)"
done
printf "%b" "$summary" | tee "$build/fuzz-work/summary.md"
exit $status
