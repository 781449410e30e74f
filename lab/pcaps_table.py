#!/usr/bin/env python3
"""Write pcaps/README.md from the JSON sidecars next to the captures.

The "cqlsniff says" column is cqlsniff's own verdict on each capture: the script builds cqlsniff from
this checkout's work tree and reads its JSON report; CQLSNIFF=/path/to/cqlsniff uses that binary instead
(e.g. one built from `git archive HEAD`, when the work tree holds someone's unfinished changes).
Usage: [CQLSNIFF=BIN] pcaps_table.py [PCAPS_DIR]
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

HEADER = """# Sample captures

Real CQL traffic between lab clients and a single Apache Cassandra 5.0.9 node on 127.0.0.1:9042, each
capture with a JSON sidecar (same name, `.json`) holding the kernel's view of the client. Made by
`lab/make-captures.sh` (one `lab/run.py` call per capture; see lab/README.md for the workload and how to
regenerate). The pcaps are `tcpdump -i lo -s 0 'tcp port 9042'`, classic pcap (big ones gzipped,
`.pcap.gz`, which cqlsniff reads as is), Ethernet link type, and start before the client connects, so every connection's handshake, STARTUP and PREPAREs are in them.
Third-party samples live apart in `public/` (see its README).

Columns:

- **connections**: the driver's pool size as configured; **TCP conns**: connections in the pcap, which
  also counts control connections, gocql's separate schema-setup session and refused protocol probes.
- **send / recv syscalls**: socket send/recv calls that returned data, made by the client process on its
  CQL sockets (remote port 9042), counted in the kernel with bpftrace on the tracepoints
  `sock:sock_send_length` / `sock:sock_recv_length` (every write, writev, send, sendmsg... and read,
  recv... on a socket goes through them). EAGAIN returns are counted apart in the sidecar
  (`kernel.send_eagain`, `kernel.recv_eagain`).
- **client data segments**: client->server TCP segments with payload,
  `tshark -r F -Y 'tcp.dstport==9042 && tcp.len>0' | wc -l` (a retransmitted segment counts twice here).
- **client frames**: CQL request frames the client sent, counted by `lab/pcapstats.py` walking the
  reassembled client->server streams (v5: frames inside the segments; lz4-compressed v5 payloads are not
  opened, see the sidecar). Includes connection setup (OPTIONS, STARTUP, REGISTER, PREPARE) and the
  driver's control-connection queries, so it is a little above *requests*.
- **frames / send**: client frames / send syscalls: how many frames the driver hands the kernel per
  write. 1.0 is an unbuffered client; tens is a coalescing one. Data segments can be fewer than sends on
  loopback (TCP autocorking and Nagle merge back-to-back writes), which is why the kernel count is the
  ground truth, not the segment count.
- **client CPU µs/req**: the client process's user+system CPU time (rusage from `wait4`, whole process
  life) divided by its requests; **server CPU µs/req**: the lab Cassandra's over the same span
  (`/proc/PID/stat`), marked "capped" when it ran under a cgroup CPU quota. Only in captures made since
  run.py records them.
- **TLS captures** (issue 11; `*-tls*`, each with its client's NSS key log `NAME.keys` beside it, test keys
  of throwaway sessions): *mode* adds the negotiated version and suite (from the ServerHello);
  *client frames* are the CQL frames Wireshark's dissector finds once tshark decrypts the capture with
  the key log ("dec."), since none is visible in the clear; *frames / send* is that count over the send
  syscalls. cqlsniff is run with `--keylog NAME.keys`. Records per segment, bytes per record and
  KeyUpdates are in the sidecar's `tls` and `pcap_stats.tls` sections.
- **cqlsniff says**: the diagnosis cqlsniff gives each busy connection (100+ requests), with its wire
  frames per segment and mean in-flight requests (`go run ./cmd/cqlsniff -r pcaps/FILE`), filled in by
  `lab/pcaps_table.py` from cqlsniff's JSON report. Checked by `analyze/verdict_test.go`.

