#!/usr/bin/env bash
# End-to-end check of cqlsniff's live capture (issue #5): real gocql traffic against a real Cassandra
# 5.0 on 127.0.0.1:9042, cqlsniff capturing on lo, and bpftrace counting the client's socket send calls
# in the kernel as the independent ground truth.
#
#   lab/e2e/run.sh        (as root; from anywhere)
#
# For gocql 1.7.0 (protocol v4) and cassandra-gocql-driver 2.1.2 (protocol v5 segments), each unbuffered
# (-coalesce 0) and buffered (-coalesce 200us), one connection, 64 requests in flight, 5000 requests,
# it starts `cqlsniff -i lo -p 9042 --report json` and bpftrace, runs the
# client, stops both, and checks the busy connection (>= 1000 requests) of the report:
#   - unbuffered: diagnosis client-unbuffered-writes; buffered: not; the same from the wire alone
#     (cqlsniff -r of the packets it wrote with -w, no kernel counts), with the same frames and segments;
#   - buffered: client_segments.segments (the wire's estimate of send calls) within ±10% of the kernel's
#     send calls on that connection (bpftrace, client pid, its local port);
#   - client_syscalls.sends (cqlsniff's own eBPF count) equal to bpftrace's count;
#   - the client's requests all seen; kernel drops (report `dropped`) only warned about.
# Prints the figures and a last line "N passed, M failed"; exits 1 on any failure. Skips (exit 0, a
# "skipped: reason" line) when not root, without Java or Maven, or on a kernel without the
# sock:sock_send_length tracepoint (Linux < 6.3).
#
# Installs what is missing with apt-get (bpftrace, python3, bc); builds cqlsniff and the gocql lab
# client (its Go modules in lab/.cache/gomod); starts Cassandra with lab/cassandra/start.sh (its jars
# come from Maven Central into lab/.cache on first use) and stops it at exit, unless one was already
# answering on 9042 before (then it is used and left running).
#
# Files: lab/out/e2e/RUN_ID/ (one run: reports, pcaps, bpftrace output, logs; the last 10 runs kept,
# lab/out/e2e/last points to the newest), lab/out/e2e-results.jsonl (figures
# of every run, appended). Env: E2E_REQUESTS (5000), E2E_CONCURRENCY (64).
set -euo pipefail

t0=$(date +%s.%N)
here=$(cd "$(dirname "$0")" && pwd)
lab=$(dirname "$here")
repo=$(dirname "$lab")
n=${E2E_REQUESTS:-5000}
c=${E2E_CONCURRENCY:-64}
port=9042
out="$lab/out"
run_id=$(date -u +%Y%m%dT%H%M%SZ)
work="$out/e2e/$run_id"
results="$out/e2e-results.jsonl"
checks="$work/checks.tsv"

skip() {
  echo "skipped: $*"
  exit 0
}

[[ $EUID -eq 0 ]] || skip "not root (live capture, cqlsniff's eBPF counting and bpftrace need root)"
command -v java >/dev/null 2>&1 || skip "Java is not installed (Cassandra needs Java 17)"
command -v mvn >/dev/null 2>&1 || skip "Maven is not installed (it fetches Cassandra's jars)"

mkdir -p "$work"
ln -sfn "$run_id" "$out/e2e/last"
# Keep the files of the last 10 runs.
ls -1d "$out"/e2e/20*T*Z 2>/dev/null | head -n -10 | xargs -r rm -rf
: >"$checks"

since() { # seconds since $1 (date +%s.%N), one decimal
  printf '%.1f' "$(awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
}
say() { echo "e2e: $*"; }

