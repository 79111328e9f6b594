#!/usr/bin/env bash
# Slurm integration test: starts a real single-node Slurm (munge, slurmctld,
# slurmd) in a temporary directory, submits a small protocol with
# `emosweep submit --ntasks-per-node 2`, waits for it, checks the ledger, and
# stops every daemon it started (also on failure).
#   slurm_integration.sh EMOSWEEP_BINARY SOURCE_DIR
set -euo pipefail
ES=$1
SRC=$2
# The daemons started below must not inherit our descriptors: a caller's lock (e.g.
# `flock LOCK ctest ...`) would otherwise stay held by munged/slurmd after the test.
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-" 2>/dev/null || true; fi
done
for t in slurmctld slurmd sbatch squeue scontrol munged; do
  command -v "$t" >/dev/null || { echo "slurm_integration: $t not installed (scripts/install-deps.sh --slurm)"; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then echo "slurm_integration: needs root to run slurmd"; exit 1; fi

T=$(mktemp -d /tmp/es_slurm.XXXXXX)
chmod 755 "$T"
started_munge=0
cleanup() {
  set +e
  scontrol -f "$T/slurm.conf" shutdown >/dev/null 2>&1
  sleep 1
  [ -f "$T/slurmctld.pid" ] && kill "$(cat "$T/slurmctld.pid")" 2>/dev/null
  [ -f "$T/slurmd.pid" ] && kill "$(cat "$T/slurmd.pid")" 2>/dev/null
  # munged runs as user munge and may not be able to write its pid file into $T: match its command line.
  if [ "$started_munge" = 1 ]; then
    [ -f "$T/munged.pid" ] && kill "$(cat "$T/munged.pid")" 2>/dev/null
    pkill -f "munged --pid-file=$T/munged.pid" 2>/dev/null
  fi
  pkill -f "slurmstepd.*$T" 2>/dev/null
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$T"; fi
}
trap cleanup EXIT

# munge: reuse a running daemon, otherwise start one with its own socket.
if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge /etc/munge /var/lib/munge /var/log/munge
  [ -f /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
  chown -R munge:munge /run/munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged --pid-file="$T/munged.pid" 2>/dev/null || /usr/sbin/munged -f
  started_munge=1
fi

cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
mkdir -p "$T/state" "$T/spool" "$T/work"
cat > "$T/slurm.conf" <<CONF
ClusterName=emosweep-test
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$((17000 + RANDOM % 1000))
SlurmdPort=$((18000 + RANDOM % 1000))
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=pmix
MailProg=/bin/true
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$T/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for i in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -Eq 'idle|mixed'; then break; fi
  sleep 1
done
sinfo -h -o '%P %T %c' || { echo "slurm did not come up"; cat "$T/slurmctld.log" "$T/slurmd.log"; exit 1; }

# A small sweep on synthetic corpora.
"$ES" data synth --out "$T/stores" --corpora 2 --speakers 4 --per-speaker 12 --seed 3 --log-level warn
cp "$SRC/tests/cluster/slurm_protocol.toml" "$T/protocol.toml"
cd "$T/work"
"$ES" submit "$T/protocol.toml" --ledger "$T/ledger.sqlite" --store-dir "$T/stores" --work-dir "$T/work/jobs" \
  --ntasks-per-node 2 --time 00:10:00 --log-dir "$T/logs" --job-name es-it --json | tee "$T/submit.json"
job=$(sed -n 's/.*"job_id": *"\([0-9]*\)".*/\1/p' "$T/submit.json")
[ -n "$job" ] || { echo "no job id from emosweep submit"; exit 1; }
for i in $(seq 1 540); do
  state=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
  sleep 1
done
echo "slurm job $job: $state"
cat "$T"/logs/*.out || true
[ "$state" = COMPLETED ] || { echo "FAIL: slurm job ended $state"; cat "$T/slurmd.log" | tail -30; exit 1; }
"$ES" ledger status --ledger "$T/ledger.sqlite" || { echo "FAIL: ledger status"; exit 1; }
total=$(sqlite3 "$T/ledger.sqlite" "select count(*) from jobs")
done_n=$(sqlite3 "$T/ledger.sqlite" "select count(*) from jobs where status = 'done'")
ws=$(sqlite3 "$T/ledger.sqlite" "select max(world_size) from provenance")
[ "$total" -gt 0 ] && [ "$done_n" = "$total" ] || { echo "FAIL: $done_n of $total jobs done after the Slurm job"; exit 1; }
[ "$ws" = 2 ] || { echo "FAIL: provenance world_size is '$ws', expected 2 (srun with 2 tasks)"; exit 1; }
echo "OK: $done_n jobs done through Slurm with 2 MPI tasks"

# 2. A sweep longer than its time limit: Slurm sends USR1 (--signal-seconds before the limit), the
# ranks checkpoint, the script sees jobs left and requeues the job itself; the next allocation
# resumes and finishes. Nothing is lost or duplicated.
cp "$SRC/tests/cluster/slurm_requeue_protocol.toml" "$T/requeue.toml"
"$ES" submit "$T/requeue.toml" --ledger "$T/requeue.sqlite" --store-dir "$T/stores" --work-dir "$T/work/rq" \
  --ntasks-per-node 2 --time 1 --signal-seconds 40 --log-dir "$T/logs-rq" --job-name es-rq --json | tee "$T/submit-rq.json"
job=$(sed -n 's/.*"job_id": *"\([0-9]*\)".*/\1/p' "$T/submit-rq.json")
[ -n "$job" ] || { echo "no job id from emosweep submit (requeue)"; exit 1; }
state=""
for i in $(seq 1 720); do
  state=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
  sleep 1
done
restarts=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
echo "slurm job $job: $state after $restarts requeue(s)"
cat "$T"/logs-rq/*.out || true
[ "$state" = COMPLETED ] || { echo "FAIL: the time-limited job ended $state"; tail -30 "$T/slurmctld.log"; exit 1; }
[ "${restarts:-0}" -ge 1 ] || { echo "FAIL: the sweep finished without reaching its time limit (make its jobs longer)"; exit 1; }
grep -q "time limit reached with jobs left: requeueing $job" "$T"/logs-rq/*.out || { echo "FAIL: no self-requeue in the log"; exit 1; }
total=$(sqlite3 "$T/requeue.sqlite" "select count(*) from jobs")
done_n=$(sqlite3 "$T/requeue.sqlite" "select count(*) from jobs where status = 'done'")
prov=$(sqlite3 "$T/requeue.sqlite" "select count(*) from provenance")
dups=$(sqlite3 "$T/requeue.sqlite" "select count(*) from (select job_id, eval, name, count(*) c from metrics group by 1,2,3 having c > 1)")
interrupted=$(sqlite3 "$T/requeue.sqlite" "select count(*) from sweeps where status = 'interrupted'")
[ "$done_n" = "$total" ] && [ "$prov" = "$total" ] && [ "$dups" = 0 ] || \
  { echo "FAIL: after requeue $done_n of $total done, $prov provenance rows, $dups duplicated metrics"; exit 1; }
[ "$interrupted" -ge 1 ] || { echo "FAIL: no sweep was recorded as interrupted at the time limit"; exit 1; }
echo "OK: $total jobs done across $((restarts + 1)) allocations of a 1-minute job ($interrupted interrupted sweep(s))"
echo "slurm_integration: PASS"