"""

COLUMNS = ["file", "driver", "mode", "protocol", "compression", "connections", "TCP conns", "requests", "in flight",
           "send syscalls", "recv syscalls", "client data segments", "client frames", "frames / send",
           "client CPU µs/req", "server CPU µs/req", "cqlsniff says"]


def build_cqlsniff(tmp):
    if os.environ.get("CQLSNIFF"):  # a given binary, e.g. built from a commit rather than the work tree
        return os.environ["CQLSNIFF"]
    exe = os.path.join(tmp, "cqlsniff")
    subprocess.run(["go", "build", "-o", exe, "./cmd/cqlsniff"], cwd=REPO, check=True)
    return exe


def cqlsniff_says(exe, pcap, keylog=None):
    """One line on the busy connections (100+ requests) of cqlsniff's report on pcap (decrypted with
    the key log, when there is one)."""
    cmd = [exe, "-r", pcap, "--report", "json"] + (["--keylog", keylog] if keylog else [])
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    busy = [c for c in json.loads(out)["connections"] if c["requests"] >= 100]
    if not busy:
        return "no busy connection"

    def verdict(c):
        return ", ".join(c.get("diagnoses") or []) or "no diagnosis"

    if len(busy) == 1:
        c = busy[0]
        return f"{verdict(c)}; {(c.get('client_segments') or c['client_writes'])['frames_per_segment']:.2f} frames/seg, in flight {c['in_flight']['mean']:.1f}"
    verdicts = sorted({verdict(c) for c in busy})
    return f"{len(busy)} busy conns: {' / '.join(verdicts)}"


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "pcaps")
    readme = os.path.join(out_dir, "README.md")
    tmp = tempfile.mkdtemp(prefix="pcaps-table-")
    exe = build_cqlsniff(tmp)
    rows, notes = [], []
    for path in sorted(glob.glob(os.path.join(out_dir, "*.json"))):
        with open(path) as f:
            d = json.load(f)
        ps, k = d["pcap_stats"], d["kernel"]
        name = d["pcap"]
        fps = d.get("client_frames_per_send_syscall")
        ccpu = (d.get("client_cpu") or {}).get("cpu_us_per_request")
        scpu = d.get("server_cpu") or {}
        scpu_s = f"{scpu['cpu_us_per_request']:.1f}" if scpu.get("cpu_us_per_request") is not None else ""
        if scpu_s and scpu.get("cpu_quota"):
            scpu_s += f" (capped: {scpu['cpu_quota'].split(' (')[0]})"
        tls = d.get("tls") or {}
        mode = d.get("mode") or ""
        frames = str(ps["client_frames"])
        keylog = None
        if tls:
            neg = sorted((tls.get("negotiated") or {}).keys())
            mode += " · " + (", ".join(n.replace("_WITH_", " ").replace("TLS_", "", 1).replace("TLS 1", "TLS 1", 1)
                                       for n in neg) or "TLS")
            dec = (tls.get("tshark_decrypted") or {}).get("client_frames")
            frames = f"{dec} dec." if dec else "0 (no keys matched)"
            if tls.get("keylog"):
                keylog = os.path.join(out_dir, tls["keylog"])
        rows.append([
            f"`{name}`", f"{d['driver']} {d['driver_version']}", mode, f"v{d['protocol']}",
            d.get("compression") or "none", str(d["connections"]), str(ps["connections"]), str(d["requests"]),
            str(d["concurrency"]),
            str(k["send_syscalls"]), str(k["recv_syscalls"]),
            str(ps.get("tshark_client_data_segments")), frames,
            f"{fps:.2f}" if fps is not None else "", f"{ccpu:.1f}" if ccpu is not None else "", scpu_s,
            cqlsniff_says(exe, os.path.join(out_dir, name), keylog),
        ])
        if d.get("note"):
            notes.append(f"- `{name}`: {d['note']}. `{d['command']}`")
    with open(readme, "w") as f:
        f.write(HEADER)
        f.write("| " + " | ".join(COLUMNS) + " |\n")
        f.write("|" + "|".join("---" for _ in COLUMNS) + "|\n")
        for r in rows:
            f.write("| " + " | ".join(r) + " |\n")
        f.write("\n## What each capture shows\n\n")
        f.write("\n".join(notes) + "\n")
    if exe.startswith(tmp):
        os.remove(exe)
    os.rmdir(tmp)
    print(f"wrote {readme} ({len(rows)} captures)")


if __name__ == "__main__":
    main()
