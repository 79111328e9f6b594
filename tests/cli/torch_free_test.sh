#!/usr/bin/env bash
# Issue 15: the `emosweep` executable links no libtorch, and state commands
# (version, help, data inspect, plan, ledger, table, report, submit, a re-run
# with nothing to do) never load it; training loads it through the torch
# module libemosweep_torch.so (cli/torch_module.h). A missing or foreign
# module is bad input: exit 2, naming the paths tried.
# Usage: torch_free_test.sh EMOSWEEP_BINARY
set -euo pipefail
BIN=$1
MODULE="$(dirname "$BIN")/../lib/libemosweep_torch.so"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. No torch library among the executable's direct dependencies.
readelf -d "$BIN" > "$W/dynamic.txt"
grep -q NEEDED "$W/dynamic.txt" || fail "readelf shows no NEEDED entry at all"
if grep NEEDED "$W/dynamic.txt" | grep -Eq 'libtorch|libc10'; then
  fail "bin/emosweep links libtorch: $(grep NEEDED "$W/dynamic.txt" | grep -E 'libtorch|libc10' | tr -s ' ')"
fi
[ -f "$MODULE" ] || fail "no torch module at $MODULE"

# torch_loads NAME CMD...: runs CMD under LD_DEBUG=files (every shared object the dynamic
# loader opens, dlopen included, goes to $W/ld.NAME.PID); exit 0 if libtorch or the module
# was opened. CMD itself must succeed.
torch_loads() {
  local name=$1
  shift
  LD_DEBUG=files LD_DEBUG_OUTPUT="$W/ld.$name" "$@" > "$W/out.$name" 2> "$W/err.$name" \
    || fail "$name: exit $?: $(cat "$W/err.$name")"
  cat "$W"/ld."$name".* > "$W/files.$name"
  grep -q 'file=' "$W/files.$name" || fail "$name: LD_DEBUG=files logged nothing"
  grep -Eq 'file=[^ ]*(libtorch|libc10|libemosweep_torch)' "$W/files.$name"
}

"$BIN" data synth --out "$W/s" --corpora 1 --speakers 4 --per-speaker 12 --seed 3 --log-level warn > /dev/null
cat > "$W/p.toml" <<'EOF'
version = 1
name = "tiny"
[corpora.synth_a]
store = "${STORE_DIR}/synth_a.h5"
[defaults]
labels = "core4"
features = {audio = "synth_audio", text = "synth_text"}
seeds = [1]
selection = "source_val"
split = {method = "speaker_kfold", k = 2, val_fraction = 0.25}
train = {batch_size = 16, epochs = 2}
[[experiment]]
name = "in_domain"
kind = "in_domain"
corpora = ["synth_a"]
models = ["concat_mlp"]
[[table]]
name = "t"
experiment = "in_domain"
rows = "model"
columns = "corpus"
metrics = ["ua"]
spread = "std"
EOF
common=(--store-dir "$W/s" --log-level warn)

# 2. Training loads the module (the check below can see a load) ...
torch_loads run1 "$BIN" run "$W/p.toml" --ledger "$W/l.db" --parallel 1 --json "${common[@]}" \
  || fail "run trained without loading libtorch? $(head -c 2000 "$W/files.run1")"
grep -q '"ran": 2' "$W/out.run1" || fail "run did not run both jobs: $(cat "$W/out.run1")"

# 3. ... state commands do not.
export EMOSWEEP_CACHE_DIR="$W/cache"
i=0
while IFS= read -r line; do
  i=$((i + 1))
  eval "cmd=($line)"
  if torch_loads "state$i" "$BIN" "${cmd[@]}"; then
    fail "'emosweep $line' loaded libtorch: $(grep -E 'file=[^ ]*(libtorch|libc10|libemosweep_torch)' "$W/files.state$i" | head -3)"
  fi
done <<EOF
version
--help
plan --help
data inspect "$W/s/synth_a.h5"
plan "$W/p.toml" --ledger "$W/l.db" ${common[*]}
ledger status --ledger "$W/l.db"
ledger query --ledger "$W/l.db" --status done
table "$W/p.toml" --ledger "$W/l.db" ${common[*]}
report "$W/p.toml" --ledger "$W/l.db" --out "$W/r.html" ${common[*]}
submit "$W/p.toml" --ledger "$W/l.db" --dry-run ${common[*]}
run "$W/p.toml" --ledger "$W/l.db" --json ${common[*]}
EOF
grep -q '"ran": 0' "$W/out.state$i" || fail "the re-run ran jobs: $(cat "$W/out.state$i")"

# 4. Without the module: state commands still work; training names every path looked at, exit 2.
mkdir -p "$W/inst/bin"
cp "$BIN" "$W/inst/bin/emosweep"
"$W/inst/bin/emosweep" ledger status --ledger "$W/l.db" > /dev/null || fail "a state command needs the module"
printf 'seed = 1\n' > "$W/job.toml"
set +e
env -u EMOSWEEP_TORCH_MODULE "$W/inst/bin/emosweep" train --config "$W/job.toml" > "$W/o" 2> "$W/e"
code=$?
set -e
[ "$code" = 2 ] || fail "train without the module: exit $code, want 2: $(cat "$W/e")"
for want in "$W/inst/bin/libemosweep_torch.so" "$W/inst/lib/libemosweep_torch.so" "EMOSWEEP_TORCH_MODULE"; do
  grep -qF "$want" "$W/e" || fail "train without the module does not name '$want': $(cat "$W/e")"
done
set +e
"$W/inst/bin/emosweep" run "$W/p.toml" --ledger "$W/l.db" "${common[@]}" > "$W/o" 2> "$W/e"
code=$?
set -e
[ "$code" = 2 ] || fail "run without the module: exit $code, want 2: $(cat "$W/e")"
grep -qF "$W/inst/lib/libemosweep_torch.so" "$W/e" || fail "run without the module: $(cat "$W/e")"

# 5. A file that is not this build's module: exit 2 naming it.
other=$(ldd "$BIN" | awk '/libsqlite3/ { print $3 }')
[ -f "$other" ] || fail "no libsqlite3 to stand in for a foreign module"
cp "$other" "$W/inst/bin/libemosweep_torch.so"
sed -e 's/epochs = 2/epochs = 1/' "$W/p.toml" > "$W/p2.toml"
set +e
"$W/inst/bin/emosweep" run "$W/p2.toml" --ledger "$W/l2.db" --parallel 1 "${common[@]}" > "$W/o" 2> "$W/e"
code=$?
set -e
grep -qF "$W/inst/bin/libemosweep_torch.so: not the torch module of this emosweep build" "$W/e" \
  || fail "a foreign module is not named: $(cat "$W/e")"
[ "$code" = 2 ] || fail "run with a foreign module: exit $code, want 2"
[ "$(sqlite3 "$W/l2.db" "SELECT count(*) FROM jobs WHERE status = 'failed'")" = 0 ] \
  || fail "a foreign module marked jobs failed"

# 6. EMOSWEEP_TORCH_MODULE points the copy at the real module: it trains.
rm "$W/inst/bin/libemosweep_torch.so"
EMOSWEEP_TORCH_MODULE="$MODULE" "$W/inst/bin/emosweep" run "$W/p2.toml" --ledger "$W/l3.db" --parallel 1 --json \
  "${common[@]}" > "$W/o" 2> "$W/e" || fail "run with EMOSWEEP_TORCH_MODULE: $(cat "$W/e")"
grep -q '"failed": 0' "$W/o" || fail "run with EMOSWEEP_TORCH_MODULE: $(cat "$W/o")"
echo "torch-free: ok"
