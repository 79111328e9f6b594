#!/usr/bin/env bash
# End-to-end test of the real `emosweep` binary on the quick-start protocol
# (synthetic stores, real trainer): run, re-run (zero jobs), delete one job's
# rows (exactly that job re-runs), kill -9 mid-sweep then resume (nothing
# lost or duplicated), ledger status/query/export, table in every format,
# report. Usage: cli_e2e_test.sh EMOSWEEP_BINARY SOURCE_DIR
set -euo pipefail
BIN=$1
SRC=$2
PROTO="$SRC/protocols/library/quickstart.toml"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# jget FILE JSONPATH: one value of a JSON document (sqlite3's json_extract, no python needed).
jget() { sqlite3 :memory: "SELECT json_extract(readfile('$1'), '$2')"; }

"$BIN" data synth --out "$W/stores" --log-level warn > /dev/null
common=(--store-dir "$W/stores" --log-level warn)

# 1. A full run.
"$BIN" run "$PROTO" --ledger "$W/l.db" --parallel 1 --threads 1 --json "${common[@]}" > "$W/run1.json"
total=$(jget "$W/run1.json" '$.total')
[ "$(jget "$W/run1.json" '$.ran')" = "$total" ] || fail "first run did not run every job"
[ "$(jget "$W/run1.json" '$.failed')" = 0 ] || fail "jobs failed: $(cat "$W/run1.json")"

# The revision in provenance is the one the binary was built from (it was CMake's last configure: stale after a
# commit built without reconfiguring).
if head=$(git -C "$SRC" rev-parse --short=12 HEAD 2> /dev/null); then
  # A checkout with changes to tracked files (as built) is HEAD-dirty-<first 8 hex of sha256(git diff HEAD)>.
  git -C "$SRC" diff --quiet HEAD -- || head="$head-dirty-$(git -C "$SRC" diff HEAD -- | sha256sum | cut -c1-8)"
  "$BIN" version --json > "$W/version.json"
  [ "$(jget "$W/version.json" '$.git_revision')" = "$head" ] || fail "version says $(jget "$W/version.json" '$.git_revision'), HEAD is $head"
  rev=$(sqlite3 "$W/l.db" "SELECT DISTINCT git_revision FROM provenance")
  [ "$rev" = "$head" ] || fail "provenance records git revision '$rev', HEAD is $head"
fi
# The CPU each result ran on (another CPU may take other kernels: helper-73), and the threads it ran with.
want_cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
cpu=$(sqlite3 "$W/l.db" "SELECT DISTINCT json_extract(extra_json, '\$.cpu') FROM provenance")
[ "$cpu" = "$want_cpu" ] || fail "provenance records cpu '$cpu', /proc/cpuinfo says '$want_cpu'"
[ "$(sqlite3 "$W/l.db" "SELECT DISTINCT threads FROM provenance")" = 1 ] || fail "provenance threads are not 1"

# 2. Re-running a finished protocol runs zero jobs, in seconds.
start=$(date +%s%N)
"$BIN" run "$PROTO" --ledger "$W/l.db" --json "${common[@]}" > "$W/run2.json"
secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
[ "$(jget "$W/run2.json" '$.ran')" = 0 ] || fail "re-run ran jobs"
[ "$(jget "$W/run2.json" '$.skipped')" = "$total" ] || fail "re-run did not skip every job"
awk -v s="$secs" 'BEGIN { exit !(s < 20) }' || fail "re-run took $secs s"
echo "re-run of $total finished jobs: $secs s"
# Options of an MPI world given to one process are named as ignored (session 18), not silently dropped.
"$BIN" run "$PROTO" --ledger "$W/l.db" --group-size 2 --heartbeat 2 "${common[@]}" > /dev/null 2> "$W/mpi_only.err"
[ "$(grep -c -- "--group-size applies under mpirun only" "$W/mpi_only.err")" = 1 ] &&
  [ "$(grep -c -- "--heartbeat applies under mpirun only" "$W/mpi_only.err")" = 1 ] \
  || fail "MPI-only options outside mpirun (each said once): $(cat "$W/mpi_only.err")"

