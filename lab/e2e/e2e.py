#!/usr/bin/env python3
"""Helpers of lab/e2e/run.sh (standard library only).

  e2e.py bpf PORT                 print the bpftrace program (lab/run.py's) for CQL port PORT
  e2e.py check CASE DIR           check one case's figures, print one line per check, append the figures
                                  to the results file
  e2e.py summary WORK CASE...     the cases' figures as a table
  e2e.py cpucheck CASE DIR WANT   a client-or-server case: cqlsniff's CPU per request of the client process
                                  against the client's own (getrusage), and the verdict (WANT: client-bound
                                  or none)

check reads, in DIR: report.json (cqlsniff --report json), bpftrace.json (bpftrace -f json), client.json
(the gocql lab client's summary line), client.pid, and the environment: E2E_MODE (unbuffered or
buffered), E2E_REQUESTS (requests the client was asked for), E2E_RESULTS (results file, JSON lines),
E2E_RUN_ID, E2E_COMMIT, E2E_WORK (where CASE.figures.json goes). Each check is printed as
"PASS<TAB>name<TAB>detail", "FAIL<TAB>..." or "WARN<TAB>..."; run.sh counts them.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
sys.path.insert(0, LAB)
import run as labrun  # noqa: E402  lab/run.py: the bpftrace program and its output parser

BUSY_REQUESTS = 1000  # a connection with at least this many requests is the workload's
SEGMENT_TOLERANCE = 0.10  # buffered: wire segments within ±10% of the kernel's send calls
UNBUFFERED = "client-unbuffered-writes"


def bpf_program(port):
    dport_le = ((port & 0xFF) << 8) | (port >> 8)  # skc_dport is in network order
    return labrun.BPF_TEMPLATE.replace("DPORT_LE", hex(dport_le))


def emit(status, name, detail):
    print(f"{status}\t{name}\t{detail}", flush=True)


def port_of(endpoint):
    return int(endpoint.rsplit(":", 1)[1])


def check(case, d):
    mode = os.environ["E2E_MODE"]
    want_requests = int(os.environ["E2E_REQUESTS"])
    try:
        with open(os.path.join(d, "report.json")) as f:
            report = json.load(f)
        with open(os.path.join(d, "client.json")) as f:
            client = json.loads(f.read().strip().splitlines()[-1])
        with open(os.path.join(d, "client.pid")) as f:
            pid = int(f.read().strip())
        maps = labrun.parse_bpftrace(os.path.join(d, "bpftrace.json"))
    except (OSError, ValueError, IndexError, KeyError) as e:
        emit("FAIL", f"{case}: inputs", f"cannot read the run's outputs in {d}: {e}")
        return 0

    def kernel(name, port):
        return maps.get(name, {}).get((pid, port), 0)

    ports = set(client.get("local_ports") or [])
    busy = [c for c in report.get("connections", [])
            if c.get("requests", 0) >= BUSY_REQUESTS and port_of(c["client"]) in ports]
    others = [c["client"] for c in report.get("connections", [])
              if c.get("requests", 0) >= BUSY_REQUESTS and port_of(c["client"]) not in ports]
    if others:
        emit("WARN", f"{case}: foreign traffic", f"busy connections not from the client: {', '.join(others)}")
    if len(busy) != 1:
        emit("FAIL", f"{case}: busy connection",
             f"want exactly one connection of the client (ports {sorted(ports)}) with >= {BUSY_REQUESTS} "
             f"requests, the report has {len(busy)} ({len(report.get('connections', []))} connections in all)")
        record(case, mode, report, client, None, None, None, None, None)
        return 0
    c = busy[0]
    port = port_of(c["client"])
    cw = client_segments(c)
    segments, frames = cw.get("segments", 0), cw.get("frames", 0)
    sends = kernel("send_calls", port)
    recvs = kernel("recv_calls", port)
    sys_ = c.get("client_syscalls")
    diags = c.get("diagnoses") or []
    emit("PASS", f"{case}: busy connection",
         f"{c['client']} -> {c['server']}: {c['requests']} requests, {frames} client frames, "
         f"in flight {c.get('in_flight', {}).get('mean', 0):.1f}")

    # The protocol the driver says it negotiated is the one cqlsniff decoded (v5: segments, CRCs).
    want_proto, got_proto = client.get("protocol"), c.get("protocol_version")
    emit("PASS" if want_proto == got_proto else "FAIL", f"{case}: protocol version",
         f"client speaks v{want_proto}, cqlsniff decoded v{got_proto}"
         + (f", {client_segments(c)['v5']['segments']} v5 segments" if client_segments(c).get("v5") else ""))

    # Cassandra may time out a few requests on a loaded machine: up to 1% is the server's business.
    errors = client.get("errors", 0)
    ok = errors <= want_requests // 100 and client.get("requests") == want_requests and c["requests"] >= want_requests
    emit("PASS" if ok else "FAIL", f"{case}: every request seen",
         f"client made {client.get('requests')} requests (asked for {want_requests}), {errors} failed "
         f"(at most {want_requests // 100} allowed); cqlsniff saw {c['requests']} on the connection, "
         f"{c.get('errors', 0)} error responses")

    if mode == "unbuffered":
        ok = UNBUFFERED in diags
        emit("PASS" if ok else "FAIL", f"{case}: diagnosis",
             f"diagnoses: {', '.join(diags) or 'none'} ({UNBUFFERED} {'given' if ok else 'MISSING'})")
    else:
        ok = UNBUFFERED not in diags
        emit("PASS" if ok else "FAIL", f"{case}: diagnosis",
             f"diagnoses: {', '.join(diags) or 'none'} ({UNBUFFERED} {'absent' if ok else 'WRONGLY GIVEN'})")

    wire_diags = replay(case, mode, d, c)

    if sends == 0:
        sc = maps.get("send_calls", {})
        emit("FAIL", f"{case}: kernel count",
             f"bpftrace counted no send calls of pid {pid} on local port {port} (its send_calls map: "
             f"{len(sc)} entries; pids on that port {sorted(p for p, q in sc if q == port)}, "
             f"ports of that pid {sorted(q for p, q in sc if p == pid)})")
    elif mode == "buffered":
        dev = (segments - sends) / sends
        ok = abs(dev) <= SEGMENT_TOLERANCE
        emit("PASS" if ok else "FAIL", f"{case}: wire segments vs kernel sends",
             f"{segments} segments vs {sends} send calls ({dev:+.1%}, tolerance ±{SEGMENT_TOLERANCE:.0%})")
    else:
        emit("PASS", f"{case}: kernel count",
             f"{segments} wire segments, {sends} send calls ({frames / sends:.2f} frames per send)")

    misses = bpftrace_misses(d)
    if misses.get("sock_send_lengt"):
        emit("WARN", f"{case}: bpftrace missed runs",
             f"the kernel skipped bpftrace's sock_send_length program {misses['sock_send_lengt']} times "
             "(recursion_misses: another kprobe/tracepoint BPF program or a bpf() map call was active on that CPU); "
             "its count is short by at most that")
    if sys_ is None:
        emit("WARN", f"{case}: cqlsniff's own syscall count",
             "no client_syscalls in the report (eBPF counting off or unavailable: see cqlsniff.err)")
    else:
        got, miss = sys_.get("sends"), misses.get("sock_send_lengt", 0)
        if got == sends:
            emit("PASS", f"{case}: cqlsniff's own syscall count", f"client_syscalls.sends {got} == bpftrace {sends}")
        elif miss and sends < got <= sends + miss:
            emit("PASS", f"{case}: cqlsniff's own syscall count",
                 f"client_syscalls.sends {got} == bpftrace {sends} + up to {miss} runs the kernel skipped")
        elif sends < got <= sends + max(3, sends // 100):
            # Seen once in CI on a loaded box (337 against 334, no skipped run reported): bpftrace
            # short by a few calls. A handful is warned about; more is a failure.
            emit("WARN", f"{case}: cqlsniff's own syscall count",
                 f"client_syscalls.sends {got} is {got - sends} above bpftrace's {sends} (within 1% or 3 calls)")
        else:
            emit("FAIL", f"{case}: cqlsniff's own syscall count",
                 f"client_syscalls.sends {got} != bpftrace {sends} ({miss} bpftrace runs skipped by the kernel)")

    dropped = report.get("dropped", 0)
    if dropped:
        emit("WARN", f"{case}: kernel drops", f"the capture lost {dropped} packets in the kernel (figures undercount)")
    record(case, mode, report, client, c, sends, recvs, wire_diags, misses)
    return 0


def bpftrace_misses(d):
    """recursion_misses of bpftrace's programs by name (bpftool prog show -j of each, JSON lines)."""
    out = {}
    try:
        with open(os.path.join(d, "bpftrace-progs.json")) as f:
            for line in f:
                if line.strip():
                    p = json.loads(line)
                    out[p.get("name", "")] = out.get(p.get("name", ""), 0) + p.get("recursion_misses", 0)
    except (OSError, ValueError):
        pass
    return out


