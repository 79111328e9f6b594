#!/usr/bin/env bash
# `run --pack` end to end (issue 16): the quick-start protocol (synthetic stores,
# real trainer) run with --pack off (single jobs, the reference path) and with
# --pack auto (the default), one job at a time and two at a time (packs then also
# run in worker processes), and with an explicit --pack 3, into separate ledgers.
# Every run gives the same job ids, byte-identical tables in every format, and
# identical metrics, losses and per-utterance probabilities. The packed runs
# really ran packs: the ledger's provenance names packs of more than one job, each
# member under its own id with the pack's id, size and its index, and the summary
# counts them. (With the reference worker::RunPack this holds by construction;
# with the batched trainer it is the check that a member equals the job alone.)
# Usage: pack_e2e_test.sh EMOSWEEP_BINARY SOURCE_DIR
set -euo pipefail
BIN=$1
SRC=$2
PROTO="$SRC/protocols/library/quickstart.toml"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
jget() { sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2')"; }

"$BIN" data synth --out "$W/stores" --log-level warn > /dev/null
common=(--store-dir "$W/stores" --log-level warn)
export EMOSWEEP_CACHE_DIR=off

dump() {  # everything a result consists of, in a fixed order
  sqlite3 "$1" "SELECT id, status FROM jobs ORDER BY 1;
                SELECT job_id, eval, name, printf('%.17g', value) FROM metrics ORDER BY 1, 2, 3;
                SELECT job_id, epoch, printf('%.17g', train_loss), printf('%.17g', val_loss) FROM curves ORDER BY 1, 2;
                SELECT job_id, eval, idx, utt_id, pred, hex(probs) FROM predictions ORDER BY 1, 2, 3;"
}

run() {  # run NAME ARGS...: a fresh ledger NAME.db, its summary NAME.summary, tables NAME.<format>
  local name=$1
  shift
  "$BIN" run "$PROTO" --ledger "$W/$name.db" --json "$@" "${common[@]}" > "$W/$name.summary"
  [ "$(jget "$W/$name.summary" '$.failed')" = 0 ] || fail "$name: jobs failed: $(cat "$W/$name.summary")"
  [ "$(jget "$W/$name.summary" '$.ran')" = "$(jget "$W/$name.summary" '$.total')" ] || fail "$name: not every job ran"
  for f in markdown latex csv json; do
    "$BIN" table "$PROTO" --ledger "$W/$name.db" --all --format "$f" "${common[@]}" > "$W/$name.$f"
  done
  dump "$W/$name.db" > "$W/$name.dump"
}

run off --pack off --parallel 1
[ "$(jget "$W/off.summary" '$.packs')" = "" ] || fail "--pack off reported packs: $(cat "$W/off.summary")"
[ "$(sqlite3 "$W/off.db" "SELECT count(*) FROM provenance WHERE json_extract(extra_json, '$.pack') IS NOT NULL")" = 0 ] \
  || fail "--pack off: a job names a pack"

run auto1 --parallel 1                  # --pack auto is the default
run auto2 --pack auto --parallel 2
run k3 --pack 3 --parallel 2
for name in auto1 auto2 k3; do
  for f in markdown latex csv json; do
    cmp -s "$W/off.$f" "$W/$name.$f" || fail "$name: table --format $f differs from --pack off"
  done
  cmp -s "$W/off.dump" "$W/$name.dump" || fail "$name: job ids, metrics, losses or predictions differ from --pack off"
  db="$W/$name.db"
  # Packs of more than one job ran, each member recorded under its own id naming the pack.
  packed=$(sqlite3 "$db" "SELECT count(*) FROM provenance WHERE json_extract(extra_json, '$.pack.size') > 1")
  [ "$packed" -gt 1 ] || fail "$name: no pack of more than one job ran"
  # Per pack: as many members as its size says, indexes 0..size-1, each member a distinct job.
  bad=$(sqlite3 "$db" "SELECT count(*) FROM (
          SELECT json_extract(extra_json, '$.pack.id') AS p, json_extract(extra_json, '$.pack.size') AS k,
                 count(*) AS n, count(DISTINCT job_id) AS d, min(json_extract(extra_json, '$.pack.index')) AS lo,
                 max(json_extract(extra_json, '$.pack.index')) AS hi
          FROM provenance WHERE p IS NOT NULL GROUP BY p)
        WHERE n != k OR d != k OR lo != 0 OR hi != k - 1")
  [ "$bad" = 0 ] || fail "$name: a pack's members do not match its size and indexes"
  # The summary counts them: the jobs in packs of more than one equal the members in the ledger.
  from_summary=$(sqlite3 :memory: "SELECT sum(CAST(key AS INTEGER) * value) FROM json_each(json_extract(readfile('$W/$name.summary'), '$.packs.sizes')) WHERE CAST(key AS INTEGER) > 1")
  [ "$from_summary" = "$packed" ] || fail "$name: summary counts $from_summary packed jobs, the ledger $packed"
  echo "$name: $packed jobs ran in packs: $(sqlite3 :memory: "SELECT json_extract(readfile('$W/$name.summary'), '$.packs')")"
done
[ "$(sqlite3 "$W/k3.db" "SELECT max(json_extract(extra_json, '$.pack.size')) FROM provenance")" = 3 ] \
  || fail "--pack 3 ran a pack larger than 3"

# Bad --pack values exit 2 naming the option, before anything is written.
if "$BIN" run "$PROTO" --ledger "$W/bad.db" --pack lots "${common[@]}" 2> "$W/bad.err"; then fail "--pack lots accepted"; fi
"$BIN" run "$PROTO" --ledger "$W/bad.db" --pack 0 "${common[@]}" 2> /dev/null && fail "--pack 0 accepted"
code=0
"$BIN" run "$PROTO" --ledger "$W/bad.db" --pack lots "${common[@]}" 2> /dev/null || code=$?
[ "$code" = 2 ] || fail "--pack lots exited $code, not 2"
grep -q -- "--pack 'lots'" "$W/bad.err" || fail "the message does not name --pack: $(cat "$W/bad.err")"
[ ! -e "$W/bad.db" ] || fail "a bad --pack created the ledger"
echo "pack e2e: ok"
