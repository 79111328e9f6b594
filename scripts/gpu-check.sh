#!/usr/bin/env bash
# scripts/gpu-check.sh: builds emosweep against a CUDA libtorch 2.x with NCCL on
# the GPU machine and runs the GPU checks of issue 6 (docs/design/distributed.md,
# "GPU path"):
#   1. the same small sweep on the CPU and on the GPU: per-job UA/WA within tolerance;
#   2. epoch and job times on both devices (from the two ledgers);
#   3. the NCCL reducer's allreduce bus bandwidth next to MPI_Allreduce (bench/allreduce_bench);
#   4. with 2+ GPUs: the sweep with data-parallel groups of 2 (NCCL) vs the same groups on the CPU;
#   5. packs on the device (issue 16): the sweep with --pack off vs --pack auto there (per-job UA/WA within
#      tolerance), and bench/pack_bench on the device: K real-corpora MLP jobs as one pack vs one after
#      another (jobs/s ratio against the 50x target; predicted classes equal to the job alone's for >= 99.9 %
#      of utterances, which the bench's exit status checks).
#
#   scripts/gpu-check.sh [--deps DIR] [--build-dir DIR] [--out DIR] [--device cuda:0] [--no-build]
#   scripts/gpu-check.sh --cpu-only [--build-dir DIR] [--no-build] [--out DIR]
#   scripts/gpu-check.sh --fetch-deps DIR     # on a Debian 12 machine with apt: the .debs --deps needs
#
# --cpu-only runs the same steps with the CPU standing in for the GPU (CPU libtorch,
# MPI reducer, device "cpu" twice), so the script's logic is exercised on machines
# without a GPU; there check 1 must find the two runs bitwise identical (CPU runs
# are reproducible), which is a stricter test than the GPU tolerance.
#
# The GPU machine (toolchain.md) has CUDA 13 under /usr/local/cuda and a Python
# torch 2.x+cu130 whose bundled libtorch is used here (torch.utils.cmake_prefix_path),
# NCCL from the nvidia-nccl-cu13 wheel, but no Debian -dev packages and no network:
# `--fetch-deps DIR` downloads them here (apt-get download), the directory is carried
# there, and --deps DIR unpacks every .deb in it with dpkg -x into DIR/root.
# Tolerances (env): GPU_CHECK_TOL_MEAN (mean |ΔUA| over jobs, default 0.03),
# GPU_CHECK_TOL_MAX (largest |ΔUA| of one job, default 0.15); see the design note.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD

CPU_ONLY=0 BUILD="" OUT_DIR="" DEVICE="cuda:0" DEPS="" NO_BUILD=0 FETCH=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-only) CPU_ONLY=1 ;;
    --build-dir) BUILD=$2; shift ;;
    --out) OUT_DIR=$2; shift ;;
    --device) DEVICE=$2; shift ;;
    --deps) DEPS=$2; shift ;;
    --no-build) NO_BUILD=1 ;;
    --fetch-deps) FETCH=$2; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
TOL_MEAN=${GPU_CHECK_TOL_MEAN:-0.03}
TOL_MAX=${GPU_CHECK_TOL_MAX:-0.15}
PY=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}

# Runtime and build dependencies that the GPU image lacks (Debian 12 names).
DEB_PKGS=(libhdf5-dev libhdf5-103-1 libsz2 libaec0 libcurl4 libsqlite3-dev libsqlite3-0
  libboost-program-options-dev libboost-program-options1.74-dev libboost-program-options1.74.0 libboost1.74-dev
  nlohmann-json3-dev libtomlplusplus-dev libtomlplusplus3 libsndfile1-dev libsndfile1 libsoxr-dev libsoxr0
  libflac12 libogg0 libvorbis0a libvorbisenc2 libopus0 libmpg123-0 libmp3lame0
  libssl-dev zlib1g-dev libgtest-dev
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libpmix2 libhwloc15 libevent-2.1-7 libevent-core-2.1-7
  libevent-pthreads-2.1-7 libfabric1 libucx0 libibverbs1 librdmacm1 libpsm2-2 libpsm-infinipath1 libnl-3-200
  libnl-route-3-200 libgfortran5 libmunge2 libnuma1 libxnvctrl0 libltdl7 libefa1)

if [ -n "$FETCH" ]; then
  mkdir -p "$FETCH"
  (cd "$FETCH" && apt-get download "${DEB_PKGS[@]}")
  du -sh "$FETCH"
  echo "carry $FETCH to the GPU machine and run: scripts/gpu-check.sh --deps $FETCH"
  exit 0
fi

if [ "$CPU_ONLY" = 1 ]; then
  DEVICE=cpu
  BUILD=${BUILD:-build-gpucheck-cpu}