def replay(case, mode, d, live):
    """The wire-only verdict: cqlsniff -r of the packets the live run wrote (-w), no kernel counts."""
    try:
        with open(os.path.join(d, "replay.json")) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        emit("FAIL", f"{case}: wire-only replay", f"no replay report: {e}")
        return None
    same = [c for c in report.get("connections", []) if c["client"] == live["client"]]
    if len(same) != 1:
        emit("FAIL", f"{case}: wire-only replay", f"connection {live['client']} not in the replay of the capture")
        return None
    r = same[0]
    lw, rw = client_segments(live), client_segments(r)
    ok = (r["requests"], rw.get("frames"), rw.get("segments")) == (live["requests"], lw.get("frames"), lw.get("segments"))
    status = "PASS" if ok else "FAIL"
    # Live, TLS records whose keys reached the key log after them are
    # decrypted late and fed as frames without their segments (the replay,
    # with the whole key log, has every key in time): the segment counts may
    # then differ by up to those records, the frames not.
    late = ((live.get("tls") or {}).get("late_records") or 0)
    seg_diff = abs((rw.get("segments") or 0) - (lw.get("segments") or 0))
    if not ok and late and (r["requests"], rw.get("frames")) == (live["requests"], lw.get("frames")) and seg_diff <= late:
        status = "WARN"
    emit(status, f"{case}: live == replay",
         f"requests/frames/segments live {live['requests']}/{lw.get('frames')}/{lw.get('segments')}, "
         f"replay of the -w file {r['requests']}/{rw.get('frames')}/{rw.get('segments')}"
         + (f" ({late} TLS records decrypted late live)" if late else ""))
    diags = r.get("diagnoses") or []
    want = mode == "unbuffered"
    ok = (UNBUFFERED in diags) == want
    emit("PASS" if ok else "FAIL", f"{case}: wire-only diagnosis",
         f"from the wire alone: {', '.join(diags) or 'none'} ({rw.get('frames_per_segment')} "
         f"frames per segment; {UNBUFFERED} {'expected' if want else 'not expected'})")
    return diags