# 3. Deleting one job's rows re-runs only that job.
victim=$(sqlite3 "$W/l.db" "SELECT id FROM jobs WHERE kind = 'supervised' ORDER BY id LIMIT 1")
sqlite3 "$W/l.db" "DELETE FROM jobs WHERE id = '$victim'"
"$BIN" run "$PROTO" --ledger "$W/l.db" --json "${common[@]}" > "$W/run3.json"
[ "$(jget "$W/run3.json" '$.ran')" = 1 ] || fail "deleting one job re-ran $(jget "$W/run3.json" '$.ran') jobs"
[ "$(sqlite3 "$W/l.db" "SELECT status FROM jobs WHERE id = '$victim'")" = done ] || fail "victim not done"

# 4. kill -9 mid-sweep, then resume: nothing lost, nothing duplicated.
"$BIN" run "$PROTO" --ledger "$W/k.db" --parallel 1 --threads 1 "${common[@]}" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  n=$(sqlite3 "$W/k.db" "SELECT count(*) FROM jobs WHERE status = 'done'" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 5 ] && break
  sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
before=$(sqlite3 "$W/k.db" "SELECT count(*) FROM jobs WHERE status = 'done'")
[ "$before" -lt "$total" ] || fail "the sweep finished before the kill"
"$BIN" run "$PROTO" --ledger "$W/k.db" --json "${common[@]}" > "$W/run4.json"
[ "$(sqlite3 "$W/k.db" "SELECT count(*) FROM jobs WHERE status = 'done'")" = "$total" ] || fail "jobs lost after kill -9"
[ "$(sqlite3 "$W/k.db" "SELECT count(*) FROM provenance")" = "$total" ] || fail "duplicated or missing results"
[ "$(sqlite3 "$W/k.db" "SELECT count(*) FROM (SELECT job_id, eval, name, count(*) c FROM metrics GROUP BY 1,2,3 HAVING c > 1)")" = 0 ] \
  || fail "duplicated metric rows"
echo "kill -9 after $before of $total jobs; resumed: $(jget "$W/run4.json" '$.ran') ran"

# 5. Reading it back.
"$BIN" ledger status --ledger "$W/l.db" --json > "$W/status.json"
[ "$(jget "$W/status.json" '$.by_status.done')" = "$total" ] || fail "ledger status"
# Failed and running jobs are named like the run's job lines (experiment, model, corpora, seed, fold).
cp "$W/l.db" "$W/s.db"
sqlite3 "$W/s.db" "UPDATE jobs SET status = 'failed', error = 'simulated' WHERE id = (SELECT id FROM jobs WHERE json_extract(attrs_json, '$.experiment') = 'in_domain' ORDER BY id LIMIT 1)"
"$BIN" ledger status --ledger "$W/s.db" | grep -E '\[in_domain [a-z_]+ .*seed=[0-9]+.*\] failed' > /dev/null \
  || fail "ledger status does not name the failed job: $("$BIN" ledger status --ledger "$W/s.db" | tail -3)"
"$BIN" ledger query --ledger "$W/l.db" --status done --kind supervised --csv > "$W/query.csv"
[ "$(wc -l < "$W/query.csv")" -gt 1 ] || fail "ledger query found no supervised jobs"
if "$BIN" ledger query --ledger "$W/l.db" --sql "DELETE FROM jobs" 2> /dev/null; then fail "raw SQL could write"; fi
"$BIN" ledger export --ledger "$W/l.db" --what metrics --format csv --out "$W/metrics.csv"
[ "$(wc -l < "$W/metrics.csv")" -gt "$total" ] || fail "export"
export EMOSWEEP_CACHE_DIR="$W/cache"
for f in markdown latex csv json; do
  "$BIN" table "$PROTO" --ledger "$W/l.db" --all --format "$f" "${common[@]}" > "$W/table.$f"