else
  BUILD=${BUILD:-build-gpu}
fi
OUT_DIR=${OUT_DIR:-$BUILD/gpu-check}
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/gpu-check.txt"
: > "$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }
FAILED=0
fail_check() { say "FAIL: $*"; FAILED=1; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader

# --- toolchain -----------------------------------------------------------------
CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ -n "$DEPS" ]; then
  ROOT="$DEPS/root"
  if [ ! -d "$ROOT/usr" ]; then
    mkdir -p "$ROOT"
    for f in "$DEPS"/*.deb; do dpkg -x "$f" "$ROOT"; done
  fi
  MA=x86_64-linux-gnu
  export PATH="$ROOT/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$ROOT/usr/lib/$MA:$ROOT/usr/lib/$MA/openmpi/lib:$ROOT/usr/lib/$MA/hdf5/serial:${LD_LIBRARY_PATH:-}"
  export PKG_CONFIG_PATH="$ROOT/usr/lib/$MA/pkgconfig:$ROOT/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
  export OPAL_PREFIX="$ROOT/usr"  # Open MPI unpacked away from /usr: relocate its prefix
  export CPATH="$ROOT/usr/include:$ROOT/usr/include/$MA:${CPATH:-}"
  export LIBRARY_PATH="$ROOT/usr/lib/$MA:${LIBRARY_PATH:-}"
  CMAKE_ARGS+=(-DHDF5_ROOT="$ROOT/usr/lib/$MA/hdf5/serial" -DMPI_C_COMPILER="$ROOT/usr/bin/mpicc")
  PREFIXES="$ROOT/usr"
else
  PREFIXES=""
fi
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)

if [ "$CPU_ONLY" = 0 ]; then
  if ! command -v nvidia-smi >/dev/null; then say "no nvidia-smi: not a GPU machine (use --cpu-only)"; exit 2; fi
  nvidia-smi -L | tee -a "$REPORT"
  TORCH_PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
  $PY -c 'import torch, sys; print("python torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); sys.exit(0 if torch.cuda.is_available() else 1)' | tee -a "$REPORT"
  NCCL_HOME=$($PY -c 'import nvidia.nccl as m; print(list(m.__path__)[0])')
  NCCL_LIB=$(ls "$NCCL_HOME"/lib/libnccl.so* | head -1)
  CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
  export PATH="$CUDA_HOME/bin:$PATH" CUDACXX="$CUDA_HOME/bin/nvcc"
  export LD_LIBRARY_PATH="$NCCL_HOME/lib:$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}"
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # Hopper (toolchain.md)
  CMAKE_ARGS+=(-DCMAKE_PREFIX_PATH="$TORCH_PREFIX${PREFIXES:+;$PREFIXES}"
               -DEMOSWEEP_WITH_CUDA=ON -DEMOSWEEP_WITH_NCCL=ON -DEMOSWEEP_WITH_MPI=ON
               -DNCCL_INCLUDE_DIR="$NCCL_HOME/include" -DNCCL_LIBRARY="$NCCL_LIB"
               -DCUDART_INCLUDE_DIR="$CUDA_HOME/include" -DCUDART_LIBRARY="$CUDA_HOME/lib64/libcudart.so")
  say "torch prefix $TORCH_PREFIX; NCCL $NCCL_LIB; arch $TORCH_CUDA_ARCH_LIST"
else
  CMAKE_ARGS+=(-DEMOSWEEP_WITH_MPI=ON)
  [ -n "$PREFIXES" ] && CMAKE_ARGS+=(-DCMAKE_PREFIX_PATH="$PREFIXES")
fi

# --- build -----------------------------------------------------------------------
if [ "$NO_BUILD" = 0 ]; then
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S "$SRC" -B "$BUILD" "${CMAKE_ARGS[@]}" 2>&1 | tee "$OUT_DIR/configure.log" | grep "emosweep:" | tee -a "$REPORT"
  fi
  cmake --build "$BUILD" -j"$JOBS" --target emosweep allreduce_bench pack_bench > "$OUT_DIR/build.log" 2>&1 \
    || { tail -30 "$OUT_DIR/build.log"; say "FAIL: build (log: $OUT_DIR/build.log)"; exit 1; }
fi
ES="$BUILD/bin/emosweep"
[ -x "$ES" ] || { say "no $ES (build first, or drop --no-build)"; exit 1; }
VERSION=$("$ES" version)
say "$VERSION"
if [ "$CPU_ONLY" = 0 ]; then
  grep -q 'with_cuda: true' <<< "$VERSION" || fail_check "the build does not use CUDA"
  grep -q 'with_nccl: true' <<< "$VERSION" || fail_check "the build has no NCCL reducer"
fi

# --- check 1 and 2: the same sweep on the CPU and on $DEVICE ----------------------
W=$(mktemp -d "${TMPDIR:-/tmp}/es_gpu_check.XXXXXX")
trap 'rm -rf "$W"' EXIT
"$ES" data synth --out "$W/stores" --corpora 2 --speakers 4 --per-speaker 12 --seed 3 --log-level warn >/dev/null
P="$SRC/tests/cluster/mpi_protocol.toml"
for tag in ref dev; do
  dev=$([ $tag = ref ] && echo cpu || echo "$DEVICE")
  # The reference runs single jobs (--pack off): check 1 compares devices, check 5 packs on the device.
  "$ES" run "$P" --store-dir "$W/stores" --ledger "$W/$tag.sqlite" --device "$dev" --threads 1 --log-level warn \
    --pack off > "$OUT_DIR/run_$tag.txt" 2>&1 || { cat "$OUT_DIR/run_$tag.txt"; fail_check "sweep on $dev"; }
done
say "== check 1: per-job metrics, $DEVICE vs cpu (tolerance: mean |dUA| <= $TOL_MEAN, max <= $TOL_MAX)"
cat > "$W/compare.py" <<'EOF'
import sqlite3, sys
ref, dev, tol_mean, tol_max, cpu_only = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
db = sqlite3.connect(ref)
db.execute("attach ? as d", (dev,))
rows = db.execute("""select a.name, abs(a.value - b.value) from metrics a join d.metrics b
                     on a.job_id = b.job_id and a.eval = b.eval and a.name = b.name
                     where a.name in ('ua', 'wa')""").fetchall()
jobs = db.execute("select count(*) from jobs where status = 'done'").fetchone()[0]
jobs_d = db.execute("select count(*) from d.jobs where status = 'done'").fetchone()[0]
ok = jobs > 0 and jobs == jobs_d and rows
for m in ("ua", "wa"):
    d = [x for n, x in rows if n == m]
    mean, mx = (sum(d) / len(d), max(d)) if d else (float("nan"), float("nan"))
    print(f"  {m}: {len(d)} job/eval pairs, mean |diff| {mean:.4f}, max |diff| {mx:.4f}")
    if m == "ua":
        ok = ok and (mx == 0 if cpu_only else (mean <= tol_mean and mx <= tol_max))
print(f"  jobs done: cpu {jobs}, device {jobs_d}; " + ("PASS" if ok else "FAIL") +
      (" (cpu-only: must be bitwise equal)" if cpu_only else ""))
sys.exit(0 if ok else 1)
EOF
compare() {  # compare REF_DB DEV_DB: per-job UA/WA within tolerance (bitwise with --cpu-only)
  $PY "$W/compare.py" "$1" "$2" "$TOL_MEAN" "$TOL_MAX" "$CPU_ONLY" | tee -a "$REPORT"
  return "${PIPESTATUS[0]}"
}
compare "$W/ref.sqlite" "$W/dev.sqlite" || FAILED=1
say "== check 2: times per epoch and per job (mean over the sweep's jobs, one CPU thread)"
$PY - "$W/ref.sqlite" "$W/dev.sqlite" "$DEVICE" <<'EOF' | tee -a "$REPORT" || FAILED=1
import sqlite3, sys
out = []
for path, name in ((sys.argv[1], "cpu"), (sys.argv[2], sys.argv[3])):
    db = sqlite3.connect(path)
    epoch = db.execute("select avg(seconds), count(*) from curves").fetchone()
    job = db.execute("select avg(seconds) from provenance").fetchone()[0]
    out.append((name, epoch[0] or 0.0, epoch[1], job or 0.0))
for name, e, n, j in out:
    print(f"  {name:8s} epoch {e * 1000:8.2f} ms ({n} epochs)   job {j * 1000:8.1f} ms")
print(f"  device/cpu epoch-time ratio {out[1][1] / out[0][1]:.2f} (tiny models: launch-bound on a GPU)" if out[0][1] else "")
EOF

# --- check 3: allreduce bandwidth ---------------------------------------------------
if [ "$CPU_ONLY" = 1 ]; then
  say "== check 3: MPI reducer vs MPI_Allreduce, 2 ranks (cpu-only stand-in for NCCL)"
  "${MPIRUN[@]}" -n 2 "$BUILD/bench/allreduce_bench" 2>&1 | tee -a "$REPORT" || fail_check "allreduce_bench"
else
  NG=$(nvidia-smi -L | grep -c '^GPU')
  say "== check 3: NCCL reducer vs MPI_Allreduce (host), $NG rank(s), one per GPU"
  [ "$NG" -lt 2 ] && say "  one GPU: NCCL refuses two ranks on one device, so this is 1 rank (busbw is 0 by definition; algbw is the in-place device pass)"
  "${MPIRUN[@]}" -n "$NG" "$BUILD/bench/allreduce_bench" --device cuda 2>&1 | tee -a "$REPORT" || fail_check "allreduce_bench --device cuda"
fi

# --- check 4: data-parallel groups on the device --------------------------------------
# mpirun -n 3 --group-size 2: rank 0 coordinates, ranks 1-2 train each job together (NCCL on CUDA,
# placement gives each its own GPU). Reference: the same groups on the CPU (MPI reducer).
NG=$([ "$CPU_ONLY" = 1 ] && echo 2 || nvidia-smi -L | grep -c '^GPU')
if [ "$NG" -ge 2 ]; then
  DPDEV=$([ "$CPU_ONLY" = 1 ] && echo cpu || echo cuda)
  say "== check 4: data-parallel groups of 2 ranks, $DPDEV vs cpu"
  for tag in dpref dpdev; do
    dev=$([ $tag = dpref ] && echo cpu || echo "$DPDEV")
    "${MPIRUN[@]}" -n 3 "$ES" run "$P" --store-dir "$W/stores" --ledger "$W/$tag.sqlite" --device "$dev" \
      --group-size 2 --threads 1 --oversubscribe --log-level warn > "$OUT_DIR/run_$tag.txt" 2>&1 \
      || { tail -20 "$OUT_DIR/run_$tag.txt"; fail_check "data-parallel sweep on $dev"; }
  done
  compare "$W/dpref.sqlite" "$W/dpdev.sqlite" || FAILED=1
  for tag in dpref dpdev; do  # every job trained on a group of 2 (not silently on one rank), with the right reducer
    want=$([ $tag = dpdev ] && [ "$CPU_ONLY" = 0 ] && echo nccl || echo mpi)
    got=$($PY -c 'import json, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("select info_json from jobs where status = \"done\"").fetchall()
print(" ".join(sorted({"%s/%s" % (json.loads(r[0])["world_size"], json.loads(r[0])["reducer"]) for r in rows})))' "$W/$tag.sqlite")
    say "  $tag: group size/reducer of its jobs: $got"
    [ "$got" = "2/$want" ] || fail_check "$tag: expected every job on a group of 2 with the $want reducer"
  done
else
  say "== check 4: skipped, data-parallel groups on CUDA need 2 GPUs (this machine has $NG)"
fi

# --- check 5: packs on the device (issue 16) ------------------------------------------------
say "== check 5: the sweep packed on $DEVICE (--pack auto) vs single jobs there (--pack off)"
# One worker: every ready job of a shape joins its pack (with a worker per core, auto shares them out).
"$ES" run "$P" --store-dir "$W/stores" --ledger "$W/packed.sqlite" --device "$DEVICE" --threads 1 --log-level warn \
  --parallel 1 --pack auto --json > "$OUT_DIR/run_packed.txt" 2>&1 \
  || { cat "$OUT_DIR/run_packed.txt"; fail_check "packed sweep on $DEVICE"; }
packs=$($PY -c 'import json, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("select info_json from jobs where status = \"done\"").fetchall()
sizes = [json.loads(r[0]).get("pack", {}).get("size", 1) for r in rows]
print(sum(1 for s in sizes if s > 1), len(sizes))' "$W/packed.sqlite") || packs="0 0"
say "  jobs trained in packs / done: ${packs/ / \/ }"
[ "${packs%% *}" -gt 0 ] || fail_check "no job of the sweep trained in a pack on $DEVICE"
compare "$W/dev.sqlite" "$W/packed.sqlite" || FAILED=1
PB_KS=${GPU_CHECK_PACK_KS:-$([ "$CPU_ONLY" = 1 ] && echo 1,8 || echo 1,16,64,256)}
PB_EPOCHS=${GPU_CHECK_PACK_EPOCHS:-$([ "$CPU_ONLY" = 1 ] && echo 5 || echo 30)}
say "== check 5b: pack_bench on $DEVICE, K in $PB_KS, $PB_EPOCHS epochs (target: packed jobs/s >= 50x single on a GPU)"
"$BUILD/bench/pack_bench" --device "$DEVICE" --ks "$PB_KS" --reps 1 --epochs "$PB_EPOCHS" --single-sample 16 \
  2> "$OUT_DIR/pack_bench.err" | tee -a "$REPORT" \
  || fail_check "pack_bench on $DEVICE: a job failed, a pack ran alone or a member's predictions beyond 0.1 % (stderr: $OUT_DIR/pack_bench.err)"

say "== gpu-check: $([ $FAILED = 0 ] && echo PASS || echo FAIL) (report: $REPORT)"
exit $FAILED
