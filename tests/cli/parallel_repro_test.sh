#!/usr/bin/env bash
# `run --parallel K` is bitwise reproducible (issue 13, item 1): the same
# protocol run one job at a time (in this process) and two at a time (each job
# in its own worker process) gives identical metrics, curves (losses) and
# per-utterance probabilities, and the default (--parallel auto) fills the
# cores with worker processes. The protocol has dropout and DANN, which draw
# from torch's RNG: before jobs ran in their own processes, K = 2 threads of
# one process drew from one generator in a timing-dependent order.
# Usage: parallel_repro_test.sh EMOSWEEP_BINARY
set -euo pipefail
BIN=$1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" data synth --out "$W/s" --corpora 2 --speakers 4 --per-speaker 16 --seed 5 --log-level warn > /dev/null
cat > "$W/p.toml" <<'TOML'
version = 1
name = "parallel_repro"
[corpora.a]
store = "s/synth_a.h5"
[corpora.b]
store = "s/synth_b.h5"
[defaults]
labels = "core4"
features = {audio = "synth_audio", text = "synth_text"}
seeds = [1, 2]
selection = "source_val"
split = {method = "speaker_kfold", k = 2, val_fraction = 0.2}
train = {optimizer = "adamw", lr = 0.002, batch_size = 16, epochs = 3}
[[experiment]]
name = "cross"
kind = "cross_corpus"
corpora = ["a", "b"]
models = ["concat_mlp"]
[[experiment]]
name = "adapt"
kind = "adapt"
source = "a"
target = "b"
models = ["concat_mlp"]
variants = ["dann_ganin"]
weight = 0.3
TOML

dump() {  # everything a result consists of, in a fixed order
  sqlite3 "$1" "SELECT job_id, eval, name, printf('%.17g', value) FROM metrics ORDER BY 1, 2, 3;
                SELECT job_id, epoch, printf('%.17g', train_loss), printf('%.17g', val_loss) FROM curves ORDER BY 1, 2;
                SELECT job_id, eval, idx, utt_id, pred, hex(probs) FROM predictions ORDER BY 1, 2, 3;"
}

(cd "$W" && "$BIN" run p.toml --ledger one.db --parallel 1 --log-level warn > /dev/null)
(cd "$W" && "$BIN" run p.toml --ledger two.db --parallel 2 --log-level warn > /dev/null)
(cd "$W" && "$BIN" run p.toml --ledger auto.db --log-level warn > /dev/null)
n=$(sqlite3 "$W/one.db" "SELECT count(*) FROM jobs WHERE status = 'done'")
[ "$n" -ge 8 ] || fail "expected at least 8 done jobs, got $n"
for db in two auto; do
  [ "$(sqlite3 "$W/$db.db" "SELECT count(*) FROM jobs WHERE status = 'done'")" = "$n" ] || fail "$db: not every job done"
done
dump "$W/one.db" > "$W/one.txt"
[ "$(wc -l < "$W/one.txt")" -gt 100 ] || fail "too little to compare"
dump "$W/two.db" > "$W/two.txt"
cmp -s "$W/one.txt" "$W/two.txt" || { diff "$W/one.txt" "$W/two.txt" | head -5; fail "--parallel 2 differs from --parallel 1"; }
dump "$W/auto.db" > "$W/auto.txt"
cmp -s "$W/one.txt" "$W/auto.txt" || fail "the default --parallel differs from --parallel 1"
# K = 2 really ran jobs both in the run process and in a worker process (its
# pid is in the job info): one job at a time runs here, the one beside it there.
inchild=$(sqlite3 "$W/two.db" "SELECT count(json_extract(info_json, '\$.worker_pid')) FROM jobs WHERE status = 'done'")
pids=$(sqlite3 "$W/two.db" "SELECT count(DISTINCT json_extract(info_json, '\$.worker_pid')) FROM jobs WHERE status = 'done'")
[ "$inchild" -gt 0 ] && [ "$inchild" -lt "$n" ] || fail "--parallel 2 ran $inchild of $n jobs in a worker process"
[ "$pids" = 1 ] || fail "--parallel 2 used $pids worker processes (expected 1 beside the run process)"
[ "$(sqlite3 "$W/one.db" "SELECT count(json_extract(info_json, '\$.worker_pid')) FROM jobs")" = 0 ] ||
  fail "--parallel 1 should run jobs in its own process"
# Jobs that set train.threads = 2: the default runs cores / 2 of them at a time (not one per core), says so, and
# provenance records the 2 threads each ran with (helper-73, helper-74).
sed 's/epochs = 3}/epochs = 2, threads = 2}/' "$W/p.toml" > "$W/t2.toml"
grep -q 'threads = 2' "$W/t2.toml" || fail "the train.threads protocol was not written"
(cd "$W" && "$BIN" run t2.toml --ledger t2.db > "$W/t2.log" 2>&1) || { cat "$W/t2.log"; fail "the train.threads run failed"; }
want=$(( $(nproc) / 2 )); [ "$want" -ge 1 ] || want=1
grep -q "jobs set train.threads up to 2: $want job(s) at a time" "$W/t2.log" || { cat "$W/t2.log"; fail "no cores / 2 default"; }
# It re-executes itself with OMP_WAIT_POLICY=PASSIVE before it prints anything: the --pack auto line once.
[ "$(grep -c -e '--pack auto: up to ' -e '--pack auto: no job' "$W/t2.log")" = 1 ] || { cat "$W/t2.log"; fail "the --pack auto line not printed once"; }
[ "$(sqlite3 "$W/t2.db" "SELECT DISTINCT threads FROM provenance")" = 2 ] || fail "provenance threads are not 2"
# kill -9 of a sweep leaves no worker process training on (its watchdog sees
# the parent gone within a second).
sed 's/epochs = 3/epochs = 5000/' "$W/p.toml" > "$W/long.toml"
(cd "$W" && exec "$BIN" run long.toml --ledger kill.db --parallel 2 --log-level error > /dev/null 2>&1) &
runpid=$!
for _ in $(seq 1 300); do
  pgrep -f -- "--parent-pid $runpid" > /dev/null && break
  sleep 0.1
done
pgrep -f -- "--parent-pid $runpid" > /dev/null || fail "no worker process started for the long run"
kill -9 "$runpid"
wait "$runpid" 2> /dev/null || true
for _ in $(seq 1 100); do
  pgrep -f -- "--parent-pid $runpid" > /dev/null || break
  sleep 0.1
done
! pgrep -f -- "--parent-pid $runpid" > /dev/null || fail "a worker process outlived its killed sweep by 10 s"
echo "parallel_repro: $n jobs, --parallel 1 / 2 / auto identical ($(wc -l < "$W/one.txt") rows compared)"
