#!/usr/bin/env bash
# Offline benchmark of issue 13: `cqlsniff -r` against the floor reader
# (scripts/floorwalk: a 1 MiB bufio.Reader, the Ethernet/IPv4/TCP headers
# and the CQL envelope headers that start each payload, nothing else) on
# three generated captures, each in the page cache:
#
#   unbuffered-200k  20 connections x 10,000 requests, one frame per write
#                    on both sides: ~400k packets, 72 MiB
#   buffered-200k    the same requests, clients coalescing up to 64 frames
#                    per write, 128 in flight: ~31.6k packets, 43 MiB
#   unbuffered-2M    as the first, 100,000 requests per connection:
#                    ~4M packets, 722 MiB (deleted as soon as it is measured)
#
# For each file it runs the floor and cqlsniff (with --workers 1 and 2 when
# `cqlsniff -h` lists the flag, else as it is) REPS times, interleaved (each
# repetition runs every command once, starting from a different one), and
# prints medians and ranges of wall and CPU time (user + system, all
# threads), the ratio of each repetition's cqlsniff time to the same
# repetition's floor time (median and range), and peak RSS. The machine is
# shared: the load average is printed before and after, and how busy the
# CPUs were meanwhile (all processes, from /proc/stat; steal is time the
# hypervisor gave to other guests).
#
# Knobs (environment): REPS (5), FILES (the names above, space-separated),
# BASE (another cqlsniff binary measured in the same rotation, e.g. the
# build of an older commit, for an A/B), WORKERS (the worker counts tried
# when the flag exists: "1 2"), TMPDIR (where the captures are written).
# Needs python3 (timing through wait4) and Go.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-5}
FILES=${FILES:-"unbuffered-200k buffered-200k unbuffered-2M"}
WORKERS=${WORKERS:-"1 2"}

dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-file.XXXXXX")
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/cqlsniff" ./cmd/cqlsniff
go build -o "$dir/floorwalk" ./scripts/floorwalk
go build -o "$dir/cqlgen" ./cmd/cqlgen

gen_args() { # name
	local unbuffered="-connections 20 -inflight 64 -client-batch 1 -server-batch 1 -autocork 0"
	case $1 in
	unbuffered-200k) echo "$unbuffered -requests 10000" ;;
	buffered-200k) echo "-connections 20 -requests 10000 -inflight 128 -client-batch 64 -client-flush 200us" ;;
	unbuffered-2M) echo "$unbuffered -requests 100000" ;;
	*) echo "bench-file: unknown file $1 (unbuffered-200k, buffered-200k, unbuffered-2M)" >&2; return 1 ;;
	esac
}

# has_workers: the binary has the --workers flag of the sharded pipeline.
has_workers() {
	local help
	help=$("$1" -h 2>&1 || true)
	[[ $help == *"-workers"* ]]
}

# commands: one "label<TAB>argv..." line per command of the rotation; the
# capture's path is appended to each argv.
commands() {
	printf 'floor\t%s\n' "$dir/floorwalk"
	local bin label
	for bin in "$dir/cqlsniff" ${BASE:+"$BASE"}; do
		label=cqlsniff
		[ "$bin" = "$dir/cqlsniff" ] || label="base"
		if has_workers "$bin"; then
			for w in $WORKERS; do
				printf '%s --workers %s\t%s --workers %s -r\n' "$label" "$w" "$bin" "$w"
			done
		else
			printf '%s\t%s -r\n' "$label" "$bin"
		fi
	done
}

# cpustat: busy and steal jiffies, total jiffies, of all CPUs so far.
cpustat() { awk '/^cpu / {busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, $9, busy + $5 + $6}' /proc/stat; }
read -r busy0 steal0 total0 < <(cpustat)
echo "bench-file: $(nproc) CPUs, $REPS interleaved repetitions; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for name in $FILES; do
	args=$(gen_args "$name")
	pcap="$dir/$name.pcap"
	# shellcheck disable=SC2086 # args are words
	"$dir/cqlgen" $args -o "$pcap" 2>"$dir/gen.txt"
	cat "$pcap" >/dev/null # page cache: measure the readers, not the disk
	echo
	echo "== $name: $(stat -c %s "$pcap" | awk '{printf "%.1f MiB", $1 / 1048576}'), $("$dir/floorwalk" "$pcap") (cqlgen $args)"
	commands >"$dir/commands"
	python3 - "$REPS" "$pcap" "$dir/commands" <<'EOF'
import os, statistics, subprocess, sys, time

reps, pcap = int(sys.argv[1]), sys.argv[2]
cmds = []
for line in open(sys.argv[3]):
    label, argv = line.rstrip("\n").split("\t")
    cmds.append((label, argv.split() + [pcap]))

def run(argv):
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("bench-file: %s failed: %s" % (" ".join(argv), err.decode(errors="replace")))
    return wall, ru.ru_utime + ru.ru_stime

# Peak RSS from one untimed run under GNU time (also a warm-up): the
# rusage of a child forked from this process counts this process's RSS
# as the child's until its exec.
rss = {}
for label, argv in cmds:
    out = subprocess.run(["/usr/bin/time", "-f", "%M", "--"] + argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, check=True).stderr.decode().split()
    rss[label] = int(out[-1]) / 1024

res = {label: [] for label, _ in cmds}
for i in range(reps):
    for j in range(len(cmds)):
        label, argv = cmds[(i + j) % len(cmds)]
        res[label].append(run(argv))

def span(xs, fmt):
    return (fmt + " [" + fmt + "-" + fmt + "]") % (statistics.median(xs), min(xs), max(xs))

floor = res["floor"]
print("%-22s %-22s %-22s %-20s %-20s %s" % ("", "wall ms", "CPU ms", "x floor (wall)", "x floor (CPU)", "peak RSS"))
for label, _ in cmds:
    r = res[label]
    wall = [x[0] * 1e3 for x in r]
    cpu = [x[1] * 1e3 for x in r]
    rw = [a[0] / f[0] for a, f in zip(r, floor)]
    rc = [a[1] / max(f[1], 1e-6) for a, f in zip(r, floor)]
    print("%-22s %-22s %-22s %-20s %-20s %.1f MiB" % (label, span(wall, "%.0f"), span(cpu, "%.0f"),
        span(rw, "%.2f"), span(rc, "%.2f"), rss[label]))
EOF
	rm -f "$pcap"
done
echo
read -r busy1 steal1 total1 < <(cpustat)
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); CPUs busy $(( 100 * (busy1 - busy0) / (total1 - total0) ))% of the time (steal $(( 100 * (steal1 - steal0) / (total1 - total0) ))%), this benchmark included"
