#!/usr/bin/env bash
# Whole-pipeline benchmark of `cqlsniff -r` on a large generated capture:
# CPU time per packet (user + sys, one goroutine) and peak memory.
# Usage: scripts/bench-file.sh [connections] [requests-per-connection] [client-batch]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-20} reqs=${2:-50000} batch=${3:-1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/cqlsniff" ./cmd/cqlsniff
go run ./cmd/cqlgen -connections "$conns" -requests "$reqs" -inflight 64 -client-batch "$batch" \
	-client-flush 200us -o "$dir/big.pcap" 2>"$dir/gen.txt"
packets=$(sed -n 's/^packets \([0-9]*\).*/\1/p' "$dir/gen.txt")
size=$(stat -c %s "$dir/big.pcap")
cat "$dir/big.pcap" >/dev/null # page cache: measure cqlsniff, not the disk
best=""
for i in 1 2 3 4 5; do
	/usr/bin/time -f "%U %S %M" -o "$dir/t" "$dir/cqlsniff" -r "$dir/big.pcap" >/dev/null
	read -r user sys rss <"$dir/t"
	cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
	echo "run $i: ${cpu}s CPU (${user}s user), peak RSS ${rss} KiB"
	if [ -z "$best" ] || awk -v a="$cpu" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$cpu bestrss=$rss; fi
done
echo "capture: $packets packets, $((size >> 20)) MiB; best of 5: ${best}s CPU"
awk -v c="$best" -v p="$packets" -v r="$bestrss" 'BEGIN { printf "=> %.0f ns/packet, %.2f M packets/s per core, peak RSS %.1f MiB\n", c * 1e9 / p, p / c / 1e6, r / 1024 }'
