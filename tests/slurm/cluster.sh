#!/usr/bin/env bash
# tests/slurm/cluster.sh - a throw-away, single-node SLURM cluster on this machine, for
# `make test-slurm` (tests/slurm/test_slurm.py) and for trying the slurm profile by hand.
#
#   bash tests/slurm/cluster.sh up       # install Debian packages if missing, write configs, start daemons
#   bash tests/slurm/cluster.sh status   # which daemons run (exit 0 only if the cluster takes jobs)
#   bash tests/slurm/cluster.sh down     # stop the daemons THIS script started, by recorded PID
#
# Needs root on Debian 12 (Slurm 22.05, MUNGE 0.5, MariaDB 10.11) and no systemd: every daemon runs in
# the foreground (-D / -F) as a background job of this script, and its PID goes to $ZHBENCH_SLURM_DIR/pids.
# `up` and `down` are idempotent: `up` on a running cluster only checks it, `down` on a stopped one is a no-op.
#
# Environment:
#   ZHBENCH_SLURM_DIR   scratch dir for state, spool, daemon logs and PID files (default /tmp/zhbench-slurm)
#   WITH_DBD=1          (default) also run MariaDB + slurmdbd, so that `sacct` works: the slurm executor
#                       plugin's default status command, and the proof in the test that jobs ran.
#                       WITH_DBD=0 skips both (faster); then the profile needs `slurm-status-command: squeue`.
#
# Files outside the scratch dir: /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf. They MUST be there:
# Slurm does not pass a non-default SLURM_CONF into batch jobs, so `srun` inside a job (which is how the
# plugin starts each rule) would find no configuration. Both carry a marker line; `up` refuses to overwrite
# a slurm.conf without it, so this script cannot clobber a real cluster's configuration.
set -Eeuo pipefail   # -E: the ERR trap in up() also fires inside the functions it calls

SCRATCH=${ZHBENCH_SLURM_DIR:-/tmp/zhbench-slurm}
WITH_DBD=${WITH_DBD:-1}
PARTITION=cpu          # keep in sync with default-resources.slurm_partition in workflow/profiles/slurm
ACCOUNT=zhbench        # created in the accounting database when WITH_DBD=1
ETC=/etc/slurm
MARKER="# managed by zhbench tests/slurm/cluster.sh - safe to delete"
PIDS=$SCRATCH/pids
LOGS=$SCRATCH/log

say() { printf '[cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# retry SECONDS CMD...: run CMD every half second until it succeeds, or fail after SECONDS.
retry() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then say "gave up after waiting for: $*"; return 1; fi
        sleep 0.5
    done
}

# A PID file counts only while its process is alive AND is still the daemon we started (PIDs get reused).
pid_of() {
    local f=$PIDS/$1.pid pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
    echo "$pid"
}

# launch NAME CMD...: start a foreground-mode daemon in the background and record its PID.
launch() {
    local name=$1; shift
    nohup "$@" >>"$LOGS/$name.out" 2>&1 </dev/null &
    echo $! >"$PIDS/$name.pid"
    say "started $name (pid $!)"
}

