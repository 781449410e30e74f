#!/usr/bin/env python3
"""Capture one lab client run: pcap of its CQL traffic plus kernel ground truth in a JSON sidecar.

  lab/run.py --name gocql-1.7.0-v4-unbuffered-c64 [--out pcaps] [--note TEXT] -- CLIENT ARGS...
  lab/run.py --name NAME --gzip -- ...  the same, then gzip the pcap to NAME.pcap.gz
  lab/run.py --restat pcaps/*.json     recompute the pcap-derived fields of existing sidecars
  lab/run.py --name NAME --keylog -- CLIENT ... --keylog @KEYLOG@
                                       a TLS client: @KEYLOG@ in its arguments becomes OUT/NAME.keys (its
                                       NSS key log, beside the pcap); the sidecar gets a "tls" section
  lab/run.py --name NAME --capture-delay 1 -- ...   start tcpdump 1 s after the client (mid-stream)

Runs, as root, in this order:
  1. bpftrace on tracepoints sock:sock_send_length / sock:sock_recv_length, counting every socket
     send/recv call whose socket's remote port is the CQL port (i.e. client-side CQL sockets), keyed by
     process id and local port;
  2. tcpdump -i lo -s 0 -w OUT.pcap 'tcp port 9042';
  3. the client command (it must print one JSON summary line on stdout, last line);
then stops tcpdump and bpftrace, counts client->server TCP data segments with tshark, walks the CQL
frames with pcapstats.py, and writes OUT.json beside OUT.pcap. The client's own CPU time (user and
system, from the rusage wait4 returns for it and every descendant it waited for) goes into the sidecar
as "client_cpu"; the server's (pid file of the lab Cassandra) over the same span, with any cgroup CPU
cap it runs under, as "server_cpu"; the load averages before and after the run as "host".

Only the client's own process id is kept from the bpftrace maps, so other programs talking to 9042 at
the same time do not leak into its counts (their packets would still be in the pcap: keep the lab quiet).
"""
import argparse
import collections
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import pcapstats  # noqa: E402

BPF_TEMPLATE = r"""
tracepoint:sock:sock_send_length {
  $sk = (struct sock *)args->sk;
  if ($sk->__sk_common.skc_dport == DPORT_LE) {
    $k = $sk->__sk_common.skc_num;
    if (args->ret > 0) {
      @send_calls[pid, $k] = count();
      @send_bytes[pid, $k] = sum(args->ret);
    } else if (args->ret == -11) {
      @send_eagain[pid, $k] = count();
    } else {
      @send_other[pid, $k] = count();
    }
  }
}
tracepoint:sock:sock_recv_length {
  $sk = (struct sock *)args->sk;
  if ($sk->__sk_common.skc_dport == DPORT_LE) {
    $k = $sk->__sk_common.skc_num;
    if (args->ret > 0) {
      @recv_calls[pid, $k] = count();
      @recv_bytes[pid, $k] = sum(args->ret);
    } else if (args->ret == -11) {
      @recv_eagain[pid, $k] = count();
    } else {
      @recv_other[pid, $k] = count();
    }
  }
}
"""


def ensure_tracefs():
    if not os.path.exists("/sys/kernel/tracing/events/sock/sock_send_length"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)
    if not os.path.exists("/sys/kernel/tracing/events/sock/sock_send_length/format"):
        raise SystemExit("tracepoint sock:sock_send_length not available on this kernel; count with strace -f -c instead")


def wait_for(proc_stream_path, needle, timeout, proc):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(proc_stream_path, "rb") as f:
            if needle in f.read():
                return
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited early: see {proc_stream_path}")
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {needle!r} in {proc_stream_path}")


def parse_bpftrace(path):
    """bpftrace -f json prints one {"type": "map"} line per map at exit: @m: {"pid,port": value}."""
    maps = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if obj.get("type") == "map":
                for name, entries in obj["data"].items():
                    m = maps.setdefault(name.lstrip("@"), {})
                    for key, value in entries.items():
                        pid, port = (int(x) for x in key.split(","))
                        m[(pid, port)] = value
    return maps


