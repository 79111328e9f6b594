#!/usr/bin/env bash
# `run --pack` end to end (issue 16): the quick-start protocol (synthetic stores,
# real trainer) run with --pack off (single jobs, the reference path) and with
# --pack auto (the default), one job at a time and two at a time (packs then also
# run in worker processes), and with an explicit --pack 3, into separate ledgers.
# Every run gives the same job ids, byte-identical tables in every format, and
# identical metrics, losses and per-utterance probabilities. The packed runs
# really ran packs: the ledger's provenance names packs of more than one job, each
# member under its own id with the pack's id, size and its index, and the summary
# counts them. SIGTERM mid-pack sends unfinished members back to pending and the
# re-run resumes them to the same results. (With the reference worker::RunPack this holds by construction;
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

# SIGTERM while packs run (one in this process, one in a worker process: --parallel 2 shares
# the ready jobs of the key): members not finished go back to pending, the run exits 0 with
# "stopped"; the re-run resumes them and the results equal --pack off's, bitwise.
"$BIN" data synth --out "$W/s2" --corpora 2 --speakers 4 --per-speaker 16 --seed 5 --log-level warn > /dev/null
cat > "$W/stop.toml" <<'TOML'
version = 1
name = "pack_stop"
[corpora.a]
store = "s2/synth_a.h5"
[corpora.b]
store = "s2/synth_b.h5"
[defaults]
labels = "core4"
features = {audio = "synth_audio", text = "synth_text"}
seeds = [1, 2, 3]
selection = "source_val"
split = {method = "speaker_kfold", k = 2, val_fraction = 0.2}
train = {optimizer = "adamw", lr = 0.002, batch_size = 8, epochs = 1000}
[[experiment]]
name = "cross"
kind = "cross_corpus"
corpora = ["a", "b"]
models = ["concat_mlp"]
TOML
"$BIN" run "$W/stop.toml" --ledger "$W/stop.db" --pack auto --parallel 2 --json > "$W/stop.summary" 2> "$W/stop.log" &
pid=$!
for _ in $(seq 1 300); do
  grep -q "jobs handed out as one" "$W/stop.log" 2> /dev/null && break
  sleep 0.1
done
grep -q "jobs handed out as one" "$W/stop.log" || fail "no pack started: $(tail -3 "$W/stop.log")"
sleep 0.3
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
[ "$code" = 3 ] || fail "SIGTERM: exit $code, not 3 (stopped with jobs left): $(tail -3 "$W/stop.log")"
[ "$(jget "$W/stop.summary" '$.stopped')" = 1 ] || fail "SIGTERM: the summary does not say stopped"
interrupted=$(jget "$W/stop.summary" '$.interrupted')
[ "$interrupted" -ge 1 ] || fail "SIGTERM: no member was interrupted: $(cat "$W/stop.summary")"
[ "$(sqlite3 "$W/stop.db" "SELECT count(*) FROM jobs WHERE status = 'running'")" = 0 ] || fail "SIGTERM: jobs left running"
[ "$(sqlite3 "$W/stop.db" "SELECT count(*) FROM jobs WHERE status = 'pending' AND kind = 'supervised'")" -ge "$interrupted" ] \
  || fail "SIGTERM: interrupted members are not pending"
"$BIN" run "$W/stop.toml" --ledger "$W/stop.db" --json --log-level warn > "$W/stop2.summary"
[ "$(jget "$W/stop2.summary" '$.failed')" = 0 ] || fail "resume after SIGTERM: jobs failed"
"$BIN" run "$W/stop.toml" --ledger "$W/stopoff.db" --pack off --parallel 1 --json --log-level warn > /dev/null
cmp -s <(dump "$W/stop.db") <(dump "$W/stopoff.db") || fail "after SIGTERM and resume, results differ from --pack off"
echo "SIGTERM mid-pack: $interrupted member(s) back to pending, resumed to the results of --pack off"

# Bad --pack values exit 2 naming the option, before anything is written.
if "$BIN" run "$PROTO" --ledger "$W/bad.db" --pack lots "${common[@]}" 2> "$W/bad.err"; then fail "--pack lots accepted"; fi
"$BIN" run "$PROTO" --ledger "$W/bad.db" --pack 0 "${common[@]}" 2> /dev/null && fail "--pack 0 accepted"
code=0
"$BIN" run "$PROTO" --ledger "$W/bad.db" --pack lots "${common[@]}" 2> /dev/null || code=$?
[ "$code" = 2 ] || fail "--pack lots exited $code, not 2"
grep -q -- "--pack 'lots'" "$W/bad.err" || fail "the message does not name --pack: $(cat "$W/bad.err")"
[ ! -e "$W/bad.db" ] || fail "a bad --pack created the ledger"
echo "pack e2e: ok"