ctld_answers() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_ready()   { sinfo -h -n localhost -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }
munge_works()  { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
db_answers()   { mariadb-admin --connect-timeout=2 ping >/dev/null 2>&1; }

show_logs() {   # on failure: the last lines of every daemon log, which is where the reason is
    local f
    for f in "$LOGS"/*; do
        [[ -f $f ]] || continue
        echo "----- $f" >&2; tail -n 15 "$f" >&2
    done
}

install_packages() {
    local pkgs=(slurm-wlm munge)      # slurmctld + slurmd + client tools + MUNGE authentication
    [[ $WITH_DBD == 1 ]] && pkgs+=(slurmdbd mariadb-server)
    dpkg -s "${pkgs[@]}" >/dev/null 2>&1 && return 0
    say "installing ${pkgs[*]}"
    # No systemd in the container: the postinst scripts cannot start services, which is what we want.
    # The lock timeout waits for another apt run on the same machine instead of failing.
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${pkgs[@]}" >/dev/null
}

write_slurm_conf() {
    local conf=$ETC/slurm.conf cpus mem accounting
    if [[ -e $conf ]] && ! grep -qxF "$MARKER" "$conf"; then
        die "$conf exists and was not written by this script; refusing to overwrite a real cluster's config"
    fi
    cpus=$(nproc)
    mem=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)   # MB; 20 % left for the OS
    if [[ $WITH_DBD == 1 ]]; then
        accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5"
    else
        accounting="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
    fi
    mkdir -p "$ETC"
    cat >"$conf" <<EOF
$MARKER
# Single-node test cluster. Node name 'localhost' (slurmd -N localhost) whatever the hostname is.
ClusterName=zhbench
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/run/slurmctld.pid
SlurmdPidFile=$SCRATCH/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# No cgroups in a container: track processes by parent PID, bind no CPUs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
# Schedule cores and memory, so two 1-CPU jobs share the node ...
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# ... and a job without --mem does not take all of the node's memory.
DefMemPerCPU=500
$accounting
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
# Finished jobs stay visible to squeue for 5 min (the squeue status command needs that).
MinJobAge=300
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge_works; then
        pid_of munged munged >/dev/null || say "munged already running (not ours), using it"
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
    retry 20 munge_works
}

start_accounting() {
    if db_answers; then
        pid_of mariadbd mariadbd >/dev/null || say "MariaDB already running (not ours), using it"
    else
        install -d -o mysql -g mysql /run/mysqld
        [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >"$LOGS/mariadb-install.out" 2>&1
        launch mariadbd /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1
        retry 60 db_answers
    fi
    mariadb <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'zhbench-test-only';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
    cat >"$ETC/slurmdbd.conf" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$SCRATCH/run/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=zhbench-test-only
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$ETC/slurmdbd.conf"            # slurmdbd refuses to read a world-readable config
    pid_of slurmdbd slurmdbd >/dev/null || launch slurmdbd /usr/sbin/slurmdbd -D
    retry 60 sacctmgr -n list cluster
}

# Register the cluster, an account and root as its user, so that `slurm_account` (and the plugin's
# account check through sacctmgr) behaves the way it does on a real cluster. Runs after slurmctld started.
add_account() {
    sacctmgr -n list cluster format=cluster | grep -qw zhbench || sacctmgr -i add cluster zhbench >/dev/null
    sacctmgr -n list account format=account | grep -qw "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" Description=zhbench-tests Organization=zhbench >/dev/null
    sacctmgr -n list user root withassoc format=account | grep -qw "$ACCOUNT" ||
        sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
}

up() {
    local t0=$SECONDS
    mkdir -p "$SCRATCH"/{state,spool,run} "$PIDS" "$LOGS"
    trap 'say "bring-up failed"; show_logs' ERR
    install_packages
    say "packages ready ($((SECONDS - t0)) s)"
    if pid_of slurmctld slurmctld >/dev/null && pid_of slurmd slurmd >/dev/null && node_ready; then
        say "cluster already up"
        return 0
    fi
    if ctld_answers && ! pid_of slurmctld slurmctld >/dev/null; then
        die "a slurmctld this script did not start is answering; refusing to start a second one"
    fi
    write_slurm_conf
    start_munge
    if [[ $WITH_DBD == 1 ]]; then start_accounting; fi
    # Register the cluster before slurmctld starts, so slurmctld is accepted by slurmdbd at once.
    if [[ $WITH_DBD == 1 ]]; then add_account; fi
    pid_of slurmctld slurmctld >/dev/null || launch slurmctld /usr/sbin/slurmctld -D -i
    retry 60 ctld_answers
    pid_of slurmd slurmd >/dev/null || launch slurmd /usr/sbin/slurmd -D -N localhost
    retry 60 node_ready
    # One real batch job end to end (and, with accounting, in sacct) before we call the cluster up.
    local id
    id=$(sbatch --parsable --wait -o /dev/null -p "$PARTITION" --wrap true)
    if [[ $WITH_DBD == 1 ]]; then
        retry 30 sh -c "sacct -X -n -j $id -o State | grep -q COMPLETED" || die "job $id not in sacct"
    fi
    trap - ERR
    say "SLURM up ($((SECONDS - t0)) s): partition $PARTITION, $(nproc) CPUs, accounting=$WITH_DBD"
}

down() {
    # Cancel leftover jobs only on a controller we own; never touch somebody else's cluster.
    if pid_of slurmctld slurmctld >/dev/null; then
        squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
    fi
    # All five at once (a throw-away cluster: nothing to hand over in order), then up to 10 s for
    # each to exit before SIGKILL.
    local name pid i
    local -A pids=()
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        if pid=$(pid_of "$name" "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids[$name]=$pid
        fi
    done
    for name in "${!pids[@]}"; do
        pid=${pids[$name]}
        for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
        say "stopped $name (pid $pid)"
    done
    for name in slurmd slurmctld slurmdbd mariadbd munged; do rm -f "$PIDS/$name.pid"; done
}

status() {
    local name pid ok=0
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        if pid=$(pid_of "$name" "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    if ctld_answers && node_ready; then
        sinfo
    else
        echo "cluster: not taking jobs"; ok=1
    fi
    if [[ $WITH_DBD == 1 ]] && ! sacctmgr -n list cluster >/dev/null 2>&1; then
        echo "accounting: slurmdbd does not answer"; ok=1
    fi
    return $ok
}

[[ $(id -u) == 0 ]] || die "run as root (installs packages, writes /etc/slurm, starts daemons)"
case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
