#!/usr/bin/env bash
# The FuturesUnordered sweep (issue 10, "client or server?"): the lab's scylla 0.3.1 client with every
# in-flight request in one FuturesUnordered, built against futures 0.3.18 and 0.3.19, at each
# concurrency, each run captured through lab/run.py (pcap + kernel counts + client and server CPU).
#
#   lab/sweep-futures.sh                   2 rounds of C in 64 256 1024 4096 16384, 8 s per run
#   ROUNDS=1 SECONDS_PER_RUN=5 CS="64 4096" lab/sweep-futures.sh
#
# Runs are interleaved (0.3.18, 0.3.19 at each C, then the next C, then the next round) so that
# load from elsewhere on the machine hits both versions alike. Each run is time-bound: the client
# stops issuing after SECONDS_PER_RUN and waits for what is in flight. Output: lab/out/sweep/ (OUT):
# NAME.pcap.gz + NAME.json per run, and results.jsonl, one line per run (appended) with the capture
# path. Root (run.py needs tcpdump and bpftrace). Starts the lab Cassandra if it is not running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/.cache"
out=${OUT:-$here/out/sweep}
rounds=${ROUNDS:-2}
cs=${CS:-64 256 1024 4096 16384}
secs=${SECONDS_PER_RUN:-8}
versions=${VERSIONS:-0.3.18 0.3.19}

py=$("$here/clients/python/setup.sh")
"$here/cassandra/start.sh"

export CARGO_HOME="$cache/cargo"
mkdir -p "$cache/bin" "$out"
for v in $versions; do
  (cd "$here/clients/rust-futures/futures-$v" &&
    CARGO_TARGET_DIR="$cache/rust-target-futures-$v" nice -n 10 cargo build --release --locked -q)
  cp "$cache/rust-target-futures-$v/release/futures-client" "$cache/bin/futures-client-$v"
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
for r in $(seq 1 "$rounds"); do
  for c in $cs; do
    for v in $versions; do
      name=scylla-rust-0.3.1-futures-$v-c$c-r$r-$stamp
      echo "== round $r C=$c futures $v ($(uptime | sed 's/.*load average/load average/'))"
      "$py" "$here/run.py" --name "$name" --out "$out" --gzip --timeout $((secs * 10 + 120)) \
        --note "sweep $stamp round $r: futures $v, $c in flight in one FuturesUnordered, ${secs} s" \
        -- "$cache/bin/futures-client-$v" -n 100000000 -c "$c" --max-seconds "$secs" | tail -1
      "$py" - "$out/$name.json" "$r" "$stamp" "$(dirname "$here")" >> "$out/results.jsonl" <<'PY'
import json, os, sys
path, rnd, stamp, repo = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
d = json.load(open(path))
s = d["client_summary"]


def rel(p):  # repo-relative inside the checkout, absolute elsewhere
    p = os.path.abspath(p)
    return os.path.relpath(p, repo) if p.startswith(os.path.abspath(repo) + os.sep) else p


print(json.dumps({
    "sweep": stamp, "round": rnd,
    "futures_version": s["futures_version"], "concurrency": s["concurrency"],
    "requests": s["requests"], "errors": s["errors"], "duration_s": s["duration_s"],
    "ops_per_s": s["ops_per_s"],
    "client_cpu_us_per_request_self": s["cpu_us_per_request"],
    "client_cpu_us_per_request_wait4": d["client_cpu"]["cpu_us_per_request"],
    "client_cpu_s_wait4": round(d["client_cpu"]["user_s"] + d["client_cpu"]["sys_s"], 3),
    "server_cpu_us_per_request": (d.get("server_cpu") or {}).get("cpu_us_per_request"),
    "server_cores_busy": (d.get("server_cpu") or {}).get("cores_busy"),
    "send_syscalls": d["kernel"]["send_syscalls"], "recv_syscalls": d["kernel"]["recv_syscalls"],
    "frames_per_send": d["client_frames_per_send_syscall"],
    "loadavg_before": d["host"]["loadavg_before"], "loadavg_after": d["host"]["loadavg_after"],
    "capture": rel(os.path.join(os.path.dirname(path), d["pcap"])),
    "sidecar": rel(path),
    "cqlsniff_says": None,
}))
PY
    done
  done
done
echo "results: $out/results.jsonl"