done
# The first table expanded the protocol and cached its jobs; the others read the cache
# (issue 15). Without the cache every format must print the same bytes.
ls "$W"/cache/expansions/*.bin > /dev/null 2>&1 || fail "table wrote no expansion cache"
for f in markdown latex csv json; do
  EMOSWEEP_CACHE_DIR=off "$BIN" table "$PROTO" --ledger "$W/l.db" --all --format "$f" "${common[@]}" > "$W/table.nocache.$f"
  cmp -s "$W/table.$f" "$W/table.nocache.$f" || fail "table --format $f differs between cached and fresh expansion"
done
grep -q "Model selection: source_val" "$W/table.markdown" || fail "caption"
# --all --format csv is one CSV: one header, then every table's cells, each row naming its table.
[ "$(grep -c '^table,row,column,metric,' "$W/table.csv")" = 1 ] || fail "table --all csv: $(grep -c '^table,' "$W/table.csv") headers"
[ "$(grep -c '^$' "$W/table.csv")" = 0 ] || fail "table --all csv has blank lines"
[ "$(cut -d, -f1 "$W/table.csv" | sort -u | grep -vc '^table$')" -gt 1 ] || fail "table --all csv: one table name"
# Table JSON has one shape (issue 14): {protocol, tables: [...]}, with --all or one table, --json or --format json.
"$BIN" table "$PROTO" --ledger "$W/l.db" --json "${common[@]}" > "$W/table1.json"
[ "$(jget "$W/table1.json" '$.tables[0].name')" = "$(jget "$W/table.json" '$.tables[0].name')" ] || fail "table --json shape"
[ "$(jget "$W/table1.json" 'json_array_length($.tables)')" = 1 ] 2>/dev/null || \
  [ "$(sqlite3 :memory: "SELECT json_array_length(readfile('$W/table1.json'), '$.tables')")" = 1 ] || fail "table --json: not one table"
[ "$(sqlite3 :memory: "SELECT json_array_length(readfile('$W/table.json'), '$.tables')")" -gt 1 ] || fail "table --all --json"
# A library protocol by name gives the same table as its path.
"$BIN" table quickstart --ledger "$W/l.db" --all --format json "${common[@]}" > "$W/table.byname.json"
[ "$(jget "$W/table.byname.json" '$.tables')" = "$(jget "$W/table.json" '$.tables')" ] || fail "table by library name"
"$BIN" ledger gc quickstart --ledger "$W/l.db" --json "${common[@]}" > "$W/gc.json" || fail "ledger gc by library name"
"$BIN" ledger export --ledger "$W/l.db" --what jobs --json > "$W/jobs.json"
[ "$(sqlite3 :memory: "SELECT json_array_length(readfile('$W/jobs.json'))")" = "$total" ] || fail "ledger export --json"
# The JSON export nests the JSON columns (attrs, config, info) and has the selected epoch; predictions carry
# their class probabilities, which sum to 1.
[ "$(jget "$W/jobs.json" '$[0].attrs.experiment')" != "" ] || fail "export --what jobs --json: attrs is not an object"
[ "$(jget "$W/jobs.json" "\$[0].selected_epoch")" != "" ] || fail "export --what jobs: no selected_epoch"
"$BIN" ledger export --ledger "$W/l.db" --what predictions --json > "$W/pred.json"
sqlite3 :memory: "SELECT abs((SELECT sum(value) FROM json_each(json_extract(readfile('$W/pred.json'), '\$[0].probs'))) - 1) < 1e-5" \
  | grep -qx 1 || fail "export --what predictions: probs $(jget "$W/pred.json" '$[0].probs')"
"$BIN" ledger export --ledger "$W/l.db" --what predictions --out "$W/pred.csv"
head -1 "$W/pred.csv" | grep -qx 'job_id,eval,idx,utt_id,label,pred,probs' || fail "predictions CSV header: $(head -1 "$W/pred.csv")"
[ "$(sed -n 2p "$W/pred.csv" | awk -F, '{print split($7, p, " ")}')" = 4 ] || fail "predictions CSV probs: $(sed -n 2p "$W/pred.csv")"
grep -q '\\textbf' "$W/table.latex" || fail "latex bold"
"$BIN" table "$PROTO" --ledger "$W/l.db" --name in_domain --compare concat_mlp,mer_gfl "${common[@]}" | grep -q "Paired permutation" \
  || fail "compare"
# --all --compare with rows some table lacks: nothing on stdout (it printed the tables before the failing one).
rc=0; "$BIN" table "$PROTO" --ledger "$W/l.db" --all --compare concat_mlp,mer_gfl "${common[@]}" > "$W/cmp_all.out" 2> "$W/cmp_all.err" || rc=$?
if [ $rc != 0 ]; then [ ! -s "$W/cmp_all.out" ] || fail "table --all --compare failed (exit $rc) after printing $(wc -l < "$W/cmp_all.out") lines"; fi
"$BIN" report "$PROTO" --ledger "$W/l.db" --out "$W/r.html" "${common[@]}" 2> /dev/null
grep -q "<svg" "$W/r.html" || fail "report has no plots"
# An output over one of the protocol's stores is refused before anything is written.
cp "$W/stores/synth_a.h5" "$W/synth_a.before"
rc=0; "$BIN" report "$PROTO" --ledger "$W/l.db" --out "$W/stores/synth_a.h5" "${common[@]}" 2> "$W/over.err" || rc=$?
[ $rc = 2 ] && grep -q "same file as the protocol's input" "$W/over.err" || fail "report --out a store: exit $rc, $(cat "$W/over.err")"
rc=0; "$BIN" run "$PROTO" --ledger "$W/l.db" --status-file "$W/stores/synth_a.h5" "${common[@]}" 2> "$W/over.err" || rc=$?
[ $rc = 2 ] || fail "run --status-file a store: exit $rc, $(cat "$W/over.err")"
cmp -s "$W/stores/synth_a.h5" "$W/synth_a.before" || fail "the store was overwritten"
cat "$W/table.markdown"

# Session 17's audit: a refused run leaves no ledger even when the expansion cache is warm (this protocol
# was expanded above); a negative number for an unsigned option is refused, not wrapped to 2^64 - 1;
# submit checks the protocol and the time limit before it renders or queues anything.
rc=0; "$BIN" run "$PROTO" --ledger "$W/new.db" --max-jobs 1 "${common[@]}" 2> "$W/mj.err" || rc=$?
[ $rc = 2 ] || fail "run --max-jobs 1: exit $rc, expected 2"
[ ! -e "$W/new.db" ] || fail "run --max-jobs 1 refused the protocol but left a ledger"
for args in "run $PROTO --ledger $W/neg.db --max-jobs -1 --store-dir $W/stores" "data synth --out $W/neg --seed -1"; do
  rc=0; "$BIN" $args --log-level warn 2> "$W/neg.err" > /dev/null || rc=$?
  [ $rc = 2 ] && grep -q "must be a whole number >= 0" "$W/neg.err" || fail "$args: exit $rc, $(cat "$W/neg.err")"
done
[ ! -e "$W/neg.db" ] && [ ! -e "$W/neg" ] || fail "a refused negative option left output behind"
printf 'version = 1\nname = "x"\ncolour = 1\n' > "$W/badproto.toml"
for args in "$W/badproto.toml --ledger $W/s.db" "$PROTO --ledger $W/s.db --store-dir $W/none" \
            "$PROTO --ledger $W/s.db --store-dir $W/stores --time=1:2:3:4" \
            "$PROTO --ledger $W/stores --store-dir $W/stores" "$PROTO --ledger /proc/nope/l.db --store-dir $W/stores" \
            "$PROTO --ledger $W/stores/synth_a.h5 --store-dir $W/stores" \
            "$PROTO --ledger $W/s.db --store-dir $W/stores --no-requeue --max-requeues 5" \
            "$PROTO --ledger $W/s.db --store-dir $W/stores --time 2 --signal-seconds 120"; do
  rc=0; (cd "$W" && "$BIN" submit $args --sbatch /bin/echo --log-dir "$W/slogs" --log-level warn) \
    2> "$W/sub.err" > /dev/null || rc=$?
  [ $rc = 2 ] || fail "submit $args: exit $rc, expected 2 ($(cat "$W/sub.err"))"
done
[ ! -e "$W/slogs" ] || fail "a refused submit left $(ls "$W/slogs")"
echo "cli e2e: ok"