def client_segments(c):
    """What the client of connection c sent, as the wire shows it (client_writes before the rename)."""
    return c.get("client_segments") or c.get("client_writes") or {}


def record(case, mode, report, client, c, sends, recvs, wire_diags, misses):
    """Append one JSON line with the case's figures to $E2E_RESULTS."""
    row = {
        "run": os.environ.get("E2E_RUN_ID", ""),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": os.environ.get("E2E_COMMIT", ""),
        "case": case,
        "mode": mode,
        "client_requests": client.get("requests"),
        "client_errors": client.get("errors"),
        "client_ops_per_s": round(client.get("ops_per_s", 0), 1),
        "dropped": report.get("dropped"),
        "packets": report.get("packets"),
    }
    if c is not None:
        cw = client_segments(c)
        sys_ = c.get("client_syscalls") or {}
        row |= {
            "connection": c["client"],
            "requests": c["requests"],
            "in_flight_mean": c.get("in_flight", {}).get("mean"),
            "client_frames": cw.get("frames"),
            "wire_segments": cw.get("segments"),
            "frames_per_segment": cw.get("frames_per_segment"),
            "kernel_sends": sends,
            "kernel_recvs": recvs,
            "bpftrace_recursion_misses": misses,
            "cqlsniff_sends": sys_.get("sends"),
            "cqlsniff_frames_per_send": sys_.get("frames_per_send"),
            "diagnoses": c.get("diagnoses") or [],
            "wire_only_diagnoses": wire_diags,
        }
    path = os.environ.get("E2E_RESULTS")
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    with open(os.path.join(os.environ.get("E2E_WORK", "."), f"{case}.figures.json"), "w") as f:
        json.dump(row, f)


