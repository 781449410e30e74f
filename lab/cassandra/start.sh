#!/usr/bin/env bash
# Start a single-node Apache Cassandra 5.0 on 127.0.0.1:9042 for the cqlsniff lab and wait until it
# answers a CQL OPTIONS request. Jars come from Maven Central via pom.xml into lab/.cache.
#
#   lab/cassandra/start.sh          reuse the data dir from the last run (faster, keeps the lab keyspace)
#   lab/cassandra/start.sh --clean  wipe the data dir first
#
# Env: CASSANDRA_RUN_DIR (default /tmp/cqlsniff-cassandra), CASSANDRA_HEAP (default 1G),
#      CASSANDRA_READY_TIMEOUT seconds (default 180).
#
# Client encryption (issue 11): the native port 9042 takes plain CQL and TLS alike
# (client_encryption_options enabled + optional). The test keystore is made once with the JDK's keytool
# in lab/.cache/tls (CASSANDRA_TLS_DIR): keystore.p12 (self-signed RSA 2048, CN=localhost,
# SAN ip:127.0.0.1 and dns:localhost, password cqlsniff-lab) and ca.pem, the certificate in PEM for the
# clients to trust. Test keys only.
#
# CASSANDRA_TLS_KEYUPDATE=BYTES (e.g. 2^20): serve TLS with the JDK's own SSLEngine instead of netty's
# OpenSSL (BoringSSL, tcnative) binding (-Dcassandra.disable_tcactive_openssl=true) and make it send a
# TLS 1.3 KeyUpdate (update_requested: the client answers with its own) every BYTES encrypted with one key
# (security property jdk.tls.keyLimits, through -Djava.security.properties). For the KeyUpdate capture.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lab=$(dirname "$here")
cache="$lab/.cache"
lib="$cache/cassandra-lib"
run_dir=${CASSANDRA_RUN_DIR:-/tmp/cqlsniff-cassandra}
heap=${CASSANDRA_HEAP:-1G}
ready_timeout=${CASSANDRA_READY_TIMEOUT:-180}
pid_file="$run_dir/cassandra.pid"

if [[ "${1:-}" == "--clean" ]]; then
  "$here/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$run_dir"
fi

if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  if python3 "$here/cql_ping.py" 127.0.0.1 9042; then
    echo "cassandra already running (pid $(cat "$pid_file"))"
    exit 0
  fi
  echo "cassandra pid $(cat "$pid_file") is alive but not answering CQL; run stop.sh first" >&2
  exit 1
fi

if ! ls "$lib"/cassandra-all-*.jar >/dev/null 2>&1; then
  echo "resolving cassandra jars into $lib ..."
  mvn -q -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies
fi
jamm=$(ls "$lib"/jamm-*.jar | head -1)

tls_dir=${CASSANDRA_TLS_DIR:-$cache/tls}
if [[ ! -f "$tls_dir/keystore.p12" || ! -f "$tls_dir/ca.pem" ]]; then
  mkdir -p "$tls_dir"
  rm -f "$tls_dir/keystore.p12" "$tls_dir/ca.pem"
  keytool -genkeypair -alias cassandra -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=localhost, OU=cqlsniff lab, O=cqlsniff" -ext "san=ip:127.0.0.1,dns:localhost" \
    -keystore "$tls_dir/keystore.p12" -storetype PKCS12 -storepass cqlsniff-lab -keypass cqlsniff-lab
  keytool -exportcert -rfc -alias cassandra -keystore "$tls_dir/keystore.p12" -storepass cqlsniff-lab \
    -file "$tls_dir/ca.pem"
  echo "made test keystore $tls_dir/keystore.p12 and $tls_dir/ca.pem"
fi

mkdir -p "$run_dir"/{data,commitlog,saved_caches,hints,cdc_raw,logs}
sed -e "s|@RUN_DIR@|$run_dir|g" -e "s|@TLS_DIR@|$tls_dir|g" "$here/cassandra.yaml.in" > "$run_dir/cassandra.yaml"
cp "$here/logback.xml" "$run_dir/logback.xml"

# JVM flags: conf/jvm-server.options (general) and conf/jvm17-server.options (GC, JPMS, Netty) as
# Cassandra ships them, minus AlwaysPreTouch (slow start, no benefit for a lab node).
jvm_opts=(
  -ea -da:net.openhft...
  -XX:+UseThreadPriorities -XX:+HeapDumpOnOutOfMemoryError -XX:+ExitOnOutOfMemoryError -Xss256k
  -XX:+UseTLAB -XX:+ResizeTLAB -XX:+UseNUMA -XX:+PerfDisableSharedMem
  -Djava.net.preferIPv4Stack=true
  -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m
  -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dio.netty.allocator.useCacheForAllThreads=true
  -Dio.netty.allocator.maxOrder=11
  -javaagent:"$jamm"
  "-Xms$heap" "-Xmx$heap"
  -Dcassandra.config="file://$run_dir/cassandra.yaml"
  -Dcassandra-foreground=yes
  -Dcassandra.storagedir="$run_dir"
  -Dcassandra.logdir="$run_dir/logs"
  -Dlogback.configurationFile="file://$run_dir/logback.xml"
  # Single node: nothing to gossip with, so do not wait for gossip to settle.
  -Dcassandra.skip_wait_for_gossip_to_settle=0
  -Dcassandra.ring_delay_ms=1000
)

if [[ -n "${CASSANDRA_TLS_KEYUPDATE:-}" ]]; then
  lim=$CASSANDRA_TLS_KEYUPDATE
  printf 'jdk.tls.keyLimits=AES/GCM/NoPadding KeyUpdate %s, ChaCha20-Poly1305 KeyUpdate %s\n' "$lim" "$lim" \
    > "$run_dir/keylimits.security"
  jvm_opts+=(-Dcassandra.disable_tcactive_openssl=true -Djava.security.properties="$run_dir/keylimits.security")
  echo "TLS: JDK SSLEngine, KeyUpdate every $lim bytes per key"
fi

start=$(date +%s.%N)
cd "$run_dir"
nohup java "${jvm_opts[@]}" -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon \
  >"$run_dir/logs/stdout.log" 2>&1 &
echo $! > "$pid_file"
echo "cassandra pid $(cat "$pid_file"), run dir $run_dir, log $run_dir/logs/system.log"

deadline=$(( $(date +%s) + ready_timeout ))
until python3 "$here/cql_ping.py" 127.0.0.1 9042; do
  if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    echo "cassandra exited during start; last log lines:" >&2
    tail -n 30 "$run_dir/logs/stdout.log" >&2
    exit 1
  fi
  if (( $(date +%s) > deadline )); then
    echo "cassandra not ready after ${ready_timeout}s" >&2
    exit 1
  fi
  sleep 1
done
end=$(date +%s.%N)
printf 'cassandra ready on 127.0.0.1:9042 after %.1f s\n' "$(echo "$end - $start" | bc)"
