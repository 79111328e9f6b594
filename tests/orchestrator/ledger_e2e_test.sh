#!/usr/bin/env bash
# End-to-end test of the ledger and checkpoint hardening of issue 13 with the real
# `emosweep` binary (synthetic stores, real trainer, CPU): checkpoints found when a
# sweep is resumed from another directory; a deleted or corrupt checkpoint re-runs its
# producer, with the dependents' numbers equal to an uninterrupted run; a foreign SQLite
# file refused untouched; a directory as --ledger refused; read-only commands on a ledger
# in a read-only directory; a kill -9'd sweep marked interrupted and its running job not
# charged an attempt; `ledger query` refusing VACUUM INTO and honouring --timeout.
# Usage: ledger_e2e_test.sh EMOSWEEP_BINARY
set -euo pipefail
BIN=$(readlink -f "$1")
W=$(mktemp -d)
trap 'chmod -R u+w "$W" 2>/dev/null; rm -rf "$W"' EXIT
chmod 755 "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }
jget() { sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2')"; }
# The test metrics of every finetune job, one line per job: "id name=value ...".
numbers() { sqlite3 "$1" "SELECT j.id || ' ' || group_concat(m.eval || '.' || m.name || '=' || printf('%.17g', m.value), ' ')
  FROM jobs j JOIN metrics m ON m.job_id = j.id WHERE j.kind = 'finetune' GROUP BY j.id ORDER BY j.id"; }

"$BIN" data synth --out "$W/stores" --corpora 2 --speakers 6 --per-speaker 16 --log-level warn > /dev/null
cat > "$W/p.toml" <<TOML
version = 1
name = "ledger_e2e"
[corpora.synth_a]
store = "$W/stores/synth_a.h5"
[corpora.synth_b]
store = "$W/stores/synth_b.h5"
[defaults]
labels = "core4"
features = {audio = "synth_audio", text = "synth_text"}
seeds = [1]
selection = "source_val"
split = {method = "speaker_kfold", k = 3, val_fraction = 0.2}
train = {optimizer = "adamw", lr = 0.002, batch_size = 16, epochs = 3}
[[experiment]]
name = "ft"
kind = "fewshot"
source = "synth_a"
target = "synth_b"
models = ["concat_mlp"]
budgets = ["50%", "100%"]
finetune_train = {lr = 0.001}
[[table]]
name = "ft"
experiment = "ft"
rows = "model"
columns = "budget"
metrics = ["ua"]
spread = "std"
TOML
run() { "$BIN" run "$W/p.toml" --threads 1 --parallel 1 --log-level warn "$@"; }

# 0. The reference: one uninterrupted run.
mkdir -p "$W/ref" "$W/proj" "$W/elsewhere"
(cd "$W/ref" && run --ledger ref.db --json > run.json)
[ "$(jget "$W/ref/run.json" '$.failed')" = 0 ] || fail "reference run failed: $(cat "$W/ref/run.json")"
ref=$(numbers "$W/ref/ref.db")
[ "$(echo "$ref" | wc -l)" = 2 ] || fail "expected 2 finetune jobs, got: $ref"

# 1. First run in proj/, dependents redone from another working directory.
(cd "$W/proj" && run --ledger l.db --json > run1.json)
sqlite3 "$W/proj/l.db" "DELETE FROM jobs WHERE kind = 'finetune'"
(cd "$W/elsewhere" && run --ledger ../proj/l.db --json > run2.json) || true
[ "$(jget "$W/elsewhere/run2.json" '$.failed')" = 0 ] || fail "resumed from another directory: $(cat "$W/elsewhere/run2.json")"
[ "$(jget "$W/elsewhere/run2.json" '$.ran')" = 2 ] || fail "expected only the 2 finetune jobs to run"
[ "$(numbers "$W/proj/l.db")" = "$ref" ] || fail "numbers differ after resuming elsewhere"
echo "1. resumed from another directory: ok"
# A ledger first used through a symbolic link in another directory, then by its real path: the checkpoints are
# found (they were stored relative to the link's directory, and the 1 finished pretrain job ran again: helper-66).
mkdir -p "$W/real" "$W/linkdir"
ln -s "$W/real/l.db" "$W/linkdir/l.db"
(cd "$W/linkdir" && run --ledger l.db --json > "$W/linkdir/first.json")
sqlite3 "$W/real/l.db" "DELETE FROM jobs WHERE kind = 'finetune'"
(cd "$W/real" && run --ledger l.db --json > "$W/real/second.json")
[ "$(jget "$W/real/second.json" '$.ran')" = 2 ] || fail "through a link, then by the real path: $(cat "$W/real/second.json")"
[ "$(numbers "$W/real/l.db")" = "$ref" ] || fail "numbers differ after a run through a link"

# 2. A deleted, then a corrupt checkpoint of the done pretrain job: it runs again, same numbers.
pre=$(sqlite3 "$W/proj/l.db" "SELECT id FROM jobs WHERE kind = 'pretrain'")
for how in delete corrupt; do
  ckpt=$(find "$W/proj/l.db.work" -path "*$pre*" -name model.ckpt)
  [ -f "$ckpt" ] || fail "no checkpoint of the pretrain job"
  if [ $how = delete ]; then rm "$ckpt"; else printf "XXXX" | dd of="$ckpt" bs=1 seek=$(( $(stat -c %s "$ckpt") - 8 )) conv=notrunc 2> /dev/null; fi
  sqlite3 "$W/proj/l.db" "DELETE FROM jobs WHERE kind = 'finetune'"
  (cd "$W/elsewhere" && run --ledger ../proj/l.db --json > run_$how.json) || true
  [ "$(jget "$W/elsewhere/run_$how.json" '$.failed')" = 0 ] || fail "$how: $(cat "$W/elsewhere/run_$how.json")"
  [ "$(jget "$W/elsewhere/run_$how.json" '$.ran')" = 3 ] || fail "$how: the pretrain job did not run again"
  [ "$(numbers "$W/proj/l.db")" = "$ref" ] || fail "$how: numbers differ from the uninterrupted run"
  # A later run finds everything done.
  (cd "$W/elsewhere" && run --ledger ../proj/l.db --json > again.json)
  [ "$(jget "$W/elsewhere/again.json" '$.ran')" = 0 ] || fail "$how: a finished sweep ran jobs again"
  echo "2. $how checkpoint: producer re-ran, numbers equal: ok"
done

# 3a. A foreign SQLite file (rollback journal) is refused untouched.
sqlite3 "$W/foreign.db" "PRAGMA journal_mode = DELETE; CREATE TABLE customers(id INTEGER); INSERT INTO customers VALUES (1);" > /dev/null
sum=$(md5sum < "$W/foreign.db")
rc=0; run --ledger "$W/foreign.db" 2> "$W/foreign.err" || rc=$?
[ $rc = 2 ] || fail "foreign SQLite file: exit $rc, expected 2"
grep -q "not an emosweep ledger" "$W/foreign.err" || fail "foreign: $(cat "$W/foreign.err")"
[ "$(md5sum < "$W/foreign.db")" = "$sum" ] || fail "the foreign file was modified"
[ "$(sqlite3 "$W/foreign.db" 'PRAGMA journal_mode')" = delete ] || fail "the foreign file's journal mode changed"
[ ! -e "$W/foreign.db-wal" ] || fail "a -wal file was created next to the foreign file"
# 3b. A directory as --ledger.
for cmd in "run $W/p.toml --threads 1" "ledger status"; do
  rc=0; "$BIN" $cmd --ledger "$W/proj" 2> "$W/dir.err" > /dev/null || rc=$?
  [ $rc = 2 ] || fail "'$cmd' on a directory: exit $rc, expected 2"
  grep -q "is a directory" "$W/dir.err" || fail "directory: $(cat "$W/dir.err")"
done
# 3c. Read-only commands on a ledger in a read-only directory (as another user when root).
mkdir -p "$W/ro" "$W/out"
cp "$W/proj/l.db" "$W/ro/l.db"
chmod 444 "$W/ro/l.db"; chmod 555 "$W/ro"; chmod 777 "$W/out"
as() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }
as "$BIN" ledger status --ledger "$W/ro/l.db" > /dev/null || fail "ledger status in a read-only directory"
as "$BIN" ledger query --ledger "$W/ro/l.db" --sql "SELECT count(*) FROM jobs" | grep -q 3 || fail "ledger query read-only"
as "$BIN" ledger export --ledger "$W/ro/l.db" --what metrics > /dev/null || fail "ledger export read-only"
as "$BIN" table "$W/p.toml" --ledger "$W/ro/l.db" --all > /dev/null || fail "table read-only"
as "$BIN" report "$W/p.toml" --ledger "$W/ro/l.db" --out "$W/out/r.html" > /dev/null 2>&1 || fail "report read-only"
[ -z "$(ls "$W/ro" | grep -v '^l.db$')" ] || fail "files appeared in the read-only directory"
echo "3. foreign file, directory, read-only directory: ok"

# 4. kill -9 of a running sweep: marked interrupted later; its running job costs no attempt.
sed -e 's/epochs = 3/epochs = 400/' -e 's/name = "ledger_e2e"/name = "slow"/' "$W/p.toml" > "$W/slow.toml"
"$BIN" run "$W/slow.toml" --ledger "$W/k.db" --threads 1 --log-level warn > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  n=$(sqlite3 "$W/k.db" "SELECT count(*) FROM jobs WHERE status = 'running'" 2> /dev/null || echo 0)
  [ "${n:-0}" -ge 1 ] && break
  sleep 0.1
done
[ "${n:-0}" -ge 1 ] || fail "the slow sweep never started a job"
kill -9 $pid; wait $pid 2> /dev/null || true
victim=$(sqlite3 "$W/k.db" "SELECT id FROM jobs WHERE status = 'running'")
[ "$(sqlite3 "$W/k.db" "SELECT status FROM sweeps")" = running ] || fail "expected the killed sweep still 'running'"
# ledger status says the process is gone (before, it showed a live-looking sweep until the next run).
"$BIN" ledger status --ledger "$W/k.db" > "$W/k.status"
grep -q "(process gone: the next run marks it interrupted)" "$W/k.status" || fail "status of a killed sweep: $(cat "$W/k.status")"
grep -q "(owner process gone" "$W/k.status" || fail "status of the killed sweep's running job: $(cat "$W/k.status")"
"$BIN" ledger status --ledger "$W/k.db" --json > "$W/k.json"
[ "$(jget "$W/k.json" '$.sweeps[0].process_gone')" = 1 ] && [ "$(jget "$W/k.json" '$.running[0].owner_gone')" = 1 ] \
  || fail "ledger status --json does not mark the killed sweep and its job: $(cat "$W/k.json")"
[ "$(jget "$W/k.json" "\$.running[0].attrs.experiment")" != "" ] \
  || fail "ledger status --json: a running job's attrs are not an object: $(cat "$W/k.json")"
# --max-attempts 1: the kill must not have used the job's only attempt.
"$BIN" run "$W/slow.toml" --ledger "$W/k.db" --threads 1 --max-attempts 1 --log-level warn > /dev/null 2>&1 &
rpid=$!
for _ in $(seq 1 300); do
  s=$(sqlite3 "$W/k.db" "SELECT status || ':' || attempts || ':' || coalesce(owner, '') FROM jobs WHERE id = '$victim'" 2> /dev/null || echo "")
  case "$s" in *":$rpid:"*|done:*|failed:*) break ;; esac
  sleep 0.1
