#!/usr/bin/env bash
# Stops what start-local-cluster.sh started, by PID file (never by process name), after
# cancelling the jobs still queued or running. `--purge` also deletes its state, database, logs
# and the /etc/slurm symlinks.
set -uo pipefail
PREFIX=${SLURM_PREFIX:-/var/tmp/distillery-slurm}
export SLURM_CONF=$PREFIX/etc/slurm.conf
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() { # stop NAME PIDFILE
  local pid
  alive "$2" || return 0
  pid=$(cat "$2")
  kill "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  echo "stopped $1"
}
if alive "$PREFIX/run/slurmctld.pid"; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
  if [ -n "$jobs" ]; then
    scancel $jobs
    for _ in $(seq 1 50); do [ -z "$(squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
for pidfile in "$PREFIX"/run/slurmd-*.pid; do stop "$(basename "$pidfile" .pid)" "$pidfile"; done
stop slurmctld "$PREFIX/run/slurmctld.pid"
stop slurmdbd "$PREFIX/run/slurmdbd.pid"
stop mariadbd "$PREFIX/run/mysqld/mysqld.pid"
if [ -e "$PREFIX/run/munged.ours" ]; then
  stop munged /run/munge/munged.pid
  rm -f "$PREFIX/run/munged.ours"
fi
if [ "${1:-}" = --purge ]; then
  for link in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    [ "$(readlink "$link" 2>/dev/null)" = "$PREFIX/etc/$(basename "$link")" ] && rm -f "$link"
  done
  rm -rf "$PREFIX"
  echo "purged $PREFIX"
fi
exit 0
