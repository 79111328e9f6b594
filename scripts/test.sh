#!/usr/bin/env bash
# The whole test suite on a new machine: installs dependencies, builds, runs ctest.
# This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --slurm   # the Slurm integration test starts a real single-node Slurm
export BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
cd "$BUILD_DIR"
ctest -j2 --output-on-failure --timeout 900 "$@"