def proc_cpu(pid):
    """(user, sys) CPU seconds of a live process from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick  # utime, stime (fields 14, 15 of stat)


TICK = os.sysconf("SC_CLK_TCK")


def _read(path):
    with open(path) as f:
        return f.read()


def read_task(base):
    """(name, cpu_s, wait_s, starttime_s, vol_cs, invol_cs) of one thread dir (/proc/P/task/T), or None."""
    try:
        stat = _read(base + "/stat")
        sched = _read(base + "/schedstat").split()
        status = _read(base + "/status")
    except OSError:
        return None
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    f = stat.rsplit(")", 1)[1].split()
    vol = invol = 0
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            vol = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            invol = int(line.split()[1])
    # stat fields 14/15 utime/stime, 22 starttime (ticks since boot); schedstat: run ns, wait ns, slices
    return name, (int(f[11]) + int(f[12])) / TICK, int(sched[1]) / 1e9, int(f[19]) / TICK, vol, invol


def read_proc_cpu(pid):
    """(state, utime+stime seconds) of a process from /proc/PID/stat, or None."""
    try:
        f = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return f[0], (int(f[11]) + int(f[12])) / TICK


class Sampler(threading.Thread):
    """Samples the client's /proc every `interval` s while it runs: process utime+stime and, per thread,
    utime+stime, run-queue wait (schedstat) and context switches; the server's utime+stime alongside.
    A sample taken once the client is a zombie (or gone) is dropped: the last kept one is from before exit."""

    def __init__(self, pid, server_pid, interval):
        super().__init__(daemon=True)
        self.pid, self.server_pid, self.interval = pid, server_pid, interval
        self.samples = []
        self.stop = threading.Event()
        self.own_cpu_s = 0.0

    def sample(self):
        t = time.monotonic()
        boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        p = read_proc_cpu(self.pid)
        if p is None or p[0] in "ZX":
            return None
        threads = {}
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return None
        for tid in tids:
            r = read_task(f"/proc/{self.pid}/task/{tid}")
            if r is not None:
                threads[(int(tid), r[3])] = r  # keyed by tid and start time (a reused tid is another thread)
        p2 = read_proc_cpu(self.pid)
        if p2 is None or p2[0] in "ZX":  # exited while we read its threads: not a clean sample
            return None
        s = read_proc_cpu(self.server_pid) if self.server_pid else None
        return {"t": t, "boot": boot, "cpu": p[1], "threads": threads, "server_cpu": s[1] if s else None}

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            s = self.sample()
            if s is None:
                break
            self.samples.append(s)
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))
        self.own_cpu_s = time.thread_time()


def phase_figures(samples, t_mark, duration_s, requests, interval):
    """client_cpu.phase and the server's cores over it: the window is the sample nearest
    t_mark - duration_s to the sample nearest t_mark (t_mark: when the client's phase-end line arrived)."""
    if len(samples) < 2 or not duration_s:
        return None, None
    target0 = t_mark - duration_s
    i0 = min(range(len(samples)), key=lambda i: abs(samples[i]["t"] - target0))
    i1 = min(range(len(samples)), key=lambda i: abs(samples[i]["t"] - t_mark))
    if i1 <= i0:
        return None, None
    a, b = samples[i0], samples[i1]
    window = b["t"] - a["t"]
    cpu = b["cpu"] - a["cpu"]
    # Per thread: its last reading in the window minus its baseline: its reading at the start, or, for
    # a thread first seen later, 0 when it started after the window's start, else its first reading.
    per = {}
    for s in samples[i0:i1 + 1]:
        for key, r in s["threads"].items():
            if key not in per:
                started_late = key not in a["threads"] and r[3] > a["boot"]
                base = (r[0], 0.0, 0.0, 0, 0) if started_late else (r[0], r[1], r[2], r[4], r[5])
                per[key] = {"base": base, "last": r}
            else:
                per[key]["last"] = r
    rows = []
    for (tid, _st), v in per.items():
        name, c0, w0, v0, n0 = v["base"]
        r = v["last"]
        rows.append({"tid": tid, "name": r[0], "cpu": r[1] - c0, "wait": r[2] - w0, "vcs": r[4] - v0, "ics": r[5] - n0})
    wait = sum(r["wait"] for r in rows)
    busiest = max(rows, key=lambda r: r["cpu"])
    hungriest = max(rows, key=lambda r: r["cpu"] + r["wait"])
    top = sorted(rows, key=lambda r: -(r["cpu"] + r["wait"]))[:5]
    steps = [samples[i + 1]["t"] - samples[i]["t"] for i in range(len(samples) - 1)]
    phase = {
        "window_s": round(window, 4),
        "start_offset_s": round(a["t"] - target0, 4),
        "end_offset_s": round(b["t"] - t_mark, 4),
        "cpu_s": round(cpu, 4),
        "cores": round(cpu / window, 3),
        "cpu_us_per_request": round(cpu * 1e6 / requests, 3) if requests else None,
        "busiest_thread": busiest["name"],
        "busiest_thread_share": round(busiest["cpu"] / window, 3),
        "runqueue_wait_s": round(wait, 4),
        "demand_cores": round((cpu + wait) / window, 3),
        "busiest_thread_demand": round((hungriest["cpu"] + hungriest["wait"]) / window, 3),
        "busiest_demand_thread": hungriest["name"],
        "voluntary_ctx_switches": sum(r["vcs"] for r in rows),
        "involuntary_ctx_switches": sum(r["ics"] for r in rows),
        "threads_seen": len(rows),
        "top_threads": [{"name": r["name"], "cpu_share": round(r["cpu"] / window, 3),
                         "wait_share": round(r["wait"] / window, 3)} for r in top],
        "samples": i1 - i0 + 1,
        "source": f"/proc sampled every {int(interval * 1000)} ms by run.py (mean step "
                  f"{1000 * sum(steps) / len(steps):.0f} ms): process utime+stime from /proc/PID/stat, "
                  "per thread utime+stime (stat), run-queue wait (schedstat field 2) and context switches "
                  "(status); window = samples nearest (phase end - duration_s) and the phase end (the "
                  "client's phase_end line, else its summary line)",
    }
    server = None
    if a["server_cpu"] is not None and b["server_cpu"] is not None:
        sc = b["server_cpu"] - a["server_cpu"]
        server = {"window_s": round(window, 4), "cpu_s": round(sc, 4), "cores": round(sc / window, 3),
                  "cpu_us_per_request": round(sc * 1e6 / requests, 3) if requests else None,
                  "source": "/proc/PID/stat utime+stime of the server at the client phase's first and last sample"}
    return phase, server


def cpu_quota(pid):
    """The CPU cap of the cgroup pid is in ("30% of one core"), or None when it has none."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, ctrls, path = line.split(":", 2)
        try:
            if ctrls == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # cgroup v2
                with open(f"/sys/fs/cgroup{path}/cpu.max") as f:
                    quota, period = f.read().split()
                if quota != "max":
                    return f"{100 * int(quota) / int(period):g}% of one core (cgroup v2 {path} cpu.max)"
            elif "cpu" in ctrls.split(","):
                base = f"/sys/fs/cgroup/{ctrls}{path}"
                with open(base + "/cpu.cfs_quota_us") as f:
                    quota = int(f.read())
                with open(base + "/cpu.cfs_period_us") as f:
                    period = int(f.read())
                if quota > 0:
                    return f"{100 * quota / period:g}% of one core (cgroup v1 cpu:{path} cfs quota)"
        except (OSError, ValueError):
            continue
    return None


def tshark_count(pcap, display_filter):
    try:
        r = subprocess.run(["tshark", "-n", "-r", pcap, "-Y", display_filter, "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError) as e:
        print(f"tshark failed: {e}", file=sys.stderr)
        return None
    return sum(1 for line in r.stdout.splitlines() if line.strip())


LUA_CQL_TLS = os.path.join(HERE, "tshark", "cql-over-tls.lua")
OPCODE_NAMES = {str(k): v for k, v in pcapstats.OPCODES.items()}


def tshark_fields(pcap, args, fields):
    cmd = ["tshark", "-n", "-r", pcap, *args, "-T", "fields", *sum((["-e", f] for f in fields), [])]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError) as e:
        print(f"tshark failed: {e}", file=sys.stderr)
        return None
    return [line.split("\t") for line in r.stdout.splitlines() if line.strip()]


def tls_figures(pcap, port, keys, record_layer, sends):
    """The sidecar's "tls" section: tshark's reading of the ServerHellos and, with the key log, of the
    decrypted CQL frames (Wireshark's CQL dissector fed by lab/tshark/cql-over-tls.lua) and KeyUpdates."""
    tls_as = ["-d", f"tcp.port=={port},tls"]
    hello = tshark_fields(pcap, tls_as + ["-Y", "tls.handshake.type==2"],
                          ["tcp.dstport", "tls.handshake.version", "tls.handshake.extensions.supported_version",
                           "tls.handshake.ciphersuite"]) or []
    out = {
        "keylog": os.path.basename(keys) if keys else None,
        "negotiated": record_layer.get("negotiated") if record_layer else None,
        "tshark_server_hello": [{"client_port": int(r[0]), "version": r[2] or r[1], "cipher_suite": r[3]} for r in hello],
    }
    if keys and os.path.exists(keys):
        dec = ["-X", f"lua_script:{LUA_CQL_TLS}", "-o", f"tls.keylog_file:{keys}"] + tls_as
        rows = tshark_fields(pcap, dec + ["-Y", "cql"], ["tcp.srcport", "cql.opcode"])
        if rows is not None:
            ops = {"client": collections.Counter(), "server": collections.Counter()}
            for r in rows:
                side = "server" if r[0] == str(port) else "client"
                for op in r[1].split(","):
                    if op:
                        ops[side][OPCODE_NAMES.get(op, op)] += 1
            # One packet may carry several KeyUpdates (the JDK sends them in bursts): count the messages.
            ku = tshark_fields(pcap, dec + ["-Y", "tls.handshake.type==24"], ["tcp.srcport", "tls.handshake.type"]) or []
            cf = sum(ops["client"].values())
            out["tshark_decrypted"] = {
                "client_frames": cf,
                "server_frames": sum(ops["server"].values()),
                "client_opcodes": dict(ops["client"]),
                "server_opcodes": dict(ops["server"]),
                "key_updates": {"client": sum(r[1].split(",").count("24") for r in ku if r[0] != str(port)),
                                "server": sum(r[1].split(",").count("24") for r in ku if r[0] == str(port))},
                "source": "tshark -X lua_script:lab/tshark/cql-over-tls.lua -d tcp.port==9042,tls "
                          "-o tls.keylog_file:KEYS -Y cql -T fields -e tcp.srcport -e cql.opcode (opcodes of "
                          "one packet are comma-separated: each counted); KeyUpdates: -Y tls.handshake.type==24",
            }
            # None when nothing was decrypted (a capture without the handshakes: no key matches).
            out["client_cql_frames_per_send_syscall"] = round(cf / sends, 3) if sends and cf else None
    if record_layer and sends:
        out["client_app_records_per_send_syscall"] = round(record_layer["client_app_records"] / sends, 3)
        out["client_records_per_send_syscall"] = round(record_layer["client_records"] / sends, 3)
    return out


def restat(paths, port):
    """Recompute the pcap-derived fields of existing sidecars (after a pcapstats.py fix)."""
    for sidecar in paths:
        with open(sidecar) as f:
            d = json.load(f)
        pcap = os.path.join(os.path.dirname(sidecar), d["pcap"])
        stats = pcapstats.analyze(pcap, port)
        d["pcap_stats"] = {
            "tshark_client_data_segments": tshark_count(pcap, f"tcp.dstport=={port} && tcp.len>0"),
            **{k: v for k, v in stats.items() if k not in ("file", "per_connection")},
            "per_connection": stats["per_connection"],
        }
        sends = d["kernel"]["send_syscalls"]
        d["client_frames_per_send_syscall"] = round(stats["client_frames"] / sends, 3) if sends else None
        if stats.get("tls"):
            keys = os.path.join(os.path.dirname(sidecar), d["tls"]["keylog"]) if (d.get("tls") or {}).get("keylog") else None
            delay = (d.get("tls") or {}).get("capture_delay_s")
            d["tls"] = tls_figures(pcap, port, keys, stats["tls"], sends)
            d["tls"]["capture_delay_s"] = delay
            # TLS: the frames are the decrypted ones (None when none could be decrypted).
            d["client_frames_per_send_syscall"] = d["tls"].get("client_cql_frames_per_send_syscall")
        with open(sidecar, "w") as f:
            json.dump(d, f, indent=1)
            f.write("\n")
        print(f"{sidecar}: {stats['client_frames']} client frames, {sends} sends")


def main():
    if sys.argv[1:2] == ["--restat"]:
        restat(sys.argv[2:], 9042)
        return
    ap = argparse.ArgumentParser(description="capture one lab client run")
    ap.add_argument("--name", required=True, help="capture base name, e.g. gocql-1.7.0-v4-unbuffered-c64")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "pcaps"))
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--note", default="", help="free text stored in the sidecar")
    ap.add_argument("--gzip", action="store_true", help="store the pcap as NAME.pcap.gz (cqlsniff reads it)")
    ap.add_argument("--timeout", type=float, default=600, help="kill the client after this many seconds")
    ap.add_argument("--server-pid-file", default=os.path.join(os.environ.get("CASSANDRA_RUN_DIR", "/tmp/cqlsniff-cassandra"),
                                                               "cassandra.pid"),
                    help="pid file of the server whose CPU over the client's run goes into the sidecar")
    ap.add_argument("--sample-ms", type=float, default=50, help="sample the client's /proc every this many ms")
    ap.add_argument("--keylog", action="store_true",
                    help="TLS client: replace @KEYLOG@ in the client's arguments by OUT/NAME.keys (its key log)")
    ap.add_argument("--capture-delay", type=float, default=0,
                    help="start tcpdump this many seconds after the client (a capture that misses the handshakes)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- client command and arguments")
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("missing client command after --")
    if os.geteuid() != 0:
        raise SystemExit("run as root: bpftrace and tcpdump need it")
    ensure_tracefs()

    os.makedirs(args.out, exist_ok=True)
    pcap = os.path.join(args.out, args.name + ".pcap")
    sidecar = os.path.join(args.out, args.name + ".json")
    keys = os.path.join(args.out, args.name + ".keys") if args.keylog else None
    if keys:
        if not any("@KEYLOG@" in c for c in cmd):
            ap.error("--keylog: put @KEYLOG@ where the client takes its key log file")
        cmd = [c.replace("@KEYLOG@", keys) for c in cmd]
        if os.path.exists(keys):
            os.remove(keys)
    work = os.path.join(HERE, "out", args.name)
    os.makedirs(work, exist_ok=True)

    dport_le = ((args.port & 0xFF) << 8) | (args.port >> 8)  # skc_dport is in network order
    bt_path = os.path.join(work, "sock.bt")
    with open(bt_path, "w") as f:
        f.write(BPF_TEMPLATE.replace("DPORT_LE", hex(dport_le)))
    bt_out = os.path.join(work, "bpftrace.json")
    bt_err = os.path.join(work, "bpftrace.err")
    td_err = os.path.join(work, "tcpdump.err")

    bt = subprocess.Popen(["bpftrace", "-f", "json", bt_path],
                          stdout=open(bt_out, "w"), stderr=open(bt_err, "w"))
    wait_for(bt_out, b"attached_probes", 60, bt)
    td_cmd = ["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", pcap, f"tcp port {args.port}"]

    def start_tcpdump():
        p = subprocess.Popen(td_cmd, stdout=subprocess.DEVNULL, stderr=open(td_err, "w"))
        wait_for(td_err, b"listening on", 30, p)
        return p

    td = None
    if not args.capture_delay:
        td = start_tcpdump()
        time.sleep(0.3)

    try:
        with open(args.server_pid_file) as f:
            server_pid = int(f.read().strip())
    except (OSError, ValueError):
        server_pid = None
    server_cpu0 = proc_cpu(server_pid) if server_pid else None
    load_before = os.getloadavg()
    t0 = time.time()
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "client.err"), "w"),
                              text=True)
    client_pid = client.pid
    # Reap the client with wait4 ourselves: its rusage is the CPU the client (and the children it
    # waited for) used, measured by the kernel, whatever the client reports about itself.
    sampler = Sampler(client_pid, server_pid if server_cpu0 else None, args.sample_ms / 1000)
    sampler.start()
    killer = threading.Timer(args.timeout, client.kill)
    killer.start()
    delayed = {}
    if args.capture_delay:  # tcpdump starts while the client runs: its connections are already up
        def late_start():
            time.sleep(args.capture_delay)
            delayed["t"] = time.time() - t0
            delayed["td"] = start_tcpdump()
        starter = threading.Thread(target=late_start, daemon=True)
        starter.start()
    lines = []  # (arrival time, line): the phase-end line's time bounds the measured phase
    for line in client.stdout:
        lines.append((time.monotonic(), line))
    stdout = "".join(line for _t, line in lines)
    _pid, status, rusage = os.wait4(client_pid, 0)
    t_exit = time.monotonic()
    if args.capture_delay:
        starter.join()
        td = delayed["td"]
    killer.cancel()
    sampler.stop.set()
    sampler.join()
    client.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    load_after = os.getloadavg()
    server_cpu1 = proc_cpu(server_pid) if server_cpu0 else None
    # tcpdump reads the kernel ring in blocks; give it time to drain before SIGINT, which drops
    # whatever it has not read yet (a pcap cut short by ~1 s otherwise).
    time.sleep(2.0)

    td.send_signal(signal.SIGINT)
    td.wait(timeout=30)
    bt.send_signal(signal.SIGINT)
    bt.wait(timeout=60)

    if client.returncode != 0:
        print(stdout, file=sys.stderr)
        raise SystemExit(f"client exited {client.returncode}: see {work}/client.err")
    summary = json.loads(stdout.strip().splitlines()[-1])
    requests = summary.get("requests") or 0
    client_cpu = {
        "user_s": round(rusage.ru_utime, 6),
        "sys_s": round(rusage.ru_stime, 6),
        "cpu_us_per_request": round((rusage.ru_utime + rusage.ru_stime) * 1e6 / requests, 3) if requests else None,
        "max_rss_kib": rusage.ru_maxrss,
        "voluntary_ctx_switches": rusage.ru_nvcsw,
        "involuntary_ctx_switches": rusage.ru_nivcsw,
        "source": "wait4 rusage of the client process (whole process life: start, connect, schema, requests)",
    }
    t_mark = next((t for t, line in lines if line.strip().startswith("{") and '"phase_end"' in line), None)
    mark_kind = "phase_end line"
    if t_mark is None:
        t_mark, mark_kind = lines[-1][0], "summary line"
    phase, server_phase = phase_figures(sampler.samples, t_mark, summary.get("duration_s"), requests,
                                        args.sample_ms / 1000)
    if phase:
        phase["phase_end_mark"] = mark_kind
        phase["mark_to_exit_s"] = round(t_exit - t_mark, 3)
        phase["sampler_cpu_s"] = round(sampler.own_cpu_s, 3)
    client_cpu["phase"] = phase
    server_cpu = None
    if server_cpu0 and server_cpu1:
        su, ss = server_cpu1[0] - server_cpu0[0], server_cpu1[1] - server_cpu0[1]
        server_cpu = {
            "pid": server_pid,
            "user_s": round(su, 3),
            "sys_s": round(ss, 3),
            "cpu_us_per_request": round((su + ss) * 1e6 / requests, 3) if requests else None,
            "cores_busy": round((su + ss) / wall, 3) if wall else None,
            "cpu_quota": cpu_quota(server_pid),
            "source": "/proc/PID/stat utime+stime of the server, before and after the client's run (clock ticks)",
            "phase": server_phase,
        }

    maps = parse_bpftrace(bt_out)

    def mine(name):
        return {port: v for (pid, port), v in maps.get(name, {}).items() if pid == client_pid}

    send_calls = mine("send_calls")
    ports = sorted(set(send_calls) | set(mine("recv_calls")))
    per_port = {
        str(p): {k: mine(k).get(p, 0) for k in ("send_calls", "send_bytes", "send_eagain", "send_other",
                                              "recv_calls", "recv_bytes", "recv_eagain", "recv_other")}
        for p in ports
    }
    other_pids = sorted({pid for (pid, _p) in maps.get("send_calls", {}) if pid != client_pid})

    def total(name):
        return sum(mine(name).values())

    stats = pcapstats.analyze(pcap, args.port)
    tshark_client_segments = tshark_count(pcap, f"tcp.dstport=={args.port} && tcp.len>0")
    frames = stats["client_frames"]
    sends = total("send_calls")
    tls = None
    if stats.get("tls") or keys:
        tls = tls_figures(pcap, args.port, keys, stats.get("tls"), sends)
        tls["capture_delay_s"] = round(delayed["t"], 3) if args.capture_delay else None
        if tls.get("client_cql_frames_per_send_syscall") is not None:
            # No CQL frame is visible in the clear: the decrypted count is the frames the client sent.
            frames = tls["tshark_decrypted"]["client_frames"]
    if args.capture_delay:
        note = (f"tcpdump started {delayed['t']:.2f} s after the client (the kernel counts cover the whole run, "
                "the pcap only what followed)")
        args.note = f"{args.note}; {note}" if args.note else note

    out = {
        "pcap": os.path.basename(pcap),
        "pcap_bytes": os.path.getsize(pcap),
        "driver": summary.get("driver"),
        "driver_version": summary.get("driver_version"),
        "mode": summary.get("mode"),
        "protocol": summary.get("protocol"),
        "compression": summary.get("compression"),
        "connections": summary.get("connections"),
        "requests": summary.get("requests"),
        "concurrency": summary.get("concurrency"),
        "client_duration_s": round(summary.get("duration_s", 0), 3),
        "client_ops_per_s": round(summary.get("ops_per_s", 0), 1),
        "wall_s": round(wall, 3),
        "client_pid": client_pid,
        "client_cpu": client_cpu,
        "server_cpu": server_cpu,
        "host": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in load_after]},
        "kernel": {
            "source": "bpftrace tracepoints sock:sock_send_length / sock:sock_recv_length, client pid only, "
                      f"sockets whose remote port is {args.port} (all of the client's CQL connections)",
            "send_syscalls": sends,
            "send_bytes": total("send_bytes"),
            "send_eagain": total("send_eagain"),
            "recv_syscalls": total("recv_calls"),
            "recv_bytes": total("recv_bytes"),
            "recv_eagain": total("recv_eagain"),
            "per_local_port": per_port,
            "other_pids_sending_to_port": other_pids,
        },
        "pcap_stats": {
            "tshark_client_data_segments": tshark_client_segments,
            **{k: v for k, v in stats.items() if k not in ("file", "per_connection")},
            "per_connection": stats["per_connection"],
        },
        "client_frames_per_send_syscall": (tls.get("client_cql_frames_per_send_syscall") if tls
                                           else round(frames / sends, 3) if sends else None),
        **({"tls": tls} if tls else {}),
        "client_summary": summary,
        "command": " ".join(os.path.relpath(c, REPO) if c.startswith(REPO + os.sep) else c for c in cmd),
        "note": args.note,
        "cqlsniff_says": None,
    }
    if not args.gzip and os.path.exists(pcap + ".gz"):
        os.remove(pcap + ".gz")  # left by an earlier run stored gzipped
    if args.gzip:
        with open(pcap, "rb") as src, gzip.open(pcap + ".gz", "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.remove(pcap)
        out["pcap"] = os.path.basename(pcap) + ".gz"
        out["pcap_bytes_uncompressed"] = out["pcap_bytes"]
        out["pcap_bytes"] = os.path.getsize(pcap + ".gz")
    with open(sidecar, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps({k: out[k] for k in ("pcap", "pcap_bytes", "requests", "concurrency")}
                     | {"send_syscalls": sends, "recv_syscalls": out["kernel"]["recv_syscalls"],
                        "client_frames": frames, "client_data_segments": stats["client_data_segments"],
                        "tshark_client_data_segments": tshark_client_segments,
                        "frames_per_send": out["client_frames_per_send_syscall"],
                        "ops_per_s": out["client_ops_per_s"], "client_cpu_us_per_request": client_cpu["cpu_us_per_request"],
                        "phase": {k: (phase or {}).get(k) for k in ("cores", "busiest_thread", "busiest_thread_share",
                                                                     "demand_cores", "busiest_thread_demand")},
                        "server_cpu_us_per_request": (server_cpu or {}).get("cpu_us_per_request"),
                        "loadavg_after": out["host"]["loadavg_after"]}))


if __name__ == "__main__":
    main()
