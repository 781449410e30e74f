#!/usr/bin/env bash
# Regenerate the lab captures in pcaps/ (root: tcpdump and bpftrace need it).
#
#   lab/make-captures.sh            every capture
#   lab/make-captures.sh gocql      only captures whose name contains "gocql" (any substring works)
#   lab/make-captures.sh A B ...    captures whose name contains any of A, B, ... (a full name is a
#                                   substring too: gocql-1.7.0-v4-coalesced-c64 also picks ...-c64-20conns)
#   DRY_RUN=1 lab/make-captures.sh FILTER...   only list the names that FILTER picks
#
# A section's build step (go build, npm ci, mvn, cargo) runs once, before its first capture picked.
#
# Starts the lab Cassandra if it is not running (and leaves it running: lab/cassandra/stop.sh).
# Each capture is one lab/run.py call; the lines below are the exact commands.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=${CAPTURE_OUT:-$repo/pcaps}  # CAPTURE_OUT=/tmp/x to try the script without touching pcaps/
filters=("$@")
dry=${DRY_RUN:-}
cache="$here/.cache"

export GOMODCACHE="$cache/gomod" GOFLAGS=-modcacherw GOWORK=off

need() { # need NAME: NAME is picked by the filters (all when none)
  ((${#filters[@]} == 0)) && return 0
  local f
  for f in "${filters[@]}"; do [[ "$1" == *"$f"* ]] && return 0; done
  return 1
}

prep= prepped=
run_prep() { # the current section's build step, once
  if [[ -n "$prep" && "$prepped" != "$prep" ]]; then "$prep"; prepped=$prep; fi
}

capture() { # capture NAME NOTE -- CMD...
  local name=$1 note=$2
  shift 3
  need "$name" || return 0
  echo "== $name"
  [[ -z "$dry" ]] || return 0
  run_prep
  "$py" "$here/run.py" --name "$name" --out "$out" --note "$note" -- "$@"
}

capture_gz() { # capture_gz NAME NOTE -- CMD...: the same, stored as NAME.pcap.gz (big captures)
  local name=$1 note=$2
  shift 3
  need "$name" || return 0
  echo "== $name"
  [[ -z "$dry" ]] || return 0
  run_prep
  "$py" "$here/run.py" --name "$name" --out "$out" --gzip --note "$note" -- "$@"
}

capture_tls() { # capture_tls NAME NOTE [RUN.PY OPTIONS...] -- CMD...: gzipped, with the client's key log
  # (@KEYLOG@ in CMD) kept beside the pcap as NAME.keys
  local name=$1 note=$2
  shift 2
  local opts=()
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  need "$name" || return 0
  echo "== $name"
  [[ -z "$dry" ]] || return 0
  run_prep
  "$py" "$here/run.py" --name "$name" --out "$out" --gzip --keylog "${opts[@]}" --note "$note" -- "$@"
}

any_need() { local n; for n; do need "$n" && return 0; done; return 1; }

build_gocql() {
  (cd "$here/clients/gocql" && go build -o gocql-client .)
}

# The lab venv's python runs run.py too: its lz4 module lets pcapstats.py open compressed v5 segments.
py=python3
if [[ -z "$dry" ]]; then
  py=$("$here/clients/python/setup.sh")
  "$here/cassandra/start.sh"
fi

# --- gocql v1.7.0, protocol v4 -------------------------------------------------------------------
prep=build_gocql
{
  g="$here/clients/gocql/gocql-client"
  v=1.7.0
  capture gocql-$v-v4-unbuffered-c64 "WriteCoalesceWaitTime=0: one write syscall per frame, 64 in flight on 1 connection" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 0
  capture gocql-$v-v4-coalesced-c64 "default WriteCoalesceWaitTime=200us: frames gathered for 200us then one writev" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 200us
  capture gocql-$v-v4-lz4-coalesced-c64 "lz4 frame compression (v4 per-frame body compression), coalesced" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 200us -compression lz4
  capture gocql-$v-v4-unbuffered-lz4-c64 "lz4 frame compression, WriteCoalesceWaitTime=0" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 0 -compression lz4
  capture gocql-$v-v4-snappy-coalesced-c64 "snappy frame compression, coalesced" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 200us -compression snappy
  capture gocql-$v-v4-coalesced-c64-20conns "NumConns=20: 64 in flight spread over 20 connections (~3 each), coalesced" \
    -- "$g" -n 5000 -c 64 -conns 20 -coalesce 200us
  capture gocql-$v-v4-unbuffered-c64-20conns "NumConns=20, WriteCoalesceWaitTime=0" \
    -- "$g" -n 5000 -c 64 -conns 20 -coalesce 0
  capture gocql-$v-v4-c1 "one request in flight (default coalescing): nothing to batch, must not be flagged" \
    -- "$g" -n 3000 -c 1 -conns 1 -coalesce 200us
}

# --- Apache Cassandra GoCQL driver v2.1.2 (the gocql client built with -tags gocqlv2), protocol v5 ---------
build_gocql_v2() { (cd "$here/clients/gocql" && go build -tags gocqlv2 -o gocql-v2-client .); }
prep=build_gocql_v2
{
  g2="$here/clients/gocql/gocql-v2-client"
  v=2.1.2
  capture cassandra-gocql-driver-$v-v5-unbuffered-c64 "protocol v5, WriteCoalesceWaitTime=0: each frame in its own self-contained segment, one write per segment" \
    -- "$g2" -n 5000 -c 64 -conns 1 -coalesce 0
  capture cassandra-gocql-driver-$v-v5-coalesced-c64 "protocol v5, default WriteCoalesceWaitTime=200us: still one frame per segment, segments gathered into one writev" \
    -- "$g2" -n 5000 -c 64 -conns 1 -coalesce 200us
  capture cassandra-gocql-driver-$v-v5-lz4-coalesced-c64 "protocol v5 with lz4-compressed segments, coalesced" \
    -- "$g2" -n 5000 -c 64 -conns 1 -coalesce 200us -compression lz4
  capture cassandra-gocql-driver-$v-v5-c1 "protocol v5, one request in flight: nothing to batch" \
    -- "$g2" -n 3000 -c 1 -conns 1 -coalesce 200us
}

# --- DataStax Python driver 3.30.1 (libev event loop) -------------------------------------------
prep=
{
  p="$here/clients/python/client.py"
  v=3.30.1
  capture python-$v-v5-nodelay-c32 "protocol v5 (segments), TCP_NODELAY set: one send() per frame, each frame in its own v5 segment" \
    -- "$py" "$p" -n 4000 -c 32 --proto 5 --nodelay on
  capture python-$v-v5-nagle-c32 "protocol v5, driver default (TCP_NODELAY not set): still one send() per frame; Nagle merges them into fewer TCP segments" \
    -- "$py" "$p" -n 4000 -c 32 --proto 5 --nodelay off
  capture python-$v-v4-nodelay-c32 "protocol v4 frames, TCP_NODELAY set: one send() per frame" \
    -- "$py" "$p" -n 4000 -c 32 --proto 4 --nodelay on
  capture python-$v-v5-lz4-nodelay-c32 "protocol v5 with lz4-compressed segments (one frame per compressed segment), TCP_NODELAY set" \
    -- "$py" "$p" -n 4000 -c 32 --proto 5 --nodelay on --compression lz4
  capture python-$v-v5-nodelay-c1 "protocol v5, one request in flight: nothing to batch" \
    -- "$py" "$p" -n 2000 -c 1 --proto 5 --nodelay on
}

# --- Node.js cassandra-driver 4.10.0 (protocol v4: the 4.x driver has no v5) --------------------------
build_nodejs() { (cd "$here/clients/nodejs" && npm_config_cache="$cache/npm" npm ci --no-audit --no-fund --silent); }
prep=build_nodejs
{
  j="$here/clients/nodejs/client.js"
  v=4.10.0
  capture nodejs-$v-threshold1-c64 "socketOptions.coalescingThreshold=1: the write queue writes every frame on its own" \
    -- node "$j" -n 5000 -c 64 --threshold 1
  capture nodejs-$v-default-c64 "default coalescingThreshold=65536: frames queued in one tick are joined into one write" \
    -- node "$j" -n 5000 -c 64
  capture nodejs-$v-default-c1 "default coalescing, one request in flight" \
    -- node "$j" -n 3000 -c 1
}

# --- Apache Cassandra Java driver 4.19.0 (netty) -----------------------------------------------------
build_java() { (cd "$here/clients/java" && mvn -q -Dmaven.repo.local="$cache/m2" compile dependency:copy-dependencies); }
prep=build_java
{
  jcp="$here/clients/java/target/classes:$cache/java-client-lib/*"
  v=4.19.0
  capture java-driver-$v-v5-coalesced-c64 "default DefaultWriteCoalescer: writes queued per event loop, one flush per pass; v5 packs them into shared segments" \
    -- java -cp "$jcp" lab.Client -n 5000 -c 64 --proto 5
  capture java-driver-$v-v5-passthrough-c64 "PassThroughWriteCoalescer: writeAndFlush per request" \
    -- java -cp "$jcp" lab.Client -n 5000 -c 64 --proto 5 --coalescer passthrough
  capture java-driver-$v-v4-coalesced-c64 "protocol v4, default coalescer" \
    -- java -cp "$jcp" lab.Client -n 5000 -c 64 --proto 4
  capture java-driver-$v-v4-passthrough-c64 "protocol v4, PassThroughWriteCoalescer" \
    -- java -cp "$jcp" lab.Client -n 5000 -c 64 --proto 4 --coalescer passthrough
}

# --- scylla Rust driver 0.3.0 vs 0.3.1 (protocol v4) ------------------------------------------------
build_scylla() {
  mkdir -p "$cache/bin"
  for v in 0.3.0 0.3.1; do
    (cd "$here/clients/rust-scylla/v$v" &&
      CARGO_HOME="$cache/cargo" CARGO_TARGET_DIR="$cache/rust-target" nice -n 10 cargo build --release --locked -j 2 -q)
    cp "$cache/rust-target/release/scylla-client" "$cache/bin/scylla-client-$v"
  done
}
prep=build_scylla
{
  capture scylla-rust-0.3.0-v4-c64 "scylla 0.3.0: the connection's writer task does write_all per request straight on the socket" \
    -- "$cache/bin/scylla-client-0.3.0" -n 5000 -c 64
  capture scylla-rust-0.3.1-v4-c64 "scylla 0.3.1: BufWriter(8 KiB) and the writer drains its queue before one flush" \
    -- "$cache/bin/scylla-client-0.3.1" -n 5000 -c 64
}

# --- issue 10, client or server: scylla 0.3.1 + one FuturesUnordered, futures 0.3.18 vs 0.3.19 -------
build_futures() {
  mkdir -p "$cache/bin"
  for v in 0.3.18 0.3.19; do
    (cd "$here/clients/rust-futures/futures-$v" &&
      CARGO_HOME="$cache/cargo" CARGO_TARGET_DIR="$cache/rust-target-futures-$v" nice -n 10 cargo build --release --locked -j 2 -q)
    cp "$cache/rust-target-futures-$v/release/futures-client" "$cache/bin/futures-client-$v"
  done
}
prep=build_futures
{
  for c in 4096 64; do
    n=$([[ $c == 64 ]] && echo 20000 || echo 100000)
    for v in 0.3.18 0.3.19; do
      capture_gz scylla-rust-0.3.1-futures-$v-c$c "futures $v: one task keeps $c session.execute futures in one FuturesUnordered" \
        -- "$cache/bin/futures-client-$v" -n $n -c $c
    done
  done
}

# --- negative controls for a client-CPU diagnosis --------------------------------------------------
# The server is the slow side: Cassandra capped at 30% of one core (cgroup CPU quota), the cap removed
# again whatever happens.
prep=build_gocql
if any_need gocql-1.7.0-v4-slow-server-c256 && [[ -z "$dry" ]]; then
  run_prep
  trap '"$here/cassandra/throttle.sh" off' EXIT
  "$here/cassandra/throttle.sh" 30
  capture_gz gocql-1.7.0-v4-slow-server-c256 "negative control, the SERVER is the slow side: Cassandra capped at 30% of one core (lab/cassandra/throttle.sh 30, cgroup CPU quota); gocql default 200µs coalescing, 256 in flight on one connection" \
    -- "$here/clients/gocql/gocql-client" -n 12000 -c 256 -conns 1 -coalesce 200us
  "$here/cassandra/throttle.sh" off
  trap - EXIT
elif [[ -n "$dry" ]]; then
  capture_gz gocql-1.7.0-v4-slow-server-c256 "" -- :
fi
# The same client at the same concurrency against the unthrottled server: neither side is starved, the
# gocql client coalesces (~one writev per many frames) and its goroutines use little CPU per request.
# A control that should NOT be called client-bound.
capture_gz gocql-1.7.0-v4-coalesced-c256 "control, a healthy buffered client at high concurrency: gocql default 200µs coalescing, 256 in flight on one connection, unthrottled Cassandra; should not be client-bound (client_cpu.phase is the ground truth)" \
  -- "$here/clients/gocql/gocql-client" -n 12000 -c 256 -conns 1 -coalesce 200us
# A client that is CPU-bound in its own interpreter.
prep=
capture_gz python-3.30.1-v4-nodelay-c256 "negative control, a CPU-bound client: the Python driver (one interpreter) at 256 in flight, protocol v4, TCP_NODELAY; its own CPU (client_cpu) is the ground truth" \
  -- "$py" "$here/clients/python/client.py" -n 20000 -c 256 --proto 4 --nodelay on --compression none

# --- issue 11, encrypted CQL: the same clients over TLS, each with its NSS key log --------------------
# The lab Cassandra takes TLS and plain CQL on 9042 (client_encryption_options enabled + optional; test
# keystore from lab/cassandra/start.sh in lab/.cache/tls). Plain twins: gocql-1.7.0-v4-coalesced-c64,
# python-3.30.1-v4-nodelay-c32, nodejs-4.10.0-default-c64.
ca="$cache/tls/ca.pem"
prep=build_gocql
{
  g="$here/clients/gocql/gocql-client"
  v=1.7.0
  capture_tls gocql-$v-v4-tls13-c64 "TLS 1.3 (Go's default suite), WriteCoalesceWaitTime=200us as in the plain gocql-1.7.0-v4-coalesced-c64: gocql turns coalescing off on TLS connections (DialedHost.DisableCoalesce), so one write per frame" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 200us -tls -tls-ca "$ca" -keylog @KEYLOG@
  capture_tls gocql-$v-v4-tls12-chacha-c64 "TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305, WriteCoalesceWaitTime=200us (off under TLS)" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 200us -tls -tls-ca "$ca" -tls-max 1.2 -tls-ciphers chacha -keylog @KEYLOG@
  capture_tls gocql-$v-v4-tls12-aes256-c64 "TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384, WriteCoalesceWaitTime=200us (off under TLS)" \
    -- "$g" -n 5000 -c 64 -conns 1 -coalesce 200us -tls -tls-ca "$ca" -tls-max 1.2 -tls-ciphers aes256 -keylog @KEYLOG@
  capture_tls gocql-$v-v4-tls13-midstream-c64 "TLS 1.3 capture that starts after every handshake: no ServerHello, no client random in the pcap, so no key of the key log can be matched to a connection (8000 requests so that the capture has most of them)" \
    --capture-delay 1 -- "$g" -n 8000 -c 64 -conns 1 -coalesce 200us -tls -tls-ca "$ca" -keylog @KEYLOG@
}
prep=
{
  p="$here/clients/python/client.py"
  v=3.30.1
  capture_tls python-$v-v4-tls13-c32 "TLS 1.3 (OpenSSL's default suite), protocol v4, TCP_NODELAY: one send() per frame; 4000 requests like its plain twin python-3.30.1-v4-nodelay-c32" \
    -- "$py" "$p" -n 4000 -c 32 --proto 4 --nodelay on --tls --tls-ca "$ca" --keylog @KEYLOG@
  capture_tls python-$v-v4-tls12-aes128-c32 "TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256, protocol v4, TCP_NODELAY; 4000 requests" \
    -- "$py" "$p" -n 4000 -c 32 --proto 4 --nodelay on --tls --tls-ca "$ca" --tls-max 1.2 --tls-ciphers ECDHE-RSA-AES128-GCM-SHA256 --keylog @KEYLOG@
}
prep=build_nodejs
{
  j="$here/clients/nodejs/client.js"
  v=4.10.0
  capture_tls nodejs-$v-tls13-c64 "TLS 1.3 (OpenSSL's default suite), default coalescingThreshold=65536 like its plain twin nodejs-4.10.0-default-c64" \
    -- node "$j" -n 5000 -c 64 --tls --tls-ca "$ca" --keylog @KEYLOG@
  capture_tls nodejs-$v-tls13-chacha-c64 "TLS 1.3 TLS_CHACHA20_POLY1305_SHA256 (sslOptions ciphers + minVersion TLSv1.3, passed through by the driver), default coalescing" \
    -- node "$j" -n 5000 -c 64 --tls --tls-ca "$ca" --tls-min TLSv1.3 --tls-ciphers TLS_CHACHA20_POLY1305_SHA256 --keylog @KEYLOG@
}
# TLS 1.3 KeyUpdates: Cassandra restarted with the JDK's SSLEngine and jdk.tls.keyLimits 2^17 bytes
# (CASSANDRA_TLS_KEYUPDATE, see start.sh): it sends KeyUpdate(update_requested) and the client answers.
# The Python driver (OpenSSL) survives the bursts of KeyUpdates the JDK sends; Go's crypto/tls does not
# ("tls: too many non-advancing records"): see lab/README.md. Cassandra is restarted as usual after.
if any_need python-3.30.1-v4-tls13-keyupdate-c32 && [[ -z "$dry" ]]; then
  trap '"$here/cassandra/stop.sh"; "$here/cassandra/start.sh"' EXIT
  "$here/cassandra/stop.sh"
  CASSANDRA_TLS_KEYUPDATE='2^17' "$here/cassandra/start.sh"
  capture_tls python-3.30.1-v4-tls13-keyupdate-c32 "TLS 1.3 with KeyUpdates: the server (Cassandra on the JDK's SSLEngine, jdk.tls.keyLimits 2^17 bytes) sends KeyUpdate(update_requested), the client (OpenSSL) answers with its own; protocol v4, TCP_NODELAY, 5000 requests" \
    -- "$py" "$here/clients/python/client.py" -n 5000 -c 32 --proto 4 --nodelay on --tls --tls-ca "$ca" --keylog @KEYLOG@
  "$here/cassandra/stop.sh"
  "$here/cassandra/start.sh"
  trap - EXIT
elif [[ -n "$dry" ]]; then
  capture_tls python-3.30.1-v4-tls13-keyupdate-c32 "" -- :
fi

[[ -n "$dry" ]] || "$py" "$here/pcaps_table.py" "$out"