def summary(work, cases):
    """Print the figures of each case as a table."""
    cols = [("case", "case", "{}"), ("connection", "connection", "{}"), ("requests", "requests", "{}"),
            ("in flight", "in_flight_mean", "{:.1f}"), ("frames", "client_frames", "{}"),
            ("wire segments", "wire_segments", "{}"), ("kernel sends", "kernel_sends", "{}"),
            ("cqlsniff sends", "cqlsniff_sends", "{}"), ("frames/send", "cqlsniff_frames_per_send", "{:.2f}"),
            ("dropped", "dropped", "{}"), ("diagnoses", "diagnoses", "{}"),
            ("wire-only diagnoses", "wire_only_diagnoses", "{}")]
    rows = []
    for case in cases:
        try:
            with open(os.path.join(work, f"{case}.figures.json")) as f:
                fig = json.load(f)
        except (OSError, ValueError):
            fig = {"case": case}
        row = []
        for _title, key, fmt in cols:
            v = fig.get(key)
            if key.endswith("diagnoses") and v is not None:
                v = ",".join(v) or "none"
            row.append("-" if v is None else fmt.format(v))
        rows.append(row)
    widths = [max(len(t), *(len(r[i]) for r in rows)) for i, (t, _k, _f) in enumerate(cols)]
    print("  ".join(t.rjust(w) for (t, _k, _f), w in zip(cols, widths)))
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))
    return 0


CPU_TOLERANCE = 0.30  # cqlsniff's client CPU per request within ±30% of the client's own


def cpucheck(case, d, want):
    """Check a FuturesUnordered case: report.json, client.json (the client's summary, with its own
    getrusage over the request phase), client.pid."""
    try:
        with open(os.path.join(d, "report.json")) as f:
            report = json.load(f)
        with open(os.path.join(d, "client.json")) as f:
            client = json.loads(f.read().strip().splitlines()[-1])
        with open(os.path.join(d, "client.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError, IndexError) as e:
        emit("FAIL", f"{case}: inputs", f"cannot read the run's outputs in {d}: {e}")
        return 0
    conns = [c for c in report.get("connections", []) if (c.get("client_process") or {}).get("pid") == pid]
    busy = max(conns, key=lambda c: c.get("requests", 0), default=None)
    fig = {"case": case, "requests": client.get("requests"), "ops_per_s": client.get("ops_per_s"),
           "client_cpu_us_per_request": client.get("cpu_us_per_request")}
    if busy is None:
        emit("FAIL", f"{case}: client process", f"no connection of the report has client_process.pid {pid}")
    else:
        p, t = busy["client_process"], busy.get("timing") or {}
        got, own = p.get("cpu_us_per_request") or 0, client.get("cpu_us_per_request") or 0
        fig.update({"connection": busy["client"], "cqlsniff_cpu_us_per_request": got, "cores": p.get("cores"),
                    "demand_cores": p.get("demand_cores"), "busiest_thread_demand": p.get("busiest_thread_demand"),
                    "idle_share": t.get("idle_share"), "outstanding_mean": t.get("outstanding_mean"),
                    "outstanding_peak": t.get("outstanding_peak"), "diagnoses": busy.get("diagnoses")})
        ok = own > 0 and abs(got - own) <= CPU_TOLERANCE * own
        emit("PASS" if ok else "FAIL", f"{case}: client CPU per request",
             f"cqlsniff {got:.2f} µs (window {p.get('window_s')} s, {p.get('requests')} requests), "
             f"the client's getrusage {own:.2f} µs ({client.get('requests')} requests)")
        flagged = "client-bound" in (busy.get("diagnoses") or [])
        ok = flagged == (want == "client-bound")
        status = "PASS" if ok else "FAIL"
        if not ok and want == "client-bound" and (t.get("idle_share") or 0) >= 0.10:
            # Live on a box loaded past its cores the broken client's idle share has ranged from 22%
            # to 66% (lab/README): under the 25% the wire alone needs it is not flagged, which is the
            # diagnosis preferring silence. The timing must still show the client leaving its server
            # idle; a false client-bound on the healthy twin is always a failure.
            status = "WARN"
        emit(status, f"{case}: verdict",
             f"diagnoses {busy.get('diagnoses')}, want {want}: idle {t.get('idle_share')}, outstanding "
             f"{t.get('outstanding_mean')}/{t.get('outstanding_peak')}, client {p.get('cores')} cores, "
             f"demand {p.get('demand_cores')}, {client.get('ops_per_s')} ops/s")
    fig["run"] = os.environ.get("E2E_RUN_ID")
    if os.environ.get("E2E_RESULTS"):
        with open(os.environ["E2E_RESULTS"], "a") as f:
            f.write(json.dumps(fig) + "\n")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "bpf":
        sys.stdout.write(bpf_program(int(sys.argv[2])))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 5 and sys.argv[1] == "cpucheck":
        return cpucheck(sys.argv[2], sys.argv[3], sys.argv[4])
    if len(sys.argv) >= 3 and sys.argv[1] == "summary":
        return summary(sys.argv[2], sys.argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
