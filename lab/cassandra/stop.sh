#!/usr/bin/env bash
# Stop the lab Cassandra started by start.sh (by its recorded pid only), waiting up to 30 s.
set -euo pipefail
run_dir=${CASSANDRA_RUN_DIR:-/tmp/cqlsniff-cassandra}
pid_file="$run_dir/cassandra.pid"
if [[ ! -f "$pid_file" ]]; then
  echo "no pid file at $pid_file: not running"
  exit 0
fi
pid=$(cat "$pid_file")
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "cassandra pid $pid did not stop in 30 s; sending KILL"
    kill -9 "$pid"
  fi
fi
rm -f "$pid_file"
echo "cassandra stopped (pid $pid)"
