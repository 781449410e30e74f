#!/usr/bin/env bash
# What --syscalls costs a real driver (issue #6). Runs the lab's gocql client unbuffered (one send call
# per request: the most syscall-heavy case) at 64 in flight against the lab Cassandra while
# `cqlsniff -i lo` captures, alternately with --syscalls (the eBPF counters) and --syscalls=false, and
# prints per round and as medians: the client's throughput, the client's CPU time per request (the
# programs run in the caller's context, so their cost lands there) and cqlsniff's own CPU time.
#
#   scripts/syscalls-overhead.sh            (root; starts the lab Cassandra if none answers on 9042)
#
# Knobs (environment): ROUNDS (8), REQUESTS (20000), CONCURRENCY (64), COALESCE (0 = unbuffered).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "syscalls-overhead: needs root" >&2; exit 1; }
ROUNDS=${ROUNDS:-8} REQUESTS=${REQUESTS:-20000} CONCURRENCY=${CONCURRENCY:-64} COALESCE=${COALESCE:-0}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/cqlsniff" ./cmd/cqlsniff
(cd lab/clients/gocql && GOMODCACHE="$PWD/../../.cache/gomod" GOFLAGS=-modcacherw GOWORK=off go build -o "$dir/client" .)
python3 lab/cassandra/cql_ping.py 127.0.0.1 9042 || lab/cassandra/start.sh
# The schema, and a server past its JIT warm-up (a cold Cassandra doubles its rate over the first ~50k requests).
"$dir/client" -n 50000 -c "$CONCURRENCY" >/dev/null

run() { # run ROUND MODE
  local tag="$dir/$1-$2"
  env -u SUDO_UID -u SUDO_GID /usr/bin/time -f "%U %S" -o "$tag.sniff-time" \
    "$dir/cqlsniff" -i lo -p 9042 --report json "--syscalls=$([ "$2" = on ] && echo true || echo false)" \
    >"$tag.report" 2>"$tag.sniff-err" &
  local sniff=$!
  for _ in $(seq 100); do grep -q " pkts " "$tag.sniff-err" 2>/dev/null && break; sleep 0.1; done
  /usr/bin/time -f "%U %S" -o "$tag.client-time" "$dir/client" -n "$REQUESTS" -c "$CONCURRENCY" \
    -coalesce "$COALESCE" >"$tag.client" 2>/dev/null
  sleep 0.5
  pkill -INT -P "$sniff" # cqlsniff, the child of time (which ignores SIGINT itself)
  wait "$sniff" || true
  python3 - "$tag" "$2" "$1" <<'EOF'
import json, sys
tag, mode, rnd = sys.argv[1:]
client = json.loads(open(tag + ".client").read().strip().splitlines()[-1])
cu, cs = map(float, open(tag + ".client-time").read().split()[-2:])
su, ss = map(float, open(tag + ".sniff-time").read().split()[-2:])
rep = json.load(open(tag + ".report"))
measured = any(c.get("client_syscalls") for c in rep.get("connections", []))
row = {"round": int(rnd), "syscalls": mode, "measured": measured, "ops_per_s": round(client["ops_per_s"]),
       "client_cpu_us_per_req": round((cu + cs) * 1e6 / client["requests"], 1),
       "cqlsniff_cpu_s": round(su + ss, 2), "packets": rep.get("packets"), "dropped": rep.get("dropped")}
print(json.dumps(row))
EOF
}

for r in $(seq "$ROUNDS"); do
  # Alternate which goes first, so a drift in the machine's load falls on both.
  if ((r % 2)); then run "$r" on; run "$r" off; else run "$r" off; run "$r" on; fi
done | tee "$dir/rows.jsonl"
python3 - "$dir/rows.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda mode, k: statistics.median(r[k] for r in rows if r["syscalls"] == mode)
pairs = {}
for r in rows:
    pairs.setdefault(r["round"], {})[r["syscalls"]] = r
for k, label in (("ops_per_s", "client ops/s"), ("client_cpu_us_per_req", "client CPU µs/request"),
                 ("cqlsniff_cpu_s", "cqlsniff CPU s")):
    on, off = med("on", k), med("off", k)
    # The same round's two runs side by side: the machine's drift cancels out.
    diffs = sorted((p["on"][k] - p["off"][k]) / p["off"][k] for p in pairs.values() if p["off"][k])
    spread = f"per-round {diffs[0]:+.1%} … {diffs[-1]:+.1%}, median {statistics.median(diffs):+.1%}" if diffs else ""
    print(f"{label:22s} median --syscalls {on:9.2f}  --syscalls=false {off:9.2f}  {spread}")
if not all(r["measured"] for r in rows if r["syscalls"] == "on"):
    print("warning: some --syscalls runs had no kernel counts (eBPF unavailable?)")
EOF
