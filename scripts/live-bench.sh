#!/usr/bin/env bash
# Live capture benchmark (issues 4 and 13). Replays a generated capture onto
# the loopback device with tcpreplay while a consumer reads it from an
# AF_PACKET ring, and prints packets captured, kernel drops and CPU time per
# packet.
#
# Consumers: "cqlsniff" is the whole live pipeline (capture, reassembly,
# CQL decoding, pairing, statistics: the TestLiveBench consumer of
# cmd/cqlsniff/live_test.go); "cqlsniff -w" also writes every frame to
# /dev/null; "capture -w" is LiveSource alone writing the frames to
# /dev/null, no analysis: the like of "tcpdump -w"; "cqlsniff -i" is the
# cqlsniff binary itself, headless (-report json, --syscalls=false, a
# summary line a second); "tcpdump -w" is tcpdump -i lo -w /dev/null with
# the same port filter and ring size. CPU time is the consumer process's
# user + system time, all threads: the kernel's copy of each packet into
# the ring runs in the sender's context (here tcpreplay's) and is not in
# it, for any consumer.
#
# Two parts:
#   1. a sweep (RATES): each consumer once per rate;
#   2. the ratio of issue 13 (RATIO_REPS rounds, 0 to skip): at tcpreplay's
#      top speed, tcpdump and the full-analysis consumers alternately, each
#      round's CPU per packet divided by the same round's tcpdump figure;
#      median and range over the rounds, and the drops.
#
# Workers: when `cqlsniff -h` lists --workers, part 2 runs the full-analysis
# consumers with each count in WORKERS ("1 2"): the cqlsniff binary with
# --workers N, and TestLiveBench with CQLSNIFF_LIVE_BENCH_WORKERS=N (a
# PACKET_FANOUT group of N rings sharing RING_MB, as cqlsniff's do).
#
# Needs root, tcpreplay (with tcprewrite) and tcpdump. Knobs (environment):
# CONNS, REQUESTS (the generated workload: by default the unbuffered 200k
# file of scripts/bench-file.sh), RATES (packets per second, or
# "topspeed"; "" skips the sweep), RATIO_REPS (5), WORKERS, PORT (the port
# the replay is moved to), RING_MB.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "live-bench: needs root" >&2; exit 1; }
for tool in tcpreplay tcprewrite tcpdump python3; do
  command -v "$tool" >/dev/null || { echo "live-bench: needs $tool (apt-get install -y tcpreplay tcpdump)" >&2; exit 1; }
done

CONNS=${CONNS:-20}
REQUESTS=${REQUESTS:-10000}
RATES=${RATES-"50000 100000 200000 300000 400000 topspeed"}
RATIO_REPS=${RATIO_REPS:-5}
WORKERS=${WORKERS:-"1 2"}
PORT=${PORT:-19642}
RING_MB=${RING_MB:-32}

work=$(mktemp -d /tmp/live-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

go run ./cmd/cqlgen -connections "$CONNS" -requests "$REQUESTS" -inflight 64 -client-batch 1 -server-batch 1 -autocork 0 \
  -o "$work/gen.pcap" >&2
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
go build -o "$work/cqlsniff" ./cmd/cqlsniff

replay() { # rate
  if [ "$1" = topspeed ]; then
    tcpreplay -K --topspeed -i lo "$work/replay.pcap"
  else
    tcpreplay -K --pps="$1" -i lo "$work/replay.pcap"
  fi 2>&1 | awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($i ~ /^pps/) print $(i-1)}'
}

# Each consumer prints one row: rate, consumer, sent pps, captured,
# dropped, responses, CPU ns per packet.
row() {
  printf "%-12s %-22s %10s %9s %8s %9s %10.0f\n" "$@"
}

run_cqlsniff() { # rate dump mode [workers]
  local out="$work/cqlsniff.out"
  CQLSNIFF_LIVE_BENCH_WORKERS="${4:-}" CQLSNIFF_LIVE_BENCH_MODE="$3" CQLSNIFF_LIVE_BENCH=1 CQLSNIFF_LIVE_BENCH_PORTS="$PORT" \
    CQLSNIFF_LIVE_BENCH_RING="$RING_MB" CQLSNIFF_LIVE_BENCH_DUMP="$2" \
    "$work/live.test" -test.run '^TestLiveBench$' -test.v >"$out" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q '^ready' "$out" && break; sleep 0.1; done
  local pps
  pps=$(replay "$1")
  wait "$pid" || { cat "$out" >&2; return 1; }
  local res label
  res=$(sed -n 's/^result //p' "$out")
  label="${3:-cqlsniff}${2:+ -w}${4:+ w$4}"
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("%s\t%s\t%s\t%d\t%d\t%s\t%.0f" % (sys.argv[2], sys.argv[3], sys.argv[4], r["packets"], r["dropped"], r["responses"] or "-", r["cpu_ns_per_packet"]))
' "$res" "$1" "$label" "$pps"
}

