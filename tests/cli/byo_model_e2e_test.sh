#!/usr/bin/env bash
# protocols/library/byo-model.toml end to end with the real binaries: model files
# missing -> plan lists them, run refuses (exit 2); a file that is not TorchScript ->
# run exits 2 naming it before any job; the files written by make_scripted_model ->
# every job runs, the table has the built-in and the TorchScript rows, and the
# TorchScript concat_mlp's cells equal the built-in concat_mlp's (same init rule,
# same data order). Usage: byo_model_e2e_test.sh EMOSWEEP MAKE_SCRIPTED_MODEL SOURCE_DIR
set -euo pipefail
BIN=$1
MK=$2
SRC=$3
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
jget() { sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2')"; }

# The protocol names its model files relative to itself: ../../quickstart-out/byo/*.pt.
mkdir -p "$W/protocols/library" "$W/quickstart-out/byo"
cp "$SRC/protocols/library/byo-model.toml" "$W/protocols/library/"
PROTO="$W/protocols/library/byo-model.toml"
BYO="$W/quickstart-out/byo"
"$BIN" data synth --out "$W/stores" --log-level warn > /dev/null
common=(--store-dir "$W/stores" --log-level warn)

# 1. No model files yet: plan lists them as missing inputs; run refuses with exit 2.
"$BIN" plan "$PROTO" "${common[@]}" > "$W/plan0.txt" 2>&1 || true
grep -q "model file $BYO/concat_mlp.pt" "$W/plan0.txt" || fail "plan does not list the missing model file: $(cat "$W/plan0.txt")"
set +e
"$BIN" run "$PROTO" --ledger "$W/l.db" "${common[@]}" > "$W/run0.txt" 2>&1
rc=$?
set -e
[ $rc = 2 ] || fail "run with missing model files exited $rc: $(cat "$W/run0.txt")"

# 2. A file that is not TorchScript: exit 2 naming it, before any job ran.
echo "not a model" > "$BYO/concat_mlp.pt"
"$MK" --out "$BYO/gated_fusion.pt" --arch gated_fusion --dims audio=64,text=32 --classes 4 --hidden 64 --dropout 0.2 > /dev/null
set +e
"$BIN" run "$PROTO" --ledger "$W/l.db" "${common[@]}" > "$W/run1.txt" 2>&1
rc=$?
set -e
[ $rc = 2 ] || fail "run with a bad model file exited $rc: $(cat "$W/run1.txt")"
grep -q "$BYO/concat_mlp.pt" "$W/run1.txt" || fail "message does not name the file: $(cat "$W/run1.txt")"
grep -q "not a TorchScript module" "$W/run1.txt" || fail "message does not say what is wrong: $(cat "$W/run1.txt")"
done_jobs=$(sqlite3 "$W/l.db" "SELECT count(*) FROM jobs WHERE status = 'done'" 2>/dev/null || echo 0)
[ "${done_jobs:-0}" = 0 ] || fail "$done_jobs jobs ran before the bad file was refused"

# 3. The real files: every job runs.
"$MK" --out "$BYO/concat_mlp.pt" --arch concat_mlp --dims audio=64,text=32 --classes 4 --hidden 64 --dropout 0.2 > /dev/null
"$BIN" run "$PROTO" --ledger "$W/l.db" --parallel 1 --threads 1 --json "${common[@]}" > "$W/run2.json"
[ "$(jget "$W/run2.json" '$.failed')" = 0 ] || fail "jobs failed: $(cat "$W/run2.json")"
[ "$(jget "$W/run2.json" '$.ran')" = 18 ] || fail "expected 18 jobs (3 models x 3 held-out x 2 seeds): $(cat "$W/run2.json")"

# 4. One table: three rows; the TorchScript concat_mlp equals the built-in one cell for cell.
"$BIN" table "$PROTO" --ledger "$W/l.db" --format csv "${common[@]}" > "$W/t.csv"
cat "$W/t.csv"
for row in concat_mlp concat_mlp_ts gated_fusion_ts; do
  grep -q "^[^,]*,\"\?$row\"\?," "$W/t.csv" || fail "no row $row"
done
builtin=$(grep -E '^[^,]*,"?concat_mlp"?,' "$W/t.csv" | cut -d, -f3-8)
scripted=$(grep -E '^[^,]*,"?concat_mlp_ts"?,' "$W/t.csv" | cut -d, -f3-8)
[ -n "$builtin" ] && [ "$builtin" = "$scripted" ] || fail "TorchScript concat_mlp ($scripted) != built-in ($builtin)"
echo "byo-model e2e: OK"
