#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for tests/workflow/test_slurm.py, which runs the tiny
# DAG through profiles/slurm adapted to this node. Debian/Ubuntu, run as root (or with sudo).
#
#   bash scripts/start_slurm.sh          # install (once), configure, start, wait until idle
#
# What it does, idempotently:
#   1. installs Debian's slurm-wlm (slurmctld, slurmd, client tools) and munge with apt-get,
#      non-interactively, only when a binary is missing; package scripts may not start services;
#   2. writes /etc/slurm/slurm.conf for one node, NodeName=localhost, with this machine's CPUs and
#      RealMemory as `slurmd -C` reports them, and one partition `cpu` (the default; no GPU
#      partition: this machine has no GPU GRES);
#   3. creates the munge key if there is none, starts munged, slurmctld and slurmd in the
#      background (no systemd needed), and waits until `sinfo` shows the node idle.
#
# No accounting daemon (slurmdbd): `sacct` does not work on this cluster, so job states must come
# from `squeue` (the test's profile sets `slurm-status-command: squeue`). MinJobAge=600 keeps
# finished jobs visible to `squeue --states=all` for 10 minutes; the executor plugin trusts squeue
# only when MinJobAge is at least 3x its first status-check delay.
#
# A slurm.conf that this script did not write is never overwritten: if such a cluster already
# answers `sinfo`, it is used as it is; otherwise the script stops and says so.
# Waits are bounded: apt-get 15 min, each daemon 20-30 s, the node START_SLURM_TIMEOUT_S (120 s).
set -euo pipefail

TIMEOUT_S="${START_SLURM_TIMEOUT_S:-120}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
MARKER="# Written by dlpvc scripts/start_slurm.sh"
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm

say() { echo "start_slurm: $*"; }
die() { echo "start_slurm: error: $*" >&2; exit 1; }

SUDO=""
if [[ $EUID -ne 0 ]]; then
    if ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
        die "run as root (or with password-less sudo)"
    fi
    SUDO="sudo -n"
fi

# Wait until "$@" succeeds, at most $1 seconds; returns 1 on timeout.
wait_for() {
    local limit=$1; shift
    local t0=$SECONDS
    until "$@" >/dev/null 2>&1; do
        (( SECONDS - t0 >= limit )) && return 1
        sleep 1
    done
}

# 1. packages ---------------------------------------------------------------------------------
need_install=0
for bin in slurmctld slurmd sinfo sbatch squeue munged; do
    command -v "$bin" >/dev/null 2>&1 || [[ -x /usr/sbin/$bin ]] || need_install=1
done
if (( need_install )); then
    say "installing slurm-wlm and munge (apt-get)"
    # Keep package scripts from starting the daemons with Debian's default configuration.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        trap '$SUDO rm -f "$policy"' EXIT
    fi
    $SUDO timeout 900 apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        slurm-wlm munge >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# 2. configuration ----------------------------------------------------------------------------
if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
    if timeout 10 sinfo -h >/dev/null 2>&1; then
        say "$CONF was not written by this script and its cluster answers sinfo: using it unchanged"
        exit 0
    fi
    die "$CONF exists, was not written by this script and its cluster does not answer sinfo; move it away or fix it"
fi

# "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
hw="$(slurmd -C | head -n 1)"
[[ $hw == NodeName=* ]] || die "unexpected output of 'slurmd -C': $hw"
node_hw="${hw#NodeName=* }"   # everything after the host name: CPUs=... RealMemory=...

new_conf="$(cat <<EOF
$MARKER: a single-node test cluster on localhost.
ClusterName=dlpvc
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
NodeName=localhost $node_hw State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)"

changed=0
if [[ ! -f $CONF ]] || [[ "$(cat "$CONF")" != "$new_conf" ]]; then
    $SUDO mkdir -p "$CONF_DIR"
    printf '%s\n' "$new_conf" | $SUDO tee "$CONF" >/dev/null
    changed=1
    say "wrote $CONF ($node_hw)"
fi
$SUDO mkdir -p "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$RUN_DIR"

# 3. daemons ----------------------------------------------------------------------------------
running() { [[ -f $1 ]] && $SUDO kill -0 "$(cat "$1")" 2>/dev/null; }
stopped() { ! $SUDO kill -0 "$1" 2>/dev/null; }

# munge: key (Debian's package usually creates one), then the daemon as the munge user.
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating the munge key"
    $SUDO mkdir -p /etc/munge
    if command -v mungekey >/dev/null 2>&1 || [[ -x /usr/sbin/mungekey ]]; then
        $SUDO mungekey --create --force --keyfile=/etc/munge/munge.key
    else
        $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
$SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
$SUDO chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
$SUDO chmod 0700 /etc/munge
$SUDO chmod 0400 /etc/munge/munge.key
if ! running /run/munge/munged.pid; then
    say "starting munged"
    $SUDO runuser -u munge -- /usr/sbin/munged
fi
wait_for 20 munge -n || die "munged did not answer within 20 s (see /var/log/munge/munged.log)"

# A changed configuration: restart our daemons so that they read it.
if (( changed )); then
    for pid_file in "$RUN_DIR/slurmd.pid" "$RUN_DIR/slurmctld.pid"; do
        if running "$pid_file"; then
            pid="$(cat "$pid_file")"
            say "stopping pid $pid ($pid_file) to reload the configuration"
            $SUDO kill "$pid"
            wait_for 20 stopped "$pid" || die "pid $pid did not stop within 20 s"
        fi
    done
fi
if ! running "$RUN_DIR/slurmctld.pid"; then
    say "starting slurmctld"
    $SUDO /usr/sbin/slurmctld   # daemonises; -c would clear the job state
fi
wait_for 30 scontrol ping || die "slurmctld did not answer within 30 s (see $LOG_DIR/slurmctld.log)"
if ! running "$RUN_DIR/slurmd.pid"; then
    say "starting slurmd"
    $SUDO /usr/sbin/slurmd -N localhost
fi

# A node left DOWN or DRAINED by an earlier run comes back.
node_state() { sinfo -h -N -n localhost -o '%T' 2>/dev/null | head -n 1; }
node_ready() { [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing)$ ]]; }
t0=$SECONDS
until node_ready; do
    state="$(node_state)"
    if [[ $state =~ (down|drain|fail) ]]; then
        $SUDO scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
    fi
    if (( SECONDS - t0 >= TIMEOUT_S )); then
        die "node localhost is '${state:-unknown}' after ${TIMEOUT_S} s, not idle (see $LOG_DIR/slurmd.log)"
    fi
    sleep 1
done
say "cluster up after ${SECONDS} s: $(sinfo -h -o '%P %c %m %T' | tr '\n' ';')"