# run_binary: the cqlsniff binary, headless, until the replay is over.
run_binary() { # rate [workers]
  local out="$work/binary.json" err="$work/binary.err"
  local flags=(-i lo -p "$PORT" --only-ports --syscalls=false -ring-mb "$RING_MB" -report json -interval 1s)
  [ -z "${2:-}" ] || flags+=(--workers "$2")
  "$work/cqlsniff" "${flags[@]}" >"$out" 2>"$err" &
  local pid=$!
  # The first summary line comes once the ring is open and read.
  for _ in $(seq 100); do [ -s "$err" ] && break; sleep 0.1; done
  local pps
  pps=$(replay "$1")
  sleep 1
  # CPU time in ns of all the process's threads, before it goes away.
  local cpu_ns
  cpu_ns=$(cat /proc/"$pid"/task/*/schedstat | awk '{s += $1} END {print s}')
  kill -INT "$pid"
  wait "$pid" || { cat "$err" >&2; return 1; }
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
n = max(r["packets"], 1)
print("%s\t%s\t%s\t%d\t%d\t%s\t%.0f" % (sys.argv[2], sys.argv[3], sys.argv[4], r["packets"], r["dropped"], r["totals"]["responses"], float(sys.argv[5]) / n))
' "$out" "$1" "cqlsniff -i${2:+ w$2}" "$pps" "$cpu_ns"
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
    'BEGIN { printf "%s\ttcpdump -w\t%s\t%d\t%d\t-\t%.0f\n", r, pps, c, d, ns / (c > 0 ? c : 1) }'
}

show() { # the tab-separated row on stdin, as a table row
  local line
  IFS= read -r line
  IFS=$'\t' read -r -a f <<<"$line"
  row "${f[@]}"
  printf '%s\n' "$line" >>"$work/rows"
}

workers=("")
if help=$("$work/cqlsniff" -h 2>&1 || true) && [[ $help == *"-workers"* ]]; then
  read -r -a workers <<<"$WORKERS"
fi

echo "replaying $packets packets per run onto lo, port $PORT, ring $RING_MB MiB, $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$RATES" ]; then
  # (The sweep runs the first worker count of WORKERS.)
  printf "%-12s %-22s %10s %9s %8s %9s %10s\n" rate consumer "sent pps" captured dropped responses "cpu ns/pkt"
  for rate in $RATES; do
    run_cqlsniff "$rate" "" "" "${workers[0]}" | show
    run_cqlsniff "$rate" /dev/null "" "${workers[0]}" | show
    run_cqlsniff "$rate" /dev/null capture | show
    run_binary "$rate" "${workers[0]}" | show
    run_tcpdump "$rate" | show
  done
fi

[ "$RATIO_REPS" -gt 0 ] || exit 0
echo
echo "CPU per packet against tcpdump -w /dev/null at top speed, $RATIO_REPS interleaved rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf "%-12s %-22s %10s %9s %8s %9s %10s\n" rate consumer "sent pps" captured dropped responses "cpu ns/pkt"
: >"$work/rows"
for round in $(seq "$RATIO_REPS"); do
  run_tcpdump topspeed | show
  for w in "${workers[@]}"; do
    run_cqlsniff topspeed "" "" "$w" | show
    run_binary topspeed "$w" | show
  done
done
echo
python3 - "$work/rows" <<'EOF'
import statistics, sys
rounds, cur = [], None
for line in open(sys.argv[1]):
    rate, consumer, pps, captured, dropped, responses, ns = line.rstrip("\n").split("\t")
    if consumer == "tcpdump -w":
        cur = {}
        rounds.append(cur)
    cur[consumer] = (float(ns), int(dropped), float(pps or 0))
names = [c for c in rounds[0]]
print("%-22s %-26s %-22s %-10s %s" % ("consumer", "cpu ns/pkt median [range]", "x tcpdump median [range]", "drops", "sent pps median"))
for c in names:
    ns = [r[c][0] for r in rounds if c in r]
    ratio = [r[c][0] / r["tcpdump -w"][0] for r in rounds if c in r]
    drops = sum(r[c][1] for r in rounds if c in r)
    pps = [r[c][2] for r in rounds if c in r]
    print("%-22s %-26s %-22s %-10d %.0f" % (c, "%.0f [%.0f-%.0f]" % (statistics.median(ns), min(ns), max(ns)),
        "%.2f [%.2f-%.2f]" % (statistics.median(ratio), min(ratio), max(ratio)), drops, statistics.median(pps)))
EOF
