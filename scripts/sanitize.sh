#!/usr/bin/env bash
# A long check, not part of .ci/run (about 20 minutes of two cores to build, a few to run): the torch-free
# test binaries built with sanitizers and run.
#   scripts/sanitize.sh asan   AddressSanitizer + UndefinedBehaviorSanitizer (leaks, heap/stack misuse, UB)
#   scripts/sanitize.sh tsan   ThreadSanitizer over the multi-threaded ones (runner, scheduler, ledger, process pool,
#                              coordinator, progress, store checks)
# Build dirs: build-asan / build-tsan (BUILD_DIR overrides). Needs the main build (scripts/build.sh): tests that
# start the real binary use build/bin/emosweep, which is not instrumented (the torch module is never built here).
# Exit status: non-zero when a binary fails or a sanitizer reports. Session 23 (helper-75) found one data race
# this way (ProcessPool's pid, now written under its mutex; ProcessPool.PidsAreReadWhileJobsStartAndReapChildren).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-}
case "$MODE" in
  asan)
    FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow"
    LINK="-fsanitize=address,undefined"
    TARGETS=(test_core test_jobs test_jobs_memory test_models_config test_cluster test_cluster_coordinator test_coordinator
             test_process_pool test_orchestrator orchestrator_fake_sweep test_orchestrator_process test_data_audio
             test_data_adapters test_data_store test_protocols) ;;
  tsan)
    FLAGS="-fsanitize=thread -fno-omit-frame-pointer"
    LINK="-fsanitize=thread"
    TARGETS=(test_core test_coordinator test_cluster_coordinator test_process_pool test_orchestrator
             orchestrator_fake_sweep test_orchestrator_process test_data_store) ;;
  *) echo "usage: scripts/sanitize.sh asan|tsan" >&2; exit 2 ;;
esac
BUILD_DIR=${BUILD_DIR:-build-$MODE}
[ -x build/bin/emosweep ] || { echo "sanitize.sh: build/bin/emosweep missing: run scripts/build.sh first" >&2; exit 2; }
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMOSWEEP_BUILD_BENCH=OFF \
    -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$LINK" -DCMAKE_SHARED_LINKER_FLAGS="$LINK" > /dev/null || exit 1
fi
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target "${TARGETS[@]}" || exit 1
# The binary the CLI tests start: the main build's (its in-process code is not what is checked here).
mkdir -p "$BUILD_DIR/bin" && ln -sf "$PWD/build/bin/emosweep" "$BUILD_DIR/bin/emosweep"

# HDF5 keeps the buffers of a file whose write failed (data/h5_util.cc: H5dont_atexit), a one-off per failed write.
SUPP="$(realpath "$BUILD_DIR")/lsan.supp"
echo "leak:libhdf5" > "$SUPP"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" LSAN_OPTIONS="suppressions=$SUPP"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1"
failed=()
for t in "${TARGETS[@]}"; do
  [ "$t" = orchestrator_fake_sweep ] && continue
  bin=$(find "$BUILD_DIR/tests" -type f -name "$t" -perm -u+x | head -1)
  filter="*"
  # GCC 12's ASan does not hold its allocator lock across fork(): a child forked while another thread allocates can
  # hang in it (helper-75 saw it once in three runs); glibc's malloc, which the product uses, does.
  [ "$MODE" = asan ] && [ "$t" = test_data_store ] && filter="-FeatureStoreCheck.FirstOpensForkSafelyWhileOtherThreadsAllocateAndLog"
  log="$BUILD_DIR/$t.log"
  echo "== $t ($MODE)"
  abs=$(realpath "$bin")
  (cd "$BUILD_DIR" && "$abs" --gtest_filter="$filter") > "$log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] || grep -q -E "ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:" "$log"; then
    failed+=("$t")
    grep -m 5 -E "ERROR: |WARNING: ThreadSanitizer|runtime error:|FAILED" "$log"
  fi
  tail -1 "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize.sh ($MODE): ${failed[*]} failed; logs in $BUILD_DIR/<binary>.log"
  exit 1
fi
echo "sanitize.sh ($MODE): every binary clean"