done
swept=$(sqlite3 "$W/k.db" "SELECT status FROM sweeps WHERE id = 1")
kill -TERM $rpid 2> /dev/null || true; wait $rpid 2> /dev/null || true
[ "$swept" = interrupted ] || fail "the killed sweep is '$swept', not marked interrupted by the next run"
case "$s" in
  running:1:*|done:1:*) ;;
  *) fail "the job running at the kill -9 is '$s' after the takeover with --max-attempts 1 (want running:1 or done:1)" ;;
esac
echo "4. kill -9: sweep marked interrupted, attempt given back: ok"

# 5. ledger query: VACUUM INTO refused before it creates anything; --timeout.
rc=0; "$BIN" ledger query --ledger "$W/proj/l.db" --sql "VACUUM INTO '$W/copy.db'" 2> "$W/vac.err" > /dev/null || rc=$?
[ $rc = 2 ] || fail "VACUUM INTO: exit $rc, expected 2"
[ ! -e "$W/copy.db" ] || fail "VACUUM INTO was refused but created its file"
start=$(date +%s)
rc=0; "$BIN" ledger query --ledger "$W/proj/l.db" --timeout 1 \
  --sql "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" 2> "$W/to.err" > /dev/null || rc=$?
[ $rc = 1 ] || fail "endless query: exit $rc, expected 1"
[ $(( $(date +%s) - start )) -lt 15 ] || fail "--timeout 1 did not stop the query"
grep -q "timeout" "$W/to.err" || fail "timeout message: $(cat "$W/to.err")"
echo "5. ledger query refusals and --timeout: ok"

