#!/usr/bin/env bash
# fuzz/run_target.sh: runs one libFuzzer harness (called by the fuzz ctests and scripts/fuzz.sh).
#
#   run_target.sh run    EXE TARGET SECONDS SRC_DIR SHARED_DIR SEEDS_DIR WORK_DIR
#   run_target.sh replay EXE TARGET 0       SRC_DIR SHARED_DIR SEEDS_DIR WORK_DIR
#
# run: fuzzes for SECONDS over the seeds (generated ones in SEEDS_DIR/TARGET,
#   committed ones in SRC_DIR/fuzz/seeds/TARGET and SRC_DIR/fuzz/regressions/TARGET,
#   and a selection of real files from SHARED_DIR, linked, never copied); new
#   inputs go to WORK_DIR/TARGET/corpus, crashes to WORK_DIR/TARGET/artifacts/.
#   Exit status: libFuzzer's (non-zero on a crash, hang, leak or memory blow-up).
# replay: runs every file of SRC_DIR/fuzz/regressions/TARGET and
#   SRC_DIR/fuzz/seeds/TARGET once; fails if any crashes, hangs or leaks.
# Environment: FUZZ_SHARED_PER_CORPUS (WAV seeds per corpus, default 3),
#   EMOSWEEP_FUZZ_SECONDS (overrides SECONDS of a run), FUZZ_RSS_MB (default 2048), FUZZ_TIMEOUT_S (one input, default 10),
#   FUZZ_STORE_UNGUARDED=1 (store: fuzz libhdf5 in-process, see below), FUZZ_STORE_CHECK_TIMEOUT (store: default 1 s).
set -euo pipefail
mode=$1 exe=$2 target=$3 secs=$4 src=$5 shared=$6 seeds=$7 work=$8
[ "$mode" = run ] && [ -n "${EMOSWEEP_FUZZ_SECONDS:-}" ] && secs=$EMOSWEEP_FUZZ_SECONDS
rss=${FUZZ_RSS_MB:-2048}
per_input=${FUZZ_TIMEOUT_S:-10}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

case "$target" in
  pickle|wav|store) max_len=65536 ;;
  *) max_len=16384 ;;
esac
# libhdf5 1.10.8 itself hangs on some corrupt global heaps and reads out of
# bounds on others (fuzz/upstream/store/). emosweep reads a new store in a
# child process first (data/store_verify.h), so through the guarded readers
# a libhdf5 crash or hang (child time limit: FUZZ_STORE_CHECK_TIMEOUT, 1 s) is
# an error, and any crash or hang is a finding in emosweep.
# FUZZ_STORE_UNGUARDED=1 fuzzes libhdf5 and the reader in the fuzzer's own
# process instead (EMOSWEEP_STORE_CHECK_TIMEOUT=0): fork mode, going on after
# a hang (3 s; a good store reads in milliseconds) or a crash; afterwards
# every crash input is replayed and fails the run unless the first frame
# below the sanitizer is inside libhdf5 (then it is moved to
# artifacts/upstream/ and reported).
extra=()
if [ "$target" = store ]; then
  per_input=${FUZZ_TIMEOUT_S:-3}
  if [ "${FUZZ_STORE_UNGUARDED:-0}" = 1 ]; then
    export EMOSWEEP_STORE_CHECK_TIMEOUT=0
    extra=(-fork=1 -ignore_timeouts=1 -ignore_crashes=1)
  else
    export EMOSWEEP_STORE_CHECK_TIMEOUT=${FUZZ_STORE_CHECK_TIMEOUT:-1}
  fi
fi

