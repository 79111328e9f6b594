#!/usr/bin/env bash
# Brings a Debian 12 machine to a buildable state from Debian's packages.
# Idempotent: when everything is installed it only checks (about a second).
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --bench    also the Python reference pipelines used by bench/
#   scripts/install-deps.sh --slurm    also a single-node Slurm (integration test)
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-openmp          # OpenBLAS: libtorch otherwise uses the 3 GFLOP/s reference BLAS
  libopenmpi-dev openmpi-bin
  libhdf5-dev libsqlite3-dev libssl-dev
  sqlite3                                   # the sqlite3 shell: tests/orchestrator/cli_e2e_test.sh
  libboost-program-options-dev nlohmann-json3-dev libtomlplusplus-dev
  libsndfile1-dev libsoxr-dev
  zlib1g-dev                                # .npz (deflate) in data/import
  libgtest-dev
  clang-14 libclang-rt-14-dev llvm-14       # libFuzzer + ASan/UBSan for the fuzz build (fuzz/README.md); llvm-symbolizer
)
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=(python3-torch python3-torchaudio python3-numpy) ;;
    --slurm) pkgs+=(slurmctld slurmd slurm-client munge) ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
