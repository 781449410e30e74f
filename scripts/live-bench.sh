#!/usr/bin/env bash
# Live capture benchmark (issue #4). Replays a generated capture onto the
# loopback device with tcpreplay at increasing packet rates while a
# consumer reads it from an AF_PACKET ring, and prints for each rate and
# consumer: packets captured, kernel drops, CPU time per packet.
#
# Consumers: "cqlsniff" is the whole live pipeline (capture, reassembly,
# CQL decoding, pairing, statistics: the TestLiveBench consumer of
# cmd/cqlsniff/live_test.go); "cqlsniff -w" also writes every frame to
# /dev/null; "capture -w" is LiveSource alone writing the frames to
# /dev/null, no analysis: the like of "tcpdump -w", tcpdump -i lo -w
# /dev/null with the same port filter and ring size. CPU time is the consumer process's user +
# system time: the kernel's copy of each packet into the ring runs in the
# sender's context (here tcpreplay's) and is not in it, for any consumer.
#
# Needs root, tcpreplay (with tcprewrite) and tcpdump. Knobs (environment):
# CONNS, REQUESTS (the generated workload), RATES (packets per second, or
# "topspeed"), PORT (the port the replay is moved to), RING_MB.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "live-bench: needs root" >&2; exit 1; }
for tool in tcpreplay tcprewrite tcpdump; do
  command -v "$tool" >/dev/null || { echo "live-bench: needs $tool (apt-get install -y tcpreplay tcpdump)" >&2; exit 1; }
done

CONNS=${CONNS:-20}
REQUESTS=${REQUESTS:-20000}
RATES=${RATES:-"50000 100000 200000 300000 400000 topspeed"}
PORT=${PORT:-19642}
RING_MB=${RING_MB:-32}

work=$(mktemp -d /tmp/live-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

go run ./cmd/cqlgen -connections "$CONNS" -requests "$REQUESTS" -inflight 64 -client-batch 1 -o "$work/gen.pcap" >&2
# The generator writes zero MACs, lo's own address: replayed as they are,
# the packets would be "to us", and the kernel would answer each segment
# of a connection it does not know with a reset (doubling the traffic,
# and reaching a real server listening on 9042). A unicast destination
# that is not lo's makes them PACKET_OTHERHOST: the capture sees them,
# IP drops them. The port moves away from 9042 so no real CQL traffic on
# the machine is measured along.
tcprewrite --enet-dmac=02:00:00:00:00:01 --portmap=9042:"$PORT" --fixcsum \
  --infile="$work/gen.pcap" --outfile="$work/replay.pcap"
packets=$(capinfos -Mc "$work/replay.pcap" 2>/dev/null | awk '/Number of packets/ {print $NF}' || true)
go test -c -o "$work/live.test" ./cmd/cqlsniff

replay() { # rate
  if [ "$1" = topspeed ]; then
    tcpreplay -K --topspeed -i lo "$work/replay.pcap"
  else
    tcpreplay -K --pps="$1" -i lo "$work/replay.pcap"
  fi 2>&1 | awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($i ~ /^pps/) print $(i-1)}'
}

run_cqlsniff() { # rate dump mode
  local out="$work/cqlsniff.out"
  CQLSNIFF_LIVE_BENCH_MODE="$3" CQLSNIFF_LIVE_BENCH=1 CQLSNIFF_LIVE_BENCH_PORTS="$PORT" CQLSNIFF_LIVE_BENCH_RING="$RING_MB" CQLSNIFF_LIVE_BENCH_DUMP="$2" \
    "$work/live.test" -test.run '^TestLiveBench$' -test.v >"$out" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q '^ready' "$out" && break; sleep 0.1; done
  local pps
  pps=$(replay "$1")
  wait "$pid" || { cat "$out" >&2; return 1; }
  local res
  res=$(sed -n 's/^result //p' "$out")
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("%-12s %-14s %10s %9d %8d %9s %10.0f" % (sys.argv[2], sys.argv[3], sys.argv[4], r["packets"], r["dropped"], r["responses"] or "-", r["cpu_ns_per_packet"]))
' "$res" "$1" "${3:-cqlsniff}${2:+ -w}" "$pps"
}

run_tcpdump() { # rate
  local err="$work/tcpdump.err"
  tcpdump -i lo -n -B $((RING_MB * 1024)) -w /dev/null "tcp port $PORT" 2>"$err" &
  local pid=$!
  for _ in $(seq 100); do grep -q 'listening' "$err" && break; sleep 0.1; done
  local pps
  pps=$(replay "$1")
  sleep 1
  # CPU time in ns (tcpdump has one thread), before the process goes away:
  # schedstat's resolution is finer than utime's and stime's clock ticks.
  local cpu_ns
  cpu_ns=$(awk '{print $1}' "/proc/$pid/schedstat")
  kill -INT "$pid"
  wait "$pid" || true
  local captured dropped
  captured=$(awk '/packets captured/ {print $1}' "$err")
  dropped=$(awk '/dropped by kernel/ {print $1}' "$err")
  awk -v r="$1" -v pps="$pps" -v c="$captured" -v d="$dropped" -v ns="$cpu_ns" \
    'BEGIN { printf "%-12s %-14s %10s %9d %8d %9s %10.0f\n", r, "tcpdump -w", pps, c, d, "-", ns / (c > 0 ? c : 1) }'
}

echo "replaying $packets packets per run onto lo, port $PORT, ring $RING_MB MiB, $(nproc) CPUs"
printf "%-12s %-14s %10s %9s %8s %9s %10s\n" rate consumer "sent pps" captured dropped responses "cpu ns/pkt"
for rate in $RATES; do
  run_cqlsniff "$rate" "" ""
  run_cqlsniff "$rate" /dev/null ""
  run_cqlsniff "$rate" /dev/null capture
  run_tcpdump "$rate"
done
