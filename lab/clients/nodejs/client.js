#!/usr/bin/env node
'use strict';
// Drive a fixed CQL workload through the Node.js cassandra-driver and print a JSON summary.
//
// The workload matches lab/clients/gocql: per request index i, 50% prepared INSERT, 30% prepared SELECT,
// 20% plain QUERY (literal values, not prepared), and one UNLOGGED BATCH of 5 prepared inserts at
// i == N/2. C async workers keep C requests in flight on the driver's single connection per host
// (the 4.x driver does not speak protocol v5: it settles on v4 with Cassandra 5).
//
//   node client.js [-n 4000] [-c 64] [--threshold 65536] [--nodelay on|off]
//                  [--tls] [--tls-ca PEM] [--keylog FILE] [--tls-min TLSv1.3] [--tls-ciphers SUITES]
//
// --tls connects with TLS (the lab Cassandra takes TLS and plain CQL on 9042): the driver's sslOptions
// ({ca, minVersion, ciphers}, passed through to tls.connect). --keylog FILE appends every TLS
// connection's secrets (NSS key log format) from the TLSSocket 'keylog' event: the driver creates the
// socket itself, so the client wraps tls.connect to listen on each socket it returns. Equivalent without
// any code: `node --tls-keylog=FILE client.js --tls` (every TLS connection of the process).
//
// --threshold is socketOptions.coalescingThreshold: the driver's write queue joins queued frames into
// one socket write until this many bytes; 1 makes it write every frame on its own.
const fs = require('fs');
const path = require('path');
const tls = require('tls');
const cassandra = require('cassandra-driver');
const driverVersion = require('cassandra-driver/package.json').version;

function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: 9042, n: 4000, c: 64, threshold: 65536, nodelay: 'on', keyspace: 'cqlsniff_lab',
    tls: false, tlsCa: path.join(__dirname, '..', '..', '.cache', 'tls', 'ca.pem'), keylog: null, tlsMin: null, tlsCiphers: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--host': o.host = v(); break;
      case '--port': o.port = Number(v()); break;
      case '-n': o.n = Number(v()); break;
      case '-c': o.c = Number(v()); break;
      case '--threshold': o.threshold = Number(v()); break;
      case '--nodelay': o.nodelay = v(); break;
      case '--keyspace': o.keyspace = v(); break;
      case '--tls': o.tls = true; break;
      case '--tls-ca': o.tlsCa = v(); o.tls = true; break;
      case '--keylog': o.keylog = v(); o.tls = true; break;
      case '--tls-min': o.tlsMin = v(); o.tls = true; break;
      case '--tls-ciphers': o.tlsCiphers = v(); o.tls = true; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return o;
}

function localPorts(client) {
  const ports = new Set();
  try {
    for (const host of client.hosts.values()) {
      for (const conn of host.pool.connections) {
        if (conn.netClient && conn.netClient.localPort) ports.add(conn.netClient.localPort);
      }
    }
    const cc = client.controlConnection && client.controlConnection.connection;
    if (cc && cc.netClient && cc.netClient.localPort) ports.add(cc.netClient.localPort);
  } catch (e) {
    // Internal fields: best effort only.
  }
  return [...ports].sort((a, b) => a - b);
}

function connectionCount(client) {
  let n = 0;
  for (const host of client.hosts.values()) n += host.pool.connections.length;
  return n;
}

// The TLS version and suite each of the driver's TLS sockets negotiated, for the summary.
const tlsSeen = new Set();

function tlsSetup(o) {
  if (!o.tls) return undefined;
  const keylog = o.keylog ? fs.openSync(o.keylog, 'w', 0o600) : null; // test keys of throwaway lab sessions only
  const connect = tls.connect;
  tls.connect = function (...args) { // the driver calls tls.connect(port, host, sslOptions, cb) per connection
    const socket = connect.apply(this, args);
    if (keylog !== null) socket.on('keylog', (line) => fs.writeSync(keylog, line));
    socket.once('secureConnect', () => tlsSeen.add(`${socket.getProtocol()} ${socket.getCipher().standardName}`));
    return socket;
  };
  const ssl = { ca: [fs.readFileSync(o.tlsCa)], rejectUnauthorized: true }; // cert SAN ip:127.0.0.1
  if (o.tlsMin) ssl.minVersion = o.tlsMin;
  if (o.tlsCiphers) ssl.ciphers = o.tlsCiphers;
  return ssl;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const sslOptions = tlsSetup(o);
  const client = new cassandra.Client({
    sslOptions,
    contactPoints: [`${o.host}:${o.port}`],
    localDataCenter: 'datacenter1',
    socketOptions: { coalescingThreshold: o.threshold, tcpNoDelay: o.nodelay === 'on', readTimeout: 20000 },
    pooling: { coreConnectionsPerHost: { [cassandra.types.distance.local]: 1 } },
    queryOptions: { consistency: cassandra.types.consistencies.one },
  });
  await client.connect();
  await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${o.keyspace} WITH replication = ` +
    `{'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await client.execute(`CREATE TABLE IF NOT EXISTS ${o.keyspace}.kv (k int, c int, v text, PRIMARY KEY (k, c))`);

  const ins = `INSERT INTO ${o.keyspace}.kv (k, c, v) VALUES (?, ?, ?)`;
  const sel = `SELECT v FROM ${o.keyspace}.kv WHERE k = ? AND c = ?`;
  const batchAt = Math.floor(o.n / 2);
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError = null;

  async function one(i) {
    const k = i % 97;
    const c = i;
    if (i === batchAt) {
      const queries = [];
      for (let j = 0; j < 5; j++) queries.push({ query: ins, params: [k, c * 10 + j, 'batch'] });
      return client.batch(queries, { prepare: true, logged: false });
    }
    if (i % 10 < 5) return client.execute(ins, [k, c, 'value'], { prepare: true });
    if (i % 10 < 8) return client.execute(sel, [k, c], { prepare: true });
    return client.execute(`SELECT k, c, v FROM ${o.keyspace}.kv WHERE k = ${k} AND c = ${c}`);
  }

  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= o.n) return;
      try {
        await one(i);
      } catch (e) {
        errors++;
        if (!firstError) firstError = String(e);
      }
      done++;
    }
  }

  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(o.c, o.n) }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  // Marks the end of the measured phase for lab/run.py (its CPU sampling), before the shutdown.
  console.log(JSON.stringify({ event: 'phase_end' }));
  const ports = localPorts(client);
  const protocol = (client.controlConnection && client.controlConnection.protocolVersion) || null;
  const conns = connectionCount(client);
  await client.shutdown();

  const mode = o.threshold <= 1 ? 'threshold1' : (o.threshold === 65536 ? 'default' : `threshold${o.threshold}`);
  console.log(JSON.stringify({
    driver: 'nodejs-cassandra-driver',
    driver_version: driverVersion,
    protocol,
    mode,
    coalescing_threshold: o.threshold,
    tcp_nodelay: o.nodelay === 'on',
    compression: 'none',
    connections: conns,
    requests: done,
    errors,
    first_error: firstError,
    concurrency: o.c,
    duration_s: seconds,
    ops_per_s: done / seconds,
    local_ports: ports,
    tls: o.tls ? { min: o.tlsMin, ciphers: o.tlsCiphers, negotiated: [...tlsSeen].sort(), openssl: process.versions.openssl } : undefined,
  }));
  process.exitCode = errors ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