if [ "$mode" = replay ]; then
  mapfile -t files < <(find "$src/fuzz/regressions/$target" "$src/fuzz/seeds/$target" -type f ! -name '*.md' 2>/dev/null | sort)
  if [ ${#files[@]} -eq 0 ]; then
    echo "fuzz_regress $target: no regression inputs or committed seeds"
    exit 0
  fi
  echo "fuzz_regress $target: replaying ${#files[@]} inputs"
  exec "$exe" -timeout="$per_input" -rss_limit_mb="$rss" "${files[@]}"
fi

dir="$work/$target"
mkdir -p "$dir/corpus" "$dir/artifacts"
rm -rf "$dir/shared" && mkdir -p "$dir/shared"
link() { for f in "$@"; do [ -f "$f" ] && ln -sf "$f" "$dir/shared/$(echo "${f#"$shared"/}" | tr / _)"; done; return 0; }
if [ -d "$shared" ]; then
  case "$target" in
    pickle) link "$shared"/features/*/*.pkl ;;
    wav)
      n=${FUZZ_SHARED_PER_CORPUS:-3}
      for c in "$shared"/corpora/*/; do
        mapfile -t w < <(find "$c" -name '*.wav' -printf '%s %p\n' | sort -n | head -n "$n" | cut -d' ' -f2-)
        link "${w[@]}"
      done ;;
    csv) link "$shared"/corpora/*/*.csv ;;
  esac
else
  echo "fuzz $target: $shared not found; fuzzing from the generated and committed seeds only"
fi
case "$target" in
  protocol) link "$src"/protocols/library/*.toml "$src"/tests/cluster/*.toml ;;
esac

dirs=("$dir/corpus")
for d in "$seeds/$target" "$src/fuzz/seeds/$target" "$src/fuzz/regressions/$target" "$dir/shared"; do
  [ -d "$d" ] && dirs+=("$d")
done
echo "fuzz $target: ${secs}s over ${dirs[*]}"
rc=0
touch "$dir/.run-start"
"$exe" -max_total_time="$secs" -timeout="$per_input" -rss_limit_mb="$rss" -max_len="$max_len" \
  -artifact_prefix="$dir/artifacts/" -print_final_stats=1 "${extra[@]}" "${dirs[@]}" 2>&1 | tee "$dir/last-run.log" || rc=$?
if [ "$target" = store ] && [ ${#extra[@]} -eq 0 ]; then
  # Guarded store run: the checking children's sanitizer reports are in the
  # log. One whose first frame below the sanitizer is outside libhdf5 is an
  # emosweep bug that only a child hit: fail the run and show it.
  own=$(awk '
    /ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:/ { inrep = 1; found = 0; head = $0; next }
    inrep && /^ +#[0-9]+ / && !found {
      if ($0 ~ /__interceptor|__asan|__sanitizer|__ubsan|libc\.so|fuzzer::/) next
      found = 1; inrep = 0
      if ($0 !~ /libhdf5/) { print head; print $0 }
    }' "$dir/last-run.log")
  upstream=$(grep -c -E 'ERROR: AddressSanitizer|runtime error:' "$dir/last-run.log" || true)
  echo "fuzz store: sanitizer reports from checking children: $upstream in total"
  if [ -n "$own" ]; then
    echo "fuzz store: a checking child crashed outside libhdf5 (a finding in emosweep):"
    echo "$own"
    [ "$rc" -eq 0 ] && rc=1
  fi
fi
[ ${#extra[@]} -eq 0 ] && exit $rc
# Fork mode exits non-zero when it skipped a crash; this run's crash inputs decide
# (a non-zero exit without any is a failure to run).
fuzz_rc=$rc
rc=0
new_artifacts=$(find "$dir/artifacts" -maxdepth 1 -type f -newer "$dir/.run-start" | wc -l)
[ "$fuzz_rc" -ne 0 ] && [ "$new_artifacts" -eq 0 ] && exit "$fuzz_rc"
mkdir -p "$dir/artifacts/upstream"
for a in $(find "$dir/artifacts" -maxdepth 1 -type f -newer "$dir/.run-start" \
             \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' \) | sort); do
  report=$("$exe" -timeout="$per_input" "$a" 2>&1 || true)
  first=$(grep -E '^ +#[0-9]+ ' <<<"$report" | grep -v -E '__interceptor|__asan|__sanitizer|__ubsan|libc\.so|fuzzer::' | sed -n 1p || true)
  if [[ "$first" == *libhdf5* ]]; then
    echo "fuzz $target: $(basename "$a") crashes inside libhdf5 (upstream): $first"
    mv "$a" "$dir/artifacts/upstream/"
  else
    echo "fuzz $target: $(basename "$a") is a finding in emosweep's code:"
    tail -40 <<<"$report"
    rc=1
  fi
done
exit $rc
