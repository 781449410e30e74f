#!/usr/bin/env python3
"""Drive a fixed CQL workload through the DataStax Python driver and print a JSON summary.

The workload matches lab/clients/gocql: per request index i, 50% prepared INSERT, 30% prepared SELECT,
20% plain QUERY (a SimpleStatement with literal values, never prepared), and one UNLOGGED BATCH of 5
prepared inserts at i == N/2. C requests are kept in flight with execute_async: each completion
callback issues the next request.

Run with the lab venv: lab/.cache/venv-python/bin/python lab/clients/python/client.py --proto 5 ...
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time

import cassandra
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from cassandra import ConsistencyLevel


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--proto", type=int, default=5, help="CQL protocol version (3, 4 or 5)")
    ap.add_argument("--compression", choices=["none", "lz4", "snappy"], default="none")
    ap.add_argument("--nodelay", choices=["on", "off"], default="on",
                    help="on: set TCP_NODELAY via sockopts; off: the driver's default (Nagle left on)")
    ap.add_argument("-c", "--concurrency", type=int, default=32)
    ap.add_argument("-n", "--requests", type=int, default=4000)
    ap.add_argument("--keyspace", default="cqlsniff_lab")
    ap.add_argument("--tls", action="store_true",
                    help="connect with TLS (the lab Cassandra takes TLS and plain CQL on 9042)")
    ap.add_argument("--tls-ca", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".cache",
                                                    "tls", "ca.pem"),
                    help="PEM certificate to trust (default lab/.cache/tls/ca.pem, made by lab/cassandra/start.sh)")
    ap.add_argument("--keylog", help="write the TLS secrets to this file, NSS key log format (SSLContext.keylog_filename)")
    ap.add_argument("--tls-max", choices=["1.2", "1.3"], help="highest TLS version (default: 1.3)")
    ap.add_argument("--tls-ciphers", help="OpenSSL cipher string for TLS 1.2 (SSLContext.set_ciphers), "
                                          "e.g. ECDHE-RSA-AES128-GCM-SHA256; TLS 1.3 suites are OpenSSL's default")
    args = ap.parse_args()
    if args.keylog or args.tls_max or args.tls_ciphers:
        args.tls = True

    sockopts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)] if args.nodelay == "on" else None
    compression = False if args.compression == "none" else args.compression
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), consistency_level=ConsistencyLevel.ONE,
                               request_timeout=20)
    ssl_context = None
    if args.tls:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the cert and the host name
        ssl_context.load_verify_locations(args.tls_ca)
        # The driver passes server_hostname = the endpoint's address, 127.0.0.1: the cert's IP SAN.
        ssl_context.check_hostname = True
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        if args.tls_max == "1.2":
            ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        if args.tls_ciphers:
            ssl_context.set_ciphers(args.tls_ciphers)
        if args.keylog:
            ssl_context.keylog_filename = args.keylog  # test keys of throwaway lab sessions only
    cluster = Cluster([args.host], port=args.port, protocol_version=args.proto, compression=compression,
                      sockopts=sockopts, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      ssl_context=ssl_context)
    session = cluster.connect()
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {args.keyspace} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute(f"CREATE TABLE IF NOT EXISTS {args.keyspace}.kv (k int, c int, v text, PRIMARY KEY (k, c))")
    session.set_keyspace(args.keyspace)
    ins = session.prepare("INSERT INTO kv (k, c, v) VALUES (?, ?, ?)")
    sel = session.prepare("SELECT v FROM kv WHERE k = ? AND c = ?")

    n, batch_at = args.requests, args.requests // 2
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "errors": 0, "first_error": None}
    finished = threading.Event()

    def statement(i):
        k, c = i % 97, i
        if i == batch_at:
            b = BatchStatement(batch_type=BatchType.UNLOGGED)
            for j in range(5):
                b.add(ins, (k, c * 10 + j, "batch"))
            return b, None
        if i % 10 < 5:
            return ins, (k, c, "value")
        if i % 10 < 8:
            return sel, (k, c)
        return SimpleStatement(f"SELECT k, c, v FROM kv WHERE k = {k} AND c = {c}"), None

    def issue():
        with lock:
            i = state["next"]
            if i >= n:
                return
            state["next"] += 1
        stmt, params = statement(i)
        fut = session.execute_async(stmt, params)
        fut.add_callbacks(on_done, on_error)

    def finish_one(err=None):
        with lock:
            state["done"] += 1
            if err is not None:
                state["errors"] += 1
                state["first_error"] = state["first_error"] or repr(err)
            last = state["done"] >= n
        if last:
            finished.set()
        else:
            issue()

    def on_done(_rows):
        finish_one()

    def on_error(err):
        finish_one(err)

    start = time.perf_counter()
    for _ in range(min(args.concurrency, n)):
        issue()
    finished.wait(timeout=600)
    elapsed = time.perf_counter() - start
    # Marks the end of the measured phase for lab/run.py (its CPU sampling), before the shutdown.
    print(json.dumps({"event": "phase_end"}), flush=True)

    # Protocol v3+ pools hold one connection per host (HostConnection._connection); the control
    # connection is a second one.
    pool_conns = [getattr(p, "_connection", None) for p in session._pools.values()]
    pool_conns = [c for c in pool_conns if c is not None]
    ports = set()
    tls_seen = set()
    for conn in pool_conns + [cluster.control_connection._connection]:
        if conn is not None and isinstance(conn._socket, ssl.SSLSocket):
            tls_seen.add(f"{conn._socket.version()} {conn._socket.cipher()[0]}")
        if conn is not None and conn._socket is not None:
            ports.add(conn._socket.getsockname()[1])
    conn_count = len(pool_conns)
    cluster.shutdown()

    summary = {
        "driver": "python-cassandra-driver",
        "driver_version": cassandra.__version__,
        "connection_class": cluster.connection_class.__name__,
        "protocol": args.proto,
        "mode": "nodelay" if args.nodelay == "on" else "nagle",
        "compression": args.compression,
        "connections": conn_count,
        "requests": state["done"],
        "errors": state["errors"],
        "first_error": state["first_error"],
        "concurrency": args.concurrency,
        "duration_s": elapsed,
        "ops_per_s": state["done"] / elapsed if elapsed else 0,
        "local_ports": sorted(ports),
    }
    if args.tls:
        summary["tls"] = {"max": args.tls_max, "ciphers": args.tls_ciphers, "negotiated": sorted(tls_seen),
                          "openssl": ssl.OPENSSL_VERSION}
    print(json.dumps(summary))
    return 1 if state["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
