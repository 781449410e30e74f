#!/usr/bin/env bash
# Soak test: a live cqlsniff on lo under connection churn while Prometheus
# scrapes it, sampling its resident memory, goroutines, open file
# descriptors and metric series into a CSV, then saying whether they stayed
# flat: after a warm-up (SOAK_WARMUP seconds, default a third of the run,
# at most 10 minutes: the time the analyzer's bounded tables take to fill),
# the mean of the last third of the samples against the first third.
#
#   sudo scripts/soak.sh                    one hour
#   sudo SOAK_DURATION=3m SOAK_EVERY=5 SOAK_IDLE_TIMEOUT=30s scripts/soak.sh
#
# Traffic (scripts/soakload): SOAK_CHURN short connections a second
# (default 100: 360,000 an hour) from 1,000 loopback addresses, 1 to 5
# requests each over 200 statement texts (more than the metrics' caps of
# 200 clients and 50 statements), and one long-lived connection with 8
# requests in flight at 1,000 requests a second. Everything stays on
# 127.0.0.0/8. Prometheus (/usr/bin/prometheus, Debian's package) scrapes
# every 5 s if installed; the sampler's own curl of /metrics every
# SOAK_EVERY seconds is a scrape too. Output in SOAK_OUT (default
# /tmp/cqlsniff-soak): soak.csv, cqlsniff.log, soakload.log, report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${SOAK_DURATION:-1h}
every=${SOAK_EVERY:-10}
churn=${SOAK_CHURN:-100}
out=${SOAK_OUT:-/tmp/cqlsniff-soak}
cqlport=${SOAK_CQL_PORT:-29042}
mport=${SOAK_METRICS_PORT:-29464}
pport=${SOAK_PROM_PORT:-29090}
warmup=${SOAK_WARMUP:-}
# Closed connections' last ACKs open flows that last the idle timeout: a
# short run needs a short one to see the plateau (SOAK_IDLE_TIMEOUT=30s).
idle=${SOAK_IDLE_TIMEOUT:-5m}
flags=${SOAK_CQLSNIFF_FLAGS:-} # more cqlsniff flags, e.g. --syscalls=false
[ "$(id -u)" = 0 ] || { echo "soak: live capture needs root (sudo)" >&2; exit 2; }
secs=$(python3 -c "import sys,re
m=re.fullmatch(r'(\d+)([smh]?)', sys.argv[1]) or sys.exit('bad SOAK_DURATION: '+sys.argv[1])
print(int(m[1])*{'':1,'s':1,'m':60,'h':3600}[m[2]])" "$duration")
[ -n "$warmup" ] || warmup=$(( secs / 3 < 600 ? secs / 3 : 600 ))

rm -rf "$out" && mkdir -p "$out"
echo "== build"
nice go build -o "$out/cqlsniff" ./cmd/cqlsniff
nice go build -o "$out/soakload" ./scripts/soakload

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# cqlsniff first, so that it sees the long-lived connection's STARTUP.
env -u SUDO_UID -u SUDO_GID "$out/cqlsniff" -i lo -p "$cqlport" --report json --interval 1h --idle-timeout "$idle" $flags \
	--metrics "127.0.0.1:$mport" >"$out/report.json" 2>"$out/cqlsniff.log" &
sniff=$!
pids+=("$sniff")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$mport/metrics" && break; sleep 0.1; done

if [ -x /usr/bin/prometheus ]; then
	cat >"$out/prometheus.yml" <<YAML
global: {scrape_interval: 5s, scrape_timeout: 5s}
scrape_configs:
  - job_name: cqlsniff
    static_configs: [{targets: ["127.0.0.1:$mport"]}]
YAML
	/usr/bin/prometheus --config.file="$out/prometheus.yml" --storage.tsdb.path="$out/tsdb" \
		--web.listen-address="127.0.0.1:$pport" --log.level=warn >"$out/prometheus.log" 2>&1 &
	pids+=("$!")
	echo "prometheus scrapes every 5 s (127.0.0.1:$pport)"
else
	echo "no /usr/bin/prometheus: the sampler's scrape every $every s is the only one"
fi

"$out/soakload" -addr "127.0.0.1:$cqlport" -duration "${secs}s" -churn "$churn" -stats 60s >"$out/soakload.log" 2>&1 &
load=$!
pids+=("$load")

echo "== soak for ${secs}s, a sample every ${every}s, $churn short connections/s, idle timeout $idle $flags: $out/soak.csv"
echo "t_s,rss_kib,goroutines,fds,series,heap_inuse_mib,packets,requests,dropped,open_connections" >"$out/soak.csv"
metric() { awk -v m="$1" '$1 == m {printf "%.0f", $2; exit}' "$out/metrics.txt"; }
start=$(date +%s)
end=$((start + secs))
while [ "$(date +%s)" -lt "$end" ] && kill -0 "$sniff" 2>/dev/null; do
	sleep "$every"
	curl -sf --max-time 10 "http://127.0.0.1:$mport/metrics" >"$out/metrics.txt" || { echo "scrape failed"; continue; }
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$sniff/status")
	fds=$(ls "/proc/$sniff/fd" | wc -l)
	series=$(grep -vc '^#' "$out/metrics.txt")
	reqs=$(awk '/^cqlsniff_requests_total/ {s += $2} END {printf "%d", s}' "$out/metrics.txt")
	open=$(awk '/^cqlsniff_open_connections/ {s += $2} END {printf "%d", s}' "$out/metrics.txt")
	heap=$(awk '$1 == "go_memstats_heap_inuse_bytes" {printf "%.1f", $2 / 1048576}' "$out/metrics.txt")
	printf '%d,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' $(( $(date +%s) - start )) "$rss" "$(metric go_goroutines)" "$fds" "$series" \
		"$heap" "$(metric cqlsniff_captured_packets_total)" "$reqs" "$(metric cqlsniff_dropped_packets_total)" "$open" >>"$out/soak.csv"
	tail -1 "$out/soak.csv"
done
wait "$load" || true
tail -1 "$out/soakload.log"
cleanup
trap - EXIT

echo "== flat? (after ${warmup}s of warm-up: the mean of the last third against the first third)"
python3 - "$out/soak.csv" "$warmup" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if int(r["t_s"]) > int(sys.argv[2])]
if len(rows) < 6:
    sys.exit("too few samples after the warm-up to judge (%d)" % len(rows))
k = len(rows) // 3
first, last = rows[:k], rows[-k:]
mean = lambda rs, c: sum(float(r[c]) for r in rs) / len(rs)
# Allowed growth: memory 20% (the heap breathes with the garbage
# collector), goroutines and fds a few (scrapes in progress), series 10%.
limits = {"rss_kib": ("rel", 0.20), "goroutines": ("abs", 5), "fds": ("abs", 5), "series": ("rel", 0.10)}
ok = True
for c, (kind, lim) in limits.items():
    a, b = mean(first, c), mean(last, c)
    grew = (b - a) / a if kind == "rel" else b - a
    flat = grew <= lim
    ok &= flat
    print(f"{c:11s} first third {a:10.1f}  last third {b:10.1f}  {'%+.1f%%' % (100*grew) if kind == 'rel' else '%+.1f' % grew:>8s}  {'flat' if flat else 'GREW'}")
print("flat" if ok else "NOT FLAT")
sys.exit(0 if ok else 1)
PY