# 6. Session 17's audit: outputs over inputs, ledgers created by maintenance commands, damaged values.
cp "$W/ref/ref.db" "$W/six.db"
before=$(sha256sum "$W/six.db" | cut -d' ' -f1)
rc=0; "$BIN" ledger export --ledger "$W/six.db" --out "$W/six.db" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] || fail "ledger export --out the ledger: exit $rc, expected 2"
grep -q "refusing to overwrite an input" "$W/six.err" || fail "export over the ledger: $(cat "$W/six.err")"
rc=0; "$BIN" report "$W/p.toml" --ledger "$W/six.db" --out "$W/six.db" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] || fail "report --out the ledger: exit $rc, expected 2"
[ "$(sha256sum "$W/six.db" | cut -d' ' -f1)" = "$before" ] || fail "the ledger changed although --out was refused"
rc=0; "$BIN" ledger gc "$W/p.toml" --ledger "$W/typo.db" --yes 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] && [ ! -e "$W/typo.db" ] || fail "ledger gc --yes on a missing ledger: exit $rc, file: $(ls "$W" | grep typo)"
: > "$W/empty.db"
rc=0; "$BIN" ledger vacuum --ledger "$W/empty.db" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] && [ ! -s "$W/empty.db" ] || fail "ledger vacuum on an empty file: exit $rc, size $(stat -c %s "$W/empty.db")"
# A metric stored as text (SQLite reads it as 0.0) or as infinity is no result: the table says so, naming the job.
cp "$W/ref/ref.db" "$W/bad.db"
sqlite3 "$W/bad.db" "UPDATE metrics SET value = 'abc' WHERE name = 'ua'"
rc=0; "$BIN" table "$W/p.toml" --ledger "$W/bad.db" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc != 0 ] || fail "table over a text metric exited 0"
grep -q "not a finite number" "$W/six.err" || fail "text metric: $(cat "$W/six.err")"
sqlite3 "$W/bad.db" "UPDATE metrics SET value = 9e999 WHERE typeof(value) = 'text'"
rc=0; "$BIN" table "$W/p.toml" --ledger "$W/bad.db" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc != 0 ] && grep -q "not a finite number" "$W/six.err" || fail "infinite metric: exit $rc, $(cat "$W/six.err")"
# A truncated ledger: refused, and no -wal/-shm left beside it.
head -c 5000 "$W/ref/ref.db" > "$W/trunc.db"
printf '\x02\x02' | dd of="$W/trunc.db" bs=1 seek=18 conv=notrunc 2> /dev/null  # the header's WAL mode
rc=0; "$BIN" ledger status --ledger "$W/trunc.db" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc != 0 ] || fail "ledger status on a truncated ledger exited 0"
[ ! -e "$W/trunc.db-wal" ] && [ ! -e "$W/trunc.db-shm" ] || fail "a refused truncated ledger left $(ls "$W" | grep trunc)"
rc=0; "$BIN" ledger query --ledger "$W/ref/ref.db" --kind superv 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] && grep -q "expected supervised, pretrain" "$W/six.err" || fail "query --kind superv: exit $rc, $(cat "$W/six.err")"
# An output file in a missing directory is bad input, found before any work: export, report, run's status file.
rc=0; "$BIN" ledger export --ledger "$W/ref/ref.db" --out "$W/nodir/x.csv" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] && grep -q "directory $W/nodir does not exist" "$W/six.err" || fail "export --out into a missing directory: exit $rc, $(cat "$W/six.err")"
rc=0; "$BIN" report "$W/p.toml" --ledger "$W/ref/ref.db" --out "$W/nodir/r.html" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] || fail "report --out into a missing directory: exit $rc"
rc=0; "$BIN" run "$W/p.toml" --ledger "$W/sf.db" --status-file "$W/nodir/s.json" 2> "$W/six.err" > /dev/null || rc=$?
[ $rc = 2 ] && [ ! -e "$W/sf.db" ] || fail "run --status-file into a missing directory: exit $rc, ledger: $(ls "$W" | grep sf.db)"
# A temporary left by a kill -9'd writer on this host is removed by the next write of that file.
sleep 30 & gone=$!; kill -9 $gone; wait $gone 2> /dev/null || true
stale="$W/r.html.tmp-$(hostname)-$gone-0"
echo partial > "$stale"
"$BIN" report "$W/p.toml" --ledger "$W/ref/ref.db" --out "$W/r.html" > /dev/null 2>&1 || fail "report after a stale temporary"
[ ! -e "$stale" ] && [ -s "$W/r.html" ] || fail "the stale temporary of a gone process is still there: $(ls "$W" | grep r.html)"
echo "6. --out over an input or into a missing directory, stale temporaries, gc/vacuum without a ledger, damaged metrics, truncated ledger: ok"

