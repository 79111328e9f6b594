#!/usr/bin/env bash
# Configures and builds emosweep into ${BUILD_DIR:-build} (Ninja, ccache, -j2).
#   scripts/build.sh [extra targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j"$JOBS" ${1:+--target "$@"}
