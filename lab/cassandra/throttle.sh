#!/usr/bin/env bash
# Cap the lab Cassandra's CPU with a cgroup CPU quota, to make the SERVER the slow side of a capture.
#
#   lab/cassandra/throttle.sh 30     at most 30% of one core (CFS quota 30 ms per 100 ms period)
#   lab/cassandra/throttle.sh off    back to unthrottled, cgroup removed
#
# Moves the recorded java pid (all its threads) into its own cgroup "cqlsniff-cassandra-throttle":
# cgroup v2 (cpu.max) when /sys/fs/cgroup is cgroup2, else the v1 cpu controller (cpu.cfs_quota_us).
# Root only. Nothing else is moved or changed.
set -euo pipefail
run_dir=${CASSANDRA_RUN_DIR:-/tmp/cqlsniff-cassandra}
pid=$(cat "$run_dir/cassandra.pid")
kill -0 "$pid"
arg=${1:?usage: throttle.sh PERCENT|off}
name=cqlsniff-cassandra-throttle

if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
  root=/sys/fs/cgroup
  grep -qw cpu "$root/cgroup.subtree_control" || echo +cpu > "$root/cgroup.subtree_control"
  set_quota() { echo "$1 100000" > "$root/$name/cpu.max"; }
  unlimited=max
else
  root=/sys/fs/cgroup/cpu
  set_quota() { echo 100000 > "$root/$name/cpu.cfs_period_us"; echo "$1" > "$root/$name/cpu.cfs_quota_us"; }
  unlimited=-1
fi
group="$root/$name"

if [[ "$arg" == off ]]; then
  [[ -d "$group" ]] || { echo "not throttled"; exit 0; }
  set_quota "$unlimited"
  echo "$pid" > "$root/cgroup.procs"
  # Threads that were being created during the move land in the group too: move any left.
  for t in $(cat "$group/cgroup.procs" 2>/dev/null); do echo "$t" > "$root/cgroup.procs"; done
  rmdir "$group"
  echo "cassandra pid $pid unthrottled"
  exit 0
fi

[[ "$arg" =~ ^[0-9]+$ && "$arg" -ge 1 && "$arg" -le 200 ]] || { echo "percent of one core: 1..200" >&2; exit 2; }
mkdir -p "$group"
set_quota $((arg * 1000))
echo "$pid" > "$group/cgroup.procs"
echo "cassandra pid $pid limited to ${arg}% of one core ($group)"