# --- background processes and cleanup ---------------------------------------------------------------
sniff_pid='' bt_pid='' client_pid='' cass_started=0 cleaned=0
stop_pid() { # stop_pid PID SIGNAL SECONDS: signal one process we started, wait for it, then KILL (status 1)
  # The signal is repeated every 2 s: bpftrace 0.17 can miss one and then sleep in epoll_wait for good.
  local pid=$1 sig=$2 secs=$3 i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    ((i % 20 == 0)) && { kill "-$sig" "$pid" 2>/dev/null || true; }
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) still running ${secs} s after SIG$sig: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}
cleanup() {
  ((cleaned)) && return 0
  cleaned=1
  stop_pid "$client_pid" KILL 5 || true
  stop_pid "$bt_pid" INT 10 || true
  stop_pid "$sniff_pid" INT 10 || true
  if ((cass_started)); then
    "$lab/cassandra/stop.sh" || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- checks and the final tally -----------------------------------------------------------------------
record() { # record PASS|FAIL|WARN NAME DETAIL
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$checks"
  printf '  %-4s %s: %s\n' "$1" "$2" "$3"
}
finish() {
  cleanup
  local total passed failed
  total=$(since "$t0")
  echo
  echo "== summary (run $run_id, $total s in all; files in ${work#"$repo"/})"
  if ((${#cases[@]})); then
    python3 "$here/e2e.py" summary "$work" "${cases[@]}" || true
    echo
  fi
  awk -F'\t' '{ printf "  %-4s %s: %s\n", $1, $2, $3 }' "$checks"
  passed=$(awk -F'\t' '$1 == "PASS"' "$checks" | wc -l)
  failed=$(awk -F'\t' '$1 == "FAIL"' "$checks" | wc -l)
  printf '{"run":"%s","case":"run","total_s":%s,"timings_s":{%s},"passed":%d,"failed":%d}\n' \
    "$run_id" "$total" "${timings#,}" "$passed" "$failed" >>"$results"
  echo "$passed passed, $failed failed"
  if ((failed > 0)); then exit 1; fi
  exit 0
}
abort() { # a step that makes the rest impossible failed
  record FAIL "$1" "$2"
  finish
}
timings=''
phase_done() { # phase_done NAME START
  local s
  s=$(since "$2")
  timings+=",\"$1\":$s"
  say "$1 done in $s s"
}
cases=()

# --- dependencies ----------------------------------------------------------------------------------
t=$(date +%s.%N)
need=()
command -v bpftrace >/dev/null 2>&1 || need+=(bpftrace)
command -v bpftool >/dev/null 2>&1 || need+=(bpftool) # bpftrace's programs' recursion misses
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v bc >/dev/null 2>&1 || need+=(bc) # start.sh prints its time to ready with bc
command -v go >/dev/null 2>&1 || abort "dependencies" "go is not on PATH"
if ((${#need[@]})); then
  say "installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >"$work/apt.log" 2>&1 &&
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >>"$work/apt.log" 2>&1 ||
    { tail -n 20 "$work/apt.log"; abort "dependencies" "apt-get install ${need[*]} failed (see ${work#"$repo"/}/apt.log)"; }
fi
if [[ ! -e /sys/kernel/tracing/events/sock/sock_send_length ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
[[ -e /sys/kernel/tracing/events/sock/sock_send_length/format ]] ||
  skip "the kernel ($(uname -r)) has no sock:sock_send_length tracepoint (Linux >= 6.3): no ground truth for send calls"
phase_done deps "$t"

# --- builds --------------------------------------------------------------------------------------------
t=$(date +%s.%N)
bin="$work/bin"
mkdir -p "$bin"
say "building cqlsniff"
(cd "$repo" && nice -n 10 go build -o "$bin/cqlsniff" ./cmd/cqlsniff) >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; abort "build" "go build ./cmd/cqlsniff failed"; }
say "building the gocql lab clients, v1 and v2 (modules in lab/.cache/gomod)"
(cd "$lab/clients/gocql" && export GOMODCACHE="$lab/.cache/gomod" GOFLAGS=-modcacherw GOWORK=off &&
  nice -n 10 go build -o "$bin/gocql-client" . &&
  nice -n 10 go build -tags gocqlv2 -o "$bin/gocql-v2-client" .) >>"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; abort "build" "go build lab/clients/gocql failed"; }
python3 "$here/e2e.py" bpf "$port" >"$work/sock.bt"
phase_done build "$t"

# --- Cassandra -----------------------------------------------------------------------------------------
t=$(date +%s.%N)
ping() { python3 "$lab/cassandra/cql_ping.py" 127.0.0.1 "$port"; }
pid_file="${CASSANDRA_RUN_DIR:-/tmp/cqlsniff-cassandra}/cassandra.pid"
if ping; then
  say "a CQL server already answers on 127.0.0.1:$port: using it, leaving it running"
elif [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  say "the lab Cassandra (pid $(cat "$pid_file")) is starting: waiting for it, leaving it running"
  for _ in $(seq 180); do ping && break; sleep 1; done
  ping || abort "cassandra" "pid $(cat "$pid_file") does not answer CQL on $port after 180 s"
else
  cass_started=1
  [[ -d "$lab/.cache/cassandra-lib" ]] || say "first use: Maven fetches Cassandra 5.0.9 into lab/.cache"
  "$lab/cassandra/start.sh" 2>&1 | tee "$work/cassandra-start.log" ||
    abort "cassandra" "lab/cassandra/start.sh failed (see ${work#"$repo"/}/cassandra-start.log)"
fi
phase_done cassandra "$t"

# --- the cases -----------------------------------------------------------------------------------------
wait_for() { # wait_for FILE NEEDLE SECONDS PID: until FILE holds NEEDLE; fails if PID exits first
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
wait_sigint_handler() { # wait_sigint_handler PID SECONDS: until PID catches SIGINT
  # bpftrace prints attached_probes before it installs its SIGINT handler (up to seconds later on a busy
  # machine), and a background job of a script starts with SIGINT ignored: a SIGINT sent in between is
  # lost and bpftrace never prints its maps.
  local i cgt
  for ((i = 0; i < $2 * 10; i++)); do
    cgt=$(awk '/^SigCgt:/ { print $2 }' /proc/"$1"/status 2>/dev/null) || return 1
    [[ -n "$cgt" ]] || return 1
    (((0x$cgt >> 1) & 1)) && return 0
    sleep 0.1
  done
  return 1
}

wait_exit() { # wait_exit PID SECONDS: wait for a child to exit, its status in $rc (KILL after SECONDS)
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
  rc=0
  wait "$1" || rc=$?
}

bt_progs() { # bt_progs PID: bpftool's view (JSON lines) of the BPF programs process PID holds
  local id
  for id in $(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{ print $2 }'); do
    bpftool prog show id "$id" -j 2>/dev/null && echo
  done
  return 0
}

client() { # client BINARY OUTPUT_PREFIX ARGS...: start a gocql lab client in the background, pid in $client_pid
  local exe=$1 o=$2
  shift 2
  "$bin/$exe" "$@" >"$o.json" 2>"$o.err" &
  client_pid=$!
}

run_case() { # run_case NAME MODE COALESCE CLIENT (gocql-client: v1, protocol v4; gocql-v2-client: v5)
  local name=$1 mode=$2 coalesce=$3 exe=$4 d="$work/$1" rc
  mkdir -p "$d"
  cases+=("$name")
  echo
  echo "== $name: $exe -n $n -c $c -conns 1 -coalesce $coalesce"
  local t
  t=$(date +%s.%N)
  # As root even under sudo (no privilege drop to SUDO_USER): -w writes into this root-owned tree.
  # TLS cases (tls=1): the client logs its secrets to a key log that does not exist yet when
  # cqlsniff starts; cqlsniff reads it as it grows.
  local sniff_tls=() client_tls=()
  if ((${tls:-0})); then
    rm -f "$d/keys.log"
    sniff_tls=(--keylog "$d/keys.log")
    client_tls=(-tls -keylog "$d/keys.log")
  fi
  env -u SUDO_UID -u SUDO_GID -u SUDO_USER \
    "$bin/cqlsniff" -i lo -p "$port" --report json --interval 250ms -w "$d/capture.pcap" "${sniff_tls[@]}" \
    >"$d/report.json" 2>"$d/cqlsniff.err" &
  sniff_pid=$!
  if ! wait_for "$d/cqlsniff.err" " pkts " 30 "$sniff_pid"; then
    cat "$d/cqlsniff.err"
    record FAIL "$name: cqlsniff" "live capture did not start (see ${d#"$repo"/}/cqlsniff.err)"
    stop_pid "$sniff_pid" INT 5 || true
    return 0
  fi
  if grep -v " pkts " "$d/cqlsniff.err" | grep -q .; then
    say "cqlsniff says: $(grep -v " pkts " "$d/cqlsniff.err" | head -3 | tr '\n' ' ')"
  fi
  bpftrace -f json "$work/sock.bt" >"$d/bpftrace.json" 2>"$d/bpftrace.err" &
  bt_pid=$!
  if ! wait_for "$d/bpftrace.json" attached_probes 90 "$bt_pid" || ! wait_sigint_handler "$bt_pid" 60; then
    cat "$d/bpftrace.err"
    record FAIL "$name: bpftrace" "bpftrace did not attach (see ${d#"$repo"/}/bpftrace.err)"
    stop_pid "$bt_pid" INT 5 || true
    stop_pid "$sniff_pid" INT 5 || true
    return 0
  fi

  local ts
  ts=$(date +%s.%N)
  client "$exe" "$d/client" -n "$n" -c "$c" -conns 1 -coalesce "$coalesce" "${client_tls[@]}"
  echo "$client_pid" >"$d/client.pid"
  wait_exit "$client_pid" 300
  client_pid=''
  local crc=$rc
  say "client exited $crc after $(since "$ts") s"
  # cqlsniff hands over the kernel ring a block at a time: let it read the last one before SIGINT.
  sleep 1.5
  bt_progs "$bt_pid" >"$d/bpftrace-progs.json"
  ts=$(date +%s.%N)
  stop_pid "$bt_pid" INT 30 || record FAIL "$name: bpftrace" "did not exit within 30 s of SIGINT (killed: no counts)"
  wait "$bt_pid" 2>/dev/null || true
  bt_pid=''
  say "bpftrace stopped in $(since "$ts") s"
  ts=$(date +%s.%N)
  kill -INT "$sniff_pid" 2>/dev/null || true
  wait_exit "$sniff_pid" 60
  sniff_pid=''
  local src=$rc
  say "cqlsniff exited $src $(since "$ts") s after SIGINT"
  say "client: $(tail -n 1 "$d/client.json" 2>/dev/null | cut -c1-200)"
  say "cqlsniff: $(grep " pkts " "$d/cqlsniff.err" | tail -n 1)"
  if ((crc != 0)); then
    tail -n 5 "$d/client.err"
    # A few requests that Cassandra timed out (a loaded machine) leave the wire checks meaningful; the
    # tally of errors is checked with the rest (e2e.py: at most 1% of the requests).
    if tail -n 1 "$d/client.json" 2>/dev/null | grep -q '"errors":'; then
      record WARN "$name: client" "gocql client exited $crc: $(tail -n 1 "$d/client.err" | cut -c1-160)"
    else
      record FAIL "$name: client" "gocql client exited $crc (see ${d#"$repo"/}/client.err)"
      return 0
    fi
  fi
  if ((src != 0)) || ! [[ -s "$d/report.json" ]]; then
    tail -n 5 "$d/cqlsniff.err"
    record FAIL "$name: cqlsniff" "exited $src after SIGINT, report of $(wc -c <"$d/report.json") bytes"
    return 0
  fi
  # The same packets from the file cqlsniff wrote, without the kernel's counts: the wire-only verdict.
  "$bin/cqlsniff" -r "$d/capture.pcap" -p "$port" --report json "${sniff_tls[@]}" >"$d/replay.json" 2>"$d/replay.err" ||
    record FAIL "$name: replay" "cqlsniff -r of the capture it wrote failed (see ${d#"$repo"/}/replay.err)"
  local line
  while IFS= read -r line; do
    IFS=$'\t' read -r st nm dt <<<"$line"
    record "$st" "$nm" "$dt"
  done < <(E2E_MODE=$mode E2E_REQUESTS=$n E2E_RESULTS=$results E2E_RUN_ID=$run_id E2E_WORK=$work \
    E2E_COMMIT="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || true)" \
    python3 "$here/e2e.py" check "$name" "$d" || echo "FAIL	$name: check	e2e.py check failed")
  phase_done "$name" "$t"
}

# A short run first, uncaptured: creates the schema and warms Cassandra's JIT so that both cases see
# the same server.
t=$(date +%s.%N)
say "warm-up: gocql -n 2000 -c $c (not captured)"
client gocql-client "$work/warmup" -n 2000 -c "$c" -conns 1 -coalesce 200us
wait_exit "$client_pid" 300
client_pid=''
((rc == 0)) || { tail -n 5 "$work/warmup.err"; abort "warm-up" "the gocql client exited $rc (see ${work#"$repo"/}/warmup.err)"; }
phase_done warmup "$t"

run_case gocql-unbuffered-c$c unbuffered 0 gocql-client
run_case gocql-buffered-c$c buffered 200us gocql-client
run_case gocql-v2-v5-unbuffered-c$c unbuffered 0 gocql-v2-client
run_case gocql-v2-v5-buffered-c$c buffered 200us gocql-v2-client
# TLS (issue 11): gocql 1.7.0 over TLS 1.3 with its default coalescing asked for. gocql turns
# coalescing off on TLS connections, so it sends one frame per write: unbuffered, decrypted live
# from a key log that appears while the capture runs.
tls=1 run_case gocql-tls13-coalesce200us-c$c unbuffered 200us gocql-client

# --- client or server (issue 10) ------------------------------------------------------------------------
# The lab's FuturesUnordered client (scylla 0.3.1, every request in flight in one FuturesUnordered) with
# futures 0.3.18, whose poll walks its whole ready list, at 16384 in flight, and with 0.3.19 at 4096,
# live under cqlsniff with its eBPF counts on: cqlsniff's CPU per request of the client's process must be
# within 30% of what the client measured of itself (getrusage over its request phase), and the verdict
# must be client-bound for the first and not for the second.
futures_case() { # futures_case VERSION CONCURRENCY WANT(client-bound|none) [retry]
  local v=$1 fc=$2 want=$3 name="futures-$1-c$2" d="$work/futures-$1-c$2" t ts
  mkdir -p "$d"
  echo
  echo "== $name: futures-client-$v -c $fc --max-seconds ${E2E_FUTURES_SECONDS:-6}"
  t=$(date +%s.%N)
  env -u SUDO_UID -u SUDO_GID -u SUDO_USER \
    "$bin/cqlsniff" -i lo -p "$port" --report json --interval 500ms >"$d/report.json" 2>"$d/cqlsniff.err" &
  sniff_pid=$!
  if ! wait_for "$d/cqlsniff.err" " pkts " 30 "$sniff_pid"; then
    record FAIL "$name: cqlsniff" "live capture did not start (see ${d#"$repo"/}/cqlsniff.err)"
    stop_pid "$sniff_pid" INT 5 || true
    return 0
  fi
  ts=$(date +%s.%N)
  "$bin/futures-client-$v" -n 100000000 -c "$fc" --max-seconds "${E2E_FUTURES_SECONDS:-6}" >"$d/client.json" 2>"$d/client.err" &
  client_pid=$!
  echo "$client_pid" >"$d/client.pid"
  wait_exit "$client_pid" 300
  client_pid=''
  local crc=$rc
  say "client exited $crc after $(since "$ts") s: $(tail -n 1 "$d/client.json" | cut -c1-200)"
  # Past the next report tick, so that the process's last reading is recent.
  sleep 1.5
  kill -INT "$sniff_pid" 2>/dev/null || true
  wait_exit "$sniff_pid" 60
  sniff_pid=''
  if ((crc != 0)); then
    record FAIL "$name: client" "exited $crc (see ${d#"$repo"/}/client.err)"
    return 0
  fi
  local line lines
  lines=$(E2E_RESULTS=$results E2E_RUN_ID=$run_id python3 "$here/e2e.py" cpucheck "$name" "$d" "$want" ||
    echo "FAIL	$name: check	e2e.py cpucheck failed")
  if [[ "${4:-}" != retry ]] && grep -qE "^(FAIL|WARN)	$name: verdict" <<<"$lines"; then
    # The verdict rests on how the client kept up, which a box loaded by other work (load average
    # above the cores) can blur: one more run, and both are recorded.
    record WARN "$name: verdict (first run, load $(cut -d' ' -f1 /proc/loadavg))" "$(grep -E "^(FAIL|WARN)	$name: verdict" <<<"$lines" | cut -f3)"
    futures_case "$1" "$2" "$3" retry
    return 0
  fi
  while IFS= read -r line; do
    IFS=$'\t' read -r st nm dt <<<"$line"
    record "$st" "$nm" "$dt"
  done <<<"$lines"
  phase_done "$name" "$t"
}
if command -v cargo >/dev/null 2>&1; then
  t=$(date +%s.%N)
  say "building the FuturesUnordered lab client against futures 0.3.18 and 0.3.19 (crates in lab/.cache/cargo)"
  built=1
  for v in 0.3.18 0.3.19; do
    (cd "$lab/clients/rust-futures/futures-$v" && CARGO_HOME="$lab/.cache/cargo" \
      CARGO_TARGET_DIR="$lab/.cache/rust-target-futures-$v" nice -n 10 cargo build --release --locked -q &&
      cp "$lab/.cache/rust-target-futures-$v/release/futures-client" "$bin/futures-client-$v") >>"$work/build.log" 2>&1 ||
      { tail -n 20 "$work/build.log"; record FAIL "build" "cargo build of the futures $v client failed"; built=0; }
  done
  phase_done build-futures "$t"
  if ((built)); then
    futures_case 0.3.18 16384 client-bound
    futures_case 0.3.19 4096 none
  fi
else
  record WARN "futures" "cargo is not installed: the client-or-server cases did not run"
fi

finish