# --sweep names a sweep of the ledger (an unknown id gave an empty listing, a negative one every sweep's jobs).
for bad in 999 -3; do
  rc=0; "$BIN" ledger query --ledger "$W/ref/ref.db" --sweep=$bad > /dev/null 2> "$W/sw.err" || rc=$?
  [ $rc = 2 ] || fail "ledger query --sweep $bad: exit $rc"
done
grep -q "sweep id (1 or more)" "$W/sw.err" || fail "--sweep -3: $(cat "$W/sw.err")"
rc=0; "$BIN" ledger status --ledger "$W/ref/ref.db" --sweep 999 > /dev/null 2> "$W/sw.err" || rc=$?
[ $rc = 2 ] && grep -q "no sweep 999" "$W/sw.err" || fail "ledger status --sweep 999: exit $rc, $(cat "$W/sw.err")"
# `ledger query --json` gives attrs as an object, as status and export do (helper-69: it was a string); the
# streamed export (row by row, helper-67) writes the same bytes to --out as to stdout, in both formats.
"$BIN" ledger query --ledger "$W/ref/ref.db" --json > "$W/q.json"
[ "$(sqlite3 :memory: "SELECT json_type(readfile('$W/q.json'), '\$[0].attrs')")" = object ] || fail "query --json: attrs is $(sqlite3 :memory: "SELECT json_type(readfile('$W/q.json'), '\$[0].attrs')")"
for f in csv json; do
  "$BIN" ledger export --ledger "$W/ref/ref.db" --what predictions --format $f > "$W/p.$f"
  "$BIN" ledger export --ledger "$W/ref/ref.db" --what predictions --format $f --out "$W/po.$f"
  cmp -s "$W/p.$f" "$W/po.$f" && [ -s "$W/p.$f" ] || fail "export --format $f: --out differs from stdout"
