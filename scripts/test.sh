#!/usr/bin/env bash
# The whole test suite on a new machine: installs dependencies, builds, runs ctest.
# This is the README's test command and what .ci/run calls.
# Then the fuzz suite (fuzz/README.md): a clang build in ${FUZZ_BUILD_DIR:-build-fuzz}
# and its ctests (label "fuzz": each harness for ${EMOSWEEP_FUZZ_SECONDS:-15} s;
# label "fuzz_regress": every input that once crashed is replayed). About 3
# minutes on an idle 2-core machine once ccache is warm. EMOSWEEP_SKIP_FUZZ=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --slurm   # the Slurm integration test starts a real single-node Slurm
export BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
rc=0
(cd "$BUILD_DIR" && ctest -j2 --output-on-failure --timeout 900 "$@") || rc=$?
if [ "${EMOSWEEP_SKIP_FUZZ:-0}" != 1 ]; then
  FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
  BUILD_DIR="$FUZZ_BUILD_DIR" CMAKE_ARGS="-DEMOSWEEP_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14" scripts/build.sh
  (cd "$FUZZ_BUILD_DIR" && ctest -j2 --output-on-failure --timeout 900 "$@") || rc=$?
fi
exit $rc