done
[ "$(sqlite3 :memory: "SELECT json_array_length(readfile('$W/p.json'))")" = "$(sqlite3 "$W/ref/ref.db" "SELECT count(*) FROM predictions")" ] ||
  fail "export --format json: not one object per prediction"

# 7. Another user reading a ledger (helper-66), checked where this test can switch users (root, setpriv).
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
  as_other() { setpriv --reuid=4242 --regid=4242 --clear-groups env HOME="$W/shared" "$@"; }
  mkdir "$W/shared" && chmod 1777 "$W/shared"
  cp "$W/ref/ref.db" "$W/shared/l.db" && chmod 644 "$W/shared/l.db"
  # A read by a user who cannot write the ledger creates no -wal/-shm of theirs (they locked the owner out).
  as_other "$BIN" ledger status --ledger "$W/shared/l.db" > /dev/null 2> "$W/seven.err" || fail "status as another user: $(cat "$W/seven.err")"
  [ ! -e "$W/shared/l.db-wal" ] && [ ! -e "$W/shared/l.db-shm" ] || fail "another user's status left $(ls -l "$W/shared")"
  "$BIN" run "$W/p.toml" --ledger "$W/shared/l.db" --log-level warn > /dev/null 2> "$W/seven.err" || fail "the owner's run after another user's status: $(cat "$W/seven.err")"
  # A ledger whose -wal holds results, in a directory the reader cannot write: refused, not read without them.
  mkdir "$W/ro7" && chmod 755 "$W/ro7"
  { echo "PRAGMA wal_autocheckpoint = 0; UPDATE sweeps SET host = host || '-x';"; sleep 3; } | sqlite3 "$W/shared/l.db" > /dev/null &
  holder=$!
  sleep 1
  cp "$W/shared/l.db" "$W/shared/l.db-wal" "$W/ro7/"
  wait $holder 2> /dev/null || true
  [ -s "$W/ro7/l.db-wal" ] || fail "could not make a ledger with a non-empty -wal"
  chmod 644 "$W/ro7/l.db" "$W/ro7/l.db-wal"
  rc=0; as_other "$BIN" ledger status --ledger "$W/ro7/l.db" > /dev/null 2> "$W/seven.err" || rc=$?
  [ $rc = 2 ] && grep -q "write-ahead log .*l.db-wal holds .* bytes of results not yet in the ledger file" "$W/seven.err" ||
    fail "a -wal with results in an unwritable directory: exit $rc, $(cat "$W/seven.err")"
  # A new ledger in a directory this user cannot write: named as such (it said "missing file or directory").
  rc=0; as_other "$BIN" run "$W/p.toml" --ledger "$W/ro7/new.db" > /dev/null 2> "$W/seven.err" || rc=$?
  [ $rc = 2 ] && grep -q "cannot create the ledger: directory $W/ro7 is not writable" "$W/seven.err" ||
    fail "a ledger in an unwritable directory: exit $rc, $(cat "$W/seven.err")"
  # A --work-dir this user cannot write: refused before any job runs (every job failed twice on it).
  mkdir -p "$W/shared/mine" && chmod 1777 "$W/shared/mine"
  rc=0; as_other "$BIN" run "$W/p.toml" --ledger "$W/shared/mine/w.db" --work-dir "$W/ro7/work" > /dev/null 2> "$W/seven.err" || rc=$?
  [ $rc = 2 ] && grep -q -- "--work-dir $W/ro7/work: cannot write in $W/ro7" "$W/seven.err" && [ ! -e "$W/shared/mine/w.db" ] ||
    fail "an unwritable --work-dir: exit $rc, $(cat "$W/seven.err")"
  echo "7. another user's read: nothing created, the owner runs on; a -wal it cannot read is named: ok"
fi
echo "ledger e2e: ok"
